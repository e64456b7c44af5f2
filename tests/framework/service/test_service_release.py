"""When students see their scores: `release` per assignment in course.toml (immediately, after_due, when_published
with a TA's publish button), on the pages, the API, the leaderboard and the Canvas CSV; TAs always see everything;
hidden-check details never reach students."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_harness import A1, Served, csrf_of, finish

pytestmark = pytest.mark.service
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"


def canvas_grades(served: Served) -> dict[str, str]:
    text = served.client.get(f"/api/ta/assignments/{A1}/canvas.csv", headers=served.bearer("ta1")).text
    return {line[2]: line[5] for line in list(csv.reader(io.StringIO(text)))[2:]}


def ta_grades(served: Served) -> dict[str, str]:
    """The Grade column of the TA class table (as the page refreshes it), by student."""
    rows = served.browser("ta1").get(f"/ta/assignments/{A1}/rows").text
    cells = re.findall(r'<a href="[^"]*/students/(s\d)">.*?<td class="num">([^<]*(?:<span[^>]*>[^<]*</span>)?)</td>\s*'
                       r'<td class="num">[^<]*</td>\s*<td><a href="/ta/submissions', rows, re.S)
    return {login: re.sub(r"<.*?>", "", grade).strip() for login, grade in cells}


def student_sees(served: Served, login: str, submission: int) -> dict[str, object]:
    """What the student reaches of a graded submission: its API view, report statuses and the page's sentence."""
    api = served.client.get(f"/api/submissions/{submission}", headers=served.bearer(login)).json()
    listed = served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer(login)).json()[0]
    report = served.client.get(f"/api/submissions/{submission}/report", headers=served.bearer(login))
    browser = served.browser(login)
    page = browser.get(f"/assignments/{A1}").text
    return {"total": api["total"], "listed_final": listed["final"], "released": api["released"],
            "api_report": report.status_code, "report_detail": report.json().get("detail"),
            "page_report": browser.get(f"/submissions/{submission}/report").status_code,
            "page_score": "100 / 100" in page, "page_sentence": "Scores and reports are shown" in page,
            "leaderboard": served.client.get(f"/api/assignments/{A1}/leaderboard",
                                             headers=served.bearer(login)).status_code}


def test_when_published_withholds_scores_until_a_ta_publishes_and_unpublishes(
        serve, graded_a1: dict[str, Path]) -> None:
    served = serve(release="when_published", leaderboard=True)
    submission = served.hand_in("s1")["id"]
    finish(served, submission, graded_a1["full"])
    withheld = student_sees(served, "s1", submission)
    assert withheld == {"total": None, "listed_final": None, "released": False, "api_report": 403,
                        "report_detail": "Scores and reports are shown once the TAs publish them.",
                        "page_report": 403, "page_score": False, "page_sentence": True, "leaderboard": 403}
    assert canvas_grades(served) == {"s1": "", "s2": ""}
    ta, bearer = served.browser("ta1"), served.bearer("ta1")  # TAs see everything meanwhile
    assert served.client.get(f"/api/ta/submissions/{submission}", headers=bearer).json()["final"] == 100.0
    assert served.client.get(f"/api/ta/submissions/{submission}/report", headers=bearer).status_code == 200
    assert ta.get(f"/api/assignments/{A1}/leaderboard", headers=bearer).status_code == 200
    assert ta.get(f"/assignments/{A1}/leaderboard").status_code == 200
    assert served.browser("s1").get(f"/assignments/{A1}/leaderboard").status_code == 403

    page = ta.get(f"/ta/assignments/{A1}")
    assert "Not published" in page.text and ta_grades(served) == {"s1": "100 (not released)"}
    landed = ta.post(f"/ta/assignments/{A1}/publish", data={"csrf": csrf_of(page.text)}).text
    assert "Published:" in landed and "Published by ta1" in landed
    shown = student_sees(served, "s1", submission)
    assert shown == {"total": 100.0, "listed_final": 100.0, "released": True, "api_report": 200,
                     "report_detail": None, "page_report": 200, "page_score": True, "page_sentence": False,
                     "leaderboard": 200}
    assert canvas_grades(served) == {"s1": "100", "s2": ""}

    unpublished = served.client.delete(f"/api/ta/assignments/{A1}/publication", headers=bearer).json()
    assert unpublished["published"] is False
    assert student_sees(served, "s1", submission)["api_report"] == 403


def test_after_due_follows_each_students_own_due_date(serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(release="after_due", leaderboard=True, due=now - timedelta(hours=1),
                   hard_deadline=now + timedelta(days=2))
    first, second = served.hand_in("s1")["id"], served.hand_in("s2")["id"]
    finish(served, first, graded_a1["full"])
    finish(served, second, graded_a1["full"])
    assert student_sees(served, "s1", first)["total"] == 100.0
    assert canvas_grades(served) == {"s1": "90", "s2": "90"}  # an hour late: 10%

    bearer = served.bearer("ta1")
    extended = (now + timedelta(days=1)).replace(microsecond=0)
    served.client.put(f"/api/ta/extensions/{A1}/s1", headers=bearer, json={"due": extended.isoformat()})
    s1 = student_sees(served, "s1", first)
    assert (s1["total"], s1["api_report"], s1["leaderboard"]) == (None, 403, 403)
    assert str(s1["report_detail"]).startswith("Scores and reports are shown after the due date, ")
    s2 = student_sees(served, "s2", second)
    assert (s2["total"], s2["api_report"], s2["leaderboard"]) == (100.0, 200, 403)  # s1 is still before theirs
    assert canvas_grades(served) == {"s1": "", "s2": "90"}
    assert ta_grades(served) == {"s1": "100 (not released)", "s2": "90"}  # why Canvas has no grade for s1
    assert served.client.put(f"/api/ta/assignments/{A1}/publication", headers=bearer).json()["published"] is True
    assert student_sees(served, "s1", first)["total"] is None  # after_due does not follow publishing


def test_published_reports_still_hide_hidden_check_details(serve, graded_a1: dict[str, Path]) -> None:
    served = serve(release="when_published")
    submission = served.hand_in("s1", example="weak")["id"]
    finish(served, submission, graded_a1["weak"])
    bearer = served.bearer("ta1")
    assert served.client.put(f"/api/ta/assignments/{A1}/publication", headers=bearer).json()["published"] is True
    full = served.client.get(f"/api/ta/submissions/{submission}/report", headers=bearer).json()
    secret = next(c for c in full["checks"] if c["outcome"] != "passed")["nodeid"].split("::")[-1]
    student_json = served.client.get(f"/api/submissions/{submission}/report", headers=served.bearer("s1"))
    student_page = served.browser("s1").get(f"/submissions/{submission}/report")
    assert student_json.status_code == student_page.status_code == 200
    assert secret not in student_json.text and secret not in student_page.text
    assert "Hidden checks" not in student_page.text
