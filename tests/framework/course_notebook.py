"""The shape of a notebook students write in Jupyter or Colab, built around a reference solution's definitions.

Cell 1 is text; cell 2 installs, sets up plotting and imports; then the solution's own imports and constants
and one cell per definition; then data loading from a local folder, a 100-epoch training loop and a plot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

SETUP = """!pip install torchsummary
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from pathlib import Path
from torch.utils.data import TensorDataset"""

DATA = """DATA_DIR = Path("{data_dir}")
get_ipython().system('ls {data_dir}/train')
files = sorted((DATA_DIR / "train" / "airplane").glob("*.jpg")) + sorted((DATA_DIR / "train" / "bird").glob("*.jpg"))
images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
labels = torch.tensor([0 if f.parent.name == "airplane" else 1 for f in files])
x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
x = (x - mean[:, None, None]) / std[:, None, None]
loader = DataLoader(TensorDataset(x, labels), batch_size=BATCH_SIZE, shuffle=True)"""

TRAINING = """model = build_model()
optimizer = make_optimizer(model)
history = []
for epoch in range(100):
    history.append(train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, "cpu"))
    print(f"epoch {epoch}: loss {history[-1]:.3f}")"""

PLOT = """plt.plot(history)
plt.xlabel("epoch")
plt.show()"""

# What the note must say about the cells above (numbered from 1, text cells included).
LEFT_OUT = {
    "cell 2": "a shell command; an IPython magic; imports of matplotlib.pyplot, numpy, PIL, pathlib, torch.utils.data",
    "data": "assignments to DATA_DIR, files, images, labels, x, mean, std, loader; a shell command",
    "training": "assignments to model, optimizer; a training loop",
    "plot": "a plot",
}


def solution_cells(solution: Path) -> list[str]:
    """The solution as a student splits it: its imports and constants in one cell, then one cell per definition."""
    source = solution.read_text(encoding="utf-8")
    lines = source.splitlines()
    body = ast.parse(source).body
    first_def = next(i for i, node in enumerate(body) if isinstance(node, ast.FunctionDef | ast.ClassDef))
    head = "\n".join(lines[body[1].lineno - 1: body[first_def].lineno - 1]).strip()  # body[0]: the docstring
    return [head] + ["\n".join(lines[node.lineno - 1: node.end_lineno]) for node in body[first_def:]]


def course_notebook(solution: Path, data_dir: str = "/content/cifar10") -> nbformat.NotebookNode:
    """A notebook with the solution's definitions amid the top-level code a student runs in Jupyter."""
    code = [SETUP, *solution_cells(solution), DATA.format(data_dir=data_dir), TRAINING, PLOT]
    cells = [nbformat.v4.new_markdown_cell("# My classifier")] + [nbformat.v4.new_code_cell(c) for c in code]
    return nbformat.v4.new_notebook(cells=cells)


def cell_number(notebook: nbformat.NotebookNode, starts_with: str) -> int:
    """The 1-based number of the first cell whose source starts with `starts_with`."""
    return next(i for i, cell in enumerate(notebook.cells, start=1) if cell.source.startswith(starts_with))
