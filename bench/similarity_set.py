"""A generated class for the similarity stage: disguised copies of real solutions among independent ones.

Originals are the a2/a3 reference solutions (without their solution markers), the example submissions and the
hand-written independent a2 solutions of `tests/framework/similarity_data/`. A copy is an original disguised
the way students disguise copies: identifiers renamed, functions reordered, comments and blank lines changed,
dead code added, or the same code moved into a notebook with extra cells. Every submission has a family
(its original's name); a pair of one family is copied, any other pair independent.
"""

from __future__ import annotations

import ast
import builtins
import random
import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import notebook
from grader.config import Assignment, load_assignment
from grader.paths import checks_root, examples_dir

INDEPENDENT_DIR = checks_root() / "framework" / "similarity_data" / "a2_independent"
SOLUTION_MARKER = re.compile(
    r"^[ ]*# (BEGIN|END) SOLUTION[^\n]*\n|  # SOLUTION$|^[ ]*\"\"\" # BEGIN PROMPT.*?\"\"\" # END PROMPT\n",
    re.MULTILINE | re.DOTALL)
WORDS = ["data", "batch", "value", "result", "item", "thing", "acc", "tmp", "stuff", "out", "res", "buf", "cnt",
         "num", "my", "var", "val", "elem", "obj", "node"]
COMMENTS = ["# loop over the data", "# TODO clean up", "# compute it", "# see lecture 5", "# helper", "# done",
            "# this part was tricky", "# works now", "# important!"]
DEAD_HELPERS = [
    "def _debug_stats(values):\n    total = 0\n    for v in values:\n        total += v\n"
    "    return total / len(values)\n",
    "def show_shapes(model, x):\n    for layer in model.children():\n        x = layer(x)\n        print(x.shape)\n",
    "def count_params(m):\n    return sum(p.numel() for p in m.parameters() if p.requires_grad)\n",
    "def seed_everything(s=42):\n    import random\n    random.seed(s)\n    return s\n",
    "class Timer:\n    def __init__(self):\n        self.start = None\n\n"
    "    def lap(self, now):\n        self.start = now\n",
]
DEAD_STATEMENTS = ["unused_{n} = {n}", "if False:\n    print('debug {n}')", "_ = [{n}, {n}]",
                   "debug_{n} = None\nif debug_{n}:\n    pass", "tmp_{n} = '{n}'.upper()", "assert {n} >= 0"]
DISGUISES = ("renamed", "reordered", "dead_code", "all", "notebook")


@dataclass(frozen=True)
class Member:
    """One submission of the generated class: its student id, family and what it is."""

    student_id: str
    family: str
    disguise: str  # "original" or one of DISGUISES


def originals(assignment: Assignment) -> dict[str, str]:
    """Each original's name and its code as the grader grades it (a notebook through the notebook rule)."""
    module_file = f"{assignment.submission.module}.py"
    found = {"reference": SOLUTION_MARKER.sub("", (assignment.solution_dir / module_file).read_text())}
    sources = sorted((examples_dir() / assignment.id).iterdir())
    if assignment.id == "a2_ffn":
        sources += sorted(INDEPENDENT_DIR.iterdir())
    for path in sources:
        name = path.name.split("_")[0].split(".")[0]
        found[name] = _graded_text(assignment, path, module_file)
    return found


def _graded_text(assignment: Assignment, path: Path, module_file: str) -> str:
    if path.is_dir():
        return (path / module_file).read_text()
    if path.suffix == ".ipynb":
        return notebook.from_notebook_file(path, module_file, assignment.submission.api.keys()).text
    return path.read_text()


def disguise(code: str, how: str, required: set[str], seed: int) -> str:
    """The code disguised one way ("renamed", "reordered", "dead_code") or every way ("all")."""
    rng = random.Random(seed)
    tree = ast.parse(code)
    steps = {"renamed": [_rename], "reordered": [_reorder], "dead_code": [_add_dead_code],
             "all": [_rename, _reorder, _add_dead_code]}[how]
    for step in steps:
        step(tree, required, rng)
    return _recomment(ast.unparse(ast.fix_missing_locations(tree)), rng)


def as_notebook(code: str, rng: random.Random) -> nbformat.NotebookNode:
    """The code as a notebook: one cell per top-level statement group, with markdown, a training cell and a plot."""
    tree = ast.parse(code)
    cells = [new_markdown_cell("# Homework\nMy solution.")]
    cells += [new_code_cell("!pip install torchsummary\n%matplotlib inline\nimport matplotlib.pyplot as plt")]
    for node in tree.body:
        if rng.random() < 0.3:
            cells.append(new_markdown_cell(rng.choice(["## Next part", "Here I define it.", "### Notes"])))
        cells.append(new_code_cell(ast.get_source_segment(code, node) or ast.unparse(node)))
    cells.append(new_code_cell("losses = []\nfor epoch in range(3):\n    print('epoch', epoch)\n"
                               "    losses.append(epoch)"))
    cells.append(new_code_cell("plt.plot(losses)\nplt.title('training loss')\nplt.show()"))
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def write_class(assignment_id: str, folder: Path, copies_of: list[str] | None = None,
                rounds: int = 1) -> list[Member]:
    """Write the generated class into `folder` (one file per student, as handed in) and return its members.

    `copies_of` names the originals that get disguised copies (default: every original); `rounds` > 1 makes
    further families from the same originals with other seeds, for a larger class."""
    assignment = load_assignment(assignment_id)
    module_file = f"{assignment.submission.module}.py"
    required = set(assignment.submission.api)
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for round_ in range(rounds):
        for index, (name, code) in enumerate(originals(assignment).items()):
            family = name if round_ == 0 else f"{name}{round_}"
            seed = 1000 * round_ + index
            base = code if round_ == 0 else disguise(code, "all", required, seed)
            members.append(_write(folder, family, "original", base, module_file, seed))
            if copies_of is None or name in copies_of:
                members += [_write(folder, family, how, base, module_file, seed, required) for how in DISGUISES]
    return members


def _write(folder: Path, family: str, how: str, code: str, module_file: str, seed: int,
           required: set[str] | None = None) -> Member:
    student_id = family if how == "original" else f"{family}_{how}"
    rng = random.Random(seed)
    if how == "notebook":
        text = disguise(code, "renamed", required or set(), seed)
        nbformat.write(as_notebook(text, rng), folder / f"{student_id}.ipynb")
    else:
        target = folder / student_id
        target.mkdir(exist_ok=True)
        (target / module_file).write_text(code if how == "original" else disguise(code, how, required or set(), seed))
    return Member(student_id, family, how)


def copied_pairs(members: list[Member]) -> set[frozenset[str]]:
    """Pairs of submissions of one family."""
    return {frozenset((a.student_id, b.student_id)) for a, b in combinations(members, 2) if a.family == b.family}


def independent_pairs(members: list[Member]) -> set[frozenset[str]]:
    """Pairs of submissions of different families."""
    return {frozenset((a.student_id, b.student_id)) for a, b in combinations(members, 2) if a.family != b.family}


def _rename(tree: ast.Module, required: set[str], rng: random.Random) -> None:
    """Rename every name the module defines (locals, helpers, classes, constants) except the required ones."""
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    keep = required | imported | set(dir(builtins)) | {"self", "__name__"}
    defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined |= {a.arg for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name not in required
                for a in f.args.args}
    mapping = {name: f"{rng.choice(WORDS)}_{i}" for i, name in enumerate(sorted(defined - keep))}
    _Renamer(mapping).visit(tree)


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node


def _reorder(tree: ast.Module, required: set[str], rng: random.Random) -> None:
    """Shuffle the function definitions (classes stay where they are: a base class must come first)."""
    slots = [i for i, node in enumerate(tree.body) if isinstance(node, ast.FunctionDef)]
    functions = [tree.body[i] for i in slots]
    rng.shuffle(functions)
    for i, function in zip(slots, functions, strict=True):
        tree.body[i] = function


def _add_dead_code(tree: ast.Module, required: set[str], rng: random.Random) -> None:
    """An unused helper function, and an unused statement in each function, each picked by the seed."""
    helper = ast.parse(rng.choice(DEAD_HELPERS)).body[0]
    after_imports = max(i for i, node in enumerate(tree.body) if isinstance(node, ast.Import | ast.ImportFrom)) + 1
    tree.body.insert(rng.randrange(after_imports, len(tree.body) + 1), helper)
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n is not helper]:
        dead = ast.parse(rng.choice(DEAD_STATEMENTS).format(n=rng.randrange(100)))
        function.body[rng.randrange(len(function.body)):0] = dead.body


def _recomment(code: str, rng: random.Random) -> str:
    """ast.unparse dropped every comment and blank line: add other comments and blank lines."""
    lines = []
    for line in code.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() and rng.random() < 0.15:
            lines.append(indent + rng.choice(COMMENTS))
        lines.append(line)
        if rng.random() < 0.1:
            lines.append("")
    return "\n".join(lines) + "\n"

