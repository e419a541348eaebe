"""What a client has done since it started, for ``client.stats()``: plain counters.

Increments are single ``+= 1`` on ints. Under the GIL (CPython 3.11 and 3.12) no thread switch
happens between reading and writing the attribute, so counts are exact; they are not meant as
a synchronisation primitive, only as numbers for operators.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class CallCounts:
    calls: int = 0
    """Calls that ended, either way."""
    calls_failed: int = 0
    """Calls that raised to their caller."""
    attempts: int = 0
    """Attempts that ended (retries and hedges included), either way."""
    attempts_failed: int = 0
    retries: int = 0
    """Attempts that were followed by another (granted by the policy and the budget)."""
    hedges: int = 0
    """Hedged second attempts sent."""
    ejections: int = 0
    """Times a node was taken out of rotation."""
    readmissions: int = 0
    """Times an ejected node answered a probe and came back."""

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
