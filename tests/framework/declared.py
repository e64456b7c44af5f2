"""The `[data]` the bundled CIFAR-2 assignments declare, for tests that load the images directly."""

from __future__ import annotations

from grader.config import Data, load_assignment


def declared_data(assignment_id: str) -> Data:
    """The `[data]` section of a bundled assignment."""
    data = load_assignment(assignment_id).data
    if data is None:
        raise ValueError(f"{assignment_id} declares no [data]")
    return data


CIFAR2 = declared_data("a2_ffn")
