"""Describing a model from the inside: who owns each parameter, and which operators a forward pass runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from grader.protocol import ModelDescription, ParameterOwner

IMAGE_SHAPE = (3, 32, 32)


class _OperatorLog(TorchDispatchMode):
    """Records the name of every ATen operator that runs while it is active."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # torch leaves TorchDispatchMode.__init__ unannotated
        self.names: set[str] = set()

    def __torch_dispatch__(self, func: torch._ops.OpOverload[..., object], types: Iterable[type],  # torch's protocol
                           args: tuple[object, ...] = (), kwargs: dict[str, object] | None = None) -> object:
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def probe_images(seed: int, count: int = 2) -> torch.Tensor:
    """Random images from a generator of their own, so probing leaves the global random state untouched."""
    return torch.randn(count, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(seed))


def describe_model(model: nn.Module, images: torch.Tensor) -> ModelDescription:
    """The model's parameters with their owners' types, and the operators of one eval-mode forward of `images`
    (as far as it got: a forward that fails is the output check's business, and training's)."""
    modules = dict(model.named_modules())
    parameters = [ParameterOwner(name=name, owner=type(modules[name.rpartition(".")[0]]).__name__,
                                 count=parameter.numel()) for name, parameter in model.named_parameters()]
    was_training = model.training
    log = _OperatorLog()
    model.eval()
    try:
        with torch.no_grad(), log, contextlib.suppress(Exception):
            model(images)
    finally:
        model.train(was_training)
    return ModelDescription(parameters=parameters, ops=sorted(log.names))
