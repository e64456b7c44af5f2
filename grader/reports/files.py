"""A report folder: written with `report.json` last and atomically, and `report.json` read back with one-sentence
errors. A folder counts as done exactly when a valid `report.json` is in it."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from grader.errors import GraderError
from grader.files import clear_stale_temps, write_atomic
from grader.models import SCHEMA_VERSION, Report

REPORT_JSON = "report.json"
__all__ = ["REPORT_JSON", "install_report_folder", "read_report_json", "start_report_folder", "write_atomic",
           "write_report_json"]


def start_report_folder(out_dir: Path) -> Path:
    """Make `out_dir` ready to be (re)written: its old report.json goes first, so a half-rewritten folder never
    looks done, with the temp files a killed writer left."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).unlink(missing_ok=True)
    clear_stale_temps(out_dir)
    return out_dir


def install_report_folder(files: dict[str, bytes], out_dir: Path) -> Report:
    """Write a report folder made elsewhere (on a Ray node, in a container) into `out_dir`, `report.json` last.

    `files` maps paths inside the folder (such as graded/ffn.py) to their bytes."""
    report = report_from_json(files[REPORT_JSON], Path(out_dir) / REPORT_JSON)
    start_report_folder(out_dir)
    for name, data in files.items():
        if name != REPORT_JSON:
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out_dir / name, data)
    write_atomic(out_dir / REPORT_JSON, files[REPORT_JSON])
    return report


def write_report_json(report: Report, out_dir: Path) -> Path:
    """Write `report` as `out_dir/report.json`."""
    return write_atomic(Path(out_dir) / REPORT_JSON, report.model_dump_json(indent=2) + "\n")


def read_report_json(path: Path) -> Report:
    """Read a `report.json`, turning a missing, corrupt or other-version file into one GraderError sentence."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GraderError(f"There is no report at {path}.") from None
    except OSError as exc:
        raise GraderError(f"Cannot read the report {path}: {exc.strerror}.") from None
    return report_from_json(data, path)


def report_from_json(data: bytes, path: Path) -> Report:
    """The Report in a `report.json`'s bytes; GraderError naming `path` when they are corrupt or another version."""
    try:
        raw = json.loads(data.decode("utf-8"))
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
