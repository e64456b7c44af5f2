"""The FastAPI application: middleware, error pages and API errors, routers, the OpenAPI document and its
self-hosted /docs page, and the job loop's life."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import Scope

from grader.course import Course, load_course
from grader.service.api_errors import error_response, is_api_path, validation_sentence
from grader.service.auth import LoginRequired
from grader.service.context import ServiceContext
from grader.service.db import upgrade_database
from grader.service.grading_cluster import GradingCluster
from grader.service.limits import FORM_OVERHEAD_BYTES, BodyLimit, SecurityHeaders
from grader.service.pages import render, templates
from grader.service.routers import api, extensions, login, regrade_requests, release, student, ta
from grader.service.settings import DATABASE_FILE, ServiceSettings
from grader.service.storage import PRIVATE_DIR, PRIVATE_FILE, clear_staging, make_private, too_large

SESSION_COOKIE = "grader_session"
API_ROUTERS = (api.router, extensions.api_router, release.api_router, regrade_requests.api_router)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for one course folder; grading starts with the app when `settings.cluster` is set."""
    course = load_course(settings.course_dir)
    clear_staging(settings.uploads_dir)
    context = ServiceContext(settings, course, upgrade_database(settings.database), jobs=None)
    _make_course_folder_private(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.cluster is None:
            yield
            return
        context.cluster = GradingCluster(context)  # in the background: the server listens at once
        context.cluster.start()
        try:
            yield
        finally:
            context.cluster.stop()

    # FastAPIOffline serves Swagger UI from its own package instead of a CDN the server may not reach. No ReDoc:
    # its bundle fetches its logo from a CDN.
    app = FastAPIOffline(title=f"{course.name}: submissions", lifespan=lifespan, redoc_url=None,
                         description="Hand in submissions, follow their grading, read reports; TAs regrade and "
                                     "export. Authenticate with the login token from the roster import as a bearer "
                                     "token. Every refusal is `{\"detail\": \"<one sentence>\"}`.")
    app.state.service = context
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key(), session_cookie=SESSION_COOKIE,
                       same_site="lax", https_only=settings.https)
    app.add_middleware(BodyLimit, max_bytes=course.max_upload_bytes + FORM_OVERHEAD_BYTES,
                       refusal=_too_large(course))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (login.router, student.router, ta.router, extensions.router, release.router,
                   regrade_requests.router, *API_ROUTERS):
        app.include_router(router)
    _add_error_pages(app)
    _name_offered_assignments(app, course)
    return app


def _make_course_folder_private(settings: ServiceSettings) -> None:
    """The database, uploads, reports and exports are the service user's alone (a course folder on a shared host;
    folders made by an older version, or by `grader roster import`, included)."""
    for folder in (settings.uploads_dir, settings.reports_dir, settings.exports_dir):
        folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        make_private(folder)
    if settings.database_url is None:  # SQLite makes new -wal and -shm files with the database file's mode
        for suffix in ("", "-wal", "-shm"):
            path = settings.course_dir / f"{DATABASE_FILE}{suffix}"
            if path.exists():
                path.chmod(PRIVATE_FILE)


def _too_large(course: Course) -> Callable[[Scope], Response]:
    """A request over the size limit: the API's JSON error, or the site's error page, saying the form's number."""
    sentence = too_large(course.max_upload_bytes)

    def refusal(scope: Scope) -> Response:
        if is_api_path(scope["path"]):
            return error_response(413, sentence)
        return templates().TemplateResponse(Request(scope), "error.html.j2", {
            "person": None, "course": course, "csrf": "", "message": sentence, "info": None, "cluster": None,
            "course_problem": None,
            "title": sentence}, status_code=413)

    return refusal


def _name_offered_assignments(app: FastAPI, course: Course) -> None:
    """The OpenAPI document lists the course's assignments as the values an `assignment_id` can take."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            ids = [offered.id for offered in course.assignments]
            for operations in generate()["paths"].values():
                parameters = [p for operation in operations.values() for p in operation.get("parameters", [])]
                for parameter in parameters:
                    if parameter["name"] in ("assignment_id", "assignment"):
                        parameter["schema"]["enum"] = ids
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the document


def _add_error_pages(app: FastAPI) -> None:
    """Pages answer errors with a page that says what happened in one sentence; the API with an `ApiError`."""

    @app.exception_handler(LoginRequired)
    async def to_login(_request: Request, _exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code < 400:
            return await http_exception_handler(request, exc)
        if is_api_path(request.url.path):
            return _api_error(request, exc)
        return render(request, "error.html.j2", None, exc.status_code, title=exc.detail, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api_path(request.url.path):
            return error_response(422, validation_sentence(exc))
        message = "The form was incomplete or malformed; go back and try again."
        return render(request, "error.html.j2", None, 422, title=message, message=message)


def _api_error(request: Request, exc: HTTPException) -> Response:
    """An `ApiError`; Starlette's own 404 and 405 (a path or method with no route) get a sentence too."""
    headers, detail = dict(exc.headers or {}), str(exc.detail)
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
        detail = f"{request.url.path} answers {headers['Allow']}, not {request.method}."
    elif exc.status_code == 404 and "endpoint" not in request.scope:
        detail = f"The API has no {request.url.path}; /docs lists its routes."
    return error_response(exc.status_code, detail, headers)


def _allowed_methods(request: Request) -> str:
    """The methods of every API route at a path (Starlette's `Allow` names those of the first route only)."""
    routes = [route for router in API_ROUTERS for route in router.routes
              if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE]
    return ", ".join(sorted({method for route in routes for method in route.methods or ()}))
