"""Scoring, check results, logits and metrics pinned to numbers worked out by hand, not to what they were handed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.checks import Check, canary_nodeid, check_results
from grader.config import load_assignment
from grader.evaluation import perturb, shuffled_pair
from grader.failures import CONSEQUENCES
from grader.models import CheckResult, Failure, FailureKind, Metrics
from grader.protocol import CollectedCheck, Judgement, Verdicts
from grader.sandbox import SandboxResult
from grader.scoring import score
from grader.stage import stage_failure
from grader.tasks import Classification, Reconstruction, compute_metrics, read_outputs

A2 = load_assignment("a2_ffn")


def collected(*items: tuple[str, str]) -> list[CollectedCheck]:
    return [CollectedCheck(nodeid=f"t.py::{name}", group=group) for name, group in items]


def test_check_points_share_their_group_and_follow_the_verdicts() -> None:
    checks = collected(("a", "architecture"), ("t1", "training"), ("t2", "training"), ("t3", "training"),
                       ("t4", "training"), ("e1", "evaluate"), ("e2", "evaluate"), ("e3", "evaluate"))
    checks.append(CollectedCheck(nodeid=canary_nodeid(), group=None))
    outcomes = {f"t.py::{n}": Check("passed") for n in ("a", "t1", "t2", "t3", "e1", "e2")}
    outcomes["t.py::t4"] = Check("timeout", "train_one_epoch did not return within 10 s.")
    verdicts = Verdicts(judged_checks=["a", "t1", "t2", "e1"], judgements=[
        Judgement(nodeid="t.py::a", failure=None),
        Judgement(nodeid="t.py::t1", failure="At optimizer step 2 the gradients were not those of batch 2 alone."),
        Judgement(nodeid="t.py::t2", failure=None), Judgement(nodeid="t.py::t2", failure="forged second record"),
    ])  # e1 is judged but recorded nothing; t3 and e2 have no verdict: their pass in the sandbox stands
    results = {r.nodeid.split("::")[1]: r for r in check_results(A2, checks, outcomes, verdicts)}
    assert canary_nodeid() not in {r.nodeid for r in results.values()}
    assert [(n, r.outcome, round(r.points, 4), round(r.max_points, 4)) for n, r in results.items()] == [
        ("a", "passed", 15.0, 15.0), ("t1", "failed", 0.0, 3.75), ("t2", "failed", 0.0, 3.75),
        ("t3", "passed", 3.75, 3.75), ("t4", "timeout", 0.0, 3.75), ("e1", "failed", 0.0, 3.3333),
        ("e2", "passed", 3.3333, 3.3333), ("e3", "not_run", 0.0, 3.3333)]
    assert results["t1"].message.startswith("At optimizer step 2")
    assert results["e1"].message == "The check recorded nothing to judge."
    assert check_results(A2, checks, outcomes, None)[0].outcome == "failed", "no verdicts at all: nothing passes"


def test_score_adds_groups_and_the_metric_curve() -> None:
    def result(group: str, points: float, max_points: float) -> CheckResult:
        return CheckResult(nodeid=f"t::{group}{points}", group=group, outcome="passed" if points else "failed",
                           points=points, max_points=max_points, message="" if points else "It broke.")

    checks = [result("architecture", 15, 15), result("output", 5, 5), result("parameters", 0, 5),
              result("training", 3.75, 3.75), result("training", 0, 3.75), result("evaluate", 10, 10)]
    metrics = Metrics(value=0.76, per_class_accuracy={"airplane": 0.8, "bird": 0.72}, confusion=[[80, 20], [28, 72]],
                      perturbed_value=0.75, perturbation="hflip", perturbation_gap=0.01,
                      samples=200)
    result_score = score(A2, checks, metrics, [])
    assert {item.name: item.points for item in result_score.items} == {
        "architecture": 15, "output": 5, "parameters": 0, "training": 3.75, "evaluate": 10, "accuracy": 30.0}
    assert result_score.total == 63.75 and result_score.max_total == 100
    accuracy = result_score.items[-1].reason
    assert accuracy == ("The accuracy 0.7600 lies between 0.70 and 0.80: 60% of the points. The checks “make_optimizer "
                        "and train_one_epoch train the model correctly” failed (see above), which usually explains a "
                        "low accuracy: fix them first.")


def test_tampering_voids_every_check_and_the_metric() -> None:
    check = CheckResult(nodeid="t::a", group="architecture", outcome="passed", points=15, max_points=15)
    tampered = Failure(stage="checks", kind=FailureKind.TAMPERING, message="The run was tampered with.")
    result = score(A2, [check], None, [tampered])
    assert result.total == 0
    assert all(item.reason == "Not earned: see “What went wrong”." for item in result.items)


def test_every_failure_kind_has_its_consequence() -> None:
    assert set(CONSEQUENCES) == set(FailureKind)


def test_outputs_are_read_only_when_they_are_usable(tmp_path: Path) -> None:
    path = tmp_path / "logits.npy"
    assert read_outputs(path, (4, 2)) == ""
    cases = [
        (np.zeros((4, 2), dtype=np.float32), None),
        (np.zeros((4, 10), dtype=np.float32),
         "For 4 images the model returned outputs of shape (4, 10), expected (4, 2)."),
        (np.array([[0, 1]] * 3 + [[np.nan, 1]], dtype=np.float64),
         "The model returned outputs that are not finite numbers (NaN or infinity)."),
        (np.zeros((4, 2), dtype=np.int64), "The model returned outputs that are not finite numbers (NaN or infinity)."),
        (np.zeros((4, 2, 100), dtype=np.float64), "The model's output is far larger than the expected shape (4, 2)."),
        (np.array([{"a": 1}] * 8, dtype=object).reshape(4, 2),
         "The model's output could not be read back as an array."),
    ]
    for array, problem in cases:
        np.save(path, array, allow_pickle=True)
        read = read_outputs(path, (4, 2))
        if problem is None:
            assert isinstance(read, np.ndarray) and read.shape == (4, 2)
        else:
            assert read == problem


def test_metrics_from_logits_and_the_labels_only_the_grader_holds() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    logits = np.array([[2, 0], [2, 0], [0, 2], [0, 2], [2, 0]], dtype=np.float32)  # 3 of 5 right
    flipped = np.array([[2, 0], [0, 2], [0, 2], [2, 0], [2, 0]], dtype=np.float32)  # 1 of 5 right
    task = Classification(("airplane", "bird"))
    metrics = compute_metrics(task, "hflip", (labels, labels), (logits, flipped))
    assert metrics.value == pytest.approx(0.6) and metrics.perturbed_value == pytest.approx(0.2)
    assert metrics.confusion == [[2, 1], [1, 1]]
    assert metrics.per_class_accuracy == {"airplane": pytest.approx(2 / 3), "bird": pytest.approx(0.5)}
    assert metrics.perturbation_gap == pytest.approx(0.4)
    assert compute_metrics(task, "hflip", (labels, labels), (logits, logits)).perturbation_gap == 0


def test_ten_classes_give_a_ten_by_ten_confusion_matrix() -> None:
    labels = np.arange(10).repeat(2)
    logits = np.eye(10, dtype=np.float32)[np.roll(labels, 1)]  # every second image of a class is called the one before
    metrics = compute_metrics(Classification(tuple(f"c{i}" for i in range(10))), "hflip", (labels, labels),
                              (logits, logits))
    assert len(metrics.confusion) == 10 and all(len(row) == 10 for row in metrics.confusion)
    assert metrics.value == pytest.approx(0.5) and set(metrics.per_class_accuracy.values()) == {0.5}
    assert sum(map(sum, metrics.confusion)) == 20


def test_reconstruction_is_scored_by_mean_squared_error_against_the_grader_s_targets() -> None:
    task = Reconstruction()
    images = np.full((2, 3, 32, 32), 255, dtype=np.uint8)
    targets = task.targets(images, np.zeros(2, dtype=np.int64), [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    assert targets.shape == (2, 3, 32, 32) and np.allclose(targets, 2.0)  # (1 - 0.5) / 0.25
    metrics = compute_metrics(task, "hflip", (targets, targets), (targets + 0.1, targets + 0.3))
    assert metrics.value == pytest.approx(0.01, rel=1e-5) and metrics.perturbed_value == pytest.approx(0.09, rel=1e-5)
    assert metrics.perturbation_gap == pytest.approx(0.08, rel=1e-5), "worse on the copies: a positive gap"
    assert not metrics.higher_is_better and metrics.confusion == [] and metrics.name == "mean squared error"


def test_the_perturbed_copy_is_mixed_in_and_comes_back_in_order() -> None:
    images = np.arange(3 * 3 * 32 * 32, dtype=np.uint8).reshape(3, 3, 32, 32)
    flipped = perturb(images, "hflip", 0)
    assert np.array_equal(flipped[0, 0, 0], images[0, 0, 0, ::-1])
    shifted = perturb(images, "shift", 0)  # seed 0 shifts right by one pixel, the edge repeated
    assert np.array_equal(shifted[0, 0, 0, 1:], images[0, 0, 0, :-1]) and shifted[0, 0, 0, 0] == images[0, 0, 0, 0]
    both, order = shuffled_pair(images, flipped, (0, 123))
    assert sorted(order) == list(range(6)) and list(order) != list(range(6))
    back = np.empty_like(both)
    back[order] = both
    assert np.array_equal(back[:3], images) and np.array_equal(back[3:], flipped)
    assert np.array_equal(shuffled_pair(images, flipped, (0, 123))[1], order), "the same key, the same order"


@pytest.mark.parametrize(("hit", "kind", "message"), [
    ({"timed_out": True}, "timeout", "The submission took longer than 30 s while importing ffn.py and was stopped."),
    ({"out_of_cpu": True}, "timeout", "The submission used more than 210 s of CPU time per thread while importing "
                                      "ffn.py and was stopped."),
    ({"out_of_memory": True}, "out_of_memory",
     "The submission used more than 6144 MB of memory while importing ffn.py and was stopped."),
    ({"too_many_processes": True}, "crash", "The submission started too many processes while importing ffn.py and "
                                            "was stopped."),
    ({"returncode": 0}, "early_exit", "The submission ended the process early (exit code 0) while importing ffn.py."),
    ({"returncode": -11}, "crash", "The process crashed (SIGSEGV) while importing ffn.py."),
    ({"returncode": 3}, "crash", "The process exited with code 3 while importing ffn.py."),
])
def test_a_stage_that_ended_silently_gets_one_sentence(hit: dict, kind: str, message: str) -> None:
    result = SandboxResult(**({"returncode": -9, "seconds": 1.0, "output": "x" * 5000, "limit_seconds": 30,
                               "limit_memory_mb": 6144, "limit_cpu_seconds": 210} | hit))
    failure = stage_failure("import", result, "importing ffn.py")
    assert (failure.kind, failure.message) == (kind, message)
    assert failure.details == "x" * 4000
