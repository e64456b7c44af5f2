"""Careless and cheeky: megabytes of output, "score: 100" and a fake report.json, in every stage."""

import json as _json
import sys as _sys

_fake = {"score": {"total": 100, "max_total": 100}, "failures": [], "checks": "all passed"}
print("score: 100")
print(_json.dumps(_fake))
_sys.stdout.write(("debug " * 20 + "\n") * 40_000)  # about 5 MB
with open("report.json", "w") as _file:
    _json.dump(_fake, _file)
_train = train_one_epoch


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    print("epoch " * 200_000)  # about 1.2 MB per epoch
    print("score: 100")
    return _train(model, loader, loss_fn, optimizer, device)
