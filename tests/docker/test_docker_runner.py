"""Grading in containers: the same results as the local runner, and the container's own limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.batch import BatchOptions, discover, run_batch
from grader.config import assignment_ids, load_assignment
from grader.data import cache_dir
from grader.docker_runner import CONTAINER_LABEL, close_waiting_containers, grade_in_container
from grader.models import Report
from grader.paths import COURSE_ROOT_ENV, course_root, examples_dir
from grader.pipeline import GradeOptions, grade
from grader.reports import read_report_json
from tests.framework.test_course_root import make_course

REPOSITORY = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.docker, pytest.mark.real_data, pytest.mark.slow]
BROKEN = {"a1_dataset": "cy_broken", "a2_ffn": "fay_broken.py", "a3_cnn": "ivy_broken"}
# a4 has no broken example: its stub, whose every function raises, takes the failing paths of the other task (a5's
# would cost another 50 s of the tier and add no path a3's broken example does not take).
STUB_AS_BROKEN = "a4_autoencoder"


def broken(assignment_id: str) -> Path:
    """An assignment's broken example, or its stub."""
    if assignment_id in BROKEN:
        return examples_dir() / assignment_id / BROKEN[assignment_id]
    assignment = load_assignment(assignment_id)
    return assignment.folder / f"{assignment.submission.module}.py"


def both_runners(assignment_id: str, source: Path, data_root: Path, tmp_path: Path) -> tuple[Report, Report]:
    assignment = load_assignment(assignment_id)
    options = GradeOptions(data_root=data_root, student_id="student")
    local = grade(assignment, source, tmp_path / "local", options)
    container = grade_in_container(assignment, source, tmp_path / "docker", options)
    return local, container


def same_grading(local: Report, container: Report) -> None:
    assert container.environment.runner == "docker"
    assert container.score.total == local.score.total
    assert [(c.nodeid, c.outcome) for c in container.checks] == [(c.nodeid, c.outcome) for c in local.checks]
    assert [f.kind for f in container.failures] == [f.kind for f in local.failures]
    if local.metrics is not None:
        assert container.metrics.value == local.metrics.value
        assert container.metrics.confusion == local.metrics.confusion
    assert container.submission.sha256 == local.submission.sha256


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_reference_grades_the_same_in_a_container(assignment_id: str, grader_image: str, data_root: Path,
                                                  check_solutions: tuple[Path, object], tmp_path: Path) -> None:
    """The local side is the session's `grader check-solutions` run, graded with the same seed and threads."""
    local = read_report_json(check_solutions[0] / assignment_id / "solution" / "report.json")
    assignment = load_assignment(assignment_id)
    options = GradeOptions(data_root=data_root, student_id="solution")
    container = grade_in_container(assignment, assignment.solution_dir, tmp_path / "docker", options)
    assert local.score.total == local.score.max_total
    same_grading(local, container)


@pytest.mark.parametrize("assignment_id", [*BROKEN, STUB_AS_BROKEN])
def test_broken_submission_grades_the_same_in_a_container(assignment_id: str, grader_image: str,
                                                          data_root: Path, tmp_path: Path) -> None:
    local, container = both_runners(assignment_id, broken(assignment_id), data_root, tmp_path)
    assert local.failures
    same_grading(local, container)


def hostile(tmp_path: Path, body: str) -> Path:
    """An a2 submission that runs `body` at import time, after the reference's definitions."""
    reference = (load_assignment("a2_ffn").solution_dir / "ffn.py").read_text()
    path = tmp_path / "ffn.py"
    path.write_text(reference + "\n\n" + body + "\n")
    return path


def container_grade(source: Path, data_root: Path, out: Path) -> Report:
    options = GradeOptions(data_root=data_root, student_id="hostile")
    return grade_in_container(load_assignment("a2_ffn"), source, out, options)


INTERFACES = ("names = sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').read().splitlines()[2:])\n"
              "print('INTERFACES:' + ','.join(names))")


def test_network_is_cut_in_the_container(grader_image: str, data_root: Path, tmp_path: Path) -> None:
    # The control: the same probe here sees the machine's interfaces; the stage in the container sees loopback only.
    here = subprocess.run([sys.executable, "-c", INTERFACES], capture_output=True, text=True, check=True).stdout
    assert here.strip() != "INTERFACES:lo"
    probe = INTERFACES.replace("print(", "raise RuntimeError(")
    report = container_grade(hostile(tmp_path, probe), data_root, tmp_path / "out")
    assert report.failures[0].kind == "import_error"
    assert "INTERFACES:lo." in report.failures[0].message, report.failures[0].message
    assert report.score.total == 0


HUNT = (
    "import os\nfound = []\n"
    "for top in {tops!r}:\n"
    "    for folder, _, files in os.walk(top):\n"
    "        found += [os.path.join(folder, f) for f in files\n"
    "                  if ('label' in f and 'train' not in f) or f.endswith(('.jpg', '.png'))]\n"
    "raise RuntimeError('FOUND:' + repr(sorted(found)[:5]))"
)  # the training labels are there for training; the validation labels and the test images must not be


def test_labels_are_unreachable_in_the_container(grader_image: str, data_root: Path, tmp_path: Path) -> None:
    # The control: the same hunt here finds the validation labels in the tensor cache and the image files.
    for top, expected in ((cache_dir(), "labels.npy"), (data_root / "test", ".jpg")):
        control = subprocess.run([sys.executable, "-c", HUNT.format(tops=(str(top),))], capture_output=True, text=True)
        assert expected in control.stderr, control.stderr[-500:]
    tops = ("/data", "/cache", "/out", "/submission", "/home", "/tmp", "/opt/course", "/mnt/course", "/sandbox")
    report = container_grade(hostile(tmp_path, HUNT.format(tops=tops)), data_root, tmp_path / "out")
    assert "FOUND:[]" in report.failures[0].message, report.failures[0].message


def in_image(grader_image: str, *command: str) -> list[str]:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", command[0], grader_image,
                           *command[1:]], capture_output=True, text=True, check=True).stdout.split()


def test_the_image_holds_no_solutions_or_examples(grader_image: str) -> None:
    """The engine is a wheel (no source checkout), and the image's own course holds no solutions or examples."""
    assert in_image(grader_image, "ls", "/opt/course") == ["assignments", "tests"]
    assert in_image(grader_image, "ls", "/opt/course/tests") == assignment_ids(), "the hidden checks only"
    where = in_image(grader_image, "python", "-c", "import grader; print(grader.__file__)")
    assert where[0].startswith("/opt/venv/lib/"), where
    assert in_image(grader_image, "ls", "/opt/grader") == ["constraints.txt", "requirements.txt"]
    assert (course_root() / "solutions").is_dir() and (course_root() / "examples").is_dir()


def test_the_runner_grades_with_the_hosts_course_root(grader_image: str, data_root: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A course root edited after the image was built: the container grades with the edit, not with its own copy."""
    course = make_course(tmp_path / "course")
    config = course / "assignments" / "a1_dataset" / "assignment.toml"
    config.write_text(config.read_text().replace("points = 15", "points = 30", 1))
    monkeypatch.setenv(COURSE_ROOT_ENV, str(course))
    assignment = load_assignment("a1_dataset")
    assert assignment.total_points == 115
    report = grade_in_container(assignment, assignment.solution_dir, tmp_path / "out",
                                GradeOptions(data_root=data_root, student_id="solution"))
    assert report.environment.runner == "docker" and report.failures == []
    assert report.score.total == report.score.max_total == 115


def test_an_endless_import_is_stopped_and_reported(grader_image: str, data_root: Path, tmp_path: Path) -> None:
    report = container_grade(hostile(tmp_path, "while True:\n    pass"), data_root, tmp_path / "out")
    assert report.failures[0].kind == "timeout"
    assert (tmp_path / "out" / "report.md").is_file()


def test_unbounded_memory_is_stopped_and_reported(grader_image: str, data_root: Path, tmp_path: Path) -> None:
    hog = "chunks = []\nwhile True:\n    chunks.append(bytearray(256 * 2**20))"
    report = container_grade(hostile(tmp_path, hog), data_root, tmp_path / "out")
    assert report.failures[0].kind == "out_of_memory"
    assert report.score.total == 0


def test_gradescope_entry_point_writes_valid_results(grader_image: str, data_root: Path, tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "cifar_dataset.py").write_text(
        (load_assignment("a1_dataset").solution_dir / "cifar_dataset.py").read_text())
    results = tmp_path / "results"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    run = subprocess.run([
        "docker", "run", "--rm", "--network", "none", "-e", "GRADER_ASSIGNMENT=a1_dataset", "-e", "GRADER_BIN=grader",
        "-v", f"{REPOSITORY / 'docker' / 'gradescope' / 'run_autograder'}:/autograder/run_autograder:ro",
        "--tmpfs", "/autograder/cache:rw,mode=1777",
        "-v", f"{submission}:/autograder/submission:ro", "-v", f"{results}:/autograder/results",
        "-v", f"{data_root}:/autograder/data/cifar10:ro", "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
        "--entrypoint", "/autograder/run_autograder", grader_image,
    ], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    payload = json.loads((results / "results.json").read_text())
    assert payload["score"] == 100
    assert {"name", "score", "max_score", "visibility"} <= set(payload["tests"][0])


def labelled_containers() -> list[str]:
    return subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"label={CONTAINER_LABEL}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_a_batch_delivers_each_submission_to_its_own_waiting_container(grader_image: str, data_root: Path,
                                                                       tmp_path: Path) -> None:
    # Each container starts before its submission is known; the host must hand each one the right submission.
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("ann", "bob", "cem"):
        (folder / f"{name}.py").write_text(f"raise ValueError('handed in by {name}')\n")
    assert labelled_containers() == [], "the control: no grader container is left over from before"
    reports = run_batch(load_assignment("a2_ffn"), discover(folder), tmp_path / "out",
                        BatchOptions(workers=1, data_root=data_root), grade_one=grade_in_container)
    assert len(labelled_containers()) == 1, "the container started for a next submission waits"
    close_waiting_containers()
    for name, report in zip(("ann", "bob", "cem"), reports, strict=True):
        assert report.environment.runner == "docker" and report.submission.student_id == name
        assert f"handed in by {name}" in report.failures[0].message, report.failures[0].message
        assert read_report_json(tmp_path / "out" / name / "report.json").submission.student_id == name
    assert labelled_containers() == []
