"""Started things kept for the next submission that can use them: warm sandboxes, waiting containers."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Spares(Generic[T]):
    """Spares by key (what a submission needs of them); whatever is still spare is ended by `close` or at exit."""

    def __init__(self, end: Callable[[T], None]) -> None:
        self._end = end
        self._lock = threading.Lock()
        self._spare: dict[Hashable, list[T]] = {}
        atexit.register(self.close)

    def take(self, key: Hashable, usable: Callable[[T], bool] = lambda spare: True) -> T | None:
        """A usable spare for `key`, or None; unusable ones met on the way are ended."""
        unusable = []
        with self._lock:
            waiting = self._spare.get(key, [])
            while waiting:
                spare = waiting.pop()
                if usable(spare):
                    break
                unusable.append(spare)
            else:
                spare = None
        for stale in unusable:
            self._end(stale)
        return spare

    def put(self, key: Hashable, spare: T) -> None:
        with self._lock:
            self._spare.setdefault(key, []).append(spare)

    def close(self) -> None:
        with self._lock:
            spares = [spare for waiting in self._spare.values() for spare in waiting]
            self._spare.clear()
        for spare in spares:
            self._end(spare)
