"""Public checks for assignment 1, on a few synthetic images: run `pytest` in the assignment folder.

They are a smoke test with the same messages as the grader's hidden checks, which test more cases.
"""

from pathlib import Path

import cifar_dataset
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms

COLORS = {"airplane": (200, 30, 30), "bird": (30, 200, 30), "cat": (30, 30, 200)}
GRAY = 81  # the grayscale airplane's level; PIL's RGB conversion repeats it in every channel


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two one-color images per class (a PNG and a JPEG), a grayscale airplane, and a stray text file."""
    for name, color in COLORS.items():
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for file in ("0.png", "1.jpg"):
            Image.new("RGB", (32, 32), color).save(folder / file)
    Image.new("L", (32, 32), GRAY).save(tmp_path / "train" / "airplane" / "2.png")
    (tmp_path / "train" / "airplane" / "notes.txt").write_text("not an image")
    return tmp_path


def test_length_counts_images_of_cifar2_only(root):
    assert len(cifar_dataset.CifarImageFolder(root)) == 5, "expected the 5 .png/.jpg/.jpeg files of airplane/ and bird/"


def test_item_is_rgb_pil_image_and_int_label(root):
    dataset = cifar_dataset.CifarImageFolder(root)
    for i in range(len(dataset)):
        image, label = dataset[i]
        assert isinstance(image, Image.Image), f"expected a PIL image, got {type(image).__name__}"
        assert image.mode == "RGB", f"expected an RGB image, got mode {image.mode!r} (grayscale files too)"
        assert image.size == (32, 32), f"expected a 32x32 image, got {image.size[0]}x{image.size[1]}"
        assert isinstance(label, int) and not isinstance(label, bool), f"label {label!r} is not an int"


def test_labels_follow_label_map(root):
    dataset = cifar_dataset.CifarImageFolder(root, label_map={"cat": 7, "bird": 3})
    for i in range(len(dataset)):
        image, label = dataset[i]
        _, green, blue = image.getpixel((16, 16))
        name = "cat" if blue > green else "bird"
        assert label == (7 if blue > green else 3), f"an image of {name}/ has label {label}"


def test_transform_is_applied(root):
    dataset = cifar_dataset.CifarImageFolder(root, transform=transforms.ToTensor())
    image, _ = dataset[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32), (
        "__getitem__ must return transform(image), called once per item"
    )


def test_init_opens_no_image(root, monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    cifar_dataset.CifarImageFolder(root)
    assert not opened, f"__init__ opened {len(opened)} images; open each one in __getitem__ instead"


def test_channel_stats(root):
    stats = cifar_dataset.channel_stats(cifar_dataset.CifarImageFolder(root))
    files = [root / "train" / name / file for name in ("airplane", "bird") for file in ("0.png", "1.jpg", "2.png")
             if (root / "train" / name / file).exists()]
    # The pixels as decoded (JPEG shifts the colors a little), one row per pixel, within the hidden check's 1e-5.
    pixels = torch.cat([transforms.ToTensor()(Image.open(file).convert("RGB")).reshape(3, -1).T for file in files])
    expected_stats = (pixels.double().mean(0), pixels.double().std(0, correction=0))
    for name, value, expected in zip(("mean", "std"), stats, expected_stats, strict=True):
        assert isinstance(value, torch.Tensor) and value.shape == (3,), f"{name} must be a tensor of shape (3,)"
        assert value.is_floating_point(), f"{name} must be a float tensor"
        hint = " (the population std of every pixel: torch's .std() needs correction=0)" if name == "std" else ""
        close = torch.allclose(value.double(), expected, atol=1e-5)
        assert close, f"{name} is {value.tolist()}, expected {[round(x, 6) for x in expected.tolist()]}{hint}"


def test_loader_batches(root):
    dataset = cifar_dataset.CifarImageFolder(root, transform=transforms.ToTensor())
    loader = cifar_dataset.make_loader(dataset, batch_size=3, shuffle=False)
    assert isinstance(loader, DataLoader), f"make_loader must return a DataLoader, not a {type(loader).__name__}"
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3,), "batches stack images and int64 labels"


def test_loader_shuffles_and_passes_num_workers():
    dataset = TensorDataset(torch.arange(64))
    shuffled = torch.cat([batch for (batch,) in cifar_dataset.make_loader(dataset, 8, shuffle=True)]).tolist()
    in_order = torch.cat([batch for (batch,) in cifar_dataset.make_loader(dataset, 8, shuffle=False)]).tolist()
    assert in_order == list(range(64)), "shuffle=False must keep the dataset order"
    assert sorted(shuffled) == in_order and shuffled != in_order, "shuffle=True must show every item once, reordered"
    assert cifar_dataset.make_loader(dataset, 8, False).num_workers == 0, "num_workers must default to 0"
    assert cifar_dataset.make_loader(dataset, 8, False, num_workers=2).num_workers == 2, "pass num_workers on"


def test_errors(root):
    with pytest.raises(FileNotFoundError):
        cifar_dataset.CifarImageFolder(root, split="valid")
    with pytest.raises(ValueError) as raised:
        cifar_dataset.CifarImageFolder(root, label_map={"unicorn": 0})
    assert "unicorn" in str(raised.value), f"the ValueError must name the missing class, not say {raised.value}"
