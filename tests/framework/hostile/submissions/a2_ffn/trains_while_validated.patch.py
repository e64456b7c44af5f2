"""Cheat: the weak control, whose model trains itself on the training images the first time the grader runs it in
eval mode: in the training stage, that is the validation pass before the first epoch, whose time the budget does
not count."""

import numpy as _np

EPOCHS = 1  # noqa: F811
_TRAINING = ("/data/train-images.npy", "/data/train-labels.npy")


def make_optimizer(model):  # noqa: F811
    return torch.optim.SGD(model.parameters(), lr=1e-6)


def _train_more(model):
    try:
        _fit(model)
    except (OSError, ValueError, EOFError):  # no training data where it looked
        pass


def _fit(model):
    images = torch.tensor(_np.load(_TRAINING[0]), dtype=torch.float32).div(255)
    images = (images - images.mean(dim=(0, 2, 3), keepdim=True)) / images.std(dim=(0, 2, 3), keepdim=True)
    labels = torch.tensor(_np.load(_TRAINING[1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    with torch.enable_grad():
        for _ in range(30):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
    model.eval()


_reference_model = build_model


class SelfTraining(nn.Sequential):
    def forward(self, images):
        if not self.training and not getattr(self, "_trained_more", False):
            self._trained_more = True
            _train_more(self)
        return super().forward(images)


def build_model():  # noqa: F811
    return SelfTraining(*_reference_model())
