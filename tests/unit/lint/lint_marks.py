"""The expected findings of a rule-test snippet, read from its ``!CODE`` marks: ``# !SSP101``
in Python, ``// !SSG201,SSG205`` in Go, on the line the rule must fire on."""

from __future__ import annotations

import re

_MARK = re.compile(r"(?:#|//)\s*!((?:SS[PG]\d{3}[ ,]*)+)")


def expected(source: str) -> set[tuple[int, str]]:
    marks: set[tuple[int, str]] = set()
    for number, line in enumerate(source.splitlines(), start=1):
        match = _MARK.search(line)
        if match:
            for code in re.findall(r"SS[PG]\d{3}", match.group(1)):
                marks.add((number, code))
    return marks
