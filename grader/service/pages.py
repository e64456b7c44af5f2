"""Rendering the service's pages: the report templates' Jinja2 environment, overlaid with the service's own
templates, and the context every page shares (who is logged in, the CSRF token, the course)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import jinja2
from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from grader.config import load_assignment
from grader.reports.render import shown, task_of_report
from grader.reports.templating import environment, template_loader
from grader.service.auth import csrf_token
from grader.service.context import service
from grader.service.tables import Person, Role
from grader.service.views import MetricInfo, lateness, task_metric, waiting

# Report files are self-contained HTML with inline styles and data: images; they may load and run nothing else.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


@cache
def templates() -> Jinja2Templates:
    """The service's templates first, then the reports' (for the shared stylesheet)."""
    env = environment().overlay(loader=jinja2.ChoiceLoader([
        jinja2.PackageLoader("grader.service", "templates"), template_loader()]))
    env.globals = dict(env.globals)  # Starlette adds url_for here; the reports' environment stays as it is
    env.filters = {**env.filters, "lateness": lateness, "waiting": waiting}
    env.globals["metric_of"] = metric_of
    return Jinja2Templates(env=env)


class MetricView(MetricInfo):
    """An assignment's metric as the service's pages write it: its name, unit and direction, and a value in its
    format."""

    show: Callable[[float], str]


def metric_of(assignment_id: str) -> MetricView:
    """The metric an offered assignment's grades carry (their `metric_value`: an accuracy, or an error)."""
    task = task_of_report(load_assignment(assignment_id))
    return MetricView(**task_metric(task).model_dump(), show=shown(task))


def render(request: Request, name: str, person: Person | None, status_code: int = 200,
           **context: object) -> HTMLResponse:
    """A page, with the person, course and CSRF token every layout needs (and, for a TA, why an edit of course.toml
    was not taken)."""
    running = service(request)
    sentence, error = request.session.pop("flash", (None, False))
    ta = person is not None and person.role == Role.TA
    shared = {"person": person, "course": running.course, "csrf": csrf_token(request), "cluster": running.cluster_note,
              "course_problem": running.course_problem if ta else None,
              "message": sentence if error else None, "info": None if error else sentence}
    return templates().TemplateResponse(request, name, {**shared, **context}, status_code=status_code)


def flash(request: Request, sentence: str, error: bool = False) -> None:
    """A sentence for the next page this session opens (after a redirect)."""
    request.session["flash"] = (sentence, error)


def report_file(path: Path) -> FileResponse:
    """A report's self-contained HTML file, locked down so nothing inside it can load or run."""
    return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP})
