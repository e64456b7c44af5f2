"""The JSON Schema of `Report`, committed as `schema/report.schema.json` so consumers need no Python."""

from __future__ import annotations

import json

from grader.models import Report
from grader.paths import PROJECT_ROOT
from grader.reports.files import write_atomic

SCHEMA_PATH = PROJECT_ROOT / "schema" / "report.schema.json"


def report_schema_text() -> str:
    """`Report.model_json_schema()` as sorted, indented JSON."""
    return json.dumps(Report.model_json_schema(), indent=2, sort_keys=True) + "\n"


def stale_schema(write: bool = False) -> bool:
    """Whether the committed schema differs from the models; with `write`, bring it up to date."""
    text = report_schema_text()
    stale = not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text(encoding="utf-8") != text
    if stale and write:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(SCHEMA_PATH, text)
    return stale
