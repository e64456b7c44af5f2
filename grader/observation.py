"""Checks that observe in the student's process and are judged where no student code ever ran.

A hidden check calls the submission, records what it saw as an `Observation` (plain numbers, shapes,
flags: nothing that runs code) through the `observe` fixture, and passes. Its verdict, registered with
`@verdict(check)`, decides pass or fail from the observation alone, in a clean process forked from the
warm sandbox before any student code ran (`grader.harness.verdicts`). So patching torch, numpy, builtins
or the grader's helpers in the student's process cannot make a failing check pass: at most it can
forge the observation, which the verdict checks against values it computes itself where it can.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, TypeVar

from pydantic import ValidationError

from grader.config import Assignment
from grader.models import StrictModel


class Observation(StrictModel):
    """What a check saw the submission do."""


ObservationT = TypeVar("ObservationT", bound=Observation)
Verdict = Callable[[ObservationT, Assignment], None]
Observe = Callable[[Observation], None]
Check = Callable[..., None]
# By the check function itself, not its name: two assignments' own checks may share a name in one pytest run.
# Each verdict takes its own Observation subclass, which judge() reads from the verdict's type hints.
_VERDICTS: dict[Check, Verdict[Any]] = {}


def verdict(check: Check) -> Callable[[Verdict[ObservationT]], Verdict[ObservationT]]:
    """Register the decorated function as the verdict of `check`; it raises AssertionError("sentence") to fail."""

    def register(judge_function: Verdict[ObservationT]) -> Verdict[ObservationT]:
        _VERDICTS[check] = judge_function
        return judge_function

    return register


def judged_checks(modules: Iterable[ModuleType]) -> dict[str, Check]:
    """The checks with a verdict that `modules` (an assignment's hidden check files) define or import, by name."""
    return {name: value for module in modules for name, value in vars(module).items()
            if callable(value) and value in _VERDICTS}


def judge(check: Check, observation_json: str, assignment: Assignment) -> str | None:
    """The failure sentence of `check` for what it observed, or None when it passes."""
    judge_function = _VERDICTS[check]
    observation_type = typing.get_type_hints(judge_function)["seen"]
    try:
        seen = observation_type.model_validate_json(observation_json)
    except ValidationError:
        return "The check's record of what the submission did is malformed."
    try:
        judge_function(seen, assignment)
    except AssertionError as exc:
        return str(exc) or "The check failed."
    return None
