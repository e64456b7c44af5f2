"""GPU: the harness and fixed-cost tables again with training on CUDA (the bare loop's data on the device)."""

from __future__ import annotations

from dataclasses import replace

import torch

from bench import fixed_cost, harness
from bench.common import Config, Result

NAME = "gpu"


def run(cfg: Config) -> Result:
    if not torch.cuda.is_available():
        return Result(NAME, notes=["no GPU here"])
    cuda = replace(cfg, device="cuda")
    parts = [harness.run(cuda), fixed_cost.run(cuda)]
    name = torch.cuda.get_device_name(0)
    return Result(NAME, [t for p in parts for t in p.tables], [f"GPU: {name}"] + [n for p in parts for n in p.notes])
