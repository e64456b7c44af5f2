"""Careless: train_one_epoch takes only (model, loader); the grader calls it with five arguments."""


def train_one_epoch(model, loader):  # noqa: F811
    total = 0.0
    for images, labels in loader:
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        total += loss.item()
    return total / len(loader)
