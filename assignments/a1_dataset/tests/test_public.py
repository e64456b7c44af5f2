"""Public checks for assignment 1, on a few synthetic images: run `pytest` in the assignment folder."""

from pathlib import Path

import cifar_dataset
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

COLORS = {"airplane": (200, 30, 30), "bird": (30, 200, 30), "cat": (30, 30, 200)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two one-color images per class (a PNG and a JPEG), and a stray text file."""
    for name, color in COLORS.items():
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for file in ("0.png", "1.jpg"):
            Image.new("RGB", (32, 32), color).save(folder / file)
    (tmp_path / "train" / "airplane" / "notes.txt").write_text("not an image")
    return tmp_path


def test_length_counts_images_of_cifar2_only(root):
    assert len(cifar_dataset.CifarImageFolder(root)) == 4


def test_item_is_rgb_pil_image_and_int_label(root):
    image, label = cifar_dataset.CifarImageFolder(root)[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (32, 32)
    assert isinstance(label, int)


def test_labels_follow_label_map(root):
    dataset = cifar_dataset.CifarImageFolder(root, label_map={"cat": 7, "bird": 3})
    for i in range(len(dataset)):
        image, label = dataset[i]
        _, green, blue = image.getpixel((16, 16))
        assert label == (7 if blue > green else 3)


def test_transform_is_applied(root):
    dataset = cifar_dataset.CifarImageFolder(root, transform=transforms.ToTensor())
    image, _ = dataset[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32)


def test_init_opens_no_image(root, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("__init__ must not open images; open them in __getitem__")

    monkeypatch.setattr(Image, "open", refuse)
    cifar_dataset.CifarImageFolder(root)


def test_channel_stats(root):
    mean, std = cifar_dataset.channel_stats(cifar_dataset.CifarImageFolder(root))
    pixels = torch.tensor([COLORS["airplane"], COLORS["bird"]], dtype=torch.float64) / 255
    assert torch.allclose(torch.as_tensor(mean, dtype=torch.float64), pixels.mean(0), atol=0.02)
    assert torch.allclose(torch.as_tensor(std, dtype=torch.float64), pixels.std(0, correction=0), atol=0.02)


def test_loader_batches(root):
    dataset = cifar_dataset.CifarImageFolder(root, transform=transforms.ToTensor())
    loader = cifar_dataset.make_loader(dataset, batch_size=3, shuffle=False)
    assert isinstance(loader, DataLoader)
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3,)


def test_errors(root):
    with pytest.raises(FileNotFoundError):
        cifar_dataset.CifarImageFolder(root, split="valid")
    with pytest.raises(ValueError):
        cifar_dataset.CifarImageFolder(root, label_map={"unicorn": 0})
