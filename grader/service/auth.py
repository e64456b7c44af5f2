"""Who is asking: login tokens (shown once, stored hashed, compared in constant time), the signed session cookie
that a login sets, the CSRF token every form carries, and the bearer token of the API.

A token is `<id>.<secret>`: the id finds the row, the secret's sha256 is compared with `hmac.compare_digest`.
A session cookie carries a session secret whose sha256 names a `login_sessions` row; ending the row ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from grader.service.context import database
from grader.service.tables import LoginSession, Person, Role, utcnow

_NO_MATCH = hashlib.sha256(b"no such token").hexdigest()  # compared against when the id is unknown


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    token_hash: str


class LoginRequired(Exception):
    """A page needs a logged-in person; the app answers with a redirect to the login page."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token() -> IssuedToken:
    """A new login token; only its id and the hash of its secret are stored."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(24)
    return IssuedToken(f"{token_id}.{secret}", token_id, _hash(secret))


def person_for_token(db: Session, token: str) -> Person | None:
    """The person whose token this is, or None; the comparison takes the same time whether or not the id exists."""
    token_id, _, secret = token.strip().partition(".")
    person = db.scalar(select(Person).where(Person.token_id == token_id)) if token_id and secret else None
    matches = hmac.compare_digest(_hash(secret), person.token_hash if person else _NO_MATCH)
    return person if person is not None and matches else None


def log_in(request: Request, db: Session, person: Person) -> None:
    """Start a fresh session, recorded on the server; it ends at logout or when the person's token is reissued."""
    secret = secrets.token_urlsafe(32)
    db.add(LoginSession(id=_hash(secret), person_id=person.id))
    db.commit()
    request.session.clear()
    request.session.update(person=person.id, session=secret, csrf=secrets.token_urlsafe(32))


def log_out(request: Request, db: Session) -> None:
    """End the session on the server too: a copy of its cookie no longer works."""
    secret = request.session.get("session")
    if isinstance(secret, str):
        db.execute(update(LoginSession).where(LoginSession.id == _hash(secret)).values(ended_at=utcnow()))
        db.commit()
    request.session.clear()


def end_sessions(db: Session, person_id: int) -> None:
    """End every session of a person (their token was reissued); the caller commits."""
    db.execute(update(LoginSession).where(LoginSession.person_id == person_id, LoginSession.ended_at.is_(None))
               .values(ended_at=utcnow()))


def csrf_token(request: Request) -> str:
    """The session's CSRF token, which every form sends back; made on the first page a visitor opens."""
    token: str = request.session.setdefault("csrf", secrets.token_urlsafe(32))
    return token


def csrf_checked(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Refuse a form whose CSRF token is not this session's (a forged cross-site request, or an expired page)."""
    expected = request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise HTTPException(403, "This form has expired or did not come from this site; reload the page and try again.")


def session_person(request: Request, db: Annotated[Session, Depends(database)]) -> Person:
    """The logged-in person of a page request, or a redirect to the login page."""
    person_id, secret = request.session.get("person"), request.session.get("session")
    login = db.get(LoginSession, _hash(secret)) if isinstance(secret, str) else None
    if login is None or login.ended_at is not None or login.person_id != person_id:
        raise LoginRequired
    return db.get_one(Person, login.person_id)


def _role(person: Person, role: Role) -> Person:
    if person.role is not role:
        raise HTTPException(403, f"This page is for {'TAs' if role is Role.TA else 'students'} only.")
    return person


def page_student(person: Annotated[Person, Depends(session_person)]) -> Person:
    return _role(person, Role.STUDENT)


def page_ta(person: Annotated[Person, Depends(session_person)]) -> Person:
    return _role(person, Role.TA)


_bearer = HTTPBearer(auto_error=False, description="The login token from the roster import.")


def api_person(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
               db: Annotated[Session, Depends(database)]) -> Person:
    """The person an API request's bearer token belongs to, or 401."""
    person = person_for_token(db, credentials.credentials) if credentials else None
    if person is None:
        raise HTTPException(401, "Send a valid login token as 'Authorization: Bearer TOKEN'.",
                            headers={"WWW-Authenticate": "Bearer"})
    return person


def api_student(person: Annotated[Person, Depends(api_person)]) -> Person:
    return _role(person, Role.STUDENT)


def api_ta(person: Annotated[Person, Depends(api_person)]) -> Person:
    return _role(person, Role.TA)


StudentPage = Annotated[Person, Depends(page_student)]
TaPage = Annotated[Person, Depends(page_ta)]
AnyPage = Annotated[Person, Depends(session_person)]
ApiPerson = Annotated[Person, Depends(api_person)]
ApiStudent = Annotated[Person, Depends(api_student)]
ApiTa = Annotated[Person, Depends(api_ta)]
CsrfChecked = Depends(csrf_checked)
