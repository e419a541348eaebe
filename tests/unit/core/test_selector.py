"""Round-robin node selection (``sturdysearch._core.selector``)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from sturdysearch._core.selector import RoundRobin


def test_empty_refused() -> None:
    with pytest.raises(ValueError, match="no nodes"):
        RoundRobin([])


def test_items() -> None:
    rr = RoundRobin(["a", "b"])
    assert rr.items == ("a", "b")


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_round_robin_order_and_fairness(n: int) -> None:
    nodes = [f"n{i}" for i in range(n)]
    rr = RoundRobin(nodes)
    picks = [rr.pick() for _ in range(n * 50)]
    assert picks[:n] == nodes
    assert picks == nodes * 50
    assert set(Counter(picks).values()) == {50}


@pytest.mark.parametrize(
    ("nodes", "exclude"),
    [
        (["a", "b", "c"], ["a"]),
        (["a", "b", "c"], ["b"]),
        (["a", "b", "c"], ["a", "c"]),
        (["a", "b", "c", "d", "e"], ["b", "d"]),
    ],
)
def test_exclude_never_picked_while_others_remain(nodes: list[str], exclude: list[str]) -> None:
    rr = RoundRobin(nodes)
    picks = [rr.pick(exclude) for _ in range(100)]
    assert not set(picks) & set(exclude)
    assert set(picks) == set(nodes) - set(exclude)


def test_all_excluded_still_picks_in_turn() -> None:
    rr = RoundRobin(["a", "b", "c"])
    assert [rr.pick(["a", "b", "c"]) for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_single_node_excluded_is_revisited() -> None:
    rr = RoundRobin(["only"])
    assert rr.pick(["only"]) == "only"


def test_exclude_does_not_stall_rotation() -> None:
    rr = RoundRobin(["a", "b", "c"])
    assert rr.pick() == "a"
    assert rr.pick(["b"]) == "c"  # b skipped
    assert rr.pick() == "c"  # the counter moved on by one pick, not two
    assert rr.pick() == "a"


def test_retry_goes_to_another_node() -> None:
    rr = RoundRobin(["a", "b", "c"])
    for _ in range(30):
        first = rr.pick()
        second = rr.pick([first])
        third = rr.pick([first, second])
        assert len({first, second, third}) == 3


def test_concurrent_picks_are_fair() -> None:
    nodes = ["a", "b", "c", "d"]
    rr = RoundRobin(nodes)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        local = Counter(rr.pick() for _ in range(1000))
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == Counter({n: 2000 for n in nodes})
