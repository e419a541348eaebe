"""What ``sturdysearch doctor`` reports: findings, their statuses and the exit code.

A finding is one judgement with a stable id (``reach.tcp``, ``tls.expiry``...), so that
monitoring, scripts and the documentation can refer to it; its ``meaning`` and ``fix`` say
what an operator needs to act, and ``link`` points at its section of ``docs/doctor.md``.

The exit code follows the monitoring-plugin convention (Nagios, Icinga, Sensu): 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN. ``unknown`` findings (an API the server lacks, a privilege
the user lacks) do not raise the code on their own, because some are normal on every cluster
of a kind (OpenSearch has no deprecation API); the run is 3 only when nothing could be checked
at all: no node answered, or every finding is ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "unknown"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "unknown")

EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2
EXIT_UNKNOWN = 3

DOCS_URL = "docs/doctor.md"
"""Where the findings are documented, relative to the project root (as the README links it)."""

_NOT_ANCHOR = re.compile(r"[^\w\- ]")


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation other than ``-`` and
    ``_`` dropped, spaces turned into ``-`` (``reach.tcp`` -> ``reachtcp``)."""
    return _NOT_ANCHOR.sub("", heading.strip().lower()).replace(" ", "-")


def doc_link(finding_id: str) -> str:
    return f"{DOCS_URL}#{anchor(finding_id)}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One judgement: ``id`` names the check, ``node`` the node it is about (``None`` for the
    cluster or the client), ``summary`` one line for the table; ``meaning`` and ``fix`` are
    printed for every finding that is not ``ok``."""

    id: str
    status: Status
    summary: str
    meaning: str = ""
    fix: str = ""
    node: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """Numbers behind the judgement (measured milliseconds, percentages...), for ``--json``."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    @property
    def link(self) -> str:
        return doc_link(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "node": self.node,
            "summary": self.summary,
            "meaning": self.meaning,
            "fix": self.fix,
            "link": self.link,
            "details": dict(self.details),
        }


def ok(id: str, summary: str, *, node: str | None = None, **details: Any) -> Finding:
    return Finding(id, "ok", summary, node=node, details=details)


def unknown(
    id: str, summary: str, meaning: str = "", fix: str = "", *, node: str | None = None
) -> Finding:
    return Finding(id, "unknown", summary, meaning, fix, node=node)


def exit_code(findings: Iterable[Finding], *, reachable: bool = True) -> int:
    """The worst status as a monitoring plugin's exit code; 3 when nothing could be checked
    (``reachable=False``: no node answered), or when there is nothing but ``unknown``."""
    statuses = {f.status for f in findings}
    if not reachable or not statuses or statuses == {"unknown"}:
        return EXIT_UNKNOWN
    if "fail" in statuses:
        return EXIT_FAIL
    if "warn" in statuses:
        return EXIT_WARN
    return EXIT_OK
