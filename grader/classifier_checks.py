"""Hidden checks shared by the classifier assignments (a2_ffn, a3_cnn); each assignment's test file imports them.

They need no data: the model is probed with random images and the training and evaluation loops
are run on tiny synthetic sets with models whose behaviour is known in advance.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.config import Assignment

IMAGE_SHAPE = (3, 32, 32)
CPU = torch.device("cpu")


def _leaf_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(path, type name) of every module without children, the layers that do the computing."""
    return [(name or "the model", type(m).__name__) for name, m in model.named_modules() if not list(m.children())]


def _separable_loader(seed: int, samples: int = 64, batch_size: int = 16) -> DataLoader:
    """Random images whose label is the sign of their projection on a fixed direction; batches in order."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, *IMAGE_SHAPE, generator=generator)
    direction = torch.randn(*IMAGE_SHAPE, generator=generator)
    labels = ((images * direction).sum(dim=(1, 2, 3)) > 0).long()
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


def _linear_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], 2))


def _mean_loss(model: nn.Module, loader: DataLoader) -> float:
    """Cross-entropy over every image of `loader`, without touching the model."""
    with torch.no_grad():
        total = sum(nn.functional.cross_entropy(model(x), y, reduction="sum").item() for x, y in loader)
    return total / len(loader.dataset)


def _grad_copy(parameter: torch.Tensor) -> torch.Tensor | None:
    return None if parameter.grad is None else parameter.grad.clone()


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
    images = torch.rand(40, *IMAGE_SHAPE) + 0.1
    images[:, 0, 0, 0] *= sign
    return DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=False), 30 / 40


@pytest.mark.group("architecture")
def test_only_allowed_layers(submission, assignment: Assignment) -> None:
    allowed = assignment.training.allowed_layers
    for name, kind in _leaf_layers(submission.build_model()):
        assert kind in allowed, (
            f"Layer {name!r} is a {kind}, which {assignment.id} does not allow; allowed layers: {', '.join(allowed)}."
        )


@pytest.mark.group("architecture")
def test_uses_convolution(submission) -> None:
    kinds = {kind for _, kind in _leaf_layers(submission.build_model())}
    assert "Conv2d" in kinds, "The model has no nn.Conv2d layer, but this assignment asks for a convolutional network."


@pytest.mark.group("output")
def test_output_is_logits_of_shape_n_by_2(submission, assignment: Assignment) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model().eval()
    with torch.no_grad():
        logits = model(torch.randn(5, *IMAGE_SHAPE))
    assert isinstance(logits, torch.Tensor), f"The model must return a tensor of logits, not a {type(logits).__name__}."
    assert tuple(logits.shape) == (5, 2), f"For 5 images the model returned shape {tuple(logits.shape)}, not (5, 2)."
    assert logits.dtype.is_floating_point, f"The logits must be floating point, but they are {logits.dtype}."
    assert torch.isfinite(logits).all(), "The model returned NaN or infinite logits for ordinary random images."


@pytest.mark.group("parameters")
def test_parameter_count_within_limit(submission, assignment: Assignment) -> None:
    limit = assignment.training.max_parameters
    count = sum(p.numel() for p in submission.build_model().parameters())
    assert count <= limit, f"The model has {count:,} parameters, more than the limit of {limit:,}."


@pytest.mark.group("training")
def test_make_optimizer_updates_every_parameter(submission, assignment: Assignment) -> None:
    torch.manual_seed(assignment.seed)
    model = submission.build_model()
    optimizer = submission.make_optimizer(model)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"make_optimizer must return a torch.optim optimizer, not a {type(optimizer).__name__}."
    )
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = sum(1 for p in model.parameters() if id(p) not in covered)
    assert not missing, f"make_optimizer leaves {missing} of the model's parameter tensors out of the optimizer."


@pytest.mark.group("training")
def test_train_one_epoch_lowers_the_loss(submission, assignment: Assignment) -> None:
    loader = _separable_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    before = _mean_loss(model, loader)
    submission.train_one_epoch(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    after = _mean_loss(model, loader)
    assert after < before, (
        f"One epoch of train_one_epoch left the loss at {after:.3f} (it was {before:.3f}): "
        "call loss.backward() and optimizer.step() for every batch."
    )


@pytest.mark.group("training")
def test_train_one_epoch_returns_mean_loss(submission, assignment: Assignment) -> None:
    loader = _separable_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    loss_fn = RecordingLoss()
    result = submission.train_one_epoch(model, loader, loss_fn, torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    assert isinstance(result, float), (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a {type(result).__name__}."
    )
    assert len(loss_fn.values) == len(loader), (
        f"train_one_epoch called loss_fn {len(loss_fn.values)} times for {len(loader)} batches; use it once per batch."
    )
    mean = sum(loss_fn.values) / len(loss_fn.values)
    assert result == pytest.approx(mean, rel=1e-4), (
        f"train_one_epoch returned {result:.4f}, but the mean of its {len(loader)} batch losses was {mean:.4f}."
    )


@pytest.mark.group("training")
def test_train_one_epoch_zeroes_gradients(submission, assignment: Assignment) -> None:
    loader = _separable_loader(assignment.seed)
    model = _linear_model(assignment.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: each batch's gradient is reproducible
    seen: list[torch.Tensor | None] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(_grad_copy(model[1].weight)))
    submission.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, CPU)
    assert len(seen) == len(loader), (
        f"train_one_epoch called optimizer.step() {len(seen)} times for {len(loader)} batches; step once per batch."
    )
    for step, ((images, labels), grad) in enumerate(zip(loader, seen, strict=True), start=1):
        model.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        assert grad is not None, (
            f"At optimizer step {step} the model had no gradients: call loss.backward() before optimizer.step()."
        )
        assert torch.allclose(grad, model[1].weight.grad, atol=1e-6), (
            f"At optimizer step {step} the gradients still included earlier batches: "
            "call optimizer.zero_grad() before each loss.backward()."
        )


@pytest.mark.group("evaluate")
def test_evaluate_computes_accuracy(submission) -> None:
    loader, expected = _known_accuracy_loader()
    accuracy = submission.evaluate(ProbeModel(), loader, CPU)
    assert isinstance(accuracy, float), (
        f"evaluate must return the accuracy as a Python float (use .item()), not a {type(accuracy).__name__}."
    )
    assert 0.0 <= accuracy <= 1.0, f"evaluate returned {accuracy}, but an accuracy is a fraction in [0, 1]."
    assert accuracy == pytest.approx(expected), (
        f"evaluate returned {accuracy:.4f} for a model that gets {expected:.4f} right: "
        "count the correct predictions over all batches and divide by the number of images."
    )


@pytest.mark.group("evaluate")
def test_evaluate_uses_eval_mode_without_gradients(submission) -> None:
    loader, _ = _known_accuracy_loader()
    model = ProbeModel().train()
    submission.evaluate(model, loader, CPU)
    assert model.calls, "evaluate never called the model."
    assert not any(training for training, _ in model.calls), (
        "evaluate must call model.eval() before predicting, so dropout and batch norm act as at test time."
    )
    assert not any(grad for _, grad in model.calls), (
        "evaluate must run the model under torch.no_grad(), but gradients were being tracked."
    )
