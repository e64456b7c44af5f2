"""A check that must fail: if the results say it passed, the submission tampered with the test run.

It fails with the run's nonce only while the test machinery is intact. When pytest imports this
file, during collection and so before any check imports the submission, it records what every
function and class of pytest, torch, builtins and the grader's own modules is; a submission that
replaces one of them (to make a check pass) turns the canary's failure into a tampering report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grader.paths import PACKAGE_DIR, checks_root

WATCHED_MODULES = (
    "builtins", "torch", "torch.nn.functional", "torch.testing", "numpy", "pytest", "_pytest.runner",
    "_pytest.reports", "_pytest.python", "_pytest.python_api", "_pytest.outcomes", "_pytest.main", "_pytest.fixtures",
    "pluggy._hooks", "pluggy._callers", "pluggy._manager",
)
WATCHED_CLASSES = (
    ("torch", "Tensor"), ("torch.nn", "Module"), ("torch.optim", "Optimizer"), ("_pytest.reports", "TestReport"),
    ("_pytest.reports", "BaseReport"), ("_pytest.runner", "CallInfo"), ("_pytest.python", "Function"),
)
_WATCHED_ROOTS = (PACKAGE_DIR, checks_root())  # the grader's modules and the course root's hidden checks


def _namespaces() -> list[tuple[str, object]]:
    """(label, object) of every watched module, the classes they define, and the watched classes."""
    modules = [sys.modules[name] for name in WATCHED_MODULES if name in sys.modules]
    modules += [m for m in list(sys.modules.values()) if _is_graders(getattr(m, "__file__", None))]
    owners: list[tuple[str, object]] = [(module.__name__, module) for module in modules]
    for module in modules:
        owners += [(f"{module.__name__}.{name}", value) for name, value in vars(module).items()
                   if isinstance(value, type) and value.__module__ == module.__name__]
    owners += [(f"{module}.{name}", getattr(sys.modules[module], name)) for module, name in WATCHED_CLASSES
               if module in sys.modules]
    return owners


def _is_graders(file: str | None) -> bool:
    """Whether a module is the grader's own code or a hidden check of the course root."""
    return file is not None and any(Path(file).resolve().is_relative_to(root) for root in _WATCHED_ROOTS)


def _snapshot() -> list[tuple[str, object, str, object]]:
    """(label, owner, name, value) for every function, class and descriptor in the watched namespaces."""
    return [(label, owner, name, value) for label, owner in _namespaces() for name, value in list(vars(owner).items())
            if callable(value) or isinstance(value, (classmethod, staticmethod, property))]


# Rebound by torch itself when torch._dynamo is first imported (torchvision imports it), wrapping the original.
TORCH_REBINDS = {"torch.manual_seed"}
_MISSING = object()
_RECORDED = _snapshot()


def replaced() -> list[str]:
    """The recorded names that no longer refer to what they did at collection."""
    names = [f"{label}.{name}" for label, owner, name, value in _RECORDED
             if vars(owner).get(name, _MISSING) is not value]
    return [name for name in names if name not in TORCH_REBINDS]


def test_canary() -> None:
    changed = replaced()
    assert not changed, f"The submission replaced {', '.join(changed[:10])}."
    nonce = os.environ.get("GRADER_CANARY", "")
    assert not nonce, f"canary {nonce}"
