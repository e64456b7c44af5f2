"""Publishing an assignment's scores and reports: a button on the TA's class page, and PUT/DELETE
/api/ta/assignments/{id}/publication. Only `release = "when_published"` follows it; for the others it is kept and
has no effect (until course.toml changes to when_published)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from grader.service.api_errors import API_PREFIX, error_responses
from grader.service.auth import ApiTa, CsrfChecked, TaPage
from grader.service.context import Database, Service
from grader.service.pages import flash
from grader.service.release import publication, publish, unpublish
from grader.service.routers.shared import offered_or_404

router = APIRouter(prefix="/ta/assignments", include_in_schema=False)
NOT_PUBLISHED = "The scores of {} are not published."
api_router = APIRouter(prefix=f"{API_PREFIX}/ta/assignments", tags=["api"],
                       responses=error_responses(401, 403, 404, 413, 422))


class PublicationView(BaseModel):
    """Whether an assignment's scores and reports are published, by whom and when."""

    assignment_id: str
    published: bool
    published_by: str | None
    published_at: datetime | None


def _class_page(assignment_id: str) -> RedirectResponse:
    return RedirectResponse(f"/ta/assignments/{assignment_id}", status_code=303)


@router.post("/{assignment_id}/publish", dependencies=[CsrfChecked])
def publish_page(request: Request, assignment_id: str, person: TaPage, db: Database,
                 context: Service) -> RedirectResponse:
    offered = offered_or_404(context, assignment_id)
    publish(db, offered, person.login)
    flash(request, "Published: students now see their scores and reports of this assignment.")
    return _class_page(offered.id)


@router.post("/{assignment_id}/unpublish", dependencies=[CsrfChecked])
def unpublish_page(request: Request, assignment_id: str, person: TaPage, db: Database,
                   context: Service) -> RedirectResponse:
    offered = offered_or_404(context, assignment_id)
    unpublish(db, offered)
    flash(request, "Unpublished: students no longer see their scores and reports of this assignment.")
    return _class_page(offered.id)


def _view(db: Database, assignment_id: str) -> PublicationView:
    published = publication(db, assignment_id)
    return PublicationView(assignment_id=assignment_id, published=published is not None,
                           published_by=published.published_by if published else None,
                           published_at=published.published_at if published else None)


@api_router.get("/{assignment_id}/publication")
def api_publication(assignment_id: str, person: ApiTa, db: Database, context: Service) -> PublicationView:
    """Who published the assignment's scores and when; 404 while they are not published."""
    offered = offered_or_404(context, assignment_id)
    if publication(db, offered.id) is None:
        raise HTTPException(404, NOT_PUBLISHED.format(offered.id))
    return _view(db, offered.id)


@api_router.put("/{assignment_id}/publication")
def api_publish(assignment_id: str, person: ApiTa, db: Database, context: Service) -> PublicationView:
    """Show students their scores and reports (of an assignment whose release is "when_published")."""
    publish(db, offered_or_404(context, assignment_id), person.login)
    return _view(db, assignment_id)


@api_router.delete("/{assignment_id}/publication")
def api_unpublish(assignment_id: str, person: ApiTa, db: Database, context: Service) -> PublicationView:
    """Withhold them again; 404 when they were not published."""
    if not unpublish(db, offered_or_404(context, assignment_id)):
        raise HTTPException(404, NOT_PUBLISHED.format(assignment_id))
    return _view(db, assignment_id)
