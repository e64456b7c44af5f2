"""A student's notebook workflow, end to end: the a1 notebook handout runs in a real Jupyter kernel (nbclient and
ipykernel), its public-checks cell fails as handed out and passes once filled in with a student's own code, and the
executed notebook, outputs and own data cells included, grades full marks on the real data."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from grader.authoring import notebook_handout
from grader.config import load_assignment
from grader.pipeline import GradeOptions, grade

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

# A student's answer, by the name each handout cell defines: written differently from the reference (pathlib's
# glob per suffix, a float64 running sum for the statistics, keyword arguments to the loader).
ANSWER = {
    "class CifarImageFolder": '''class CifarImageFolder(Dataset):
    def __init__(self, root, split="train", label_map=CIFAR2_LABELS, transform=None):
        folder = Path(root) / split
        if not folder.is_dir():
            raise FileNotFoundError(f"There is no {split} folder in {root}.")
        self.transform = transform
        self.items = []
        for name, label in label_map.items():
            if not (folder / name).is_dir():
                raise ValueError(f"The class {name} has no folder in {folder}.")
            paths = sorted(p for suffix in IMAGE_SUFFIXES for p in (folder / name).glob(f"*{suffix}"))
            self.items.extend((path, int(label)) for path in paths)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        image = Image.open(path).convert("RGB")
        return (self.transform(image) if self.transform else image), label''',
    "def channel_stats": '''def channel_stats(dataset):
    total, squares, pixels = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for index in range(len(dataset)):
        image = torch.tensor(np.asarray(dataset[index][0]), dtype=torch.float64).reshape(-1, 3) / 255
        total, squares, pixels = total + image.sum(0), squares + (image ** 2).sum(0), pixels + len(image)
    mean = total / pixels
    return mean.float(), (squares / pixels - mean ** 2).sqrt().float()''',
    "def make_loader": '''def make_loader(dataset, batch_size, shuffle, num_workers=0):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)''',
}
# The student's own cells before the checks: an import the answer needs, and a look at the real data.
OWN_CELLS = ["import numpy as np", "train = CifarImageFolder(DATA_ROOT)\nprint(len(train), 'training images')"]


def executed(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """The notebook run top to bottom in a fresh python3 kernel, in `folder`, as Jupyter's "Run all" does."""
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def filled_in(handout: nbformat.NotebookNode, data_root: Path) -> nbformat.NotebookNode:
    """The handout with each definition's cell answered and the student's own cells above "Check your work"."""
    answered = copy.deepcopy(handout)
    for cell in answered.cells:
        for start, answer in ANSWER.items():
            if cell.cell_type == "code" and start in cell.source:
                cell.source = answer
    own = [f"DATA_ROOT = {str(data_root)!r}", *OWN_CELLS]
    answered.cells[-2:-2] = [nbformat.v4.new_code_cell(source) for source in own]
    return answered


def output_text(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs)


def test_a_filled_in_handout_notebook_runs_in_a_kernel_and_grades_full_marks(
        data_root: Path, tmp_path: Path, isolated_cache: Path) -> None:
    assignment = load_assignment("a1_dataset")
    folder = tmp_path / "a1_dataset"  # the assignment folder as the student downloads it, with the notebook
    shutil.copytree(assignment.folder, folder)
    handout = notebook_handout(assignment)
    assert "README.md" in handout.cells[-2].source and "check_accuracy" not in handout.cells[-2].source  # a1 has none

    with pytest.raises(CellExecutionError, match="A public check failed"):
        executed(copy.deepcopy(handout), folder)

    answer = executed(filled_in(handout, data_root), folder)
    assert "10000 training images" in output_text(answer.cells[-3])
    assert "9 passed" in output_text(answer.cells[-1])
    nbformat.write(answer, tmp_path / "dana.ipynb")

    report = grade(assignment, tmp_path / "dana.ipynb", tmp_path / "out",
                   GradeOptions(data_root=data_root, student_id="dana"))
    assert report.failures == [] and report.score.total == 100
    note = (tmp_path / "out" / "report.md").read_text()
    assert f"cell {len(answer.cells) - 2} (an assignment to train; a call to print)" in note
    assert f"cell {len(answer.cells)} (the handout's public checks)." in note
