"""Hidden checks shared by the reconstruction assignments (a4_autoencoder); each assignment's test file imports them,
with the task-free checks of grader.classifier_checks (layer rule, parameter limit, optimizer).

The model maps images (N, 3, 32, 32) to images of the same shape through `model.encoder`, whose output is the
bottleneck. As in the classifier checks, each check only observes what the submission did; its verdict
recomputes the losses from the seed in a process where no student code ran. The training checks use a model
of the grader's own (a 1x1 convolution, 12 parameters) on synthetic images whose target is the image itself.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import cast

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.config import Assignment
from grader.harness.probe import IMAGE_SHAPE, probe_images
from grader.observation import Observation, Observe, verdict

CPU = torch.device("cpu")
BATCH = 16
BATCHES = 4
Batches = DataLoader[tuple[torch.Tensor, ...]]
LOSS_TOLERANCE = 0.01  # the mean loss returned may differ from the batches' mean by 1% (an L2 term, say)


# ---- synthetic data and the grader's own model, rebuilt the same from the seed on both sides --------------------

def _images(seed: int) -> torch.Tensor:
    return torch.rand(BATCH * BATCHES, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(seed))


def _reconstruction_loader(seed: int, spread: bool = False) -> Batches:
    """Batches of (images, the same images); with `spread`, batch k scaled by 2**k / 2, so batch losses differ."""
    images = _images(seed)
    if spread:
        images = images * (2.0 ** torch.arange(len(images)).div(BATCH, rounding_mode="floor")).view(-1, 1, 1, 1) / 2
    return DataLoader(TensorDataset(images, images.clone()), batch_size=BATCH, shuffle=False)


def _bias(model: nn.Conv2d) -> torch.Tensor:
    return cast(torch.Tensor, model.bias)  # the grader's own Conv2d, made with a bias


def _pixel_model(seed: int) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(3, 3, kernel_size=1)


def _mean_loss(model: nn.Module, loader: Batches) -> float:
    with torch.no_grad():
        total = sum(float(nn.functional.mse_loss(model(x), y, reduction="sum").item()) for x, y in loader)
        return total / sum(int(y.numel()) for _, y in loader)


class RecordingMSELoss(nn.MSELoss):
    """Mean squared error that remembers every batch's loss."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = super().forward(outputs, targets)
        self.values.append(loss.item())
        return loss


# ---- what the checks observe ------------------------------------------------------------------------------------

class ShapeSeen(Observation):
    type_name: str
    shape: list[int] = []
    dtype: str = ""
    finite: bool = True


class BottleneckSeen(ShapeSeen):
    """The encoder's output, and how far model(x) is from decoder(encoder(x)) (None: not comparable)."""

    bypass: float | None = None


class PixelWeightsSeen(Observation):
    weight: list[float]
    bias: list[float]


class StepGradientsSeen(Observation):
    """The 1x1 convolution's weight gradient at each optimizer step (None: it had none)."""

    gradients: list[list[float] | None]


class MeanLossSeen(Observation):
    type_name: str
    returned: float | None
    batch_losses: list[float]


def _shape_seen(output: object) -> ShapeSeen:
    if not isinstance(output, torch.Tensor):
        return ShapeSeen(type_name=type(output).__name__)
    finite = bool(torch.isfinite(output).all()) if output.is_floating_point() else True
    return ShapeSeen(type_name="Tensor", shape=list(output.shape), dtype=str(output.dtype).removeprefix("torch."),
                     finite=finite)


# ---- the checks and their verdicts ------------------------------------------------------------------------------

@pytest.mark.group("architecture")
@pytest.mark.calls("build_model")
def test_bottleneck_is_smaller_than_the_input(submission: ModuleType, assignment: Assignment,
                                              observe: Observe) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model().eval()
    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
        observe(BottleneckSeen(type_name="no encoder"))
        return
    images = probe_images(assignment.seed)
    with torch.no_grad():
        code, output = encoder(images), model(images)
        decoded = decoder(code) if isinstance(code, torch.Tensor) else None
    bypass = None
    if isinstance(decoded, torch.Tensor) and isinstance(output, torch.Tensor) and decoded.shape == output.shape:
        bypass = (output.double() - decoded.double()).abs().max().item()
    observe(BottleneckSeen(**_shape_seen(code).model_dump(), bypass=bypass))


@verdict(test_bottleneck_is_smaller_than_the_input)
def _bottleneck_is_smaller(seen: BottleneckSeen, assignment: Assignment) -> None:
    inputs = math.prod(IMAGE_SHAPE)
    assert seen.type_name != "no encoder", (
        "The model has no `encoder` and `decoder` submodules: build_model() must return a model whose `encoder` "
        "maps images to the bottleneck and whose `decoder` maps that back to images.")
    assert seen.type_name == "Tensor" and seen.shape, f"model.encoder must return a tensor, not a {seen.type_name}."
    code = math.prod(seen.shape[1:])
    assert code < inputs, (
        f"The bottleneck holds {code:,} numbers per image, not fewer than the image's {inputs:,}: the encoder "
        "must compress the image.")
    assert seen.bypass is not None and seen.bypass <= 1e-5, (
        "The model's output is not decoder(encoder(images)): everything the decoder sees must pass through the "
        "bottleneck.")


@pytest.mark.group("output")
@pytest.mark.calls("build_model")
def test_output_restores_the_input_shape(submission: ModuleType, assignment: Assignment,
                                              observe: Observe) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model().eval()
    with torch.no_grad():
        observe(_shape_seen(model(probe_images(assignment.seed))))


@verdict(test_output_restores_the_input_shape)
def _restores_the_shape(seen: ShapeSeen, assignment: Assignment) -> None:
    expected = [2, *IMAGE_SHAPE]
    assert seen.type_name == "Tensor", f"The model must return a tensor of images, not a {seen.type_name}."
    assert seen.shape == expected, (
        f"For images of shape {tuple(expected)} the model returned shape {tuple(seen.shape)}: the decoder must "
        "restore the input's shape.")
    assert seen.dtype.startswith(("float", "bfloat", "half")), (
        f"The reconstructed images must be floating point, but they are {seen.dtype}.")
    assert seen.finite, "The model returned NaN or infinite pixels for ordinary random images."


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_lowers_the_reconstruction_loss(submission: ModuleType, assignment: Assignment,
                                              observe: Observe) -> None:
    model = _pixel_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    submission.train_one_epoch(model, _reconstruction_loader(assignment.seed), nn.MSELoss(), optimizer, CPU)
    observe(PixelWeightsSeen(weight=model.weight.flatten().tolist(), bias=_bias(model).tolist()))


@verdict(test_train_one_epoch_lowers_the_reconstruction_loss)
def _lowers_the_loss(seen: PixelWeightsSeen, assignment: Assignment) -> None:
    loader, model = _reconstruction_loader(assignment.seed), _pixel_model(assignment.seed)
    before = _mean_loss(model, loader)
    assert len(seen.weight) == model.weight.numel() and len(seen.bias) == _bias(model).numel(), (
        "The check's record of the trained weights is malformed.")
    with torch.no_grad():
        model.weight.copy_(torch.tensor(seen.weight).view_as(model.weight))
        _bias(model).copy_(torch.tensor(seen.bias))
    after = _mean_loss(model, loader)
    assert after < before, (
        f"One epoch of train_one_epoch left the reconstruction loss at {after:.4f} (it was {before:.4f}): compare "
        "the model's output with the batch's targets, and call loss.backward() and optimizer.step() for every batch.")


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_returns_mean_reconstruction_loss(submission: ModuleType, assignment: Assignment,
                                              observe: Observe) -> None:
    model, loss_fn = _pixel_model(assignment.seed), RecordingMSELoss()
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the batch losses then differ by the batches alone
    result = submission.train_one_epoch(model, _reconstruction_loader(assignment.seed, spread=True), loss_fn, frozen,
                                        CPU)
    returned = float(result) if isinstance(result, float | int) and not isinstance(result, bool) else None
    observe(MeanLossSeen(type_name=type(result).__name__, returned=returned, batch_losses=loss_fn.values))


@verdict(test_train_one_epoch_returns_mean_reconstruction_loss)
def _returns_mean_loss(seen: MeanLossSeen, assignment: Assignment) -> None:
    assert seen.type_name == "float" and seen.returned is not None, (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a {seen.type_name}.")
    assert len(seen.batch_losses) == BATCHES, (
        f"train_one_epoch called loss_fn {len(seen.batch_losses)} times for {BATCHES} batches; use it once per batch.")
    mean = sum(seen.batch_losses) / BATCHES
    assert abs(seen.returned - mean) <= LOSS_TOLERANCE * mean, (
        f"train_one_epoch returned {seen.returned:.4f}, but the mean of its {BATCHES} batch losses is {mean:.4f}: "
        "return the sum of loss.item() over the batches divided by their number.")


def _repeated_loader(seed: int) -> Batches:
    """Batches A, B, A, B of the reconstruction set: step 3 sees the batch of step 1, step 4 that of step 2."""
    images = _images(seed)[: 2 * BATCH]
    images = torch.cat([images, images])
    return DataLoader(TensorDataset(images, images.clone()), batch_size=BATCH, shuffle=False)


@pytest.mark.group("training")
@pytest.mark.calls("train_one_epoch")
def test_train_one_epoch_zeroes_reconstruction_gradients(submission: ModuleType, assignment: Assignment,
                                              observe: Observe) -> None:
    model = _pixel_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: a batch seen again gives its gradient
    seen: list[list[float] | None] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(
        None if model.weight.grad is None else model.weight.grad.flatten().tolist()))
    submission.train_one_epoch(model, _repeated_loader(assignment.seed), nn.MSELoss(), optimizer, CPU)
    observe(StepGradientsSeen(gradients=seen))


@verdict(test_train_one_epoch_zeroes_reconstruction_gradients)
def _zeroes_gradients(seen: StepGradientsSeen, assignment: Assignment) -> None:
    steps = len(seen.gradients)
    assert steps == 4, f"train_one_epoch called optimizer.step() {steps} times for 4 batches; step once per batch."
    model, (images, targets) = _pixel_model(assignment.seed), next(iter(_repeated_loader(assignment.seed)))
    first = torch.autograd.grad(nn.functional.mse_loss(model(images), targets), model.weight)[0].flatten()
    for step, gradient in enumerate(seen.gradients, start=1):
        assert gradient is not None and any(gradient), (
            f"At optimizer step {step} the model had no gradients: call loss.backward() before optimizer.step(), "
            "and optimizer.zero_grad() before loss.backward(), not after it.")
    grads = [torch.tensor(g) for g in seen.gradients if g is not None]
    assert (grads[0] - first).norm() <= 1e-4 * first.norm(), (
        "At optimizer step 1 the gradients were not those of the first batch's loss: compute "
        "loss_fn(model(images), targets) for the batch and call loss.backward() once.")
    for step in (3, 4):  # batches A, B, A, B: step 3 sees the batch and weights of step 1, step 4 those of step 2
        assert (grads[step - 1] - grads[step - 3]).norm() <= 1e-4 * grads[step - 3].norm(), (
            f"At optimizer step {step} the gradients still included earlier batches (step {step} saw the batch "
            f"and weights of step {step - 2}, but other gradients): call optimizer.zero_grad() before each "
            "loss.backward().")
