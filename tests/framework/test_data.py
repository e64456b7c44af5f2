"""The data layer on a tiny synthetic CIFAR tree: decoding, the tensor cache and finding the data root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader import data
from grader.context import GradingData
from grader.data import load_split, resolve_data_root, stored_fingerprint
from grader.errors import GraderError
from tests.framework.declared import CIFAR2

PER_CLASS = {"train": 3, "test": 2}  # per format (PNG and JPG) and class


def pixels(split: str, label: int, i: int) -> np.ndarray:
    """A flat colour per image, so every image is recognizable after decoding (JPG included)."""
    return np.full((32, 32, 3), (40 * i + 10, 120 * label + 50, 200 if split == "test" else 20), np.uint8)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "cifar"
    for split, count in PER_CLASS.items():
        for label, name in enumerate(CIFAR2.classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(pixels(split, label, i)).save(folder / f"{i:02d}.png")
                Image.fromarray(pixels(split, label, i)).save(folder / f"{i:02d}.jpg", quality=95)
            (folder / "notes.txt").write_text("not an image\n")
    (root / "train" / "cat").mkdir()  # other CIFAR-10 classes are ignored
    Image.fromarray(pixels("train", 5, 0)).save(root / "train" / "cat" / "00.png")
    return root


def test_load_split_shapes_dtypes_and_labels(tree: Path, isolated_cache: Path) -> None:
    for split, count in PER_CLASS.items():
        tensors = load_split(tree, split, CIFAR2)
        n = 2 * count * len(CIFAR2.classes)
        assert tensors.images.shape == (n, 3, 32, 32) and tensors.images.dtype == np.uint8
        assert tensors.labels.shape == (n,) and tensors.labels.dtype == np.int64
        assert tensors.labels.tolist() == [0] * (n // 2) + [1] * (n // 2)
        # Files are sorted per class: 00.jpg, 00.png, 01.jpg, ...; colours survive JPG within a few levels.
        expected = np.stack([pixels(split, label, i).transpose(2, 0, 1) for label in (0, 1)
                             for i in range(count) for _ in ("jpg", "png")])
        assert np.abs(tensors.images.astype(int) - expected).max() <= 3
        assert tensors.images_path.is_relative_to(isolated_cache)
    assert load_split(tree, "train", CIFAR2).fingerprint != load_split(tree, "test", CIFAR2).fingerprint


def test_channel_stats(tree: Path, isolated_cache: Path) -> None:
    mean, std = load_split(tree, "train", CIFAR2).channel_stats()
    assert mean[2] == pytest.approx(20 / 255, abs=0.01) and std[2] == pytest.approx(0, abs=0.01)
    assert mean[1] == pytest.approx((50 + 170) / 2 / 255, abs=0.01)


def test_cache_is_reused(tree: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_split(tree, "train", CIFAR2)

    def no_decoding(files: object) -> None:
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(data, "_decode", no_decoding)
    second = load_split(tree, "train", CIFAR2)
    assert second.fingerprint == first.fingerprint and second.images_path == first.images_path
    assert np.array_equal(second.images, first.images)


def test_changed_image_changes_the_fingerprint_and_rebuilds(tree: Path, isolated_cache: Path) -> None:
    before = load_split(tree, "train", CIFAR2)
    changed = tree / "train" / "bird" / "01.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(changed)
    after = load_split(tree, "train", CIFAR2)
    assert after.fingerprint != before.fingerprint and after.images_path != before.images_path
    index = 2 * PER_CLASS["train"] + 3  # after the airplanes; birds go 00.jpg 00.png 01.jpg 01.png
    assert after.images[index].max() == 0 and before.images[index].max() > 0


def test_the_stored_fingerprint_is_read_without_loading_and_follows_a_changed_image(
        tree: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = GradingData.load(tree, CIFAR2).fingerprint
    with monkeypatch.context() as patched:  # read from the index: no image decoded, none hashed
        patched.setattr(data, "_decode", lambda files: pytest.fail("decoded the images"))
        patched.setattr(data, "_content_fingerprint", lambda root, files: pytest.fail("hashed the images"))
        assert stored_fingerprint(tree, CIFAR2) == loaded
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tree / "test" / "bird" / "01.png")
    changed = stored_fingerprint(tree, CIFAR2)  # stale: the changed split is loaded once, which stores its fingerprint
    assert changed != loaded and changed == GradingData.load(tree, CIFAR2).fingerprint
    assert changed.startswith(loaded.split(",")[0] + ",")  # the train split's fingerprint still read as stored


def test_not_32x32_is_an_error(tree: Path, isolated_cache: Path) -> None:
    Image.fromarray(np.zeros((40, 32, 3), np.uint8)).save(tree / "test" / "airplane" / "big.png")
    with pytest.raises(GraderError, match=r"big\.png is 32x40, not a 32x32"):
        load_split(tree, "test", CIFAR2)


def test_unreadable_image_is_an_error(tree: Path, isolated_cache: Path) -> None:
    (tree / "test" / "bird" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(GraderError, match=r"broken\.jpg"):
        load_split(tree, "test", CIFAR2)


def test_missing_class_folder_is_an_error(tree: Path, isolated_cache: Path) -> None:
    (tree / "test" / "bird").rename(tree / "test" / "birds")
    with pytest.raises(GraderError, match="test/bird folder for the class 'bird' of the assignment's "
                                          r"\[data\] classes; its test/ holds: airplane, birds\.$"):
        load_split(tree, "test", CIFAR2)


def copy_layout(root: Path) -> Path:
    for split in data.SPLITS:
        (root / split).mkdir(parents=True)
    return root


def test_resolve_data_root_prefers_flag_then_env_then_cache(
        tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env = copy_layout(tmp_path / "flag"), copy_layout(tmp_path / "env")
    cached = copy_layout(isolated_cache / "cifar10")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env))
    assert resolve_data_root(flag) == flag
    assert resolve_data_root() == env
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert resolve_data_root() == cached


def test_missing_data_names_every_way_to_provide_it(
        tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    for flag in (None, tmp_path / "nowhere"):
        with pytest.raises(GraderError) as raised:
            resolve_data_root(flag)
        message = str(raised.value)
        assert all(part in message for part in ("--data-dir", "GRADER_DATA_DIR", "grader data prepare"))
        assert "\n" not in message
