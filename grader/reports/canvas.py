"""The gradebook CSV Canvas imports, shared by `grader batch` and the service: one row per student, matched by
Canvas's ID, SIS User ID or SIS Login ID, and one column of grades."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pydantic import BaseModel

from grader.config import Assignment

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


class CanvasRow(BaseModel):
    """One student's line; a grade of None leaves the cell empty, which Canvas leaves ungraded."""

    student: str
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    grade: float | None = None


def canvas_csv(rows: Sequence[CanvasRow], assignment: Assignment) -> str:
    """The CSV text: Canvas's fixed columns, the assignment's column, and the 'Points Possible' line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, f"{assignment.title} ({assignment.id})"])
    writer.writerow(["Points Possible", "", "", "", "", f"{assignment.total_points:g}"])
    for row in rows:
        grade = "" if row.grade is None else f"{round(row.grade, 2):g}"
        writer.writerow([row.student, row.canvas_id, row.sis_user_id, row.sis_login_id, row.section, grade])
    return buffer.getvalue()
