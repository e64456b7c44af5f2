"""Hostile: ships a conftest.py and a pytest.ini that would make every check pass; evaluate is broken."""


def evaluate(model, loader, device):  # noqa: F811
    return 1.0
