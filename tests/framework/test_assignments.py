"""Every shipped assignment: its stub is generated from its solution, passes no hidden check, and every
check group of its assignment.toml has hidden checks, each naming a known group; its public checks speak in
sentences, pass on the solution and name the mistake the hidden checks name."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from grader.config import Assignment, assignment_ids, load_assignment
from grader.data import load_split
from grader.paths import PACKAGE_DIR, course_root
from grader.stubs import stale_stubs
from tests.framework.test_a1_variants import RIGHT


def test_stubs_are_generated_from_solutions():
    stale = [str(path.relative_to(course_root())) for path in stale_stubs()]
    assert not stale, f"stale stubs, regenerate them with grader.stubs.stale_stubs(write=True): {stale}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_stub_passes_no_hidden_check(assignment_id, tmp_path):
    assignment = load_assignment(assignment_id)
    if not any(assignment.checks_dir.glob("test_*.py")):
        pytest.skip(f"{assignment.id} has no hidden checks yet")
    records = _run_checks(assignment, assignment.folder, tmp_path / "results.jsonl")
    outcomes = [record for record in records if record["event"] == "outcome"]
    assert outcomes, f"no hidden check of {assignment.id} ran"
    passed = [r["nodeid"] for r in outcomes if r["when"] == "call" and r["outcome"] == "passed"]
    assert not passed, f"the {assignment.id} stub passes hidden checks: {passed}"


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_every_check_group_has_checks(assignment_id):
    assignment = load_assignment(assignment_id)
    groups = _check_groups(assignment)
    if not groups:
        pytest.skip(f"{assignment.id} has no hidden checks yet")
    declared = {group.name for group in assignment.checks}
    ungrouped = [check for check, group in groups.items() if group not in declared]
    assert not ungrouped, f"{assignment.id}: checks without a check group of assignment.toml: {ungrouped}"
    empty = declared - set(groups.values())
    assert not empty, f"{assignment.id}: check groups without hidden checks: {sorted(empty)}"


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_public_checks_explain_every_assertion(assignment_id):
    """Students read these messages in their own terminal: no assertion may fail as a bare `assert 4.93 < 0.90`."""
    for path in sorted((load_assignment(assignment_id).folder / "tests").glob("test_*.py")):
        bare = [node.lineno for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)
                and node.msg is None]
        assert not bare, f"{path.name}: asserts without a message on lines {bare}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_public_checks_pass_on_the_solution_and_name_a_missing_zero_grad(assignment_id, tmp_path):
    """The public checks run as students run them: `pytest` in a copy of the handout folder, without the grader."""
    assignment = load_assignment(assignment_id)
    shutil.copytree(assignment.folder, tmp_path / assignment.id)
    for name in assignment.submission.files:
        shutil.copy(assignment.solution_dir / name, tmp_path / assignment.id / name)
    assert _public_checks(tmp_path / assignment.id).returncode == 0
    module = tmp_path / assignment.id / f"{assignment.submission.module}.py"
    source = module.read_text()
    if assignment.training is None:
        return  # nothing to train, so no gradients to zero
    assert "optimizer.zero_grad()" in source, f"the {assignment.id} solution never calls optimizer.zero_grad()"
    module.write_text(source.replace("optimizer.zero_grad()", "pass"))
    run = _public_checks(tmp_path / assignment.id)
    assert run.returncode == 1
    assert ("At optimizer step 3 the gradients still included earlier batches (step 3 saw the batch and weights of "
            "step 1, but other gradients): call optimizer.zero_grad() before each loss.backward().") in run.stdout


SAMPLE_STD = """

def channel_stats(dataset):
    pixels = torch.cat([transforms.ToTensor()(dataset[i][0]).reshape(3, -1).T for i in range(len(dataset))])
    return pixels.mean(0), pixels.std(0)  # torch's default: the sample std, with Bessel's correction
"""


def test_a1_public_checks_fail_the_sample_std_as_the_hidden_ones_do(tmp_path):
    """The hidden stats check (within 1e-5) names the sample std as wrong; the public one must fail it too."""
    a1 = load_assignment("a1_dataset")
    folder = tmp_path / a1.id
    shutil.copytree(a1.folder, folder)
    source = (a1.solution_dir / "cifar_dataset.py").read_text()
    (folder / "cifar_dataset.py").write_text(source + "\nfrom torchvision import transforms\n" + SAMPLE_STD)
    run = _public_checks(folder)
    assert run.returncode == 1 and "1 failed, 8 passed" in run.stdout, run.stdout
    assert "(the population std of every pixel: torch's .std() needs correction=0)" in run.stdout


@pytest.mark.parametrize("case", ["torch.std_mean over stacked tensors", "running sums in numpy"])
def test_a1_public_checks_pass_right_stats_written_otherwise(case: str, tmp_path: Path) -> None:
    """The other direction of the public stats check's 1e-5: right statistics computed another way pass it, as they
    pass the hidden one (tests/framework/test_a1_variants.py)."""
    a1 = load_assignment("a1_dataset")
    folder = tmp_path / a1.id
    shutil.copytree(a1.folder, folder)
    (folder / "cifar_dataset.py").write_text((a1.solution_dir / "cifar_dataset.py").read_text() + "\n" + RIGHT[case])
    run = _public_checks(folder)
    assert run.returncode == 0 and "9 passed" in run.stdout, run.stdout


TRAINED = [i for i in assignment_ids() if load_assignment(i).training is not None]


@pytest.mark.parametrize("assignment_id", TRAINED)
def test_handout_numbers_are_those_of_assignment_toml(assignment_id):
    assignment = load_assignment(assignment_id)
    training, threads = assignment.training, assignment.limits.threads
    handout = " ".join((assignment.folder / "README.md").read_text().split())
    for phrase in (f"gives your training {threads} threads", f"divided by {threads}.",
                   f"**{training.budget_seconds['cpu']:g} CPU seconds per thread**",
                   f"**{training.budget_seconds['cuda']:g} seconds** of wall-clock time",
                   f"ends more than {training.grace_seconds:g} seconds after the budget",
                   f"the assignment's seed ({assignment.seed})", f"at most {training.max_parameters:,} parameters",
                   f"holds out {training.validation.fraction:.0%} of the training images",
                   *_metric_phrases(assignment)):
        assert phrase in handout, f"{assignment.id}/README.md does not say {phrase!r}"


def _metric_phrases(assignment: Assignment) -> list[str]:
    """What the handout says of the credit curve and the integrity rules, in the task's words."""
    metric, keep = assignment.metric, assignment.training.validation.keep
    integrity = metric.integrity
    if metric.task == "reconstruction":
        return [f"error {metric.full_credit_at:.4f} or less: all {metric.points:g} points",
                f"error {metric.zero_credit_at:.4f} or more: no points",
                "the epoch with the lowest validation error" if keep == "best" else "the last epoch",
                f"more than {integrity.test_over_validation.above:.3f} below the kept epoch's validation error",
                f"rises by more than {integrity.perturbation_gap.above:.3f}"]
    return [f"accuracy {metric.full_credit_at:.2f} or more: all {metric.points:g} points",
            f"accuracy {metric.zero_credit_at:.2f} or less: no points",
            "the epoch with the highest validation accuracy" if keep == "best" else "the last epoch",
            f"already scores more than {integrity.untrained_over_chance.above:.2f} above chance",
            f"more than {integrity.test_over_validation.above:.2f} above the kept epoch's validation accuracy",
            f"drops by more than {integrity.perturbation_gap.above:.2f}",
            *([f"An accuracy above {integrity.accuracy.above:.2f}"] if integrity.accuracy else [])]


@pytest.mark.real_data
@pytest.mark.parametrize("assignment_id", TRAINED)
def test_handout_normalization_is_that_of_the_data(assignment_id, data_root):
    """A handout quotes the normalization `grader data info` prints, or, where [data] declares it, says so."""
    data = load_assignment(assignment_id).data
    handout = " ".join((load_assignment(assignment_id).folder / "README.md").read_text().split())
    if data.mean is not None:
        assert "normalizes nothing further" in handout and data.mean == (0, 0, 0) and data.std == (1, 1, 1)
        return
    mean, std = load_split(data_root, data.train_split, data).channel_stats()
    for name, values in (("mean", mean), ("std", std)):
        quoted = f"**{name} ({', '.join(f'{value:.4f}' for value in values)})**"
        assert quoted in handout, f"the handout should say {quoted}, as `grader data info` prints"


def _public_checks(folder: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _run_checks(assignment: Assignment, submission: Path, results: Path) -> list[dict]:
    """The result records of the hidden checks run on `submission` in a pytest process set up as the grader's."""
    subprocess.run(
        [sys.executable, "-m", "pytest", str(assignment.checks_dir), "-q", "-p", "grader.pytest_plugin",
         "-p", "no:cacheprovider", "--noconftest", "-c", str(PACKAGE_DIR / "harness" / "pytest.ini"),
         "--rootdir", str(course_root()), "--submission", str(submission), "--results", str(results)],
        cwd=course_root(), env=os.environ | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, capture_output=True,
        check=False,
    )
    assert results.is_file(), f"the hidden checks of {assignment.id} wrote no results"
    return [json.loads(line) for line in results.read_text().splitlines()]


def _check_groups(assignment: Assignment) -> dict[str, str | None]:
    """The group each hidden check function counts towards, read from its markers as pytest would."""
    groups = {}
    for path in sorted(assignment.checks_dir.glob("test_*.py")):
        module = _import_file(path, f"_hidden_checks_{assignment.id}_{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                marks = _marks(value) + _marks(module)  # the closest marker wins, as in get_closest_marker
                groups[f"{path.name}::{name}"] = next((m.args[0] for m in marks if m.name == "group"), None)
    return groups


def _marks(target: object) -> list[pytest.Mark]:
    marks = getattr(target, "pytestmark", [])
    return marks if isinstance(marks, list) else [marks]


def _import_file(path: Path, module_name: str) -> ModuleType:
    """Import a check file under a name of its own, so pytest's own import of it is not disturbed."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses in a check file look their module up here
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[module_name]
    return module
