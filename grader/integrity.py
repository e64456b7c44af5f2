"""Accuracy credit only for what the grader trained: findings from measures the grader took in its own process.

The validation accuracy of the model as built (before any training), of every epoch, and the test accuracy on
the hidden images and their perturbed copies are all computed here from logits and labels the stages never
saw. Each rule of `[metric.integrity]` turns one of them into a finding beyond its limit.
"""

from __future__ import annotations

from grader.config import IntegrityRule, Metric
from grader.models import Finding, FindingRule, Metrics, TrainingResult


def findings(metric: Metric, training: TrainingResult, metrics: Metrics) -> list[Finding]:
    """Every rule the graded model breaks, each with one sentence for the student and the TA."""
    rules = metric.integrity
    kept = next((e for e in training.epochs if e.epoch == training.kept_epoch), None)
    found = []
    if rules.untrained_over_chance is not None and training.untrained_accuracy is not None:
        chance = training.chance_accuracy
        found.append(_finding("untrained_over_chance", rules.untrained_over_chance,
                              training.untrained_accuracy - chance,
                              f"The model as build_model() returns it, before any training, already scores "
                              f"{training.untrained_accuracy:.3f} on the grader's validation images, where always "
                              f"answering the commonest class scores {chance:.3f}: it was trained elsewhere, so its "
                              "accuracy is not credited."))
    if kept is not None and kept.validation_accuracy is not None:
        gap = metrics.accuracy - kept.validation_accuracy
        found.append(_finding("test_over_validation", rules.test_over_validation, gap,
                              f"The model scores {metrics.accuracy:.3f} on the public test images but "
                              f"{kept.validation_accuracy:.3f} on the training images the grader held out; a model "
                              "trained by the grader scores about the same on both, so this accuracy is not "
                              "credited."))
    found.append(_finding("perturbation_gap", rules.perturbation_gap, metrics.perturbation_gap,
                          f"The accuracy drops from {metrics.accuracy:.3f} on the hidden test images to "
                          f"{metrics.perturbed_accuracy:.3f} on copies of them with a {metrics.perturbation} "
                          "that the grader made: the model recognizes the images themselves rather than what "
                          "they show."))
    found.append(_unchanged(training))
    if rules.accuracy is not None:
        found.append(_finding("accuracy", rules.accuracy, metrics.accuracy,
                              f"The accuracy {metrics.accuracy:.3f} is above what the allowed layers reach under "
                              "this budget: a TA checks that the model computes what its layers show."))
    return [f for f in found if f is not None]


def _finding(rule: FindingRule, limit: IntegrityRule, value: float, message: str) -> Finding | None:
    if value <= limit.above + 1e-9:  # a measure exactly at the limit, whatever the float rounding of a difference
        return None
    return Finding(rule=rule, value=value, limit=limit.above, action=limit.action, message=message)


def _unchanged(training: TrainingResult) -> Finding | None:
    """A model whose predictions the grader's training never changed earns nothing for them."""
    if training.model_changed:
        return None
    return Finding(rule="unchanged", value=0.0, limit=0.0, action="no_credit",
                   message="Training did not change the model's predictions on the grader's validation images (they "
                           "are those of the model as built), so its accuracy is not credited.")
