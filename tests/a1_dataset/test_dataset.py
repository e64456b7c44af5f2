"""Hidden checks for assignment 1: `CifarImageFolder`, `channel_stats` and `make_loader`.

Most checks build a small image tree (PNG, JPEG, a grayscale PNG, stray non-image files) and
identify every returned image by its pixels; the `real_data` checks read the CIFAR-10 copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms

from grader.data import CIFAR2_CLASSES, image_files, load_split

# Creation order is deliberately unsorted, so a folder listing taken as is comes back unsorted.
LAYOUT = {
    "train": {
        "airplane": ["c.png", "a.jpg", "d.png", "b.jpeg"],
        "bird": ["z.png", "k.jpg", "m.png"],
        "cat": ["cat3.png", "cat0.png", "cat4.png", "cat1.png", "cat2.png"],
        "ship": ["s.png"],
    },
    "test": {"airplane": ["t.png"], "bird": ["u.jpg"]},
}
GRAYSCALE = "train/bird/m.png"
NOT_IMAGES = ["train/airplane/notes.txt", "train/bird/.DS_Store", "train/cat/labels.csv"]
CIFAR2 = {name: label for label, name in enumerate(CIFAR2_CLASSES)}


@dataclass(frozen=True)
class Tree:
    """A synthetic image tree and the RGB pixels PIL decodes from each of its image files."""

    root: Path
    pixels: dict[Path, np.ndarray]

    def files(self, split: str, classes: list[str]) -> list[Path]:
        return [self.root / split / name / file for name in classes for file in LAYOUT[split][name]]

    def identify(self, image: Image.Image | torch.Tensor) -> Path:
        """The file whose pixels `image` shows (a PIL image or a ToTensor tensor)."""
        if isinstance(image, torch.Tensor):
            image = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        array = np.asarray(image, dtype=np.float64)
        distance = {path: np.abs(array - truth).mean() for path, truth in self.pixels.items()
                    if truth.shape == array.shape}
        path = min(distance, key=distance.get, default=None)
        assert path is not None and distance[path] < 1, "the returned image matches none of the image files"
        return path


def _noise(rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image whose channels have different ranges, so mixing channels up shows."""
    channels = [rng.integers(low, high, (32, 32)) for low, high in ((0, 100), (100, 256), (0, 256))]
    return np.stack(channels, axis=-1).astype(np.uint8)


def _decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    pixels = {}
    for split, classes in LAYOUT.items():
        for name, files in classes.items():
            (root / split / name).mkdir(parents=True)
            for file in files:
                path = root / split / name / file
                image = Image.fromarray(_noise(rng))
                (image.convert("L") if path == root / GRAYSCALE else image).save(path)
                pixels[path] = _decoded(path)
    for name in NOT_IMAGES:
        (root / name).write_text("not an image")
    return Tree(root, pixels)


@pytest.fixture
def undecodable_tree(tmp_path: Path) -> Path:
    """Image-named files that no decoder can read: only a lazy Dataset can be created over them."""
    for name in CIFAR2_CLASSES:
        (tmp_path / "train" / name).mkdir(parents=True)
        for file in ("0.png", "1.jpg"):
            (tmp_path / "train" / name / file).write_bytes(b"these bytes are no image")
    return tmp_path


TO_TENSOR = "with transforms.ToTensor() an item must be a float tensor of shape (3, 32, 32) in [0, 1]"


def _items(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def _assert_stats(stats, expected_mean, expected_std, atol: float) -> None:
    """`stats` is a (mean, std) pair of float tensors of shape (3,) within `atol` of the expected values."""
    for name, value, expected in zip(("mean", "std"), stats, (expected_mean, expected_std), strict=True):
        assert isinstance(value, torch.Tensor) and value.shape == (3,), f"{name} must be a tensor of shape (3,)"
        assert value.is_floating_point(), f"{name} must be a float tensor"
        close = np.allclose(value.double().numpy(), expected, atol=atol)
        assert close, f"{name} is {value.tolist()}, expected {np.round(expected, 4).tolist()}"


@pytest.mark.group("length")
@pytest.mark.real_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_split_has_every_cifar2_image(submission, data_root, split):
    dataset = submission.CifarImageFolder(data_root, split)
    expected = len(image_files(data_root, split))
    assert len(dataset) == expected, f"expected the {expected} images of {split}/airplane/ and {split}/bird/"


@pytest.mark.group("length")
def test_counts_only_images_of_mapped_classes(submission, tree):
    dataset = submission.CifarImageFolder(tree.root, "train")
    expected = len(tree.files("train", list(CIFAR2)))
    assert len(dataset) == expected, f"expected the {expected} .png/.jpg/.jpeg files of airplane/ and bird/"


@pytest.mark.group("items")
def test_items_are_rgb_pil_images_with_int_labels(submission, tree):
    for image, label in _items(submission.CifarImageFolder(tree.root, "train")):
        assert isinstance(image, Image.Image), f"expected a PIL image, got {type(image).__name__}"
        assert image.mode == "RGB", f"expected an RGB image, got mode {image.mode!r} (grayscale files too)"
        assert image.size == (32, 32), f"expected a 32x32 image, got {image.size[0]}x{image.size[1]}"
        assert isinstance(label, int) and not isinstance(label, bool), f"label {label!r} is not an int"


@pytest.mark.group("items")
def test_each_image_file_appears_once(submission, tree):
    shown = [tree.identify(image) for image, _ in _items(submission.CifarImageFolder(tree.root, "test"))]
    assert sorted(shown) == sorted(tree.files("test", list(CIFAR2))), "every image file must appear exactly once"


@pytest.mark.group("items")
def test_files_are_in_sorted_order(submission, tree):
    dataset = submission.CifarImageFolder(tree.root, "train", label_map={"cat": 0})
    shown = [tree.identify(image).name for image, _ in _items(dataset)]
    assert shown == sorted(LAYOUT["train"]["cat"]), "the files of a class folder are not in sorted order"


@pytest.mark.group("labels")
def test_default_labels_are_cifar2(submission, tree):
    assert submission.CIFAR2_LABELS == CIFAR2, f"CIFAR2_LABELS must stay {CIFAR2}"
    for image, label in _items(submission.CifarImageFolder(tree.root, "train")):
        name = tree.identify(image).parent.name
        assert label == CIFAR2[name], f"an image of {name}/ has label {label}, expected {CIFAR2[name]}"


@pytest.mark.group("labels")
def test_custom_label_map(submission, tree):
    label_map = {"ship": 0, "cat": 5, "bird": 2}
    dataset = submission.CifarImageFolder(tree.root, "train", label_map=label_map)
    shown = {}
    for image, label in _items(dataset):
        path = tree.identify(image)
        shown[path] = label
        assert label == label_map[path.parent.name], f"an image of {path.parent.name}/ has label {label}"
    assert sorted(shown) == sorted(tree.files("train", list(label_map))), "list the images of every class of label_map"


@pytest.mark.group("transform")
def test_transform_result_is_returned(submission, tree):
    seen = []

    def transform(image):
        seen.append(image)
        return ("transformed", len(seen))

    dataset = submission.CifarImageFolder(tree.root, "train", transform=transform)
    image, label = dataset[1]
    assert image == ("transformed", 1), "__getitem__ must return transform(image), called once per item"
    assert isinstance(seen[0], Image.Image) and seen[0].mode == "RGB", "transform must get the PIL RGB image"
    assert label == CIFAR2[tree.identify(seen[0]).parent.name], "a transform must not change the label"


@pytest.mark.group("transform")
def test_to_tensor_transform(submission, tree):
    dataset = submission.CifarImageFolder(tree.root, "test", transform=transforms.ToTensor())
    for image, _ in _items(dataset):
        assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32), TO_TENSOR
        assert image.dtype == torch.float32 and image.min() >= 0 and image.max() <= 1, TO_TENSOR
        tree.identify(image)


@pytest.mark.group("lazy")
def test_init_opens_no_image(submission, tree, monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    submission.CifarImageFolder(tree.root, "train")
    assert not opened, f"__init__ opened {len(opened)} images; open each one in __getitem__ instead"


@pytest.mark.group("lazy")
def test_init_reads_no_image_content(submission, undecodable_tree):
    dataset = submission.CifarImageFolder(undecodable_tree, "train")
    assert len(dataset) == 2 * len(CIFAR2_CLASSES), "__init__ must list image files without decoding them"


@pytest.mark.group("stats")
def test_stats_of_synthetic_images(submission, tree):
    stats = submission.channel_stats(submission.CifarImageFolder(tree.root, "train"))
    pixels = np.stack([tree.pixels[path] for path in tree.files("train", list(CIFAR2))]) / 255
    _assert_stats(stats, pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2)), atol=1e-5)


@pytest.mark.group("stats")
@pytest.mark.real_data
def test_stats_of_real_training_images(submission, data_root):
    stats = submission.channel_stats(submission.CifarImageFolder(data_root, "train"))
    _assert_stats(stats, *load_split(data_root, "train").channel_stats(), atol=1e-3)


@pytest.mark.group("loader")
def test_loader_batches_in_order(submission, tree):
    dataset = submission.CifarImageFolder(tree.root, "train", transform=transforms.ToTensor())
    loader = submission.make_loader(dataset, batch_size=3, shuffle=False)
    assert isinstance(loader, DataLoader), f"make_loader must return a DataLoader, not a {type(loader).__name__}"
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [3, 3, 1], "7 images in batches of 3 make 3, 3, 1"
    images = torch.cat([images for images, _ in batches])
    labels = torch.cat([labels for _, labels in batches])
    assert images.shape == (7, 3, 32, 32) and labels.dtype == torch.int64, "batches stack images and int64 labels"
    in_order = "shuffle=False must keep the dataset order"
    assert torch.equal(images, torch.stack([image for image, _ in _items(dataset)])), in_order
    assert labels.tolist() == [label for _, label in _items(dataset)], in_order


@pytest.mark.group("loader")
def test_loader_shuffles(submission, assignment):
    dataset = TensorDataset(torch.arange(64))
    torch.manual_seed(assignment.seed)
    shuffled = torch.cat([batch for (batch,) in submission.make_loader(dataset, batch_size=8, shuffle=True)])
    in_order = torch.cat([batch for (batch,) in submission.make_loader(dataset, batch_size=8, shuffle=False)])
    assert torch.equal(in_order, torch.arange(64)), "shuffle=False must keep the dataset order"
    assert sorted(shuffled.tolist()) == list(range(64)), "a shuffled epoch must show every item once"
    assert not torch.equal(shuffled, in_order), "shuffle=True must change the order"


@pytest.mark.group("loader")
def test_loader_num_workers(submission):
    dataset = TensorDataset(torch.arange(4))
    assert submission.make_loader(dataset, 2, False).num_workers == 0, "num_workers must default to 0"
    workers = submission.make_loader(dataset, 2, False, num_workers=2).num_workers
    assert workers == 2, "make_loader must pass num_workers on to the DataLoader"


@pytest.mark.group("errors")
def test_missing_split_raises_file_not_found(submission, tree):
    with pytest.raises(FileNotFoundError, match="valid"):
        submission.CifarImageFolder(tree.root, "valid")


@pytest.mark.group("errors")
def test_missing_root_raises_file_not_found(submission, tmp_path):
    with pytest.raises(FileNotFoundError):
        submission.CifarImageFolder(tmp_path / "nowhere", "train")


@pytest.mark.group("errors")
def test_missing_class_raises_value_error(submission, tree):
    with pytest.raises(ValueError, match="unicorn"):
        submission.CifarImageFolder(tree.root, "train", label_map={"airplane": 0, "unicorn": 1})
