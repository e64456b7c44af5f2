"""The jinja2 environment for the report templates in `grader/reports/templates/`, and its filters."""

from __future__ import annotations

import re
from functools import cache

import jinja2

DETAILS_CHARS = 3000  # TA-view details keep their tail: a traceback's last lines say the most


def points(value: float) -> str:
    """Points without float noise: 15.0 -> '15', 12.3456 -> '12.35'."""
    return f"{round(value, 2):g}"


def percent(fraction: float) -> str:
    """A fraction in [0, 1] as a percentage with one decimal."""
    return f"{100 * fraction:.1f}%"


def tail(text: str, limit: int = DETAILS_CHARS) -> str:
    """The last `limit` characters of `text`, marked when something was cut."""
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def md_cell(text: object) -> str:
    """Text that stays inside one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def md_code(text: str) -> str:
    """A fenced markdown code block whose fence is longer than any backtick run inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def template_loader() -> jinja2.BaseLoader:
    """The reports' templates, from the package."""
    return jinja2.PackageLoader("grader.reports", "templates")


@cache
def environment() -> jinja2.Environment:
    """Templates load from the package; `.html.j2` ones autoescape, markdown ones do not."""
    env = jinja2.Environment(
        loader=template_loader(),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(points=points, percent=percent, tail=tail, cell=md_cell, code=md_code)
    return env


def render(template: str, **context: object) -> str:
    """Render one packaged template."""
    return environment().get_template(template).render(**context)
