"""Hostile: in every stage, try to write into what the sandbox shows it: the grader's source, the assignment and
its checks, the training tensors, the Python installation, system folders. Every attempt must fail with a
permission or read-only error; a success ("WROTE") or any other outcome ("UNEXPECTED", e.g. a target that does
not exist, which would make the probe prove nothing) fails the stage loudly."""

import errno as _errno
import json as _json
import os as _os
from pathlib import Path as _Path

_targets = _json.loads((_Path(__file__).parent / "targets.json").read_text())
_BLOCKED = {_errno.EACCES, _errno.EROFS, _errno.EPERM}
_wrote, _unexpected = [], []


def _attempt(what, path, action):
    if not _os.path.exists(path):
        _unexpected.append(f"{what}: no such path in the sandbox")
        return
    try:
        action()
    except OSError as exc:
        if exc.errno not in _BLOCKED:
            _unexpected.append(f"{what}: {exc.strerror}")
        return
    _wrote.append(what)


def _rewrite_first_byte(path):
    """Opens for writing and writes back the byte that is there: harmless even if it succeeds."""
    with open(path, "r+b") as file:
        first = file.read(1)
        file.seek(0)
        file.write(first)


def _create(folder):
    (_Path(folder) / "hostile-writer-was-here.txt").write_text("pwned")


for _folder in _targets["create_in"]:
    _attempt(f"create in {_folder}", _folder, lambda folder=_folder: _create(folder))
for _path in _targets["rewrite"]:
    _attempt(f"rewrite {_path}", _path, lambda path=_path: _rewrite_first_byte(path))
for _path in _targets["destroy"]:
    _attempt(f"truncate {_path}", _path, lambda path=_path: open(path, "r+b").truncate(0))
    _attempt(f"rename {_path}", _path, lambda path=_path: _os.rename(path, path + ".moved"))
    _attempt(f"delete {_path}", _path, lambda path=_path: _os.unlink(path))
if _wrote or _unexpected:
    raise RuntimeError(f"WROTE {_wrote} UNEXPECTED {_unexpected}")
