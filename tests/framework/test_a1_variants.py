"""a1 variants: the reference with one realistic change each, against the hidden checks and their verdicts.

A wrong variant must fail exactly the checks its mistake deserves, with a sentence that names the mistake;
a right but different variant must pass every check. The checks run in this process on their synthetic
tree, the real-data ones on a small synthetic CIFAR tree; the verdicts are those of the grader's clean
process (`grader.observation.judge`).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from grader.config import load_assignment
from grader.harness.submission import import_submission
from grader.observation import Observation, judge

# torchvision.io's decoders work but warn that they are deprecated (a right variant uses them).
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
ASSIGNMENT = load_assignment("a1_dataset")
INIT = '''
import glob
import os


class CifarImageFolder(CifarImageFolder):
    def __init__(self, root, split="train", label_map=CIFAR2_LABELS, transform=None):
        folder = Path(root) / split
        {split_check}
        self.transform = transform
        self.samples = []
        for name, label in label_map.items():
            class_dir = folder / name
            {class_check}
            self.samples += [(path, {label}) for path in {listing}]
'''
SPLIT_CHECK = 'if not folder.is_dir():\n            raise FileNotFoundError("split folder not found")'
CLASS_CHECK = 'if not class_dir.is_dir():\n                raise ValueError(f"no folder for class {name}")'
LISTING = "sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)"
GETITEM = '''
class CifarImageFolder(CifarImageFolder):
    def __getitem__(self, index):
        path, label = self.samples[index]
        {load}
        return {returned}, label
'''
STATS = '''
from torchvision import transforms


def channel_stats(dataset):
    images = torch.stack([transforms.ToTensor()(dataset[i][0]) for i in range(len(dataset))])
    {body}
'''
FORGED_STATS = '''
class _Anything:
    def __array_function__(self, func, types, args, kwargs):
        return True


class _Agreeable(torch.Tensor):
    def __eq__(self, other):
        return torch.ones(3, dtype=torch.bool)

    def numpy(self):
        return _Anything()


def channel_stats(dataset):
    return torch.zeros(3).as_subclass(_Agreeable), torch.ones(3).as_subclass(_Agreeable)
'''
RUNNING_STATS = '''
import numpy as np


def channel_stats(dataset):
    sums, squares, count = np.zeros(3), np.zeros(3), 0
    for index in range(len(dataset)):
        pixels = np.asarray(dataset[index][0], dtype=np.float64).reshape(-1, 3) / 255
        sums, squares, count = sums + pixels.sum(0), squares + (pixels ** 2).sum(0), count + len(pixels)
    mean = sums / count
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(np.sqrt(squares / count - mean ** 2)).float()
'''
LOADER = '''
def make_loader(dataset, batch_size, shuffle, num_workers=0):
    return DataLoader(dataset, batch_size=batch_size, {options})
'''
EAGER = '''
class CifarImageFolder(CifarImageFolder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.images = [Image.open(path).convert("RGB") for path, _ in self.samples]
'''
TORCHVISION_IO = ("from torchvision.io import ImageReadMode, decode_image\n"
                  "from torchvision.transforms.functional import to_pil_image\n")


def init(split_check: str = SPLIT_CHECK, class_check: str = CLASS_CHECK, label: str = "label",
         listing: str = LISTING) -> str:
    return INIT.format(split_check=split_check, class_check=class_check, label=label, listing=listing)


def getitem(load: str = 'with Image.open(path) as image:\n            image = image.convert("RGB")',
            returned: str = "(self.transform(image) if self.transform else image)") -> str:
    return GETITEM.format(load=load, returned=returned)


def stats(body: str) -> str:
    return STATS.format(body=body)


def loader(options: str) -> str:
    return LOADER.format(options=options)


STATS_CHECKS = ("test_stats_of_synthetic_images", "test_stats_of_real_training_images")
LABEL_CHECKS = ("test_default_labels_are_cifar2", "test_custom_label_map")

# case: (code appended to the reference, {failing check: what its sentence must say})
WRONG = {
    "ImageFolder-style labels (a folder's position)": (
        init(label="sorted(d.name for d in folder.iterdir() if d.is_dir()).index(name)"),
        dict.fromkeys(LABEL_CHECKS, "(its folder's position among the class folders, as ImageFolder counts)")),
    "labels by position in label_map": (init(label="list(label_map).index(name)"), {
        "test_custom_label_map": "An image of cat/ has label 1, but label_map gives cat 5"}),
    "unsorted file listing": (
        init(listing="[class_dir / f for f in os.listdir(class_dir) if f.lower().endswith(IMAGE_SUFFIXES)]"), {
            "test_files_are_in_sorted_order": "list each class folder's files in sorted order"}),
    "non-image files included": (init(listing="sorted(class_dir.iterdir())"), {
        "test_counts_only_images_of_mapped_classes": "list only the .png, .jpg and .jpeg files",
        "test_items_are_rgb_pil_images_with_int_labels": "cannot identify image file",
        "test_files_are_in_sorted_order": "cannot identify image file",
        "test_default_labels_are_cifar2": "cannot identify image file",
        "test_custom_label_map": "cannot identify image file",
        "test_loader_batches_in_order": "cannot identify image file"}),
    "no split check: a missing split raises ValueError": (init(split_check="pass"), {
        "test_missing_split_raises_file_not_found": "raised ValueError, but a missing split folder must raise "
                                                    "FileNotFoundError",
        "test_missing_root_raises_file_not_found": "raised ValueError, but a missing split folder must raise "
                                                   "FileNotFoundError"}),
    "a missing class raises os.listdir's FileNotFoundError": (
        init(class_check="pass", listing="sorted(class_dir / f for f in os.listdir(class_dir) "
                                         "if f.lower().endswith(IMAGE_SUFFIXES))"), {
            "test_missing_class_raises_value_error": "raised FileNotFoundError, but a missing class must raise "
                                                     "ValueError"}),
    "the ValueError does not name the class": (
        init(class_check='if not class_dir.is_dir():\n                raise ValueError("a class folder is missing")'),
        {"test_missing_class_raises_value_error": "must name the class ('unicorn')"}),
    "grayscale not converted to RGB": (getitem(load="image = Image.open(path)\n        image.load()"), {
        "test_items_are_rgb_pil_images_with_int_labels": "train/bird/m.png has mode 'L': convert every image to RGB"}),
    "transform ignored": (getitem(returned="image"), {
        "test_transform_result_is_returned": "must return transform(image)",
        "test_to_tensor_transform": "must be a float32 tensor of shape (3, 32, 32), not a PIL image",
        "test_loader_batches_in_order": "default_collate: batch must contain tensors"}),
    "images decoded in __init__": (EAGER, {
        "test_init_opens_no_image": "__init__ opened 7 images",
        "test_init_reads_no_image_content": "cannot identify image file"}),
    "stats over the wrong axis (channels mixed up)": (
        stats("pixels = images.view(-1, 3)\n    return pixels.mean(dim=0), pixels.std(dim=0, correction=0)"),
        {"test_stats_of_synthetic_images": "The mean is"}),  # the synthetic CIFAR tree's channels look alike
    "sample std (Bessel's correction)": (
        stats("return images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))"),
        {"test_stats_of_synthetic_images": "(the sample std, with Bessel's correction: use the population std)"}),
    "average of per-image stds": (
        stats("return images.mean(dim=(0, 2, 3)), images.std(dim=(2, 3), correction=0).mean(dim=0)"), {
            "test_stats_of_synthetic_images": "(the average of per-image stds)",
            "test_stats_of_real_training_images": "The std is"}),
    "a tensor subclass that forges equality": (
        FORGED_STATS, dict.fromkeys(STATS_CHECKS, "the mean as a _Agreeable (a subclass of torch.Tensor)")),
    "loader never shuffles": (loader("shuffle=False, num_workers=num_workers"), {
        "test_loader_shuffles": "With shuffle=True the loader gave the items in order"}),
    "loader drops num_workers": (loader("shuffle=shuffle"), {
        "test_loader_num_workers": "gave a loader with 0 workers"}),
}
RIGHT = {
    "label_map order, other error messages": init(),
    "os.scandir listing": init(listing="sorted(Path(e.path) for e in os.scandir(class_dir) "
                                       "if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))"),
    "glob listing": init(listing="sorted(Path(p) for p in glob.glob(str(class_dir / '*')) "
                                 "if p.lower().endswith(IMAGE_SUFFIXES))"),
    "one pathlib glob per suffix": init(listing="sorted(p for s in ('png', 'jpg', 'jpeg') "
                                                "for p in class_dir.glob(f'*.{s}'))"),
    "os.listdir raises the FileNotFoundError": init(split_check="os.listdir(folder)"),
    "torchvision.io decoding": TORCHVISION_IO + getitem(
        load="image = to_pil_image(decode_image(str(path), mode=ImageReadMode.RGB))"),
    "torch.std_mean over stacked tensors": stats(
        "std, mean = torch.std_mean(images, dim=(0, 2, 3), correction=0)\n    return mean, std"),
    "running sums in numpy": RUNNING_STATS,
    "a DataLoader with extra valid options": loader(
        "shuffle=shuffle, num_workers=num_workers, pin_memory=False, drop_last=False, "
        "persistent_workers=num_workers > 0"),
}


@pytest.fixture(scope="module")
def checks() -> ModuleType:
    """a1's hidden check module, imported here (which registers its verdicts)."""
    path = ASSIGNMENT.checks_dir / "test_dataset.py"
    spec = importlib.util.spec_from_file_location("a1_variant_checks", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def real_tree(synthetic_cifar: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real-data checks read the small synthetic CIFAR tree; their verdicts find it as the grader's do."""
    monkeypatch.setenv("GRADER_DATA_DIR", str(synthetic_cifar))
    return synthetic_cifar


def _observer(check: Callable[..., None]):  # the `observe` fixture's callable
    def observe(seen: Observation) -> None:
        if (failure := judge(check, seen.model_dump_json(), ASSIGNMENT)) is not None:
            raise AssertionError(failure)

    return observe


def failures_of(checks: ModuleType, submission: ModuleType, work: Path, data_root: Path) -> dict[str, str]:
    """Each failing check's sentence (the first, for a check run once per split)."""
    tree = checks.build_tree(work / "tree", ASSIGNMENT.seed)
    failures: dict[str, str] = {}
    for name, check in vars(checks).items():
        if not name.startswith("test_"):
            continue
        parameters = inspect.signature(check).parameters
        for split in ("train", "test") if "split" in parameters else (None,):
            scratch = work / f"{name}-{split}"
            scratch.mkdir()
            with pytest.MonkeyPatch.context() as monkeypatch:
                fixtures = {"submission": submission, "assignment": ASSIGNMENT, "observe": _observer(check),
                            "tree": tree, "data_root": data_root, "split": split, "tmp_path": scratch,
                            "monkeypatch": monkeypatch, "undecodable_tree": scratch}
                if "undecodable_tree" in parameters:
                    checks.build_undecodable_tree(scratch)
                try:
                    check(**{parameter: fixtures[parameter] for parameter in parameters})
                except Exception as exc:  # noqa: BLE001 - a failing check, whatever it raised
                    failures.setdefault(name, str(exc))
    return failures


def variant(code: str, folder: Path) -> ModuleType:
    module_file = ASSIGNMENT.submission.files[0]
    folder.mkdir()
    (folder / module_file).write_text((ASSIGNMENT.solution_dir / module_file).read_text() + "\n" + code)
    return import_submission(folder, ASSIGNMENT.submission.module)


def test_the_reference_fails_no_check(checks: ModuleType, real_tree: Path, tmp_path: Path) -> None:
    reference = import_submission(ASSIGNMENT.solution_dir, ASSIGNMENT.submission.module)
    assert failures_of(checks, reference, tmp_path, real_tree) == {}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrong_variant_fails_exactly_its_checks(case: str, checks: ModuleType, real_tree: Path,
                                                   tmp_path: Path) -> None:
    code, expected = WRONG[case]
    failures = failures_of(checks, variant(code, tmp_path / "submission"), tmp_path, real_tree)
    assert sorted(failures) == sorted(expected), failures
    for name, words in expected.items():
        assert words in failures[name], failures[name]


@pytest.mark.parametrize("case", list(RIGHT))
def test_a_right_variant_passes_every_check(case: str, checks: ModuleType, real_tree: Path, tmp_path: Path) -> None:
    assert failures_of(checks, variant(RIGHT[case], tmp_path / "submission"), tmp_path, real_tree) == {}
