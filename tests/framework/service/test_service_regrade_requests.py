"""Regrade requests: a student asks with a reason for a graded, released submission; the student and TAs write in
the thread; TAs list and resolve requests; nobody else sees them; bad requests are one sentence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from service_harness import A1, Served, csrf_of, finish

pytestmark = pytest.mark.service
REASON = "The normalisation check expects the mean of the training set, which I used."


def ask(served: Served, login: str, submission: int, reason: str = REASON) -> str:
    """Send the regrade request form of the student's assignment page; returns the page it lands on."""
    browser = served.browser(login)
    page = browser.get(f"/assignments/{A1}").text
    response = browser.post("/regrade-requests",
                            data={"csrf": csrf_of(page), "submission_id": str(submission), "reason": reason})
    assert response.status_code == 200, response.text
    return response.text


def test_a_request_thread_between_student_and_ta_until_resolved(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    submission = served.hand_in("s1")["id"]
    finish(served, submission, graded_a1["full"])
    landed = ask(served, "s1", submission)
    assert "was sent to the TAs" in landed and REASON in landed and "Open since" in landed
    request_id = served.client.get("/api/regrade-requests", headers=served.bearer("s1")).json()[0]["id"]
    assert f"Request #{request_id}" in served.browser("s1").get(f"/assignments/{A1}").text

    ta = served.browser("ta1")
    assert "(1 open)" in ta.get("/ta").text
    listed = ta.get("/ta/regrade-requests").text
    assert f'href="/regrade-requests/{request_id}"' in listed and "Ann One (s1)" in listed
    thread = ta.get(f"/regrade-requests/{request_id}").text
    report = re.search(r'<a href="([^"]+)">its TA view</a>', thread)  # the report the request is about, one click
    assert report and "Hidden checks" in ta.get(report.group(1)).text
    ta.post(f"/regrade-requests/{request_id}/messages", data={"csrf": csrf_of(thread), "body": "Which cell?"})
    student = served.client.post(f"/api/regrade-requests/{request_id}/messages", headers=served.bearer("s1"),
                                 json={"body": "The second one."}).json()
    assert [(m["author"], m["role"]) for m in student["messages"]] == [
        ("Ann One", "student"), ("Tim Assistant", "ta"), ("Ann One", "student")]
    resolved = ta.post(f"/regrade-requests/{request_id}/resolve",
                       data={"csrf": csrf_of(thread), "answer": "Regraded: full marks."}).text
    assert "Resolved request" in resolved and "Resolved by ta1" in resolved
    seen = served.browser("s1").get(f"/regrade-requests/{request_id}").text
    assert f'<a href="/submissions/{submission}/report">its report</a>' in seen
    assert "Regraded: full marks." in seen and "Which cell?" in seen and "Resolved by ta1" in seen
    late = served.client.post(f"/api/regrade-requests/{request_id}/messages", headers=served.bearer("s1"),
                              json={"body": "Thanks"})
    assert late.status_code == 409 and late.json()["detail"].startswith("This request is resolved")
    assert served.client.get("/api/regrade-requests?state=open", headers=served.bearer("ta1")).json() == []


def test_requests_are_private_and_bad_ones_are_one_sentence(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    graded, queued = served.hand_in("s1")["id"], served.hand_in("s1")["id"]
    finish(served, graded, graded_a1["full"])
    api = "/api/submissions/{}/regrade-requests"
    opened = served.client.post(api.format(graded), headers=served.bearer("s1"), json={"body": REASON}).json()
    request_id = opened["id"]
    for login in ("s2",):
        assert served.client.get(f"/api/regrade-requests/{request_id}", headers=served.bearer(login)).status_code == 404
        assert served.browser(login).get(f"/regrade-requests/{request_id}").status_code == 404
        assert served.client.get("/api/regrade-requests", headers=served.bearer(login)).json() == []
        assert served.client.post(api.format(graded), headers=served.bearer(login),
                                  json={"body": REASON}).status_code == 404
    assert served.browser("s2").get("/ta/regrade-requests").status_code == 403
    refusals = {
        "already has an open regrade request": ask(served, "s1", graded),
        "has not been graded yet": ask(served, "s1", queued),
        "Write a message": ask(served, "s1", graded, reason="   "),
    }
    for sentence, page in refusals.items():
        assert sentence in page and "Traceback" not in page
    resolve = served.client.post(f"/api/ta/regrade-requests/{request_id}/resolve", headers=served.bearer("s1"),
                                 json={})
    assert resolve.status_code == 403


def test_no_request_before_the_scores_are_released(serve, graded_a1: dict[str, Path]) -> None:
    served = serve(release="when_published")
    submission = served.hand_in("s1")["id"]
    finish(served, submission, graded_a1["full"])
    refused = served.client.post(f"/api/submissions/{submission}/regrade-requests", headers=served.bearer("s1"),
                                 json={"body": REASON})
    assert refused.status_code == 403 and refused.json()["detail"] == (
        "Scores and reports are shown once the TAs publish them.")
    assert 'id="regrade-request"' not in served.browser("s1").get(f"/assignments/{A1}").text
