"""Careless: a hidden layer of 12,000 units, about 37 million parameters against a 5 million limit."""


def build_model():  # noqa: F811
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 12_000), nn.ReLU(), nn.Linear(12_000, 2))
