"""Public checks for assignment 5, on random tensors: run `pytest` in the assignment folder.

They are a smoke test with the same messages as the grader's hidden checks; the grading itself trains
your model on the real images and checks more cases.
"""

import cnn
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CPU = torch.device("cpu")
MAX_PARAMETERS = 5_000_000
WEIGHTED_LAYERS = {"BatchNorm1d", "BatchNorm2d", "Conv2d", "LayerNorm", "Linear"}


def separable_loader(samples=64, batch_size=16, transform=None, shuffle=True):
    """Random images labeled by the sign of their mean pixel, an easy task for any model."""
    torch.manual_seed(0)
    images = torch.randn(samples, 3, 32, 32)
    labels = (images.mean(dim=(1, 2, 3)) > 0).long()
    if transform is not None:  # the grader applies it to each normalized image tensor, as here
        images = torch.stack([transform(image) for image in images])
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


def loader_of(batches):
    """A loader that yields `batches`, pairs of images and labels of one size, in order."""
    images, labels = zip(*batches, strict=True)
    return DataLoader(TensorDataset(torch.cat(images), torch.cat(labels)), batch_size=len(labels[0]))


def linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))  # the checks of train_one_epoch need no ten classes


def is_probabilities(rows):
    return bool(((rows >= 0) & (rows <= 1)).all() and torch.allclose(rows.sum(dim=1), torch.ones(len(rows))))


class RecordingLoss(nn.CrossEntropyLoss):
    """Cross-entropy that remembers each batch's loss and what it was given in place of logits."""

    def __init__(self):
        super().__init__()
        self.values, self.inputs = [], []

    def forward(self, logits, labels):
        loss = super().forward(logits, labels)
        self.values.append(loss.item())
        self.inputs.append(logits.detach())
        return loss


def test_epochs_and_batch_size_are_positive_ints():
    for name in ("EPOCHS", "BATCH_SIZE"):
        value = getattr(cnn, name)
        assert isinstance(value, int), f"{name} must be an int, but it is {type(value).__name__}."
        assert value > 0, f"{name} must be positive, but it is {value}."


def test_model_returns_ten_logits_per_image():
    model = cnn.build_model().eval()
    images = torch.randn(5, 3, 32, 32)
    mixed = torch.cat([images.flip(0), 3 * torch.randn(3, 3, 32, 32) + 1])  # the same images among others
    with torch.no_grad():
        logits = model(images)
        assert isinstance(logits, torch.Tensor), (
            f"The model must return a tensor of logits, not a {type(logits).__name__}.")
        assert logits.shape == (5, 10), f"For 5 images the model returned shape {tuple(logits.shape)}, not (5, 10)."
        again = model(mixed)[:5].flip(0)
    assert not is_probabilities(logits), (
        "The model's outputs are probabilities (each row sums to 1): it ends with a Softmax, but the loss "
        "(cross-entropy) expects raw logits; remove the final Softmax."
    )
    change = (logits - again).abs().max().item()
    assert change <= 1e-4 * max(1.0, logits.abs().max().item()), (
        f"In eval mode the model's logits for an image changed by {change:.3g} when the other images of its batch "
        "changed: a layer uses statistics of the batch at test time (such as BatchNorm with "
        "track_running_stats=False); in eval mode each image's logits must depend on that image alone."
    )


def test_model_is_convolutional():
    kinds = {type(m).__name__ for m in cnn.build_model().modules()}
    assert "Conv2d" in kinds, "The model has no nn.Conv2d layer, but this assignment asks for a convolutional network."


def test_model_uses_only_allowed_layers():
    owners = sorted({type(layer).__name__ for layer in cnn.build_model().modules()
                     if any(True for _ in layer.parameters(recurse=False))} - WEIGHTED_LAYERS)
    assert not owners, (
        f"The model keeps weights in {', '.join(owners)}, which a5_cifar10 does not allow; weights may only belong to "
        f"{', '.join(sorted(WEIGHTED_LAYERS))}."
    )


def test_model_is_within_the_parameter_limit():
    count = sum(p.numel() for p in cnn.build_model().parameters())
    assert count <= MAX_PARAMETERS, f"The model has {count:,} parameters, more than the limit of {MAX_PARAMETERS:,}."


def test_optimizer_covers_every_parameter():
    model = cnn.build_model()
    optimizer = cnn.make_optimizer(model)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"make_optimizer must return a torch.optim optimizer, not a {type(optimizer).__name__}.")
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = sum(1 for p in model.parameters() if id(p) not in covered)
    assert not missing, f"make_optimizer leaves {missing} of the model's parameter tensors out of the optimizer."


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    model = cnn.build_model()
    optimizer = cnn.make_optimizer(model)
    loader = separable_loader(transform=cnn.train_transform() if hasattr(cnn, "train_transform") else None)
    losses = [cnn.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, CPU) for _ in range(5)]
    assert isinstance(losses[0], float), (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a "
        f"{type(losses[0]).__name__}."
    )
    assert losses[-1] < losses[0], (
        f"Five epochs of train_one_epoch left the loss at {losses[-1]:.3f} (it was {losses[0]:.3f}): "
        "call optimizer.zero_grad(), loss.backward() and optimizer.step() for every batch."
    )


def test_training_returns_the_mean_loss():
    batches = enumerate(separable_loader(shuffle=False))
    scaled = loader_of([(images * 2.0 ** k, labels) for k, (images, labels) in batches])  # losses that differ
    model = linear_model()
    loss_fn = RecordingLoss()
    result = cnn.train_one_epoch(model, scaled, loss_fn, torch.optim.SGD(model.parameters(), lr=0.0), CPU)
    assert isinstance(result, float), (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a "
        f"{type(result).__name__}."
    )
    assert len(loss_fn.values) == len(scaled), (
        f"train_one_epoch called loss_fn {len(loss_fn.values)} times for {len(scaled)} batches; "
        "use it once per batch."
    )
    assert not any(is_probabilities(rows) for rows in loss_fn.inputs), (
        "train_one_epoch gave loss_fn probabilities (each row sums to 1), not logits: cross-entropy applies its "
        "own softmax, so a softmax before it is applied twice; give loss_fn the model's output as it is."
    )
    mean = sum(loss_fn.values) / len(loss_fn.values)
    assert abs(result - mean) <= 0.01 * mean, (
        f"train_one_epoch returned {result:.4f}, but the mean of its {len(scaled)} batch losses was {mean:.4f}: "
        "add up loss.item() of every batch and divide by the number of batches."
    )


def test_training_zeroes_the_gradients():
    first, second = separable_loader(samples=32, shuffle=False)
    repeated = loader_of([first, second, first, second])
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: a batch seen again gives its gradient
    seen = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(None if model[1].weight.grad is None
                                                             else model[1].weight.grad.clone()))
    cnn.train_one_epoch(model, repeated, nn.CrossEntropyLoss(), optimizer, CPU)
    assert len(seen) == 4, (
        f"train_one_epoch called optimizer.step() {len(seen)} times for 4 batches; step once per batch.")
    for step, grad in enumerate(seen, start=1):
        assert grad is not None, (
            f"At optimizer step {step} the model had no gradients: call loss.backward() on the loss of "
            "model(images) (not of a detached output) before optimizer.step(), and optimizer.zero_grad() before "
            "loss.backward(), not after it."
        )
        assert grad.any(), (
            f"At optimizer step {step} the gradients were all zero: zero them before loss.backward(), not between "
            "loss.backward() and optimizer.step()."
        )
    for step in (3, 4):  # batches A, B, A, B: step 3 sees the batch and weights of step 1, step 4 those of step 2
        assert (seen[step - 1] - seen[step - 3]).norm() <= 1e-4 * seen[step - 3].norm(), (
            f"At optimizer step {step} the gradients still included earlier batches (step {step} saw the batch "
            f"and weights of step {step - 2}, but other gradients): call optimizer.zero_grad() before each "
            "loss.backward()."
        )


def test_training_runs_in_training_mode():
    model = linear_model().eval()  # as evaluate leaves a model
    modes = []
    model.register_forward_pre_hook(lambda module, _: modes.append(module.training))
    cnn.train_one_epoch(model, separable_loader(), nn.CrossEntropyLoss(),
                             torch.optim.SGD(model.parameters(), lr=0.01), CPU)
    assert modes, "train_one_epoch never called the model."
    assert all(modes), (
        "train_one_epoch ran the model in evaluation mode: call model.train() at its start, so dropout and "
        "batch norm learn as they should (evaluate leaves the model in eval mode)."
    )


def test_evaluate_returns_accuracy_in_eval_mode():
    model = cnn.build_model().train()
    calls = []
    model.register_forward_pre_hook(lambda module, _: calls.append((module.training, torch.is_grad_enabled())))
    loader = separable_loader(batch_size=24, shuffle=False)  # batches of 24, 24 and 16
    accuracy = cnn.evaluate(model, loader, CPU)
    assert isinstance(accuracy, float), (
        f"evaluate must return the accuracy as a Python float (use .item()), not a {type(accuracy).__name__}."
    )
    assert 0.0 <= accuracy <= 1.0, f"evaluate returned {accuracy}, but an accuracy is a fraction in [0, 1]."
    assert calls and not any(training for training, _ in calls), (
        "evaluate must call model.eval() before predicting, so dropout and batch norm act as at test time."
    )
    assert not any(grad for _, grad in calls), (
        "evaluate must run the model under torch.no_grad(), but gradients were being tracked."
    )
    with torch.no_grad():
        expected = sum((model(images).argmax(dim=1) == labels).sum().item() for images, labels in loader) / 64
    assert abs(accuracy - expected) < 1e-6, (
        f"evaluate returned {accuracy:.4f} for a model that gets {expected:.4f} right: count the predictions "
        "(the argmax over dim 1) that equal the labels over all batches and divide by the number of images."
    )
