"""Public checks for assignment 2, on random tensors: run `pytest` in the assignment folder.

They are a smoke test with the same messages as the grader's hidden checks; the grading itself trains
your model on the real images and checks more cases.
"""

import ffn
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CPU = torch.device("cpu")


def separable_loader(samples=64, batch_size=16, transform=None, shuffle=True):
    """Random images labeled by the sign of their mean pixel, an easy task for any model."""
    torch.manual_seed(0)
    images = torch.randn(samples, 3, 32, 32)
    labels = (images.mean(dim=(1, 2, 3)) > 0).long()
    if transform is not None:  # the grader applies it to each normalized image tensor, as here
        images = torch.stack([transform(image) for image in images])
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


def test_epochs_and_batch_size_are_positive_ints():
    for name in ("EPOCHS", "BATCH_SIZE"):
        value = getattr(ffn, name)
        assert isinstance(value, int), f"{name} must be an int, but it is {type(value).__name__}."
        assert value > 0, f"{name} must be positive, but it is {value}."


def test_model_returns_two_logits_per_image():
    model = ffn.build_model().eval()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, 32, 32))
    assert isinstance(logits, torch.Tensor), f"The model must return a tensor of logits, not a {type(logits).__name__}."
    assert logits.shape == (4, 2), f"For 4 images the model returned shape {tuple(logits.shape)}, not (4, 2)."


def test_model_is_fully_connected():
    for name, layer in ffn.build_model().named_modules():
        assert not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)), (
            f"Layer {name!r} is a {type(layer).__name__}, which a2_ffn does not allow: use fully connected layers only."
        )


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    model = ffn.build_model()
    optimizer = ffn.make_optimizer(model)
    loader = separable_loader(transform=ffn.train_transform() if hasattr(ffn, "train_transform") else None)
    losses = [ffn.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, CPU) for _ in range(5)]
    assert isinstance(losses[0], float), (
        f"train_one_epoch must return the mean loss as a Python float (use loss.item()), not a "
        f"{type(losses[0]).__name__}."
    )
    assert losses[-1] < losses[0], (
        f"Five epochs of train_one_epoch left the loss at {losses[-1]:.3f} (it was {losses[0]:.3f}): "
        "call optimizer.zero_grad(), loss.backward() and optimizer.step() for every batch."
    )


def test_training_zeroes_the_gradients():
    loader = separable_loader(shuffle=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # frozen weights: each batch's gradient is reproducible
    seen = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(None if model[1].weight.grad is None
                                                             else model[1].weight.grad.clone()))
    ffn.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, CPU)
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


def test_evaluate_returns_accuracy_in_eval_mode():
    model = ffn.build_model().train()
    accuracy = ffn.evaluate(model, separable_loader(), CPU)
    assert isinstance(accuracy, float), (
        f"evaluate must return the accuracy as a Python float (use .item()), not a {type(accuracy).__name__}."
    )
    assert 0.0 <= accuracy <= 1.0, f"evaluate returned {accuracy}, but an accuracy is a fraction in [0, 1]."
    assert not model.training, (
        "evaluate must call model.eval() before predicting, so dropout and batch norm act as at test time."
    )
