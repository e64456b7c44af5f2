"""Hostile: in every stage, try to write into the grader's source, the assignment and its checks, the data,
the tensor cache, the out dir and another student's report; any success fails loudly ("WROTE")."""

import json as _json
import os as _os
from pathlib import Path as _Path

_targets = _json.loads((_Path(__file__).parent / "targets.json").read_text())
_wrote = []


def _attempt(what, action):
    try:
        action()
    except OSError:
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


def _destroy(path):
    _attempt(f"truncate {path}", lambda: open(path, "r+b").truncate(0))
    _attempt(f"rename {path}", lambda: _os.rename(path, path + ".moved"))
    _attempt(f"delete {path}", lambda: _os.unlink(path))


for _folder in _targets["create_in"]:
    _attempt(f"create in {_folder}", lambda folder=_folder: _create(folder))
for _path in _targets["rewrite"]:
    _attempt(f"rewrite {_path}", lambda path=_path: _rewrite_first_byte(path))
for _path in _targets["destroy"]:
    _destroy(_path)
if _wrote:
    raise RuntimeError(f"WROTE {_wrote}")
