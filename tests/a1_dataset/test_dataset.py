"""Hidden checks for assignment 1: `CifarImageFolder`, `channel_stats` and `make_loader`.

Each check calls the submission in its process and records plain data through `observe`: counts, labels,
type names and the pixel fingerprint of every returned image, read from exact PIL images and torch tensors
only. Its verdict, below it, runs where no student code ran: it rebuilds the same synthetic image tree
(PNG, JPEG, a grayscale PNG, stray files) from the seed, and the real-data verdicts read the CIFAR-10
tree themselves ($GRADER_DATA_DIR, which the grader sets for the verdict stage).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms

from grader.config import Assignment, Data, load_assignment
from grader.data import image_files, load_split, resolve_data_root
from grader.models import StrictModel
from grader.observation import Observation, verdict

# Creation order is deliberately unsorted, so a folder listing taken as is comes back unsorted. The class
# folders sort so that a label taken from a folder's position (as torchvision's ImageFolder does) is wrong.
LAYOUT = {
    "train": {
        "airplane": ["c.png", "a.jpg", "d.png", "b.jpeg"],
        "automobile": ["car.png"],
        "bird": ["z.png", "k.jpg", "m.png"],
        "cat": ["cat3.png", "cat0.png", "cat6.png", "cat4.png", "cat1.png", "cat7.png", "cat2.png", "cat5.png"],
        "ship": ["s.png"],
    },
    "test": {"airplane": ["t.png"], "bird": ["u.jpg"]},
}
GRAYSCALE = "train/bird/m.png"
NOT_IMAGES = ["train/airplane/notes.txt", "train/bird/.DS_Store", "train/cat/labels.csv", "train/__MACOSX/._c.png"]

def _declared_data(assignment: Assignment) -> Data:
    if assignment.data is None:
        raise ValueError(f"{assignment.id} declares no [data]")
    return assignment.data


CIFAR2_CLASSES = _declared_data(load_assignment(Path(__file__).parent.name)).classes  # assignment.toml's [data]
CIFAR2 = {name: label for label, name in enumerate(CIFAR2_CLASSES)}
CUSTOM_MAP = {"ship": 0, "cat": 5, "bird": 2}
LOADER_MAP = {"airplane": 0, "ship": 1}
LOADER_BATCHES = [2, 2, 1]
STATS_ATOL = 1e-5
REAL_STATS_ATOL = 1e-3


def _pil_image_types() -> frozenset[type]:
    """PIL's own image classes (`JpegImageFile`, ...), listed when the checks are imported, before any student code."""
    Image.init()
    found, pending = {Image.Image}, [Image.Image]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass.__module__.startswith("PIL.") and subclass not in found:
                found.add(subclass)
                pending.append(subclass)
    return frozenset(found)


PIL_IMAGES = _pil_image_types()


# ---- the synthetic tree, rebuilt the same from the seed on both sides ------------------------------------------

def _noise(rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image whose channels (and images) have different ranges, so mixing them up shows."""
    lows = rng.integers(0, 120, 3)
    highs = lows + rng.integers(60, 136, 3)
    return np.stack([rng.integers(low, high, (32, 32)) for low, high in zip(lows, highs, strict=True)], -1).astype(
        np.uint8)


@cache
def tree_files(seed: int) -> dict[str, bytes]:
    """Every file of the synthetic tree, by its path under the root."""
    rng = np.random.default_rng(seed)
    files = {}
    for split, classes in LAYOUT.items():
        for name, names in classes.items():
            for file in names:
                path = f"{split}/{name}/{file}"
                image = Image.fromarray(_noise(rng))
                buffer = io.BytesIO()
                (image.convert("L") if path == GRAYSCALE else image).save(
                    buffer, format="PNG" if file.endswith(".png") else "JPEG")
                files[path] = buffer.getvalue()
    return files | dict.fromkeys(NOT_IMAGES, b"not an image")


def build_tree(root: Path, seed: int) -> Path:
    for path, data in tree_files(seed).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def build_undecodable_tree(root: Path) -> Path:
    """Image-named files that no decoder can read: only a lazy Dataset can be created over them."""
    for name in CIFAR2_CLASSES:
        (root / "train" / name).mkdir(parents=True)
        for file in ("0.png", "1.jpg"):
            (root / "train" / name / file).write_bytes(b"these bytes are no image")
    return root


def _blocks(rgb: np.ndarray) -> list[float]:
    """Means of a 32x32 RGB image (0-255) over a 4x4 grid of blocks: an identity that any decoder agrees on."""
    return rgb.reshape(4, 8, 4, 8, 3).mean(axis=(1, 3)).round(2).flatten().tolist()


@cache
def _pixels(seed: int) -> dict[str, np.ndarray]:
    """The RGB pixels (0-255, float64) PIL decodes from each image file of the tree."""
    pixels = {}
    for path, data in tree_files(seed).items():
        if path not in NOT_IMAGES:
            with Image.open(io.BytesIO(data)) as image:
                pixels[path] = np.asarray(image.convert("RGB"), dtype=np.float64)
    return pixels


def _files(seed: int, split: str, classes: dict[str, int]) -> list[str]:
    return sorted(path for path in _pixels(seed) if path.startswith(f"{split}/") and path.split("/")[1] in classes)


def _identify(blocks: list[float], seed: int) -> str | None:
    """The image file of the tree these block means show, if any."""
    if len(blocks) != 48:
        return None
    distance = {path: float(np.abs(np.array(blocks) - _blocks(rgb)).mean()) for path, rgb in _pixels(seed).items()}
    path = min(distance, key=distance.__getitem__)
    return path if distance[path] < 1 else None


def _folder_position(path: str, seed: int) -> int:
    """The position of `path`'s class folder among all folders of its split (torchvision ImageFolder's label)."""
    split, name = path.split("/")[:2]
    return sorted({p.split("/")[1] for p in tree_files(seed) if p.startswith(f"{split}/")}).index(name)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, assignment: Assignment) -> Path:
    return build_tree(tmp_path_factory.mktemp("cifar"), assignment.seed)


@pytest.fixture
def undecodable_tree(tmp_path: Path) -> Path:
    return build_undecodable_tree(tmp_path)


# ---- what the checks observe, read with the base classes' own operations ----------------------------------------

class ImageSeen(StrictModel):
    """An image as the check read it: `kind` is "pil", "tensor" or "other" (then only `type_name` is known)."""

    kind: str
    type_name: str
    mode: str = ""  # a PIL image's mode, a tensor's dtype
    shape: list[int] = []  # (height, width) of a PIL image, a tensor's shape
    low: float | None = None
    high: float | None = None
    blocks: list[float] = []


class ItemSeen(StrictModel):
    type_name: str
    image: ImageSeen | None = None  # None: the item was not an (image, label) pair
    label_type: str = ""
    label: int | None = None


class TensorSeen(StrictModel):
    type_name: str
    dtype: str = ""
    shape: list[int] = []
    values: list[float | None] = []


class CountSeen(Observation):
    split: str
    count: int


class ItemsSeen(Observation):
    items: list[ItemSeen]


class LabelsSeen(Observation):
    default_map: dict[str, int] | None
    default_map_type: str
    items: list[ItemSeen]


class TransformSeen(Observation):
    returned: list[str | int] | None  # what dataset[1] returned first, when a tuple of strings and ints
    returned_type: str
    calls: int
    given: ImageSeen | None
    label: int | None
    plain_label: int | None  # dataset[1]'s label without a transform


class OpenedSeen(Observation):
    opened: int


class StatsSeen(Observation):
    type_name: str
    mean: TensorSeen | None = None
    std: TensorSeen | None = None


class BatchSeen(StrictModel):
    type_name: str
    images: list[ImageSeen] = []
    labels: TensorSeen | None = None


class LoaderSeen(Observation):
    type_name: str
    is_loader: bool
    batches: list[BatchSeen] = []
    items: list[ItemSeen] = []


class ShuffleSeen(Observation):
    shuffled: list[int] | None
    in_order: list[int] | None


class WorkersSeen(Observation):
    default: int | None
    given: int | None
    type_name: str


class RaisedSeen(Observation):
    raised: str  # the exception's type name, "" when nothing was raised
    expected: bool = False  # an instance of the exception the handout names
    message: str = ""


def _type_of(value: object) -> str:
    kind = type(value)
    for base, name in ((torch.Tensor, "torch.Tensor"), (np.ndarray, "numpy.ndarray"), (Image.Image, "PIL image")):
        if issubclass(kind, base) and kind is not base and kind not in PIL_IMAGES:
            return f"{kind.__name__} (a subclass of {name})"
    return kind.__name__


def _image(value: object) -> ImageSeen:
    if type(value) in PIL_IMAGES:
        rgb = np.asarray(Image.Image.convert(value, "RGB"), dtype=np.float64)
        return ImageSeen(kind="pil", type_name="PIL image", mode=value.mode, shape=[value.height, value.width],
                         blocks=_blocks(rgb) if rgb.shape == (32, 32, 3) else [])
    if type(value) is not torch.Tensor:
        return ImageSeen(kind="other", type_name=_type_of(value))
    seen = ImageSeen(kind="tensor", type_name="Tensor", mode=str(value.dtype).removeprefix("torch."),
                     shape=list(value.shape))
    if seen.shape != [3, 32, 32] or not value.is_floating_point():
        return seen
    pixels = value.detach().cpu().to(torch.float64)
    return seen.model_copy(update={"low": pixels.min().item(), "high": pixels.max().item(),
                                   "blocks": _blocks(pixels.mul(255).permute(1, 2, 0).numpy())})


def _tensor(value: object) -> TensorSeen:
    if type(value) is not torch.Tensor:
        return TensorSeen(type_name=_type_of(value))
    values = value.detach().cpu().to(torch.float64).flatten().tolist() if value.numel() <= 64 else []
    return TensorSeen(type_name="Tensor", dtype=str(value.dtype).removeprefix("torch."), shape=list(value.shape),
                      values=[v if v == v and abs(v) != float("inf") else None for v in values])


def _pair(value: object) -> tuple[object, object] | None:
    return tuple(value) if type(value) in (tuple, list) and len(value) == 2 else None


def _item(dataset: object, index: int) -> ItemSeen:
    item = dataset[index]
    if (pair := _pair(item)) is None:
        return ItemSeen(type_name=_type_of(item))
    image, label = pair
    return ItemSeen(type_name=type(item).__name__, image=_image(image), label_type=_type_of(label),
                    label=label if type(label) is int else None)


def _items(dataset: object) -> list[ItemSeen]:
    return [_item(dataset, i) for i in range(len(dataset))]


def _raised(call: Callable[[], object], expected: type[Exception]) -> RaisedSeen:
    try:
        call()
    except NotImplementedError:
        raise  # the handout's stub: its own message says what to write
    except Exception as exc:  # noqa: BLE001 - whatever it raised is what the verdict judges
        return RaisedSeen(raised=type(exc).__name__, expected=issubclass(type(exc), expected),
                          message=BaseException.__str__(exc)[:500])
    return RaisedSeen(raised="")


# ---- verdict helpers --------------------------------------------------------------------------------------------

def _pairs(items: list[ItemSeen]) -> list[ItemSeen]:
    for item in items:
        assert item.image is not None, f"dataset[i] must return an (image, label) pair, not a {item.type_name}."
    return items


def _identities(items: list[ItemSeen], seed: int) -> list[str]:
    """The tree file each item's image shows; every item must show one."""
    paths = []
    for index, item in enumerate(_pairs(items)):
        assert item.image.kind != "other", (
            f"dataset[{index}] returned a {item.image.type_name} as its image, not a PIL image.")
        path = _identify(item.image.blocks, seed)
        assert path is not None, (
            f"The image of dataset[{index}] matches none of the image files: decode each file with PIL and "
            "convert it to RGB, without changing its pixels.")
        paths.append(path)
    return paths


def _listed(paths: list[str]) -> str:
    return ", ".join(path.split("/", 1)[1] for path in paths)


def _check_labels(items: list[ItemSeen], label_map: dict[str, int], seed: int) -> None:
    for path, item in zip(_identities(items, seed), items, strict=True):
        name = path.split("/")[1]
        if item.label != label_map.get(name):
            hint = (" (its folder's position among the class folders, as ImageFolder counts)"
                    if item.label == _folder_position(path, seed) else "")
            label = item.label if item.label is not None else f"of type {item.label_type}"
            raise AssertionError(f"An image of {name}/ has label {label}{hint}, but label_map gives {name} "
                                 f"{label_map.get(name)}: take every label from label_map[class].")


# ---- length -----------------------------------------------------------------------------------------------------

@pytest.mark.group("length")
@pytest.mark.real_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_split_has_every_cifar2_image(submission, data_root, split, observe):
    observe(CountSeen(split=split, count=len(submission.CifarImageFolder(data_root, split))))


@verdict(test_real_split_has_every_cifar2_image)
def _real_split_count(seen: CountSeen, assignment: Assignment) -> None:
    assert seen.split in ("train", "test"), "The check's record names no split of the data."
    expected = len(image_files(resolve_data_root(), seen.split, _declared_data(assignment).classes))
    assert seen.count == expected, (
        f"CifarImageFolder(root, {seen.split!r}) has {seen.count} items, but {seen.split}/airplane/ and "
        f"{seen.split}/bird/ hold {expected} images.")


@pytest.mark.group("length")
def test_counts_only_images_of_mapped_classes(submission, tree, observe):
    observe(CountSeen(split="train", count=len(submission.CifarImageFolder(tree, "train"))))


@verdict(test_counts_only_images_of_mapped_classes)
def _synthetic_count(seen: CountSeen, assignment: Assignment) -> None:
    expected = len(_files(assignment.seed, "train", CIFAR2))
    stray = sum(1 for path in NOT_IMAGES if path.split("/")[1] in CIFAR2)
    every_folder = len(_files(assignment.seed, "train", LAYOUT["train"]))
    hint = {expected + stray: ": list only the .png, .jpg and .jpeg files (not notes.txt or .DS_Store)",
            every_folder: ": list only the folders of the classes in label_map"}.get(seen.count, "")
    assert seen.count == expected, (
        f"CifarImageFolder(root, 'train') has {seen.count} items, but airplane/ and bird/ hold {expected} "
        f".png/.jpg/.jpeg files{hint}.")


# ---- items ------------------------------------------------------------------------------------------------------

@pytest.mark.group("items")
def test_items_are_rgb_pil_images_with_int_labels(submission, tree, observe):
    observe(ItemsSeen(items=_items(submission.CifarImageFolder(tree, "train"))))


@verdict(test_items_are_rgb_pil_images_with_int_labels)
def _rgb_pil_int(seen: ItemsSeen, assignment: Assignment) -> None:
    for item in _pairs(seen.items):
        assert item.image.kind == "pil", (
            f"Without a transform an item's image must be a PIL image, not a {item.image.type_name}.")
        file = _identify(item.image.blocks, assignment.seed) or "an image"
        assert item.image.mode == "RGB", (
            f"The image of {file} has mode {item.image.mode!r}: convert every image to RGB (some files are "
            "grayscale).")
        assert item.image.shape == [32, 32], f"The image of {file} is {item.image.shape}, not 32x32."
        assert item.label is not None, f"Labels must be Python ints, not {item.label_type}."


@pytest.mark.group("items")
def test_each_image_file_appears_once(submission, tree, observe):
    observe(ItemsSeen(items=_items(submission.CifarImageFolder(tree, "test"))))


@verdict(test_each_image_file_appears_once)
def _each_file_once(seen: ItemsSeen, assignment: Assignment) -> None:
    shown = sorted(_identities(seen.items, assignment.seed))
    expected = _files(assignment.seed, "test", CIFAR2)
    assert shown == expected, (
        f"The items of the test split show {_listed(shown)}, but every image file must appear exactly once: "
        f"{_listed(expected)}.")


@pytest.mark.group("items")
def test_files_are_in_sorted_order(submission, tree, observe):
    observe(ItemsSeen(items=_items(submission.CifarImageFolder(tree, "train", label_map={"cat": 0}))))


@verdict(test_files_are_in_sorted_order)
def _sorted_order(seen: ItemsSeen, assignment: Assignment) -> None:
    shown = [path.rsplit("/", 1)[1] for path in _identities(seen.items, assignment.seed)]
    assert shown == sorted(LAYOUT["train"]["cat"]), (
        f"The files of cat/ came in the order {', '.join(shown)}: list each class folder's files in sorted order.")


# ---- labels -----------------------------------------------------------------------------------------------------

@pytest.mark.group("labels")
def test_default_labels_are_cifar2(submission, tree, observe):
    default = submission.CIFAR2_LABELS
    plain = type(default) is dict and all(type(k) is str and type(v) is int for k, v in dict.items(default))
    observe(LabelsSeen(default_map=dict(dict.items(default)) if plain else None, default_map_type=_type_of(default),
                       items=_items(submission.CifarImageFolder(tree, "train"))))


@verdict(test_default_labels_are_cifar2)
def _default_labels(seen: LabelsSeen, assignment: Assignment) -> None:
    assert seen.default_map == CIFAR2, f"CIFAR2_LABELS must stay the dict {CIFAR2}."
    _check_labels(seen.items, CIFAR2, assignment.seed)


@pytest.mark.group("labels")
def test_custom_label_map(submission, tree, observe):
    observe(ItemsSeen(items=_items(submission.CifarImageFolder(tree, "train", label_map=dict(CUSTOM_MAP)))))


@verdict(test_custom_label_map)
def _custom_labels(seen: ItemsSeen, assignment: Assignment) -> None:
    _check_labels(seen.items, CUSTOM_MAP, assignment.seed)
    shown = sorted(_identities(seen.items, assignment.seed))
    expected = _files(assignment.seed, "train", CUSTOM_MAP)
    assert shown == expected, f"With label_map {CUSTOM_MAP} the items must be the images of ship/, cat/ and bird/."


# ---- transform --------------------------------------------------------------------------------------------------

@pytest.mark.group("transform")
def test_transform_result_is_returned(submission, tree, observe):
    given = []

    def transform(image: object) -> tuple[str, int]:
        given.append(image)
        return ("transformed", len(given))

    item = _pair(submission.CifarImageFolder(tree, "train", transform=transform)[1]) or (None, None)
    returned, label = item
    plain = type(returned) is tuple and all(type(v) in (str, int) for v in returned)
    plain_label = _item(submission.CifarImageFolder(tree, "train"), 1).label
    observe(TransformSeen(returned=list(returned) if plain else None, returned_type=_type_of(returned),
                          calls=len(given), given=_image(given[0]) if given else None,
                          label=label if type(label) is int else None, plain_label=plain_label))


@verdict(test_transform_result_is_returned)
def _transform_returned(seen: TransformSeen, assignment: Assignment) -> None:
    assert seen.returned == ["transformed", 1] and seen.calls == 1, (
        "__getitem__ must return transform(image) as the item's image, calling the transform once per item.")
    assert seen.given is not None and seen.given.kind == "pil" and seen.given.mode == "RGB", (
        "The transform must get the PIL image, converted to RGB.")
    assert seen.label == seen.plain_label, "A transform must change only the image, not the label."


@pytest.mark.group("transform")
def test_to_tensor_transform(submission, tree, observe):
    observe(ItemsSeen(items=_items(submission.CifarImageFolder(tree, "test", transform=transforms.ToTensor()))))


@verdict(test_to_tensor_transform)
def _to_tensor(seen: ItemsSeen, assignment: Assignment) -> None:
    for item in _pairs(seen.items):
        image = item.image
        assert image.kind == "tensor" and image.shape == [3, 32, 32] and image.mode == "float32", (
            "With transforms.ToTensor() an item's image must be a float32 tensor of shape (3, 32, 32), not a "
            f"{image.type_name} {image.mode} of shape {tuple(image.shape)}.")
        assert image.low is not None and image.high is not None and image.low >= 0 and image.high <= 1, (
            "With transforms.ToTensor() the pixels must be in [0, 1].")
    _identities(seen.items, assignment.seed)


# ---- lazy -------------------------------------------------------------------------------------------------------

@pytest.mark.group("lazy")
def test_init_opens_no_image(submission, tree, monkeypatch, observe):
    opened = []
    real_open = Image.open

    def counting_open(*args: object, **kwargs: object) -> Image.Image:
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    submission.CifarImageFolder(tree, "train")
    observe(OpenedSeen(opened=len(opened)))


@verdict(test_init_opens_no_image)
def _opens_no_image(seen: OpenedSeen, assignment: Assignment) -> None:
    assert seen.opened == 0, f"__init__ opened {seen.opened} images; open each one in __getitem__ instead."


@pytest.mark.group("lazy")
def test_init_reads_no_image_content(submission, undecodable_tree, observe):
    observe(CountSeen(split="train", count=len(submission.CifarImageFolder(undecodable_tree, "train"))))


@verdict(test_init_reads_no_image_content)
def _reads_no_content(seen: CountSeen, assignment: Assignment) -> None:
    expected = 2 * len(CIFAR2_CLASSES)
    assert seen.count == expected, (
        f"Over {expected} image files that cannot be decoded the dataset has {seen.count} items: __init__ must "
        "list the files without decoding them.")


# ---- stats ------------------------------------------------------------------------------------------------------

def _stats_seen(stats: object) -> StatsSeen:
    if (pair := _pair(stats)) is None:
        return StatsSeen(type_name=_type_of(stats))
    return StatsSeen(type_name=type(stats).__name__, mean=_tensor(pair[0]), std=_tensor(pair[1]))


def _check_stats(seen: StatsSeen, expected: dict[str, np.ndarray], wrong: dict[str, np.ndarray],
                 atol: float) -> None:
    """Mean and std within `atol` of `expected`; `wrong` names known mistakes by the std they give."""
    assert seen.mean is not None and seen.std is not None, (
        f"channel_stats must return a (mean, std) pair of tensors, not a {seen.type_name}.")
    for name, value in (("mean", seen.mean), ("std", seen.std)):
        assert value.type_name == "Tensor", (
            f"channel_stats returned the {name} as a {value.type_name}, not a torch.Tensor.")
        assert value.shape == [3], (
            f"The {name} has shape {tuple(value.shape)}, but it must have shape (3,): one value per color channel.")
        assert value.dtype.startswith(("float", "bfloat")), f"The {name} must be a float tensor, not {value.dtype}."
        got = np.array([np.nan if v is None else v for v in value.values])
        if not np.allclose(got, expected[name], atol=atol, rtol=0):
            mistake = next((f" ({what})" for what, std in wrong.items()
                            if name == "std" and np.allclose(got, std, atol=atol, rtol=0)), "")
            raise AssertionError(
                f"The {name} is {np.round(got, 4).tolist()}{mistake}, but the {name} of every pixel of every "
                f"image, scaled to [0, 1], is {np.round(expected[name], 4).tolist()}.")


@pytest.mark.group("stats")
def test_stats_of_synthetic_images(submission, tree, observe):
    observe(_stats_seen(submission.channel_stats(submission.CifarImageFolder(tree, "test"))))


@verdict(test_stats_of_synthetic_images)
def _synthetic_stats(seen: StatsSeen, assignment: Assignment) -> None:
    images = np.stack([_pixels(assignment.seed)[path] for path in _files(assignment.seed, "test", CIFAR2)]) / 255
    pixels = images.reshape(-1, 3)
    wrong = {"the sample std, with Bessel's correction: use the population std": pixels.std(axis=0, ddof=1),
             "the average of per-image stds": images.std(axis=(1, 2)).mean(axis=0),
             "pixels not scaled to [0, 1]": 255 * pixels.std(axis=0)}
    _check_stats(seen, {"mean": pixels.mean(axis=0), "std": pixels.std(axis=0)}, wrong, STATS_ATOL)


@pytest.mark.group("stats")
@pytest.mark.real_data
def test_stats_of_real_training_images(submission, data_root, observe):
    observe(_stats_seen(submission.channel_stats(submission.CifarImageFolder(data_root, "train"))))


@verdict(test_stats_of_real_training_images)
def _real_stats(seen: StatsSeen, assignment: Assignment) -> None:
    mean, std = load_split(resolve_data_root(), "train", _declared_data(assignment)).channel_stats()
    _check_stats(seen, {"mean": np.array(mean), "std": np.array(std)}, {}, REAL_STATS_ATOL)


# ---- loader -----------------------------------------------------------------------------------------------------

def _batch(batch: object) -> BatchSeen:
    if (pair := _pair(batch)) is None:
        return BatchSeen(type_name=_type_of(batch))
    images, labels = pair
    seen = [_image(images[i]) for i in range(len(images))] if type(images) is torch.Tensor and images.dim() == 4 \
        else [_image(images)]
    return BatchSeen(type_name=type(batch).__name__, images=seen, labels=_tensor(labels))


@pytest.mark.group("loader")
def test_loader_batches_in_order(submission, tree, observe):
    dataset = submission.CifarImageFolder(tree, "train", label_map=dict(LOADER_MAP), transform=transforms.ToTensor())
    loader = submission.make_loader(dataset, batch_size=2, shuffle=False)
    is_loader = issubclass(type(loader), DataLoader)
    observe(LoaderSeen(type_name=_type_of(loader), is_loader=is_loader,
                       batches=[_batch(batch) for batch in loader] if is_loader else [], items=_items(dataset)))


@verdict(test_loader_batches_in_order)
def _batches_in_order(seen: LoaderSeen, assignment: Assignment) -> None:
    assert seen.is_loader, f"make_loader must return a DataLoader, not a {seen.type_name}."
    sizes = [len(batch.images) for batch in seen.batches]
    assert sizes == LOADER_BATCHES, (
        f"{len(seen.items)} images in batches of 2 make batches of {LOADER_BATCHES}, not {sizes}.")
    for batch in seen.batches:
        assert batch.labels is not None and batch.labels.dtype == "int64" and all(
            image.kind == "tensor" for image in batch.images), (
            "A batch must stack the images into one tensor and the labels into an int64 tensor.")
    shown = [_identify(image.blocks, assignment.seed) for batch in seen.batches for image in batch.images]
    labels = [label for batch in seen.batches for label in batch.labels.values]
    expected = [_identify(item.image.blocks, assignment.seed) for item in _pairs(seen.items)]
    assert shown == expected and labels == [item.label for item in seen.items], (
        "With shuffle=False the loader must give the dataset's items in their order.")


@pytest.mark.group("loader")
def test_loader_shuffles(submission, assignment, observe):
    dataset = TensorDataset(torch.arange(64))

    def epoch(shuffle: bool) -> list[int] | None:
        tensors = [batch[0] if type(batch) in (tuple, list) and len(batch) == 1 else None
                   for batch in submission.make_loader(dataset, batch_size=8, shuffle=shuffle)]
        if not all(type(t) is torch.Tensor and t.dim() == 1 and not t.is_floating_point() for t in tensors):
            return None
        return torch.cat(tensors).tolist()

    torch.manual_seed(assignment.seed)
    observe(ShuffleSeen(shuffled=epoch(True), in_order=epoch(False)))


@verdict(test_loader_shuffles)
def _shuffles(seen: ShuffleSeen, assignment: Assignment) -> None:
    every = list(range(64))
    assert seen.in_order is not None and seen.shuffled is not None, (
        "Over a TensorDataset the loader must give batches of integer tensors, as a DataLoader does.")
    assert seen.in_order == every, "With shuffle=False the loader must keep the dataset's order."
    assert sorted(seen.shuffled) == every, "A shuffled epoch must show every item exactly once."
    assert seen.shuffled != every, "With shuffle=True the loader gave the items in order: pass shuffle on."


@pytest.mark.group("loader")
def test_loader_num_workers(submission, observe):
    dataset = TensorDataset(torch.arange(4))
    default, given = submission.make_loader(dataset, 2, False), submission.make_loader(dataset, 2, False, num_workers=2)
    loaders = issubclass(type(default), DataLoader) and issubclass(type(given), DataLoader)
    workers = [loader.num_workers if loaders else None for loader in (default, given)]
    observe(WorkersSeen(default=workers[0] if type(workers[0]) is int else None,
                        given=workers[1] if type(workers[1]) is int else None, type_name=_type_of(given)))


@verdict(test_loader_num_workers)
def _num_workers(seen: WorkersSeen, assignment: Assignment) -> None:
    assert seen.default is not None and seen.given is not None, (
        f"make_loader must return a DataLoader, not a {seen.type_name}.")
    assert seen.default == 0, f"num_workers must default to 0, not {seen.default}."
    assert seen.given == 2, f"make_loader(..., num_workers=2) gave a loader with {seen.given} workers: pass it on."


# ---- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.group("errors")
def test_missing_split_raises_file_not_found(submission, tree, observe):
    observe(_raised(lambda: submission.CifarImageFolder(tree, "valid"), FileNotFoundError))


def _expected_error(seen: RaisedSeen, call: str, error: str, why: str) -> None:
    assert seen.expected, f"{call} raised {seen.raised or 'nothing'}, but {why} must raise {error}."


@verdict(test_missing_split_raises_file_not_found)
def _missing_split(seen: RaisedSeen, assignment: Assignment) -> None:
    _expected_error(seen, "CifarImageFolder(root, 'valid')", "FileNotFoundError", "a missing split folder")


@pytest.mark.group("errors")
def test_missing_root_raises_file_not_found(submission, tmp_path, observe):
    observe(_raised(lambda: submission.CifarImageFolder(tmp_path / "nowhere", "train"), FileNotFoundError))


@verdict(test_missing_root_raises_file_not_found)
def _missing_root(seen: RaisedSeen, assignment: Assignment) -> None:
    _expected_error(seen, "CifarImageFolder('nowhere', 'train')", "FileNotFoundError", "a missing split folder")


@pytest.mark.group("errors")
def test_missing_class_raises_value_error(submission, tree, observe):
    observe(_raised(lambda: submission.CifarImageFolder(tree, "train", label_map={"airplane": 0, "unicorn": 1}),
                    ValueError))


@verdict(test_missing_class_raises_value_error)
def _missing_class(seen: RaisedSeen, assignment: Assignment) -> None:
    _expected_error(seen, "A label_map with a class 'unicorn' that has no folder", "ValueError", "a missing class")
    assert "unicorn" in seen.message, (
        f"The ValueError for a missing class folder must name the class ('unicorn'), but it says {seen.message!r}.")
