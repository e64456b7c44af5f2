"""In-sandbox verdict stage: judge what the hidden checks observed, in a process that never ran student code.

Usage: python -m grader.harness.verdicts (reads spec.json: a VerdictSpec)
Imports the assignment's hidden check modules (which registers their verdicts), reads the checks'
observations and writes one Judgement per observation into a Verdicts record.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from grader.config import Assignment, load_assignment
from grader.files import write_atomic
from grader.harness.submission import exit_now
from grader.observation import judge, judged_checks
from grader.protocol import CHECK_EVENTS, CheckObserved, Judgement, Verdicts, VerdictSpec, read_records, read_spec


def check_name(nodeid: str) -> str:
    """The check function's name in a pytest node id (`path::name[param]`)."""
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def import_checks(assignment: Assignment) -> list[ModuleType]:
    """The assignment's hidden check files, imported (which registers their verdicts)."""
    modules = []
    for path in sorted(assignment.checks_dir.glob("test_*.py")):
        name = f"hidden_checks_{assignment.id}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the hidden checks in {path}")
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def main() -> None:
    spec = read_spec(VerdictSpec)
    assignment = load_assignment(spec.assignment_id)
    judged = judged_checks(import_checks(assignment))
    observed = [r for r in read_records(Path(spec.observations), CHECK_EVENTS) if isinstance(r, CheckObserved)]
    judgements = [Judgement(nodeid=o.nodeid, failure=judge(judged[check_name(o.nodeid)], json.dumps(o.observation),
                                                           assignment))
                  for o in observed if check_name(o.nodeid) in judged]
    write_atomic(Path(spec.result), Verdicts(judged_checks=sorted(judged), judgements=judgements).model_dump_json())


if __name__ == "__main__":
    main()
    exit_now()
