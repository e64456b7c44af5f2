"""The API's one error model: every refusal under /api/ is `{"detail": "<one sentence>"}`, request validation
errors included, and the OpenAPI document declares it for each status code a route can answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

API_PREFIX = "/api"

ERROR_MEANINGS = {
    400: "The body cannot be parsed, or the upload is not what its name says (a broken archive or notebook, no "
         "Python source, empty).",
    401: "No valid login token was sent as 'Authorization: Bearer TOKEN'.",
    403: "The token's role may not do this, or uploads to the assignment are closed.",
    404: "The course offers no such assignment, or there is no such submission, report or leaderboard.",
    409: "The pseudonym is taken.",
    413: "The request or the uploaded file is larger than the course allows.",
    415: "The upload's name does not end in a kind of file the assignment accepts.",
    422: "The request does not fit this document: a missing or malformed parameter, field or body.",
    429: "The student has used up the assignment's submissions for the last 24 hours.",
}
Responses = dict[int | str, dict[str, Any]]


class ApiError(BaseModel):
    """Why the API refused a request."""

    detail: str = Field(description="One sentence saying what was wrong and, where it helps, what to do.")


def error_responses(*status_codes: int) -> Responses:
    """The OpenAPI `responses=` entries of these status codes, each answered with `ApiError`."""
    return {code: {"model": ApiError, "description": ERROR_MEANINGS[code]} for code in status_codes}


def error_response(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(detail=detail).model_dump(), status_code, headers)


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(f"{API_PREFIX}/")


def validation_sentence(exc: RequestValidationError) -> str:
    """Pydantic's first complaint about a request as one sentence, e.g. "The request's path.submission_id is not
    valid: input should be greater than or equal to 1 (and 1 more problem)."."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    message = str(first.get("msg", "it is malformed")).rstrip(".")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    lowered = message if message[1:2].isupper() else f"{message[:1].lower()}{message[1:]}"  # not "jSON"
    return f"The request's {where} is not valid: {lowered}{more}."
