"""Accuracy credit only for what the grader trained: each integrity rule fires just above its limit, costs the
accuracy credit or only asks a TA as the assignment says, and honest measures raise nothing."""

from __future__ import annotations

import pytest

from grader.config import load_assignment
from grader.integrity import findings
from grader.models import EpochRecord, Metrics, TrainingResult
from grader.scoring import score

A2 = load_assignment("a2_ffn")
RULES = A2.metric.integrity


def training(untrained: float = 0.5, kept_validation: float = 0.84, changed: bool = True) -> TrainingResult:
    epochs = [EpochRecord(epoch=1, loss=0.5, train_metric=0.8, validation_metric=0.8, seconds=1.0),
              EpochRecord(epoch=2, loss=0.4, train_metric=0.85, validation_metric=kept_validation, seconds=1.0)]
    return TrainingResult(device="cpu", epochs_planned=2, epochs=epochs, stopped="completed", budget_seconds=180,
                          validation_images=1000, untrained_metric=untrained, chance_metric=0.5, keep="best",
                          kept_epoch=2, model_changed=changed)


def metrics(accuracy: float = 0.85, perturbed: float = 0.84) -> Metrics:
    return Metrics(value=accuracy, per_class_accuracy={"airplane": accuracy, "bird": accuracy},
                   confusion=[[1, 0], [0, 1]], perturbed_value=perturbed, perturbation="hflip",
                   perturbation_gap=accuracy - perturbed, samples=2000)


def rules_of(metric=A2.metric, **measures) -> dict[str, str]:  # a Metric
    train_keys = {"untrained", "kept_validation", "changed"}
    found = findings(metric, training(**{k: v for k, v in measures.items() if k in train_keys}),
                     metrics(**{k: v for k, v in measures.items() if k not in train_keys}))
    return {finding.rule: finding.action for finding in found}


def test_an_honest_model_raises_nothing() -> None:
    assert rules_of() == {}


@pytest.mark.parametrize(("measures", "rule", "action"), [
    ({"untrained": 0.5 + RULES.untrained_over_chance.above + 0.001}, "untrained_over_chance", "no_credit"),
    ({"kept_validation": 0.75, "accuracy": 0.75 + RULES.test_over_validation.above + 0.001, "perturbed": 0.81},
     "test_over_validation", "no_credit"),
    ({"perturbed": 0.85 - RULES.perturbation_gap.above - 0.001}, "perturbation_gap", "no_credit"),
    ({"changed": False}, "unchanged", "no_credit"),
])
def test_each_rule_fires_just_above_its_limit(measures: dict, rule: str, action: str) -> None:
    assert rules_of(**measures) == {rule: action}


def test_at_the_limit_nothing_fires() -> None:
    assert rules_of(untrained=0.5 + RULES.untrained_over_chance.above) == {}
    assert rules_of(perturbed=0.85 - RULES.perturbation_gap.above + 1e-9) == {}


def test_a_high_accuracy_only_asks_a_ta() -> None:
    accuracy = RULES.accuracy.above + 0.01
    assert rules_of(accuracy=accuracy, perturbed=accuracy, kept_validation=accuracy) == {"accuracy": "review"}


def test_an_assignment_may_allow_pretrained_starts() -> None:
    allowed = A2.metric.model_copy(update={"integrity": RULES.model_copy(update={"untrained_over_chance": None})})
    assert rules_of(allowed, untrained=0.9) == {}
    assert rules_of(allowed, untrained=0.9, changed=False) == {"unchanged": "no_credit"}, "training must change it"


def test_no_credit_takes_the_accuracy_points_and_review_does_not() -> None:
    good = metrics(accuracy=0.9, perturbed=0.9)
    cheat = findings(A2.metric, training(untrained=0.9, kept_validation=0.9), good)
    item = score(A2, [], good, [], cheat).items[-1]
    assert item.points == 0 and item.reason.startswith("Not earned: The model as build_model() returns it")
    review = findings(A2.metric, training(kept_validation=0.9), good)
    assert [f.action for f in review] == ["review"] and score(A2, [], good, [], review).items[-1].points == 50
