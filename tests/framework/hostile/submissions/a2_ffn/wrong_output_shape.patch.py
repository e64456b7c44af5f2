"""Careless: the model ends in 10 outputs (all of CIFAR-10) instead of 2."""


def build_model():  # noqa: F811
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 256), nn.ReLU(), nn.Linear(256, 10))
