"""Hostile: under the checks, appends a "passed" record for every collected check and a "finish" event to the
grader's results file (in the grader's own record format), then ends the test process before any check can
report for real; evaluate is broken."""

import json as _json
import os as _os
from pathlib import Path as _Path

_results = _Path("results.jsonl")
if _results.is_file():
    _events = [_json.loads(line) for line in _results.read_text().splitlines()]
    _collected = next(event["items"] for event in _events if event["event"] == "collected")
    with _results.open("a") as _file:
        for _item in _collected:
            if "canary" not in _item["nodeid"]:
                _file.write(_json.dumps({"event": "outcome", "nodeid": _item["nodeid"], "when": "call",
                                         "outcome": "passed", "message": "", "details": "", "seconds": 0.1}) + "\n")
        _file.write(_json.dumps({"event": "finish"}) + "\n")
    _os._exit(0)


def evaluate(model, loader, device):  # noqa: F811
    return 1.0
