"""Hidden checks shared by the classifier assignments (a2_ffn, a3_cnn); each assignment's test file imports them.

They need no data: the model is probed with random images and the training and evaluation loops run on tiny
synthetic sets with models whose behaviour is known in advance. Each check only observes what the
submission did (`observe`); its verdict, below it, judges that in a process where no student code ran, and
recomputes what it can (losses, gradients) from the seed instead of trusting the submission's process.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.dataloader import default_collate

from grader.architecture import layer_problems, size_problem
from grader.config import Assignment
from grader.harness.probe import IMAGE_SHAPE, describe_model, probe_images
from grader.observation import Observation, verdict
from grader.protocol import ModelDescription

CPU = torch.device("cpu")
OUTPUT_IMAGES = 5


# ---- synthetic data and probe models, rebuilt the same from the seed on both sides -----------------------------

def _separable_loader(seed: int, samples: int = 64, batch_size: int = 16) -> DataLoader:
    """Random images whose label is the sign of their projection on a fixed direction; batches in order."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, *IMAGE_SHAPE, generator=generator)
    direction = torch.randn(*IMAGE_SHAPE, generator=generator)
    labels = ((images * direction).sum(dim=(1, 2, 3)) > 0).long()
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


def _linear_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], 2))


def _mean_loss(model: nn.Module, loader: DataLoader) -> float:
    """Cross-entropy over every image of `loader`, without touching the model."""
    with torch.no_grad():
        total = sum(nn.functional.cross_entropy(model(x), y, reduction="sum").item() for x, y in loader)
    return total / len(loader.dataset)


class RecordingLoss(nn.CrossEntropyLoss):
    """Cross-entropy that remembers the value of every batch's loss."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = super().forward(logits, targets)
        self.values.append(loss.item())
        return loss


class ProbeModel(nn.Module):
    """Predicts class 1 exactly when the first pixel is positive, and records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        pixel = images[:, 0, 0, 0] * self.scale
        return torch.stack([-pixel, pixel], dim=1)


def _known_accuracy_loader() -> tuple[DataLoader, float]:
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
    """A batch tensor that notes in `moves` when it is moved to a device (`.to(device)`, `.cuda()`)."""

    moves: set[tuple[str, int]]
    tag: tuple[str, int]

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206 - torch's protocol
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.cuda) and isinstance(args[0], _Tracked) and _names_device(
                func, args[1:], kwargs):
            args[0].moves.add(args[0].tag)
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)  # plain tensors from here on


def _names_device(func: object, args: tuple, kwargs: dict) -> bool:
    if func is torch.Tensor.cuda or "device" in kwargs:
        return True
    return any(isinstance(arg, str | torch.device) for arg in args)


def _tracking_loader(seed: int, moves: set[tuple[str, int]]) -> DataLoader:
    """The separable set, with every batch's images and labels noting in `moves` when moved to a device."""
    loader = _separable_loader(seed)
    batch_index = iter(range(len(loader)))

    def collate(samples: list) -> list[torch.Tensor]:
        index = next(batch_index)
        batch = []
        for name, tensor in zip(("images", "labels"), default_collate(samples), strict=True):
            tracked = tensor.as_subclass(_Tracked)
            tracked.moves, tracked.tag = moves, (name, index)
            batch.append(tracked)
        return batch

    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False, collate_fn=collate)


# ---- what the checks observe ------------------------------------------------------------------------------------

class ModelSeen(Observation):
    model: ModelDescription


class OutputSeen(Observation):
    type_name: str
    shape: list[int] = []
    dtype: str = ""
    values: list[list[float | None]] = []


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
    type_name: str
    returned: float | None
    batch_losses: list[float]
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
    batches: int
    moved: list[tuple[str, int]]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ---- the checks and their verdicts ------------------------------------------------------------------------------

@pytest.mark.group("architecture")
@pytest.mark.calls("build_model")
def test_only_allowed_layers(submission, assignment: Assignment, observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_only_allowed_layers)
def _only_allowed_layers(seen: ModelSeen, assignment: Assignment) -> None:
    problems = layer_problems(seen.model, assignment.training, assignment.id)
    assert not problems, " ".join(problems)


@pytest.mark.group("architecture")
@pytest.mark.calls("build_model")
def test_uses_convolution(submission, assignment: Assignment, observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_uses_convolution)
def _uses_convolution(seen: ModelSeen, assignment: Assignment) -> None:
    assert "convolution" in seen.model.ops, (
        "The model computes no convolution, but this assignment asks for a convolutional network (nn.Conv2d).")


@pytest.mark.group("output")
@pytest.mark.calls("build_model")
def test_output_is_logits_of_shape_n_by_2(submission, assignment: Assignment, observe) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model().eval()
    with torch.no_grad():
        logits = model(torch.randn(OUTPUT_IMAGES, *IMAGE_SHAPE))
    if not isinstance(logits, torch.Tensor):
        return observe(OutputSeen(type_name=type(logits).__name__))
    values = [[float(v) for v in row] for row in logits.double().tolist()] if logits.numel() <= 100 else []
    observe(OutputSeen(type_name="Tensor", shape=list(logits.shape), dtype=str(logits.dtype).removeprefix("torch."),
                       values=values))


@verdict(test_output_is_logits_of_shape_n_by_2)
def _output_is_logits(seen: OutputSeen, assignment: Assignment) -> None:
    assert seen.type_name == "Tensor", f"The model must return a tensor of logits, not a {seen.type_name}."
    assert seen.shape == [OUTPUT_IMAGES, 2], (
        f"For {OUTPUT_IMAGES} images the model returned shape {tuple(seen.shape)}, not ({OUTPUT_IMAGES}, 2).")
    assert seen.dtype.startswith(("float", "bfloat", "half")), (
        f"The logits must be floating point, but they are {seen.dtype}.")
    rows = seen.values
    assert all(v is not None and abs(v) != float("inf") and v == v for row in rows for v in row), (
        "The model returned NaN or infinite logits for ordinary random images.")
    assert not all(0 <= v <= 1 for row in rows for v in row) or not all(abs(sum(row) - 1) < 1e-4 for row in rows), (
        "The model's outputs are probabilities (each row sums to 1): it ends with a Softmax, but the loss "
        "(cross-entropy) expects raw logits; remove the final Softmax.")


@pytest.mark.group("parameters")
@pytest.mark.calls("build_model")
def test_parameter_count_within_limit(submission, assignment: Assignment, observe) -> None:
    observe(ModelSeen(model=describe_model(submission.build_model(), probe_images(assignment.seed))))


@verdict(test_parameter_count_within_limit)
def _parameter_count(seen: ModelSeen, assignment: Assignment) -> None:
    problem = size_problem(seen.model, assignment.training)
    assert problem is None, problem


@pytest.mark.group("training")
@pytest.mark.calls("build_model", "make_optimizer")
def test_make_optimizer_updates_every_parameter(submission, assignment: Assignment, observe) -> None:
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
def test_train_one_epoch_lowers_the_loss(submission, assignment: Assignment, observe) -> None:
    model = _linear_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    submission.train_one_epoch(model, _separable_loader(assignment.seed), nn.CrossEntropyLoss(), optimizer, CPU)
    observe(WeightsSeen(weight=model[1].weight.flatten().tolist(), bias=model[1].bias.tolist()))


@verdict(test_train_one_epoch_lowers_the_loss)
def _lowers_the_loss(seen: WeightsSeen, assignment: Assignment) -> None:
    loader, model = _separable_loader(assignment.seed), _linear_model(assignment.seed)
    before = _mean_loss(model, loader)
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(seen.weight).view_as(model[1].weight))
        model[1].bias.copy_(torch.tensor(seen.bias))
    after = _mean_loss(model, loader)
    assert after < before, (
        f"One epoch of train_one_epoch left the loss at {after:.3f} (it was {before:.3f}): "
        "call loss.backward() and optimizer.step() for every batch.")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_returns_mean_loss(submission, assignment: Assignment, observe) -> None:
    loader = _separable_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    loss_fn = RecordingLoss()
    result = submission.train_one_epoch(model, loader, loss_fn, torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    observe(LossSeen(type_name=type(result).__name__, returned=_number(result), batch_losses=loss_fn.values,
                     batches=len(loader)))


@verdict(test_train_one_epoch_returns_mean_loss)
def _returns_mean_loss(seen: LossSeen, assignment: Assignment) -> None:
    assert seen.type_name == "float" and seen.returned is not None, (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a {seen.type_name}.")
    assert len(seen.batch_losses) == seen.batches, (
        f"train_one_epoch called loss_fn {len(seen.batch_losses)} times for {seen.batches} batches; "
        "use it once per batch.")
    mean = sum(seen.batch_losses) / len(seen.batch_losses)
    assert abs(seen.returned - mean) <= 1e-4 * abs(mean) + 1e-12, (
        f"train_one_epoch returned {seen.returned:.4f}, but the mean of its {seen.batches} batch losses was "
        f"{mean:.4f}: add up loss.item() of every batch and divide by the number of batches.")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_zeroes_gradients(submission, assignment: Assignment, observe) -> None:
    loader = _separable_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: each batch's gradient is reproducible
    seen: list[list[float] | None] = []
    weight = model[1].weight
    optimizer.register_step_pre_hook(
        lambda *_: seen.append(None if weight.grad is None else weight.grad.flatten().tolist()))
    submission.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, CPU)
    observe(GradientsSeen(gradients=seen))


@verdict(test_train_one_epoch_zeroes_gradients)
def _zeroes_gradients(seen: GradientsSeen, assignment: Assignment) -> None:
    loader, model = _separable_loader(assignment.seed), _linear_model(assignment.seed)
    assert len(seen.gradients) == len(loader), (
        f"train_one_epoch called optimizer.step() {len(seen.gradients)} times for {len(loader)} batches; "
        "step once per batch.")
    for step, ((images, labels), grad) in enumerate(zip(loader, seen.gradients, strict=True), start=1):
        model.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        assert grad is not None, (
            f"At optimizer step {step} the model had no gradients: call loss.backward() before optimizer.step().")
        assert torch.allclose(torch.tensor(grad).view_as(model[1].weight), model[1].weight.grad, atol=1e-6), (
            f"At optimizer step {step} the gradients were not those of batch {step} alone: call "
            "optimizer.zero_grad() before each loss.backward(), and loss.backward() before optimizer.step().")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_trains_in_training_mode(submission, assignment: Assignment, observe) -> None:
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
def test_train_one_epoch_moves_batches_to_the_device(submission, assignment: Assignment, observe) -> None:
    moves: set[tuple[str, int]] = set()
    loader = _tracking_loader(assignment.seed, moves)
    model = _linear_model(assignment.seed)
    submission.train_one_epoch(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01),
                               CPU)
    observe(MovesSeen(batches=len(loader), moved=sorted(moves)))


def _moved_every_batch(seen: MovesSeen, function: str, names: tuple[str, ...]) -> None:
    for name in names:
        moved = sum(1 for kind, _ in seen.moved if kind == name)
        assert moved >= seen.batches, (
            f"{function} moved the {name} of {moved} of {seen.batches} batches to `device`: call "
            f"{name}.to(device) for every batch, or grading on a GPU fails.")


@verdict(test_train_one_epoch_moves_batches_to_the_device)
def _train_moves_batches(seen: MovesSeen, assignment: Assignment) -> None:
    _moved_every_batch(seen, "train_one_epoch", ("images", "labels"))  # the loss needs both on the device


@pytest.mark.group("evaluate")
@pytest.mark.calls("evaluate")
def test_evaluate_computes_accuracy(submission, observe) -> None:
    loader, _ = _known_accuracy_loader()
    accuracy = submission.evaluate(ProbeModel(), loader, CPU)
    observe(AccuracySeen(type_name=type(accuracy).__name__, returned=_number(accuracy)))


@verdict(test_evaluate_computes_accuracy)
def _computes_accuracy(seen: AccuracySeen, assignment: Assignment) -> None:
    _, expected = _known_accuracy_loader()
    assert seen.type_name == "float" and seen.returned is not None, (
        f"evaluate must return the accuracy as a Python float (use .item()), not a {seen.type_name}.")
    assert 0.0 <= seen.returned <= 1.0, f"evaluate returned {seen.returned}, but an accuracy is a fraction in [0, 1]."
    assert abs(seen.returned - expected) < 1e-6, (
        f"evaluate returned {seen.returned:.4f} for a model that gets {expected:.4f} right: "
        "count the correct predictions over all batches and divide by the number of images.")


@pytest.mark.group("evaluate")
@pytest.mark.calls("evaluate")
def test_evaluate_uses_eval_mode_without_gradients(submission, observe) -> None:
    loader, _ = _known_accuracy_loader()
    model = ProbeModel().train()
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
def test_evaluate_moves_batches_to_the_device(submission, assignment: Assignment, observe) -> None:
    moves: set[tuple[str, int]] = set()
    loader = _tracking_loader(assignment.seed, moves)
    submission.evaluate(_linear_model(assignment.seed), loader, CPU)
    observe(MovesSeen(batches=len(loader), moved=sorted(moves)))


@verdict(test_evaluate_moves_batches_to_the_device)
def _evaluate_moves_batches(seen: MovesSeen, assignment: Assignment) -> None:
    # The images must reach the model's device; the labels may stay where they are if the predictions come back.
    _moved_every_batch(seen, "evaluate", ("images",))
