"""Public checks for assignment 4, on random tensors: run `pytest` in the assignment folder.

They are a smoke test with the same messages as the grader's hidden checks; the grading itself trains
your model on the real images and checks more cases.
"""

import autoencoder
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CPU = torch.device("cpu")
MAX_PARAMETERS = 1_000_000
WEIGHTED_LAYERS = {"BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "LayerNorm", "Linear"}


def reconstruction_loader(samples=64, batch_size=16):
    """Random images whose target is the image itself, as the grader's batches are."""
    torch.manual_seed(0)
    images = torch.rand(samples, 3, 32, 32)
    return DataLoader(TensorDataset(images, images.clone()), batch_size=batch_size, shuffle=False)


def pixel_model():
    torch.manual_seed(0)
    return nn.Conv2d(3, 3, kernel_size=1)


def mean_loss(model, loader):
    with torch.no_grad():
        return sum(nn.functional.mse_loss(model(x), y).item() for x, y in loader) / len(loader)


def test_epochs_and_batch_size_are_positive_ints():
    for name in ("EPOCHS", "BATCH_SIZE"):
        value = getattr(autoencoder, name)
        assert isinstance(value, int), f"{name} must be an int, but it is {type(value).__name__}."
        assert value > 0, f"{name} must be positive, but it is {value}."


def test_bottleneck_is_smaller_than_the_image():
    model = autoencoder.build_model().eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        code = model.encoder(images)
        output = model(images)
        decoded = model.decoder(code)
    size = code[0].numel()
    assert size < 3 * 32 * 32, (
        f"The bottleneck holds {size:,} numbers per image, not fewer than the image's 3,072: the encoder must "
        "compress the image.")
    assert torch.allclose(output, decoded, atol=1e-5), (
        "The model's output is not decoder(encoder(images)): everything the decoder sees must pass through the "
        "bottleneck.")


def test_output_has_the_input_shape():
    model = autoencoder.build_model().eval()
    with torch.no_grad():
        output = model(torch.rand(2, 3, 32, 32))
    assert isinstance(output, torch.Tensor), f"The model must return a tensor of images, not a {type(output).__name__}."
    assert output.shape == (2, 3, 32, 32), (
        f"For images of shape (2, 3, 32, 32) the model returned shape {tuple(output.shape)}: the decoder must "
        "restore the input's shape.")


def test_model_is_convolutional():
    kinds = {type(m).__name__ for m in autoencoder.build_model().modules()}
    assert "Conv2d" in kinds, "The model has no nn.Conv2d layer, but this assignment asks for a convolutional network."


def test_model_uses_only_allowed_layers():
    owners = sorted({type(layer).__name__ for layer in autoencoder.build_model().modules()
                     if any(True for _ in layer.parameters(recurse=False))} - WEIGHTED_LAYERS)
    assert not owners, (
        f"The model keeps weights in {', '.join(owners)}, which a4_autoencoder does not allow; weights may only "
        f"belong to {', '.join(sorted(WEIGHTED_LAYERS))}."
    )


def test_model_is_within_the_parameter_limit():
    count = sum(p.numel() for p in autoencoder.build_model().parameters())
    assert count <= MAX_PARAMETERS, f"The model has {count:,} parameters; at most {MAX_PARAMETERS:,} are allowed."


def test_optimizer_covers_every_parameter():
    model = autoencoder.build_model()
    optimizer = autoencoder.make_optimizer(model)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"make_optimizer must return a torch.optim optimizer, not a {type(optimizer).__name__}.")
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = sum(1 for p in model.parameters() if id(p) not in covered)
    assert not missing, f"make_optimizer leaves {missing} of the model's parameter tensors out of the optimizer."


def test_training_lowers_the_loss():
    model, loader = pixel_model(), reconstruction_loader()
    before = mean_loss(model, loader)
    autoencoder.train_one_epoch(model, loader, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), CPU)
    after = mean_loss(model, loader)
    assert after < before, (
        f"One epoch of train_one_epoch left the reconstruction loss at {after:.4f} (it was {before:.4f}): compare "
        "the model's output with the batch's targets, and call loss.backward() and optimizer.step() for every batch.")


def test_training_returns_the_mean_loss():
    model, loader = pixel_model(), reconstruction_loader()
    values = []

    class Recording(nn.MSELoss):
        def forward(self, outputs, targets):
            loss = super().forward(outputs, targets)
            values.append(loss.item())
            return loss

    returned = autoencoder.train_one_epoch(model, loader, Recording(), torch.optim.SGD(model.parameters(), lr=0.0),
                                           CPU)
    assert isinstance(returned, float), (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a "
        f"{type(returned).__name__}.")
    assert len(values) == len(loader), (
        f"train_one_epoch called loss_fn {len(values)} times for {len(loader)} batches; use it once per batch.")
    mean = sum(values) / len(values)
    assert abs(returned - mean) <= 0.01 * mean, (
        f"train_one_epoch returned {returned:.4f}, but the mean of its {len(values)} batch losses is {mean:.4f}: "
        "return the sum of loss.item() over the batches divided by their number.")


def test_training_zeroes_the_gradients():
    first, second = list(reconstruction_loader(samples=32))
    images = torch.cat([first[0], second[0], first[0], second[0]])
    repeated = DataLoader(TensorDataset(images, images.clone()), batch_size=16, shuffle=False)
    model = pixel_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: a batch seen again gives its gradient
    seen = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(None if model.weight.grad is None
                                                             else model.weight.grad.clone()))
    autoencoder.train_one_epoch(model, repeated, nn.MSELoss(), optimizer, CPU)
    assert len(seen) == 4, (
        f"train_one_epoch called optimizer.step() {len(seen)} times for 4 batches; step once per batch.")
    for step, grad in enumerate(seen, start=1):
        assert grad is not None and grad.any(), (
            f"At optimizer step {step} the model had no gradients: call loss.backward() before optimizer.step(), "
            "and optimizer.zero_grad() before loss.backward(), not after it.")
    for step in (3, 4):  # batches A, B, A, B: step 3 sees the batch and weights of step 1, step 4 those of step 2
        assert (seen[step - 1] - seen[step - 3]).norm() <= 1e-4 * seen[step - 3].norm(), (
            f"At optimizer step {step} the gradients still included earlier batches (step {step} saw the batch "
            f"and weights of step {step - 2}, but other gradients): call optimizer.zero_grad() before each "
            "loss.backward()."
        )
