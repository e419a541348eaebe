"""Which node gets the next attempt.

Round-robin over the nodes, skipping those this call already failed on, so that a retry goes to
another node when there is one. (Node health across calls, ejection and probing live in the
resilience layer built on top of this.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class RoundRobin(Generic[T]):
    __slots__ = ("_counter", "_items")

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("no nodes")
        self._items = tuple(items)
        self._counter = itertools.count()

    @property
    def items(self) -> tuple[T, ...]:
        return self._items

    def pick(self, exclude: Sequence[T] = ()) -> T:
        """The next node not in ``exclude``; when all are excluded, the next one anyway (a call
        with more attempts than nodes revisits them)."""
        items = self._items
        n = len(items)
        start = next(self._counter)  # itertools.count is atomic under the GIL
        for offset in range(n):
            item = items[(start + offset) % n]
            if item not in exclude:
                return item
        return items[start % n]
