"""Reading a written report back as a reader sees it: its lines of prose and tables (code blocks, which may
repeat lines as tracebacks do, and table headers left out), its section headings and its table header rows."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

BLOCKS = {"p", "li", "tr", "h1", "h2", "h3", "pre", "table", "ul", "div", "br"}


class _Text(HTMLParser):
    """The visible text of an HTML page, one line per block, table cells joined by " | "."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.headings: list[str] = []
        self.table_headers: list[list[str]] = []
        self._row: list[tuple[str, str]] = []  # (cell tag, text) of the current table row
        self._in: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("style", "title")
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag in ("td", "th") and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append(" | ")
        if tag in ("h2", "h3"):
            self.headings.append("")
        if tag in ("td", "th"):
            self._row.append((tag, ""))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "title")
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "tr":
            if self._row and all(cell == "th" for cell, _ in self._row):
                self.table_headers.append([" ".join(text.split()) for _, text in self._row])
            self._row = []
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._skip or "pre" in self._in:
            return
        self.parts.append(data.replace("\n", " "))
        if set(self._in) & {"h2", "h3"}:
            self.headings[-1] += data
        if self._row and set(self._in) & {"td", "th"}:
            self._row[-1] = (self._row[-1][0], self._row[-1][1] + data)


def html_view(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """Visible lines, h2/h3 headings and table header rows of an HTML report."""
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    headings = [" ".join(h.split()) for h in parser.headings]
    header_lines = {" | ".join(row) for row in parser.table_headers}  # structure, as a Markdown table's header
    return [line for line in lines if line and line not in header_lines], headings, parser.table_headers


def md_view(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """Visible lines (no table separators or fences), ##/### headings and table header rows of a Markdown report."""
    lines = path.read_text(encoding="utf-8").splitlines()
    headings = [re.sub(r"^#+ ", "", line).replace("`", "") for line in lines if re.match(r"^#{2,3} ", line)]
    separators = {i for i, line in enumerate(lines) if re.match(r"^\|[-:| ]+\|$", line)}
    headers = [[cell.strip() for cell in lines[i - 1].strip("|").split("|")] for i in sorted(separators)]
    headers = [row for row in headers if any(row)]  # a table of row headings has an empty header row
    header_lines = separators | {i - 1 for i in separators}
    fences = [i for i, line in enumerate(lines) if re.match(r"^`{3,}", line)]
    in_code = {i for start, end in zip(fences[::2], fences[1::2], strict=True) for i in range(start, end + 1)}
    visible = [line.strip() for i, line in enumerate(lines)
               if line.strip() and i not in header_lines | in_code]
    return visible, headings, headers


def repeated_lines(lines: list[str]) -> list[str]:
    """Every line that appears more than once."""
    return sorted({line for line in lines if lines.count(line) > 1})
