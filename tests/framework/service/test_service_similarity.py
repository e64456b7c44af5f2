"""The similarity stage on the service's TA pages: two students who handed in the same file are listed with a
side-by-side view, linked from the class summary too; students get neither page."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_harness import A1, finish

pytestmark = pytest.mark.service


def test_tas_see_the_copied_pair_side_by_side_and_students_do_not(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    finish(served, served.hand_in("s2")["id"], graded_a1["full"])
    ta = served.browser("ta1")
    assert f'href="/ta/assignments/{A1}/similarity"' in ta.get(f"/ta/assignments/{A1}").text
    page = ta.get(f"/ta/assignments/{A1}/similarity")
    view = f"/ta/assignments/{A1}/_similarity/s1--s2.html"
    assert page.status_code == 200 and f'href="{view}"' in page.text and "100.0%" in page.text
    shown = ta.get(view)
    assert shown.status_code == 200 and "<mark>" in shown.text and "For TAs only" in shown.text
    assert shown.headers["content-security-policy"].startswith("default-src 'none'")
    summary = ta.get(f"/ta/assignments/{A1}/summary").text
    assert 'href="_similarity/s1--s2.html"' in summary  # lands on the view above, relative to .../summary
    assert ta.get(f"/ta/assignments/{A1}/_similarity/..%2Fgrades.csv").status_code == 404
    student = served.browser("s1")
    for path in (f"/ta/assignments/{A1}/similarity", view):
        assert student.get(path, follow_redirects=False).status_code == 403
    assert "similarity" not in student.get(f"/assignments/{A1}").text.lower()
