"""Spares: started things kept by key for the next submission, the unusable ones ended on the way."""

from __future__ import annotations

from grader.spares import Spares


def test_a_spare_serves_only_its_key_and_the_unusable_are_ended() -> None:
    ended: list[str] = []
    spares: Spares[str] = Spares(ended.append)
    for spare in ("old", "fresh", "stale"):
        spares.put("a2", spare)
    spares.put("a3", "other")
    assert spares.take("a1") is None
    assert spares.take("a2", usable=lambda spare: spare == "fresh") == "fresh"
    assert ended == ["stale"], "an unusable spare met on the way is ended, the rest still wait"
    assert spares.take("a2") == "old"
    spares.close()
    assert ended == ["stale", "other"]
    assert spares.take("a3") is None, "close ends every spare"
