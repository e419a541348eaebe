"""What a lint rule is and what it reports.

A ``Rule`` is data (code, the seed's pitfall it comes from, the generic rule it relates to) so
that the text, JSON and SARIF outputs and ``docs/lint.md`` all describe a rule the same way; a
``Finding`` is one place in one file where a rule fired.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    language: str  # "python" or "go"
    pitfall: int  # the seed's pitfall number (1-12)
    related: tuple[str, ...]  # generic rule ids (Bandit, Ruff, gosec, semgrep, golangci-lint)
    summary: str


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int  # 1-based
    column: int  # 1-based
    code: str
    message: str
