"""Metric credit only for what the grader trained: findings from measures the grader took in its own process.

The validation metric of the model as built (before any training), of every epoch, and the test metric on the
hidden images and their perturbed copies are all computed here from outputs and targets the stages never saw.
Each rule of `[metric.integrity]` turns one of them into a finding beyond its limit; a rule's measure is a gain
in the task's direction (for an error, the drop). Every task has test_over_validation, perturbation_gap and the
unchanged-model rule; untrained_over_chance and accuracy are classification's (config.Metric says so).
"""

from __future__ import annotations

from grader.config import IntegrityRule, Metric
from grader.models import Finding, FindingRule, Metrics, TrainingResult


def findings(metric: Metric, training: TrainingResult, metrics: Metrics) -> list[Finding]:
    """Every rule the graded model breaks, each with one sentence for the student and the TA."""
    rules, name = metric.integrity, metrics.name
    found = [_untrained(metric, training), _test_over_validation(metric, training, metrics),
             _finding("perturbation_gap", rules.perturbation_gap, metrics.perturbation_gap,
                      f"The {name} worsens from {metrics.value:.3f} on the hidden test images to "
                      f"{metrics.perturbed_value:.3f} on copies of them with a {metrics.perturbation} that the "
                      "grader made: the model recognizes the images themselves rather than what they show."),
             _unchanged(training)]
    if rules.accuracy is not None:
        found.append(_finding("accuracy", rules.accuracy, metrics.value,
                              f"The accuracy {metrics.value:.3f} is above what the allowed layers reach under "
                              "this budget: a TA checks that the model computes what its layers show."))
    return [f for f in found if f is not None]


def _untrained(metric: Metric, training: TrainingResult) -> Finding | None:
    rule, untrained, chance = metric.integrity.untrained_over_chance, training.untrained_metric, training.chance_metric
    if rule is None or untrained is None or chance is None:
        return None
    return _finding("untrained_over_chance", rule, untrained - chance,
                    f"The model as build_model() returns it, before any training, already scores {untrained:.3f} "
                    f"on the grader's validation images, where always answering the commonest class scores "
                    f"{chance:.3f}: it was trained elsewhere, so its accuracy is not credited.")


def _test_over_validation(metric: Metric, training: TrainingResult, metrics: Metrics) -> Finding | None:
    kept = next((e for e in training.epochs if e.epoch == training.kept_epoch), None)
    if kept is None or kept.validation_metric is None:
        return None
    gap = metrics.value - kept.validation_metric
    return _finding("test_over_validation", metric.integrity.test_over_validation,
                    gap if metrics.higher_is_better else -gap,
                    f"The model's {metrics.name} is {metrics.value:.3f} on the public test images but "
                    f"{kept.validation_metric:.3f} on the training images the grader held out; a model trained by "
                    f"the grader scores about the same on both, so this {metrics.name} is not credited.")


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
                           "are those of the model as built), so its metric is not credited.")
