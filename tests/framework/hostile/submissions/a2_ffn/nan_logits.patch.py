"""Careless: the model trains fine but returns NaN logits in eval mode."""


class NanInEval(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, images):
        logits = self.net(images)
        return logits if self.training else logits * float("nan")


def build_model():  # noqa: F811
    return NanInEval()
