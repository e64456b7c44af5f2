"""Similarity: recall on disguised copies and false positives among independent solutions, with and without the
discounting of course material and class-wide code; and the stage's time for 500 a2 submissions."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table
from bench.similarity_set import Member, copied_pairs, independent_pairs, write_class
from grader.config import Assignment, load_assignment
from grader.graded_code import GRADED_DIR
from grader.models import Failure, FailureKind
from grader.pipeline import failed_report
from grader.reports import write_report_json
from grader.similarity import Source, compare, course_material, folder_sources, run_similarity

NAME = "similarity"
CLASS_SIZE = 500


def run(cfg: Config) -> Result:
    result = Result(NAME)
    rows = [row for assignment_id in ("a2_ffn", "a3_cnn") for row in _detection(load_assignment(assignment_id))]
    result.tables.append(Table("disguised copies among independent solutions (every original copied 5 ways)", rows))
    size = 100 if cfg.quick else CLASS_SIZE
    result.tables.append(Table(f"the stage on {size} a2 submissions (report folders with graded code)",
                               [_timing(load_assignment("a2_ffn"), size)]))
    result.notes.append("share: the larger of the two directions (how much of one submission's own code is found in "
                        "the other); a pair is listed at the assignment's similarity threshold or as a duplicate.")
    return result


def _detection(assignment: Assignment) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        members = write_class(assignment.id, Path(tmp))
        sources = folder_sources(assignment, Path(tmp), archived=False)
    copied, independent = copied_pairs(members), independent_pairs(members)
    material = course_material(assignment)
    rows = []
    for discount in (True, False):
        matches, _ = compare(assignment, sources, material, discount)
        listed = {frozenset((m.pair.first, m.pair.second)) for m in matches}
        rows.append({"assignment": assignment.id, "discounting": "yes" if discount else "no",
                     "submissions": len(sources), "copied pairs found": f"{len(listed & copied)} / {len(copied)}",
                     "recall": round(len(listed & copied) / len(copied), 3),
                     "independent pairs listed": f"{len(listed & independent)} / {len(independent)}",
                     "false positive rate": round(len(listed & independent) / len(independent), 4)})
    return rows


def _timing(assignment: Assignment, size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        rounds = -(-size // 13)  # 13 a2 originals, each disguised anew per round
        members = write_class(assignment.id, Path(tmp) / "submissions", copies_of=[], rounds=rounds)[:size]
        sources = {s.student_id: s for s in folder_sources(assignment, Path(tmp) / "submissions", archived=False)}
        folders = [_report_folder(assignment, sources[m.student_id], m, Path(tmp) / "out") for m in members]
        started = time.perf_counter()
        result = run_similarity(assignment, folders, Path(tmp) / "out")
        seconds = time.perf_counter() - started
    return {"submissions": len(folders), "pairs compared": len(folders) * (len(folders) - 1) // 2,
            "pairs listed (views written)": len(result.pairs), "seconds": round(seconds, 1),
            "class boilerplate fingerprints": result.class_boilerplate}


def _report_folder(assignment: Assignment, source: Source, member: Member, out: Path) -> Path:
    """A report folder as a batch leaves it, as far as the similarity stage reads it: report.json and graded/."""
    folder = out / member.student_id
    for name, code in source.files.items():
        (folder / GRADED_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / GRADED_DIR / name).write_text(code)
    report = failed_report(assignment, Path(member.student_id), member.student_id,
                           Failure(stage="grader", kind=FailureKind.CRASH, message="Not graded in this benchmark."))
    write_report_json(report, folder)
    return folder
