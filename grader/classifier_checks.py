"""Hidden checks shared by the classifier assignments (a2_ffn, a3_cnn, a5_cifar10); each assignment's test file
imports them, and the output check expects one logit per class its `[data]` declares.

They need no data: the model is probed with random images and the training and evaluation loops run on tiny
synthetic sets with models whose behaviour is known in advance. Each check only observes what the
submission did (`observe`); its verdict, below it, judges that in a process where no student code ran, and
recomputes what it can (losses before and after training, step and batch counts, the probe's accuracy) from
the seed instead of trusting the submission's process. Where students may rightly differ (clipping, an L2
term, label smoothing), the verdicts judge a property within a tolerance, not one exact formula.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import cast

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.dataloader import default_collate

from grader.architecture import layer_problems, size_problem
from grader.config import Assignment, Training
from grader.errors import GraderError
from grader.harness.probe import IMAGE_SHAPE, describe_model, probe_images
from grader.observation import Observation, Observe, verdict
from grader.protocol import ModelDescription

CPU = torch.device("cpu")
OUTPUT_IMAGES = 5
BATCH = 16
Batches = DataLoader[tuple[torch.Tensor, ...]]


# ---- synthetic data and probe models, rebuilt the same from the seed on both sides -----------------------------

def _separable_set(seed: int, samples: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and their labels: the sign of their projection on a fixed direction."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, *IMAGE_SHAPE, generator=generator)
    direction = torch.randn(*IMAGE_SHAPE, generator=generator)
    return images, ((images * direction).sum(dim=(1, 2, 3)) > 0).long()


def _separable_loader(seed: int) -> Batches:
    """The separable set in 4 batches, in order."""
    return DataLoader(TensorDataset(*_separable_set(seed)), batch_size=BATCH, shuffle=False)


def _repeating_loader(seed: int) -> Batches:
    """Batches A, B, A, B of the separable set: steps 3 and 4 see the batches of steps 1 and 2 again."""
    images, labels = _separable_set(seed, samples=2 * BATCH)
    order = torch.arange(2 * BATCH).repeat(2)
    return DataLoader(TensorDataset(images[order], labels[order]), batch_size=BATCH, shuffle=False)


def _loss_loader(seed: int) -> Batches:
    """The separable set with batch k's images scaled by 2**k / 2, so the batch losses of a model differ widely."""
    images, labels = _separable_set(seed)
    scale = (2.0 ** torch.arange(len(images)).div(BATCH, rounding_mode="floor")).view(-1, 1, 1, 1)
    return DataLoader(TensorDataset(images * scale / 2, labels), batch_size=BATCH, shuffle=False)


def _mixed_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OUTPUT_IMAGES random images, and a batch of the same images in reverse order among others of larger scale."""
    generator = torch.Generator().manual_seed(seed + 1)
    images = torch.randn(OUTPUT_IMAGES, *IMAGE_SHAPE, generator=generator)
    others = 3 * torch.randn(3, *IMAGE_SHAPE, generator=generator) + 1
    return images, torch.cat([images.flip(0), others])


def _linear_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], 2))


def _linear(model: nn.Sequential) -> nn.Linear:
    """The linear layer of a `_linear_model`."""
    return cast(nn.Linear, model[1])


def _mean_loss(model: nn.Module, loader: Batches) -> float:
    """Cross-entropy over every image of `loader`, without touching the model."""
    with torch.no_grad():
        losses = [(nn.functional.cross_entropy(model(x), y, reduction="sum").item(), len(y)) for x, y in loader]
    return sum(loss for loss, _ in losses) / sum(count for _, count in losses)


class RecordingLoss(nn.CrossEntropyLoss):
    """Cross-entropy that remembers every batch's loss, and what it was given as logits."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []
        self.inputs: list[list[list[float]]] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = super().forward(logits, targets)
        self.values.append(loss.item())
        self.inputs.append(logits.detach().double().reshape(len(logits), -1).tolist())
        return loss


class ProbeModel(nn.Module):
    """Predicts class 1 exactly when the first pixel is positive, and records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        pixel = images.reshape(len(images), -1)[:, 0] * self.scale  # the first pixel, also of flattened images
        return torch.stack([-pixel, pixel], dim=1)


def _known_accuracy_loader() -> tuple[Batches, float]:
    """40 images in batches of 16, 16 and 8; the probe gets 30 right, and the last, smaller batch all wrong."""
    labels = torch.tensor([0, 1] * 20)
    wrong = torch.zeros(40, dtype=torch.bool)
    wrong[[3, 20]] = True
    wrong[32:] = True
    sign = (2 * labels - 1) * torch.where(wrong, -1, 1)
    images = torch.rand(40, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(40)) + 0.1
    images[:, 0, 0, 0] *= sign
    return DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=False), 30 / 40


class _Tracked(torch.Tensor):
    """A tensor derived from batch tensors (`tags`), and whether a move to a device lies on its way (`moved`).

    Every torch operation on it returns new _Tracked tensors, so `images.reshape(...).to(device)` and
    `images.to(device).float()` both reach the model as moved, and an unassigned `images.to(device)` does not.
    """

    tags: frozenset[tuple[str, int]]
    moved: bool

    @classmethod
    def __torch_function__(cls, func: Callable[..., object], types: Iterable[type],  # torch's protocol
                           args: tuple[object, ...] = (), kwargs: dict[str, object] | None = None) -> object:
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        sources = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, _Tracked)]
        moved = any(source.moved for source in sources) or _moves_to_a_device(func, args, kwargs)
        return _track(result, frozenset().union(*(source.tags for source in sources)), moved)


def _track(result: object, tags: frozenset[tuple[str, int]], moved: bool) -> object:
    """`result` with its tensors (alone or in a plain tuple or list) as new _Tracked tensors."""
    if isinstance(result, torch.Tensor):
        tracked = result.as_subclass(_Tracked)  # a new object even for an operation that returned its input
        tracked.tags, tracked.moved = tags, moved
        return tracked
    if isinstance(result, tuple | list) and type(result) in (tuple, list):
        return type(result)(_track(item, tags, moved) for item in result)
    return result


def _moves_to_a_device(func: object, args: tuple[object, ...], kwargs: dict[str, object]) -> bool:
    """A `.cuda()`, or a `.to(...)` naming a device (torch.device, str, int) or a tensor whose device to take."""
    if func is torch.Tensor.cuda:
        return True
    if func is not torch.Tensor.to:
        return False
    return "device" in kwargs or any(isinstance(arg, str | int | torch.device | torch.Tensor)
                                     and not isinstance(arg, bool) for arg in args[1:])


class _FactoryTracking(TorchFunctionMode):
    """Keeps the tracking through `torch.tensor(batch)` and the like, which make a plain tensor of a tracked one;
    `device=` there counts as a move."""

    def __torch_function__(self, func: Callable[..., object], types: Iterable[type],  # torch's protocol
                           args: tuple[object, ...] = (), kwargs: dict[str, object] | None = None) -> object:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        sources = [leaf for leaf in tree_leaves(args[:1]) if isinstance(leaf, _Tracked)]
        if func not in _FACTORIES or not sources:
            return result
        moved = any(source.moved for source in sources) or "device" in kwargs
        return _track(result, frozenset().union(*(source.tags for source in sources)), moved)


_FACTORIES = (torch.tensor, torch.as_tensor, torch.asarray)


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.as_subclass(torch.Tensor) if isinstance(tensor, _Tracked) else tensor


@dataclasses.dataclass
class Arrivals:
    """The (tensor name, batch index) pairs that reached the model or loss_fn, and those of them moved first."""

    reached: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    moved: set[tuple[str, int]] = dataclasses.field(default_factory=set)


def _arrived(tensor: torch.Tensor, name: str, arrivals: Arrivals) -> torch.Tensor:
    """Note in `arrivals` the batches whose `name` ("images", "labels") arrive here, moved or not; the tensor, plain."""
    if isinstance(tensor, _Tracked):
        tags = [tag for tag in tensor.tags if tag[0] == name]
        arrivals.reached.update(tags)
        if tensor.moved:
            arrivals.moved.update(tags)
    return _plain(tensor)


class _ArrivalModel(nn.Sequential):
    """The linear model, noting which batches' images reach it, and moved to the device or not."""

    def __init__(self, seed: int, arrivals: Arrivals) -> None:
        super().__init__(*_linear_model(seed))
        self.arrivals = arrivals

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        arrived = _arrived(images, "images", self.arrivals)
        logits: torch.Tensor = super().forward(arrived)  # type: ignore[no-untyped-call]  # torch: unannotated
        return logits


class _ArrivalLoss(nn.CrossEntropyLoss):
    """Cross-entropy, noting which batches' labels reach it, and moved to the device or not."""

    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__()
        self.arrivals = arrivals

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(_plain(logits), _arrived(labels, "labels", self.arrivals))


def _tracking_loader(seed: int) -> Batches:
    """The separable set, each batch's images and labels tracked with the batch's index."""
    batches, calls = len(_separable_loader(seed)), itertools.count()

    def collate(samples: list[tuple[torch.Tensor, ...]]) -> list[object]:
        index = next(calls) % batches
        return [_track(tensor, frozenset({(name, index)}), moved=False)
                for name, tensor in zip(("images", "labels"), default_collate(samples), strict=True)]

    return DataLoader(TensorDataset(*_separable_set(seed)), batch_size=BATCH, shuffle=False, collate_fn=collate)


# ---- what the checks observe ------------------------------------------------------------------------------------

class ModelSeen(Observation):
    model: ModelDescription


class OutputSeen(Observation):
    """The eval-mode logits of the probe images, and theirs again in the mixed batch (in the same order)."""

    type_name: str
    shape: list[int] = []
    dtype: str = ""
    values: list[list[float | None]] = []
    in_mixed_batch: list[list[float | None]] = []


class OptimizerSeen(Observation):
    type_name: str
    is_optimizer: bool
    parameters: int
    covered: int


class WeightsSeen(Observation):
    """The weights of the check's linear model after one epoch of the submission's training (flattened)."""

    weight: list[float]
    bias: list[float]


class LossSeen(Observation):
    """What train_one_epoch returned, and each call of loss_fn: its value and what it got in place of logits."""

    type_name: str
    returned: float | None
    batch_losses: list[float]
    loss_inputs: list[list[list[float]]]
    batches: int


class GradientsSeen(Observation):
    """The linear layer's weight gradient (flattened) when each optimizer step began (None: no gradient)."""

    gradients: list[list[float] | None]


class AccuracySeen(Observation):
    type_name: str
    returned: float | None


class CallsSeen(Observation):
    """(training mode, gradients enabled) at every call of the probe model."""

    calls: list[tuple[bool, bool]]


class MovesSeen(Observation):
    """The (tensor name, batch index) pairs that reached the model or loss_fn, and those moved to the device first."""

    reached: list[tuple[str, int]]
    moved: list[tuple[str, int]]


def declared_classes(assignment: Assignment) -> tuple[str, ...]:
    """The classes the assignment's `[data]` declares, in label order."""
    if assignment.data is None:
        raise ValueError(f"{assignment.id} declares no [data], so its classes are unknown")
    return assignment.data.classes


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rows(tensor: torch.Tensor) -> list[list[float | None]]:
    return [[float(v) for v in row] for row in tensor.double().reshape(len(tensor), -1).tolist()]


def _probabilities(rows: Sequence[Sequence[float | None]]) -> bool:
    """Every value in [0, 1] and every row summing to 1: what a softmax gives."""
    return all(v is not None and 0 <= v <= 1 for row in rows for v in row) and all(
        abs(sum(v for v in row if v is not None) - 1) < 1e-4 for row in rows)


def _training(assignment: Assignment) -> Training:
    """The assignment's [training] table, which every classifier assignment has."""
    if assignment.training is None:
        raise GraderError(f"{assignment.id} has no [training] table, which the classifier checks need.")
    return assignment.training


# ---- the checks and their verdicts ------------------------------------------------------------------------------

@pytest.mark.group("architecture")
@pytest.mark.calls("build_model")
def test_only_allowed_layers(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_only_allowed_layers)
def _only_allowed_layers(seen: ModelSeen, assignment: Assignment) -> None:
    problems = layer_problems(seen.model, _training(assignment), assignment.id)
    assert not problems, " ".join(problems)


@pytest.mark.group("architecture")
@pytest.mark.calls("build_model")
def test_uses_convolution(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_uses_convolution)
def _uses_convolution(seen: ModelSeen, assignment: Assignment) -> None:
    assert "convolution" in seen.model.ops, (
        "The model computes no convolution, but this assignment asks for a convolutional network (nn.Conv2d).")


@pytest.mark.group("output")
@pytest.mark.calls("build_model")
def test_output_is_logits_one_row_per_image_and_class(submission: ModuleType, assignment: Assignment,
                                                      observe: Observe) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model().eval()
    images, mixed = _mixed_batch(assignment.seed)
    with torch.no_grad():
        logits = model(images)
        if not isinstance(logits, torch.Tensor):
            observe(OutputSeen(type_name=type(logits).__name__))
            return
        again = model(mixed)
    small = 0 < logits.numel() <= 100 and logits.dim() > 0
    same_shape = isinstance(again, torch.Tensor) and again.shape == (len(mixed), *logits.shape[1:])
    observe(OutputSeen(type_name="Tensor", shape=list(logits.shape), dtype=str(logits.dtype).removeprefix("torch."),
                       values=_rows(logits) if small else [],
                       in_mixed_batch=_rows(again[:OUTPUT_IMAGES].flip(0)) if small and same_shape else []))


@verdict(test_output_is_logits_one_row_per_image_and_class)
def _output_is_logits(seen: OutputSeen, assignment: Assignment) -> None:
    """Logits, not probabilities (a final LogSoftmax is fine: cross-entropy gives it the same loss), and in eval
    mode each image's logits stay within 1e-4 (relative to the largest logit, at least 1) when the rest of its
    batch changes: batch norm's running statistics pass, statistics of the batch at test time do not."""
    classes = len(declared_classes(assignment))
    assert seen.type_name == "Tensor", f"The model must return a tensor of logits, not a {seen.type_name}."
    assert seen.shape == [OUTPUT_IMAGES, classes], (
        f"For {OUTPUT_IMAGES} images the model returned shape {tuple(seen.shape)}, not ({OUTPUT_IMAGES}, {classes}).")
    assert seen.dtype.startswith(("float", "bfloat", "half")), (
        f"The logits must be floating point, but they are {seen.dtype}.")
    rows = seen.values
    finite = (v is not None and abs(v) != float("inf") and v == v for row in rows + seen.in_mixed_batch for v in row)
    assert all(finite), (
        "The model returned NaN or infinite logits for ordinary random images.")
    assert not _probabilities(rows), (
        "The model's outputs are probabilities (each row sums to 1): it ends with a Softmax, but the loss "
        "(cross-entropy) expects raw logits; remove the final Softmax.")
    mixed = len(_mixed_batch(assignment.seed)[1])
    assert len(seen.in_mixed_batch) == OUTPUT_IMAGES, (
        f"For {mixed} images the model did not return shape ({mixed}, {classes}).")
    alone, among_others = torch.tensor(rows), torch.tensor(seen.in_mixed_batch, dtype=torch.float64)
    change = (alone - among_others).abs().max().item()
    assert change <= 1e-4 * max(1.0, alone.abs().max().item()), (
        f"In eval mode the model's logits for an image changed by {change:.3g} when the other images of its batch "
        "changed: a layer uses statistics of the batch at test time (such as BatchNorm with "
        "track_running_stats=False); in eval mode each image's logits must depend on that image alone.")


@pytest.mark.group("parameters")
@pytest.mark.calls("build_model")
def test_parameter_count_within_limit(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_parameter_count_within_limit)
def _parameter_count(seen: ModelSeen, assignment: Assignment) -> None:
    problem = size_problem(seen.model, _training(assignment))
    assert problem is None, problem


@pytest.mark.group("training")
@pytest.mark.calls("build_model", "make_optimizer")
def test_make_optimizer_updates_every_parameter(submission: ModuleType, assignment: Assignment,
                                                observe: Observe) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model()
    optimizer = submission.make_optimizer(model)
    is_optimizer = isinstance(optimizer, torch.optim.Optimizer)
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]} if is_optimizer else set()
    parameters = list(model.parameters())
    observe(OptimizerSeen(type_name=type(optimizer).__name__, is_optimizer=is_optimizer, parameters=len(parameters),
                          covered=sum(1 for p in parameters if id(p) in covered)))


@verdict(test_make_optimizer_updates_every_parameter)
def _optimizer_covers_parameters(seen: OptimizerSeen, assignment: Assignment) -> None:
    assert seen.is_optimizer, f"make_optimizer must return a torch.optim optimizer, not a {seen.type_name}."
    missing = seen.parameters - seen.covered
    assert not missing, f"make_optimizer leaves {missing} of the model's parameter tensors out of the optimizer."


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_lowers_the_loss(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    model = _linear_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    submission.train_one_epoch(model, _separable_loader(assignment.seed), nn.CrossEntropyLoss(), optimizer, CPU)
    observe(WeightsSeen(weight=_linear(model).weight.flatten().tolist(), bias=_linear(model).bias.tolist()))


@verdict(test_train_one_epoch_lowers_the_loss)
def _lowers_the_loss(seen: WeightsSeen, assignment: Assignment) -> None:
    loader, model = _separable_loader(assignment.seed), _linear_model(assignment.seed)
    before = _mean_loss(model, loader)
    with torch.no_grad():
        _linear(model).weight.copy_(torch.tensor(seen.weight).view_as(_linear(model).weight))
        _linear(model).bias.copy_(torch.tensor(seen.bias))
    after = _mean_loss(model, loader)
    assert after < before, (
        f"One epoch of train_one_epoch left the loss at {after:.3f} (it was {before:.3f}): "
        "call loss.backward() and optimizer.step() for every batch.")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_returns_mean_loss(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    loader = _loss_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    loss_fn = RecordingLoss()
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the batch losses then differ by the batches alone
    result = submission.train_one_epoch(model, loader, loss_fn, frozen, CPU)
    observe(LossSeen(type_name=type(result).__name__, returned=_number(result), batch_losses=loss_fn.values,
                     loss_inputs=loss_fn.inputs, batches=len(loader)))


@verdict(test_train_one_epoch_returns_mean_loss)
def _returns_mean_loss(seen: LossSeen, assignment: Assignment) -> None:
    """loss_fn once per batch, on logits (log-probabilities are fine: cross-entropy gives them the same loss), and
    the mean of its values within 1%: an L2 penalty of 0.001 added to the loss moves the mean by under 0.1% here,
    while the batch losses range over a factor of 3, so a sum or the last batch's loss is far off. The batches
    are of equal size, so the mean per batch and the mean per image agree."""
    assert seen.type_name == "float" and seen.returned is not None, (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a {seen.type_name}.")
    assert len(seen.batch_losses) == seen.batches == len(_loss_loader(assignment.seed)), (
        f"train_one_epoch called loss_fn {len(seen.batch_losses)} times for {seen.batches} batches; "
        "use it once per batch.")
    assert not any(_probabilities(rows) for rows in seen.loss_inputs), (
        "train_one_epoch gave loss_fn probabilities (each row sums to 1), not logits: cross-entropy applies its "
        "own softmax, so a softmax before it is applied twice; give loss_fn the model's output as it is.")
    mean = sum(seen.batch_losses) / len(seen.batch_losses)
    assert abs(seen.returned - mean) <= 0.01 * abs(mean), (
        f"train_one_epoch returned {seen.returned:.4f}, but the mean of its {seen.batches} batch losses was "
        f"{mean:.4f}: add up loss.item() of every batch and divide by the number of batches.")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_zeroes_gradients(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    model = _linear_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: a batch seen again gives its gradient
    seen: list[list[float] | None] = []
    weight = _linear(model).weight
    optimizer.register_step_pre_hook(
        lambda *_: seen.append(None if weight.grad is None else weight.grad.flatten().tolist()))
    submission.train_one_epoch(model, _repeating_loader(assignment.seed), nn.CrossEntropyLoss(), optimizer, CPU)
    observe(GradientsSeen(gradients=seen))


@verdict(test_train_one_epoch_zeroes_gradients)
def _zeroes_gradients(seen: GradientsSeen, assignment: Assignment) -> None:
    """With frozen weights, batches A, B, A, B and gradients zeroed per batch, steps 3 and 4 see the gradients of
    steps 1 and 2 (within 1e-4 of their norm) whatever the loss adds (an L2 term, label smoothing) or the step
    clips; gradients carried over from earlier batches differ (B between the repeats keeps clipping by norm
    from hiding them). No formula is assumed, so no gradient is recomputed; the step count is."""
    steps = len(_repeating_loader(assignment.seed))
    assert len(seen.gradients) == steps, (
        f"train_one_epoch called optimizer.step() {len(seen.gradients)} times for {steps} batches; "
        "step once per batch.")
    for step, grad in enumerate(seen.gradients, start=1):
        assert grad is not None, (
            f"At optimizer step {step} the model had no gradients: call loss.backward() on the loss of "
            "model(images) (not of a detached output) before optimizer.step(), and optimizer.zero_grad() before "
            "loss.backward(), not after it.")
        assert any(grad), (
            f"At optimizer step {step} the gradients were all zero: zero them before loss.backward(), not between "
            "loss.backward() and optimizer.step().")
    for step in range(3, steps + 1):
        now, then = torch.tensor(seen.gradients[step - 1]), torch.tensor(seen.gradients[step - 3])
        assert (now - then).norm() <= 1e-4 * then.norm(), (
            f"At optimizer step {step} the gradients still included earlier batches (step {step} saw the batch "
            f"and weights of step {step - 2}, but other gradients): call optimizer.zero_grad() before each "
            "loss.backward().")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_trains_in_training_mode(submission: ModuleType, assignment: Assignment,
                                                 observe: Observe) -> None:
    model = ProbeModel().eval()  # as evaluate leaves a model: train_one_epoch must switch it back
    submission.train_one_epoch(model, _known_accuracy_loader()[0], nn.CrossEntropyLoss(),
                               torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    observe(CallsSeen(calls=model.calls))


@verdict(test_train_one_epoch_trains_in_training_mode)
def _trains_in_training_mode(seen: CallsSeen, assignment: Assignment) -> None:
    assert seen.calls, "train_one_epoch never called the model."
    assert all(training for training, _ in seen.calls), (
        "train_one_epoch ran the model in evaluation mode: call model.train() at its start, so dropout and "
        "batch norm learn as they should (evaluate leaves the model in eval mode).")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_moves_batches_to_the_device(submission: ModuleType, assignment: Assignment,
                                                     observe: Observe) -> None:
    arrivals = Arrivals()
    model = _ArrivalModel(assignment.seed, arrivals)
    with _FactoryTracking():
        submission.train_one_epoch(model, _tracking_loader(assignment.seed), _ArrivalLoss(arrivals),
                                   torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    observe(MovesSeen(reached=sorted(arrivals.reached), moved=sorted(arrivals.moved)))


def _moved_every_batch(seen: MovesSeen, function: str, targets: dict[str, str]) -> None:
    """Every batch that reaches its target must do so after a `.to(device)`, `.to(tensor)`, `.cuda()` or a `device=`,
    whatever ordinary operations (reshape, float, indexing) come before or after; batches that never reach it are
    other checks' business."""
    for name, target in targets.items():
        reached = sum(1 for kind, _ in seen.reached if kind == name)
        moved = sum(1 for kind, _ in seen.moved if kind == name)
        assert reached, f"{function} never gave {target} the {name} of a batch of `loader`."
        assert moved == reached, (
            f"{function} moved the {name} of {moved} of {reached} batches to `device` before giving them to "
            f"{target}: call {name}.to(device) for every batch and use what it returns, or grading on a GPU fails.")


@verdict(test_train_one_epoch_moves_batches_to_the_device)
def _train_moves_batches(seen: MovesSeen, assignment: Assignment) -> None:
    _moved_every_batch(seen, "train_one_epoch", {"images": "the model", "labels": "loss_fn"})


@pytest.mark.group("evaluate")
@pytest.mark.calls("evaluate")
def test_evaluate_computes_accuracy(submission: ModuleType, observe: Observe) -> None:
    loader, _ = _known_accuracy_loader()
    accuracy = submission.evaluate(ProbeModel(), loader, CPU)
    observe(AccuracySeen(type_name=type(accuracy).__name__, returned=_number(accuracy)))


@verdict(test_evaluate_computes_accuracy)
def _computes_accuracy(seen: AccuracySeen, assignment: Assignment) -> None:
    """Within 1e-6 of the probe's known accuracy; its last batch is smaller and all wrong, so an average of the
    batch accuracies (0.625) or the first batch alone (0.9375) is far off."""
    _, expected = _known_accuracy_loader()
    assert seen.type_name == "float" and seen.returned is not None, (
        f"evaluate must return the accuracy as a Python float (use .item()), not a {seen.type_name}.")
    assert 0.0 <= seen.returned <= 1.0, f"evaluate returned {seen.returned}, but an accuracy is a fraction in [0, 1]."
    assert abs(seen.returned - expected) < 1e-6, (
        f"evaluate returned {seen.returned:.4f} for a model that gets {expected:.4f} right: count the predictions "
        "(the argmax over dim 1) that equal the labels over all batches and divide by the number of images.")


@contextlib.contextmanager
def _failing_before(model_ran: Callable[[], bool]) -> Iterator[None]:
    """An exception fails the check only when it came before the model ran: what evaluate does with the model's
    output afterwards is the accuracy check's business."""
    try:
        yield
    except Exception:
        if not model_ran():
            raise


@pytest.mark.group("evaluate")
@pytest.mark.calls("evaluate")
def test_evaluate_uses_eval_mode_without_gradients(submission: ModuleType, observe: Observe) -> None:
    loader, _ = _known_accuracy_loader()
    model = ProbeModel().train()
    with _failing_before(lambda: bool(model.calls)):
        submission.evaluate(model, loader, CPU)
    observe(CallsSeen(calls=model.calls))


@verdict(test_evaluate_uses_eval_mode_without_gradients)
def _eval_mode_without_gradients(seen: CallsSeen, assignment: Assignment) -> None:
    assert seen.calls, "evaluate never called the model."
    assert not any(training for training, _ in seen.calls), (
        "evaluate must call model.eval() before predicting, so dropout and batch norm act as at test time.")
    assert not any(grad for _, grad in seen.calls), (
        "evaluate must run the model under torch.no_grad(), but gradients were being tracked.")


@pytest.mark.group("evaluate")
@pytest.mark.calls("evaluate")
def test_evaluate_moves_batches_to_the_device(submission: ModuleType, assignment: Assignment, observe: Observe) -> None:
    arrivals = Arrivals()
    with _FactoryTracking(), _failing_before(lambda: bool(arrivals.reached)):
        submission.evaluate(_ArrivalModel(assignment.seed, arrivals), _tracking_loader(assignment.seed), CPU)
    observe(MovesSeen(reached=sorted(arrivals.reached), moved=sorted(arrivals.moved)))


@verdict(test_evaluate_moves_batches_to_the_device)
def _evaluate_moves_batches(seen: MovesSeen, assignment: Assignment) -> None:
    # The images must reach the model's device; the labels may stay where they are if the predictions come back.
    _moved_every_batch(seen, "evaluate", {"images": "the model"})
