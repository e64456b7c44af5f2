"""The JSON Schema of `Report`, committed in the repository as `schema/report.schema.json` so consumers need no
Python."""

from __future__ import annotations

import json
from pathlib import Path

from grader.models import Report
from grader.reports.files import write_atomic


def report_schema_text() -> str:
    """`Report.model_json_schema()` as sorted, indented JSON."""
    return json.dumps(Report.model_json_schema(), indent=2, sort_keys=True) + "\n"


def stale_schema(path: Path, write: bool = False) -> bool:
    """Whether the schema committed at `path` differs from the models; with `write`, bring it up to date."""
    text = report_schema_text()
    stale = not path.is_file() or path.read_text(encoding="utf-8") != text
    if stale and write:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    return stale
