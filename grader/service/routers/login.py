"""Logging in with a token, logging out, and the start page that sends each person to their pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from grader.service.auth import AnyPage, CsrfChecked, log_in, log_out, person_for_token
from grader.service.context import Database
from grader.service.pages import render
from grader.service.tables import Role

router = APIRouter(include_in_schema=False)


@router.get("/")
def start(person: AnyPage) -> RedirectResponse:
    return RedirectResponse("/ta" if person.role is Role.TA else "/assignments", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return render(request, "login.html.j2", None)


@router.post("/login", dependencies=[CsrfChecked])
def login(request: Request, db: Database, token: Annotated[str, Form(max_length=200)]) -> Response:
    person = person_for_token(db, token)
    if person is None:
        return render(request, "login.html.j2", None, 401, message="That token is not valid; check the mail you got "
                      "from the course staff, or ask them for a new one.")
    log_in(request, db, person)
    return RedirectResponse("/", status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, db: Database) -> RedirectResponse:
    log_out(request, db)
    return RedirectResponse("/login", status_code=303)
