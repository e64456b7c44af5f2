"""In-sandbox import stage: import the submission and check its names, kinds and signatures.

Usage: python -m grader.harness.interface (reads spec.json: an ImportSpec)
Writes an InterfaceResult; no failures means the interface is right.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from grader.config import ApiName, Assignment, load_assignment
from grader.files import write_atomic
from grader.harness.submission import exit_now, import_submission, trimmed_traceback
from grader.models import FailureKind
from grader.protocol import FailureRecord, ImportSpec, InterfaceResult, read_spec

KIND_NAMES = {"function": "a function", "class": "a class", "int": "an int", "dict": "a dict"}
KIND_CHECKS: dict[str, Callable[[object], bool]] = {
    "function": lambda obj: inspect.isfunction(obj) or inspect.isbuiltin(obj),
    "class": inspect.isclass,
    "int": lambda obj: isinstance(obj, int) and not isinstance(obj, bool),
    "dict": lambda obj: isinstance(obj, dict),
}


def import_failure(exc: BaseException, module_file: str) -> FailureRecord:
    """One sentence for why importing the submission failed."""
    details = trimmed_traceback(exc)
    if isinstance(exc, SyntaxError):
        return FailureRecord(kind=FailureKind.SYNTAX_ERROR, details=details,
                             message=f"{module_file} has a syntax error on line {exc.lineno}: {exc.msg}.")
    if isinstance(exc, ModuleNotFoundError):
        return FailureRecord(kind=FailureKind.IMPORT_ERROR, details=details, message=(
            f"{module_file} imports {exc.name!r}, which is not available in the grading environment: if it is "
            f"your own module, hand it in with {module_file} (in a folder or a .zip); if it is a package, do "
            f"without it."))
    if isinstance(exc, SystemExit):
        return FailureRecord(kind=FailureKind.EARLY_EXIT, details=details,
                             message=f"{module_file} called exit() while being imported.")
    return FailureRecord(kind=FailureKind.IMPORT_ERROR, details=details,
                         message=f"Importing {module_file} raised {type(exc).__name__}: {str(exc)[:200]}.")


def interface_failures(module: ModuleType, assignment: Assignment) -> list[FailureRecord]:
    """Every required name that is missing, of the wrong kind or with a signature the grader cannot call."""
    failures = []
    for name, api in assignment.submission.api.items():
        if not hasattr(module, name):
            if not api.optional:
                failures.append(FailureRecord(kind=FailureKind.MISSING_NAME, message=_missing(module, name)))
            continue
        failure = _check_name(name, getattr(module, name), api)
        if failure:
            failures.append(failure)
    return failures


def _missing(module: ModuleType, name: str) -> str:
    close = difflib.get_close_matches(name, [n for n in vars(module) if not n.startswith("_")], n=1)
    hint = f" (found {close[0]!r}: a typo?)" if close else ""
    return f"{module.__name__}.py does not define {name}{hint}."


def _check_name(name: str, obj: object, api: ApiName) -> FailureRecord | None:
    if not KIND_CHECKS[api.kind](obj):
        return FailureRecord(kind=FailureKind.WRONG_KIND,
                             message=f"{name} must be {KIND_NAMES[api.kind]}, but it is {type(obj).__name__}.")
    if api.kind in ("function", "class") and callable(obj):
        try:
            inspect.signature(obj).bind(*api.params)
        except TypeError:
            expected = f"{name}({', '.join(api.params)})"
            return FailureRecord(kind=FailureKind.WRONG_SIGNATURE, details=str(inspect.signature(obj)),
                                 message=f"{name} must be callable as {expected}.")
        except ValueError:
            return None  # builtins without introspectable signatures
    return None


def main() -> None:
    spec = read_spec(ImportSpec)
    assignment = load_assignment(spec.assignment_id)
    module_file = f"{spec.module}.py"
    try:
        module = import_submission(Path(spec.submission), spec.module)
    except BaseException as exc:  # noqa: BLE001 - whatever student code raises becomes the report
        failures = [import_failure(exc, module_file)]
    else:
        failures = interface_failures(module, assignment)
    write_atomic(Path(spec.result), InterfaceResult(failures=failures).model_dump_json())


if __name__ == "__main__":
    main()
    exit_now()
