"""Notebooks as students write them: a notebook, or a .py exported from one, becomes the module grading imports.

The rule, decided statement by statement with `ast` and `symtable`: the module keeps the notebook's function
and class definitions, its constants, and the imports and assignments that the definitions and the
assignment's required names use; every other top-level statement (data loading, training loops, plots,
printing, `!` and `%` lines) is left out, and a note lists what was left out, by cell. IPython syntax is first
turned into `get_ipython()` calls by IPython's own transformer, so `!`/`%` lines and exported magics look alike.
"""

from __future__ import annotations

import ast
import copy
import difflib
import io
import keyword
import re
import symtable
import tokenize
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

NBCONVERT_MARKER = "# In["  # nbconvert's python exporter: `# In[7]:` before each code cell
PERCENT_MARKER = "# %%"  # the percent format of Jupytext, VS Code and Spyder
PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")  # cell magics whose body is Python the student wrote
PLOT_MODULES = ("matplotlib", "seaborn", "plotly")
IMPORTS = (ast.Import, ast.ImportFrom)
BINDING_STATEMENTS = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.If, ast.Try)
# A left-out statement that names something is listed as (kind, name); kinds of the same cell merge.
NAMED_KINDS = {
    "assignment": ("an assignment to {}", "assignments to {}"),
    "call": ("a call to {}", "calls to {}"),
    "import": ("an import of {} (only left-out code uses it)", "imports of {} (only left-out code uses them)"),
}
# A definition or an assignment at the start of a top-level line, seen without parsing (its cell does not parse).
TOP_LEVEL_DEFINITION = re.compile(r"^(?:(?:async\s+def|def|class)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=))")
# The first line of a notebook handout's last cell (grader/authoring.py), which the note names as what it is.
PUBLIC_CHECKS_CELL = "# The public checks of tests/ (next to this notebook), run on the definitions above."
COMPOUND_WORDS = {ast.If: "an if statement", ast.With: "a with statement", ast.Try: "a try statement",
                  ast.Assert: "an assert", ast.Delete: "a del statement", ast.Raise: "a raise statement"}


class NotebookError(Exception):
    """A notebook that cannot be read; the message is the student-readable sentence."""


UNREADABLE = (RecursionError, MemoryError)  # what ast and symtable raise for absurdly nested code


@dataclass(frozen=True)
class Cell:
    """One cell as the student sees it: its label, and its Python source with the student's line numbers."""

    label: str  # "cell 4"; in an exported .py "cell In[7]" or "" when the file has no cell markers
    source: str  # IPython syntax already turned into get_ipython() calls
    origin: tuple[int, ...]  # origin[i]: the student's line number of source line i + 1

    def lines(self) -> list[str]:
        return self.source.splitlines()


@dataclass(frozen=True)
class Placement:
    """Where one line of the graded module came from."""

    cell: Cell
    line: int  # the line number the student sees: within the cell (notebook) or within the file (exported .py)


@dataclass
class LeftOut:
    """What was left out of one cell, or of one run of lines in an exported .py without cell markers."""

    place: str  # "cell 4", "cell In[7] at line 12"; "" for a run of lines
    first_line: int
    last_line: int
    kinds: dict[str, list[str]] = field(default_factory=dict)  # kind -> the names it concerns, in order

    def where(self) -> str:
        if self.place:
            return self.place
        return f"line {self.first_line}" if self.first_line == self.last_line else \
            f"lines {self.first_line}-{self.last_line}"

    def what(self) -> str:
        return "; ".join(_phrase(kind, names) for kind, names in self.kinds.items())


@dataclass
class KeptFor:
    """Top-level code kept only because kept code reads a name it binds: one cell, or one line of an export."""

    place: str  # "cell 4", "cell In[7] at line 12", "line 12"
    code: list[str] = field(default_factory=list)  # each kept statement, shortened
    readers: dict[str, list[str]] = field(default_factory=dict)  # "`build_model`", "cell 5" -> the names it reads

    def sentence(self) -> str:
        why = " and ".join(f"{reader} reads {', '.join(f'`{name}`' for name in names)}"
                           for reader, names in self.readers.items())
        one = len(self.code) == 1
        it, runs, needs, them = ("it", "runs", "needs", "it") if one else ("they", "run", "need", "them")
        return (f"Kept {self.place} ({', '.join(self.code)}), because {why}: {it} {runs} at grading time, without "
                f"your data or network, so if {it} {needs} either, compute {them} inside the function or use a "
                "constant.")


@dataclass
class NotebookModule:
    """The module made from a notebook, where each of its lines came from, and what was left out."""

    source_name: str  # the file the student handed in, e.g. "my.ipynb"
    module_file: str  # the file grading imports, e.g. "cnn.py"
    in_cells: bool  # a real notebook (cell-relative lines) rather than an exported .py (file lines)
    text: str = ""
    placements: list[Placement] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    kept_for: list[KeptFor] = field(default_factory=list)

    def where(self, module_line: int) -> str | None:
        """The student's own name for a line of the module, "Cell 4, line 2 of my.ipynb", or None if not theirs."""
        if not 1 <= module_line <= len(self.placements):
            return None
        placement = self.placements[module_line - 1]
        if self.in_cells:
            return f"{placement.cell.label.capitalize()}, line {placement.line} of {self.source_name}"
        label = f" ({placement.cell.label})" if placement.cell.label else ""
        return f"Line {placement.line} of {self.source_name}{label}"

    def note(self) -> str:
        """The report note: what became the module, what was left out of it, and what was kept only for kept code."""
        kept = "".join(f" {group.sentence()}" for group in self.kept_for)
        if not self.left_out:
            return f"Graded {self.source_name} as {self.module_file}; every top-level statement was kept.{kept}"
        parts = [f"{group.where()} ({group.what()})" for group in self.left_out]
        return (f"Graded {self.source_name} as {self.module_file}, without the top-level code grading does not need: "
                f"{', '.join(parts)}.{kept}")


def _phrase(kind: str, names: list[str]) -> str:
    if kind not in NAMED_KINDS:
        return kind
    singular, plural = NAMED_KINDS[kind]
    return (singular if len(names) == 1 else plural).format(", ".join(names))


def without_outputs(path: Path) -> bytes:
    """The notebook at `path` with its cells' outputs cleared; a file nbformat cannot read is a NotebookError."""
    notebook = _read(path)
    try:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        text: str = nbformat.writes(notebook)
        return text.encode()
    except Exception:  # a notebook whose cells are not what nbformat promises
        raise NotebookError(f"{path.name} is not a readable Jupyter notebook.") from None


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)
    except Exception:  # nbformat raises several unrelated types for a broken file
        raise NotebookError(f"{path.name} is not a readable Jupyter notebook.") from None
    return notebook


def from_notebook_file(path: Path, module_file: str, required: Iterable[str]) -> NotebookModule:
    """The module for an .ipynb file; a file nbformat cannot read is a NotebookError."""
    notebook = _read(path)
    try:
        cells = [(number, cell.source) for number, cell in enumerate(notebook.cells, start=1)
                 if cell.cell_type == "code"]
    except Exception:  # a notebook whose cells are not what nbformat promises
        raise NotebookError(f"{path.name} is not a readable Jupyter notebook.") from None
    module = NotebookModule(path.name, module_file, in_cells=True)
    try:
        _build(module, [_python_cell(f"cell {number}", source.splitlines(), 1) for number, source in cells],
               set(required))
    except UNREADABLE:
        raise NotebookError(f"{path.name} holds code nested too deeply to read.") from None
    return module


def from_exported_text(text: str, source_name: str, module_file: str,
                       required: Iterable[str]) -> NotebookModule | None:
    """The module for a .py exported from a notebook, or None when `text` is a plain Python module."""
    lines = text.splitlines()
    module = NotebookModule(source_name, module_file, in_cells=False)
    try:
        if not any(_is_marker(line) for line in lines) and not _uses_ipython(text):
            return None
        _build(module, _exported_cells(lines), set(required))
    except UNREADABLE:
        return None  # imported as it is, the sandboxed import stage reports it
    return module


def _is_marker(line: str) -> bool:
    """A cell marker line; `# %%time` is a magic Jupytext commented out, not a marker."""
    return line.startswith(NBCONVERT_MARKER) or line.rstrip() == PERCENT_MARKER or line.startswith(PERCENT_MARKER + " ")


def _uses_ipython(text: str) -> bool:
    """Whether plain Python text calls get_ipython(), or parses only once IPython syntax is translated."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        try:
            tree = ast.parse(TransformerManager().transform_cell(text))
        except (SyntaxError, ValueError):
            return False  # not Python with or without IPython: let the import report the syntax error
        return True
    return any(isinstance(node, ast.Name) and node.id == "get_ipython" for node in ast.walk(tree))


def _exported_cells(lines: list[str]) -> list[Cell]:
    """Split an exported .py at its cell markers; without markers the whole file is one unlabeled cell."""
    starts = [i for i, line in enumerate(lines) if _is_marker(line)]
    if not starts:
        return [_python_cell("", lines, first_line=1)]
    cells = [_python_cell("", lines[: starts[0]], first_line=1)]
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)], strict=True), start=1):
        marker = lines[start]
        label = marker.strip("# :") if marker.startswith(NBCONVERT_MARKER) else f"{number}"
        cells.append(_python_cell(f"cell {label}", lines[start:end], first_line=start + 1))  # the marker too
    return cells


def _python_cell(label: str, raw: list[str], first_line: int) -> Cell:
    """A cell's lines as Python, mapping each line back to the student's line number despite IPython's rewrite."""
    raw = list(raw)
    if raw and raw[0].strip().split(" ")[0] in PYTHON_CELL_MAGICS:
        raw[0] = ""  # keep the body of %%time and the like; the magic line itself only measures it
    source = TransformerManager().transform_cell("\n".join(raw) + "\n") if raw else ""
    python = source.splitlines()
    origin = list(range(first_line, first_line + len(python)))
    if len(python) != len(raw):  # a continued `!` line became one: map by matching the unchanged lines
        matcher = difflib.SequenceMatcher(None, raw, python, autojunk=False)
        for _, i1, i2, j1, j2 in matcher.get_opcodes():
            for j in range(j1, j2):
                origin[j] = first_line + min(i1 + (j - j1), max(i2 - 1, i1))
    return Cell(label, source, tuple(origin))


@dataclass
class _Statement:
    cell: Cell
    node: ast.stmt | None  # None: a cell that does not parse, kept whole only when kept code needs what it binds
    kept: bool = False
    needed: bool = False  # kept only because kept code or the required names need what it binds
    syntax_error: str = ""  # why the cell does not parse
    binds: frozenset[str] = frozenset()  # what a cell that does not parse binds at its top level, as far as seen

    @cached_property
    def free_names(self) -> set[str]:
        return _names_in(self.cell.source) if self.node is None else _free_names(self.node)


def _build(module: NotebookModule, cells: list[Cell], required: set[str]) -> None:
    statements = [statement for cell in cells for statement in _statements(cell)]
    constants: set[str] = set()
    for statement in statements:
        statement.kept = _kept_on_its_own(statement, required, constants)
    _keep_what_is_used(statements, required)
    for statement in statements:  # `from __future__` first: a cell may hold it anywhere, a module may not
        if statement.kept and _is_future_import(statement.node):
            _append(module, statement.cell, _lines_of(statement, _span(statement)[0]), _span(statement)[0])
    by_cell: dict[int, list[_Statement]] = defaultdict(list)
    for statement in statements:
        by_cell[id(statement.cell)].append(statement)
    for cell in cells:
        _append(module, cell, _cell_lines(cell, by_cell[id(cell)]), 1)
    _list_left_out(module, statements)
    _list_kept_for(module, statements)


def _list_left_out(module: NotebookModule, statements: list[_Statement]) -> None:
    """Group the left-out statements by cell (by run of lines in an export without cell markers) for the note."""
    plotting: set[str] = set()
    run_broken = True
    for statement in statements:
        node, cell = statement.node, statement.cell
        what = None if statement.kept else _describe(statement, plotting)
        if what is not None and cell.source.lstrip().startswith(PUBLIC_CHECKS_CELL):
            what = ("the handout's public checks", [])
        run_broken = run_broken or statement.kept
        if node is not None:
            _track_plotting(statement, plotting)
        if what is None:
            continue
        place = "" if not cell.label else cell.label if module.in_cells else f"{cell.label} at line {cell.origin[0]}"
        first, last = ((cell.origin[0], cell.origin[-1]) if node is None else
                       (cell.origin[node.lineno - 1], cell.origin[(node.end_lineno or node.lineno) - 1]))
        groups = module.left_out
        if not groups or groups[-1].place != place or (not place and run_broken):
            groups.append(LeftOut(place, first, last))
        groups[-1].last_line = last
        run_broken = False
        kind, names = what
        listed = groups[-1].kinds.setdefault(kind, [])
        listed += [name for name in names if name not in listed]


def _list_kept_for(module: NotebookModule, statements: list[_Statement]) -> None:
    """Name, by cell, each assignment, if or try kept only because kept code reads a name it binds, and that code."""
    readers_of: dict[str, list[int]] = defaultdict(list)  # a name -> the kept statements that read it, by index
    for index, statement in enumerate(statements):
        for name in statement.free_names if statement.kept else ():
            readers_of[name].append(index)
    groups: dict[str, KeptFor] = {}
    for statement in statements:
        node = statement.node
        if not statement.needed or node is None or isinstance(node, IMPORTS):
            continue
        readers = sorted((index, name) for name in _bound_names(node) for index in readers_of[name]
                         if statements[index] is not statement)
        if not readers:  # kept for a required name only
            continue
        group = groups.setdefault(_where(module, statement), KeptFor(_where(module, statement)))
        group.code.append(_short(node))
        for index, name in readers:
            listed = group.readers.setdefault(_reader(module, statements[index]), [])
            listed += [name] if name not in listed else []
    module.kept_for = list(groups.values())


def _where(module: NotebookModule, statement: _Statement) -> str:
    """A statement's place as the note names it: its cell, or in an exported .py without cells its line."""
    cell = statement.cell
    if module.in_cells:
        return cell.label
    if cell.label:
        return f"{cell.label} at line {cell.origin[0]}"
    return f"line {cell.origin[statement.node.lineno - 1] if statement.node else cell.origin[0]}"


def _reader(module: NotebookModule, statement: _Statement) -> str:
    """Kept code that reads a name: a definition by its name, an assignment by what it assigns, other code by place."""
    node = statement.node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return f"`{node.name}`"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and (names := _bound_names(node)):
        return f"the assignment to {', '.join(f'`{name}`' for name in sorted(names))}"
    return _where(module, statement)


def _short(node: ast.stmt) -> str:
    """A kept statement as the note quotes it: an assignment on one line, its calls' arguments elided."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return COMPOUND_WORDS.get(type(node), "a statement")
    short = copy.deepcopy(node)
    for call in ast.walk(short):
        if isinstance(call, ast.Call) and (call.args or call.keywords):
            call.args, call.keywords = [ast.Constant(...)], []
    text = ast.unparse(short)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def _statements(cell: Cell) -> list[_Statement]:
    try:
        tree = ast.parse(cell.source)
    except (SyntaxError, ValueError) as exc:  # ValueError: a null byte
        error = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return [_Statement(cell, None, syntax_error=error, binds=_bound_at_top(cell.source))]
    return [_Statement(cell, node) for node in tree.body]


def _bound_at_top(source: str) -> frozenset[str]:
    """The names the top-level lines of unparsable code define, import or assign, read line by line."""
    names: set[str] = set()
    for line in source.splitlines():
        if match := TOP_LEVEL_DEFINITION.match(line):
            names.add(match[1] or match[2])
            continue
        try:
            body = ast.parse(line).body
        except (SyntaxError, ValueError):
            continue
        names |= {name for node in body if isinstance(node, BINDING_STATEMENTS) for name in _bound_names(node)}
    return frozenset(names)


def _kept_on_its_own(statement: _Statement, required: set[str], constants: set[str]) -> bool:
    """Definitions, constants, assignments of required names and star imports are kept whatever uses them."""
    node = statement.node
    if node is None:
        return bool(statement.binds & required)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if _is_future_import(node) or (isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)):
        return True
    if _calls_ipython(node) or not isinstance(node, BINDING_STATEMENTS):
        return False
    names = _bound_names(node)
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_constant(node.value,
                                                                                                  constants):
        constants |= names
        return True
    return bool(names & required)


def _keep_what_is_used(statements: list[_Statement], required: set[str]) -> None:
    """Keep every import and assignment that binds a name the kept statements use, and what those use in turn."""
    binders: dict[str, list[_Statement]] = defaultdict(list)
    for statement in statements:
        node = statement.node
        if not statement.kept and isinstance(node, BINDING_STATEMENTS) and not _calls_ipython(node):
            for name in _bound_names(node):
                binders[name].append(statement)
        for name in statement.binds if not statement.kept else ():
            binders[name].append(statement)
    needed = deque(required | {name for s in statements if s.kept for name in s.free_names})
    seen = set(needed)
    while needed:
        for statement in binders.pop(needed.popleft(), []):
            if not statement.kept:
                statement.kept = statement.needed = True
                fresh = statement.free_names - seen
                seen |= fresh
                needed.extend(fresh)


def _is_future_import(node: ast.stmt | None) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _bound_names(node: ast.stmt) -> set[str]:
    """The module-level names a statement binds (for if and try: the names bound in any branch)."""
    if isinstance(node, IMPORTS):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {name for target in node.targets for name in _target_names(target)}
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return _target_names(node.target)
    if isinstance(node, (ast.If, ast.Try)):
        branches = [node.body, node.orelse] + ([h.body for h in node.handlers] + [node.finalbody]
                                               if isinstance(node, ast.Try) else [])
        return {name for branch in branches for child in branch for name in _bound_names(child)}
    return set()


def _target_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {name for element in target.elts for name in _target_names(element)}
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()  # attributes and subscripts change an object; they bind no name


def _is_constant(value: ast.expr, constants: set[str]) -> bool:
    """Literals, containers of literals and arithmetic on them or on earlier constants."""
    allowed = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp, ast.expr_context,
               ast.operator, ast.unaryop)
    return all(isinstance(node, allowed) or (isinstance(node, ast.Name) and node.id in constants)
               for node in ast.walk(value))


def _free_names(node: ast.stmt) -> set[str]:
    """The module-level names a statement reads: at the top level, and as globals inside its functions and classes."""
    table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    scopes = list(table.get_children())
    while scopes:
        scope = scopes.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        scopes += scope.get_children()
    return names


def _names_in(source: str) -> set[str]:
    """Every name code that does not parse may read: its names but attributes, as far as Python can tokenize it."""
    names: set[str] = set()
    previous = ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME and previous != "." and not keyword.iskeyword(token.string):
                names.add(token.string)
            previous = token.string
    except (tokenize.TokenError, SyntaxError):  # an unclosed bracket or string, or a bad indent: what came before
        pass
    return names


def _calls_ipython(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "get_ipython" for n in ast.walk(node))


def _append(module: NotebookModule, cell: Cell, lines: list[str], first: int) -> None:
    """Add lines of `cell`, the first of them its line `first`, to the module, recording where each came from."""
    module.text += "".join(line + "\n" for line in lines)
    module.placements += [Placement(cell, cell.origin[i - 1]) for i in range(first, first + len(lines))]


def _cell_lines(cell: Cell, statements: list[_Statement]) -> list[str]:
    """The cell's lines with the left-out statements blanked, so every kept line keeps its place and comments."""
    kept_here = {id(s) for s in statements if s.kept and not _is_future_import(s.node)}
    if any(s.node is None for s in statements):  # a cell that does not parse: kept whole, or left out whole
        return cell.lines() if statements[0].kept else [""] * len(cell.lines())
    touching: dict[int, list[_Statement]] = {}
    for statement in statements:
        first, last = _span(statement)
        for line in range(first, last + 1):
            touching.setdefault(line, []).append(statement)
    lines = []
    for number, text in enumerate(cell.lines(), start=1):
        here = touching.get(number, [])
        kept = [s for s in here if id(s) in kept_here]
        if len(kept) == len(here):
            lines.append(text)
        else:  # a line shared by kept and left-out statements (`x = 1; plt.show()`) keeps the kept ones' parts
            lines.append("; ".join(_part_on_line(s, number, text) for s in kept))
    return lines


def _span(statement: _Statement) -> tuple[int, int]:
    """The first and last line of a statement, decorators included."""
    node = statement.node
    assert node is not None
    decorators = getattr(node, "decorator_list", [])
    return (decorators[0].lineno if decorators else node.lineno), (node.end_lineno or node.lineno)


def _lines_of(statement: _Statement, first: int) -> list[str]:
    lines = statement.cell.lines()
    return [_part_on_line(statement, number, lines[number - 1]) for number in range(first, _span(statement)[1] + 1)]


def _part_on_line(statement: _Statement, number: int, text: str) -> str:
    """The part of line `number` that belongs to `statement` (ast columns count UTF-8 bytes)."""
    node = statement.node
    assert node is not None
    first, last = _span(statement)
    data = text.encode()
    start = node.col_offset if number == node.lineno and number == first else 0
    end = node.end_col_offset if number == last and node.end_col_offset is not None else len(data)
    return data[start:end].decode()


def _describe(statement: _Statement, plotting: set[str]) -> tuple[str, list[str]] | None:
    """What kind of statement was left out, and the names it concerns; None for a bare string (a text cell)."""
    node = statement.node
    if node is None:
        return f"code that does not parse ({statement.syntax_error}) and that nothing graded needs", []
    assert node is not None
    if _calls_ipython(node):
        shell = any(isinstance(n, ast.Attribute) and n.attr in ("system", "getoutput") for n in ast.walk(node))
        return ("a shell command" if shell else "an IPython magic"), []
    if isinstance(node, (ast.For, ast.While, ast.AsyncFor)):
        calls = {_called_name(n) for n in ast.walk(node) if isinstance(n, ast.Call)}
        return ("a training loop" if calls & {"train_one_epoch", "backward"} else "a loop"), []
    if statement.free_names & plotting:
        return "a plot", []
    if isinstance(node, IMPORTS):
        return "import", _imported_modules(node)
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return "assignment", sorted(_bound_names(node)) or [ast.unparse(_target(node))]
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        if isinstance(node.value, ast.Call):
            return "call", [ast.unparse(node.value.func)]
        return "a displayed value", []
    return COMPOUND_WORDS.get(type(node), f"a {type(node).__name__.lower()} statement"), []


def _target(node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> ast.expr:
    return node.targets[0] if isinstance(node, ast.Assign) else node.target


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [node.module or "."] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]


def _track_plotting(statement: _Statement, plotting: set[str]) -> None:
    """Names bound by plotting imports, and by assignments from plotting names (`fig, ax = plt.subplots()`)."""
    node = statement.node
    if isinstance(node, IMPORTS):
        if any(module.split(".")[0] in PLOT_MODULES for module in _imported_modules(node)):
            plotting |= _bound_names(node)
    elif isinstance(node, (ast.Assign, ast.AnnAssign)) and statement.free_names & plotting:
        plotting |= _bound_names(node)
