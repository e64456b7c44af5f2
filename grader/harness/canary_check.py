"""A check that must fail: if the results say it passed, the submission tampered with the test run."""

import os


def test_canary() -> None:
    nonce = os.environ.get("GRADER_CANARY", "")
    assert not nonce, f"canary {nonce}"
