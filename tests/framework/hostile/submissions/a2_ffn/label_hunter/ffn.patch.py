"""Hostile: in every stage, look for the validation labels (guessed paths, then a time-limited walk of '/'),
and try to send whatever was found over the network; anything found or sent fails loudly ("LEAK")."""

import json as _json
from pathlib import Path as _Path

import snoop as _snoop

_spec = _json.loads((_Path(__file__).parent / "guesses.json").read_text())
_found = _snoop.guessed(_spec["paths"]) + _snoop.scan(_spec["scan_seconds"])
_reached = _snoop.phone_home(_spec["servers"], _found)
if _found or _reached:
    raise RuntimeError(f"LEAK found={_found[:5]} reached={_reached}")
