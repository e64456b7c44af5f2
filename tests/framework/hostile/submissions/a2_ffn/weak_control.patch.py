"""Control: an honest submission that trains one epoch too slowly to learn much."""

EPOCHS = 1  # noqa: F811


def make_optimizer(model):  # noqa: F811
    return torch.optim.SGD(model.parameters(), lr=1e-6)
