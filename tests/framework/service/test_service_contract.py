"""The API keeps to its OpenAPI document: one error model on every route, constraints in the schema, Schemathesis
(an independent fuzzer) finding nothing with a student's or a TA's token, and /docs working offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
from service_harness import (
    A1,
    A2,
    EXAMPLES,
    EXAMPLES_DIR,
    Served,
    ServiceProcess,
    finish_grading,
    make_course_dir,
    missing,
)

from grader.course import load_course
from grader.service.context import ServiceContext
from grader.service.db import open_database

pytestmark = pytest.mark.service
SCHEMATHESIS = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # the run's bound and the upload's expected refusals
RUN_SECONDS = 300  # one Schemathesis run took 12-40 s on the shared 2-core machine
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""")
CSS_URL = re.compile(r"""url\(["']?([^)"']+)""")


@pytest.fixture
def contract_service(tmp_path: Path, new_database: Callable[[], str | None],
                     graded_a1: dict[str, Path]) -> Iterator[tuple[str, dict[str, str]]]:
    """`grader serve` on 127.0.0.1 for a course offering a1 and a2 (with a leaderboard), where s1 and s2 have each
    handed in a graded a1 submission (#1 and #2), so that the fuzzer's ids and assignment ids find real data."""
    if not SCHEMATHESIS.is_file():
        missing("Schemathesis is not installed (pip install -c constraints.txt -e '.[dev]')")
    folder = tmp_path / "course"
    # Uploads are not rationed here: the fuzzer's own uploads must not use up the quota for the rest of the run.
    settings, tokens = make_course_dir(folder, new_database(), {A1: {"submissions_per_day": 10_000},
                                                                A2: {"leaderboard": True}})
    service = ServiceProcess(folder, settings.database_url)
    service.start()
    try:
        context = ServiceContext(settings, load_course(folder), open_database(settings.database), jobs=None)
        for login, example in (("s1", "full"), ("s2", "weak")):
            source = EXAMPLES_DIR / A1 / EXAMPLES[example] / "cifar_dataset.py"
            response = httpx2.post(f"{service.url}/api/assignments/{A1}/submissions", timeout=30,
                                   headers={"Authorization": f"Bearer {tokens[login]}"},
                                   files={"file": ("cifar_dataset.py", source.read_bytes())})
            assert response.status_code == 201, response.text
            finish_grading(context, response.json()["id"], graded_a1[example])
        yield service.url, tokens
    finally:
        service.stop()


@pytest.mark.parametrize("login", ["s1", "ta1"])
def test_schemathesis_finds_no_failure(contract_service: tuple[str, dict[str, str]], tmp_path: Path,
                                       login: str) -> None:
    """Every check in every phase that has cases (coverage, fuzzing, stateful; the document has no examples), no
    operation excluded: the API has no route that logs out, reissues a token or deletes, and uploads are not
    rationed, so no request spoils the rest of the run."""
    url, tokens = contract_service
    summary = tmp_path / "schemathesis.json"
    result = subprocess.run(
        [SCHEMATHESIS, "--config-file", CONFIG, "--no-color", "run", f"{url}/openapi.json", "--checks", "all",
         "--header", f"Authorization: Bearer {tokens[login]}", "--report", "json", "--report-json-path", summary],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_SECONDS)  # cwd: Schemathesis' own files
    assert result.returncode == 0, f"Schemathesis failed as {login}:\n{result.stdout[-20000:]}{result.stderr}"
    report = json.loads(summary.read_text())
    operations = sum(len(methods) for methods in httpx2.get(f"{url}/openapi.json", timeout=30).json()["paths"].values())
    assert operations >= 15 and report["operations"]["tested"] == operations, report["operations"]
    assert {phase: report["phases"][phase]["status"] for phase in ("coverage", "fuzzing", "stateful")} == {
        "coverage": "success", "fuzzing": "success", "stateful": "success"}, report["phases"]
    assert report["test_cases"]["generated"] >= 20 * operations and report["test_cases"]["with_failures"] == 0
    assert (report["failures"], report["errors"]) == ([], [])


def test_every_route_declares_one_error_model(serve) -> None:
    document = serve().client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, methods in document["paths"].items():
        assert path.startswith("/api/")
        for method, operation in methods.items():
            errors = {code: response for code, response in operation["responses"].items() if code.startswith("4")}
            assert {"401", "403", "404", "413", "422"} <= set(errors), f"{method} {path}"
            for code, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ApiError"}, f"{method} {path} {code}"
    upload = document["paths"]["/api/assignments/{assignment_id}/submissions"]["post"]
    assert {"400", "415", "429"} <= set(upload["responses"])
    assert upload["parameters"][0]["schema"]["enum"] == [A1]  # the offered assignments, by their ids


def test_refusals_are_one_sentence_in_the_error_model(serve) -> None:
    served = serve()
    student, ta = served.bearer("s1"), served.bearer("ta1")
    refusals = [
        (served.client.get("/api/submissions/0", headers=student), 422, "path.submission_id"),
        (served.client.get(f"/api/submissions/{2**40}", headers=student), 422, "less than or equal to 2147483647"),
        (served.client.put("/api/me/pseudonym", headers=student, json={"pseudonym": 5}), 422, "body.pseudonym"),
        (served.client.put("/api/me/pseudonym", headers=student, content=b"{"), 422, "body"),
        (served.client.put("/api/me/pseudonym", headers=ta, json={"pseudonym": "Night Owl"}), 403, "students only"),
        (served.client.get("/api/assignments/nope/submissions", headers=student), 404, "no assignment called"),
        (served.client.get("/api/me"), 401, "Bearer TOKEN"),
        (served.client.get("/api/nothing/here", headers=student), 404, "The API has no /api/nothing/here"),
    ]
    for response, status, words in refusals:
        assert response.status_code == status, response.text
        assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str)
        assert words in response.json()["detail"] and response.json()["detail"].endswith("."), response.text
    too_big = served.client.put("/api/me/pseudonym", headers=student, content=b" " * (2 * 2**20))
    assert too_big.status_code == 413 and "larger than the course's limit of" in too_big.json()["detail"]
    wrong_method = served.client.delete(f"/api/assignments/{A1}/submissions", headers=student)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST"  # both routes at the path, not only the first one's
    assert wrong_method.json() == {"detail": f"/api/assignments/{A1}/submissions answers GET, POST, not DELETE."}


def test_a_schema_valid_pseudonym_is_accepted_and_a_taken_one_conflicts(serve) -> None:
    served = serve()
    document = served.client.get("/openapi.json").json()
    pattern = document["components"]["schemas"]["Pseudonym"]["properties"]["pseudonym"]["pattern"]
    for pseudonym in ("Night Owl", "a.b", "x y", "-_.", "A" * 40, ""):
        assert re.fullmatch(pattern, pseudonym)
        response = served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": pseudonym})
        assert response.status_code == 200, response.text
        assert response.json()["pseudonym"] == (pseudonym or None)
    for pseudonym in ("ab", " Night Owl", "Night  Owl", "Night Owl ", "<b>x</b>", "A" * 41):
        response = served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": pseudonym})
        assert response.status_code == 422, pseudonym
    served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": "Night Owl"})
    taken = served.client.put("/api/me/pseudonym", headers=served.bearer("s2"), json={"pseudonym": "Night Owl"})
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]


def test_api_docs_load_nothing_from_other_hosts(serve) -> None:
    served: Served = serve()
    response = served.client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "http" not in policy and "default-src 'self'" in policy  # a browser may load nothing from elsewhere
    base = str(response.url)
    pending = [urljoin(base, a or b) for a, b in REFERENCE.findall(response.text)]
    assert len(pending) >= 4, response.text  # Swagger UI's script and CSS, the favicon, the OpenAPI document
    fetched = set()
    while pending:
        url = pending.pop()
        if url in fetched or url.startswith("data:"):
            continue
        assert urlsplit(url).netloc == urlsplit(base).netloc, f"/docs refers to {url}"
        asset = served.client.get(url)
        assert asset.status_code == 200 and asset.content, url
        fetched.add(url)
        if url.endswith(".css"):
            pending += [urljoin(url, ref) for ref in CSS_URL.findall(asset.text)]
    assert any(url.endswith("/openapi.json") for url in fetched)
    assert any(url.endswith(".js") for url in fetched)


@pytest.mark.browser
def test_api_docs_render_in_a_browser_that_reaches_no_other_host(chromium, tmp_path: Path) -> None:
    """Swagger UI draws every operation in chromium while any request to another host is aborted, and the page's
    Content Security Policy blocks nothing (it would block anything from elsewhere)."""
    folder = tmp_path / "course"
    make_course_dir(folder, None, {A1: {}})
    service = ServiceProcess(folder)
    service.start()
    elsewhere: list[str] = []
    context = chromium.new_context()
    try:
        def only_this_server(route) -> None:  # a Playwright route
            if urlsplit(route.request.url).netloc == urlsplit(service.url).netloc:
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", only_this_server)
        page = context.new_page()
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text) if "Content Security" in message.text
                else None)
        operations = len(httpx2.get(f"{service.url}/openapi.json", timeout=30).json()["paths"])
        page.goto(f"{service.url}/docs")
        page.wait_for_selector(".opblock")
        assert page.locator(".opblock").count() >= operations  # one per operation; some paths have two
    finally:
        context.close()
        service.stop()
    assert elsewhere == [] and refused == []
