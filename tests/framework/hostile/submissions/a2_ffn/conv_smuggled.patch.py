"""Hostile: a convolution smuggled into the fully connected assignment: a custom module keeps a bare
nn.Parameter kernel and applies it with F.conv2d, next to allowed Linear layers."""


class SneakyFFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, images):
        return self.head(torch.relu(torch.nn.functional.conv2d(images, self.kernel, padding=1)))


def build_model():  # noqa: F811
    return SneakyFFN()
