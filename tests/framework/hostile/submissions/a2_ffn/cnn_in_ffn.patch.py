"""Careless: a convolutional network handed in for the fully connected assignment."""


def build_model():  # noqa: F811
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(8 * 8 * 8, 2)
    )
