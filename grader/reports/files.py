"""Writing `report.json` atomically, and reading it back with one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from grader.errors import GraderError
from grader.files import clear_stale_temps, write_atomic
from grader.models import SCHEMA_VERSION, Report

REPORT_JSON = "report.json"
__all__ = ["REPORT_JSON", "clear_stale_temps", "read_report_json", "write_atomic", "write_report_json"]


def write_report_json(report: Report, out_dir: Path) -> Path:
    """Write `report` as `out_dir/report.json`."""
    return write_atomic(Path(out_dir) / REPORT_JSON, report.model_dump_json(indent=2) + "\n")


def read_report_json(path: Path) -> Report:
    """Read a `report.json`, turning a missing, corrupt or other-version file into one GraderError sentence."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"There is no report at {path}.") from None
    except OSError as exc:
        raise GraderError(f"Cannot read the report {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise GraderError(f"The report {path} is not valid JSON; grade the submission again.") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        found = "no schema version" if version is None else f"schema version {version}"
        raise GraderError(
            f"The report {path} has {found}, but this grader reads version {SCHEMA_VERSION};"
            " grade the submission again."
        )
    try:
        return Report.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise GraderError(f"The report {path} does not match the report schema at {where}: {first['msg']}.") from None
