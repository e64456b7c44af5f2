"""Verdicts belong to their check function, not its name: two assignments' checks of the same name keep their own
verdicts in one pytest run and in the verdict stage."""

from __future__ import annotations

from types import ModuleType

from grader.config import Assignment, load_assignment
from grader.observation import Observation, judge, judged_checks, verdict


class Seen(Observation):
    value: int


def _assignment_checks(limit: int) -> ModuleType:
    """A module as an assignment's hidden check file: a check named `test_value` whose verdict wants `limit`."""
    module = ModuleType(f"checks_up_to_{limit}")

    def test_value() -> None:
        """The check; only its identity matters here."""

    @verdict(test_value)
    def _value_fits(seen: Seen, assignment: Assignment) -> None:
        if seen.value > limit:  # raised, not asserted: pytest would add its own rewriting to the sentence
            raise AssertionError(f"The value {seen.value} is above {limit}.")

    module.test_value = test_value
    return module


def test_checks_of_the_same_name_keep_their_own_verdicts() -> None:
    a2 = load_assignment("a2_ffn")
    strict, lenient = _assignment_checks(1), _assignment_checks(10)
    observed = Seen(value=5).model_dump_json()
    assert judge(strict.test_value, observed, a2) == "The value 5 is above 1."
    assert judge(lenient.test_value, observed, a2) is None
    assert judged_checks([strict])["test_value"] is strict.test_value
    assert judged_checks([lenient])["test_value"] is lenient.test_value
