"""`results.json` for Gradescope's autograder harness.

Follows https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format: a top-level
"score", "execution_time", "output" and "stdout_visibility", and one "tests" entry per score item
(check group or metric) with its "name", "score", "max_score", "output", "visibility" and "status".
Only the student-readable sentences, the notes and the student's own import traceback go in; hidden-check
details never leave the TA view. For a course with a leaderboard, "leaderboard" holds the task's metric on the
hidden test images ("Test accuracy"; an error such as "Test mean squared error" with "order": "asc", lowest
first; https://gradescope-autograders.readthedocs.io/en/latest/leaderboards/).
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.models import Report, ScoreItem
from grader.reports.files import write_atomic

RESULTS_JSON = "results.json"


def _test(item: ScoreItem) -> dict[str, object]:
    return {
        "name": item.title,
        "score": item.points,
        "max_score": item.max_points,
        "output": item.reason,
        "visibility": item.visibility,
        "status": "passed" if item.points >= item.max_points else "failed",
    }


def _output(report: Report) -> str:
    """The summary, what went wrong (with the student's own traceback, if any) and the notes, as plain text."""
    lines = [report.score.summary]
    if report.failures:
        lines += ["", "What went wrong:"]
        for failure in report.failures:
            lines += [f"- {failure.message}", *(["", failure.student_traceback, ""] if failure.student_traceback
                                                else [])]
    if report.notes:
        lines += ["", "Notes:", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines)


def gradescope_results(report: Report, leaderboard: bool = False) -> dict[str, object]:
    """The Gradescope results object for one report; its "score" is the report's total."""
    results: dict[str, object] = {
        "score": report.score.total,
        "execution_time": round(report.seconds),
        "output": _output(report),
        "stdout_visibility": "hidden",
        "tests": [_test(item) for item in report.score.items],
    }
    if leaderboard and report.credited_value is not None and report.metrics is not None:
        entry: dict[str, object] = {"name": f"Test {report.metrics.name}", "value": round(report.credited_value, 4)}
        if not report.metrics.higher_is_better:
            entry["order"] = "asc"  # Gradescope ranks the lowest error first
        results["leaderboard"] = [entry]
    return results


def write_gradescope_results(report: Report, out_dir: Path, leaderboard: bool = False) -> Path:
    """Write `out_dir/results.json` (the file Gradescope reads from /autograder/results/)."""
    text = json.dumps(gradescope_results(report, leaderboard), indent=2) + "\n"
    return write_atomic(Path(out_dir) / RESULTS_JSON, text)
