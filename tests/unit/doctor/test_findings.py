"""Finding ids, anchors and the exit-code rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sturdysearch.doctor.findings import Finding, anchor, exit_code, ok

FINDING_ID = re.compile(r'(?:Finding|ok|unknown|Check|refused|_timed)\(\s*"([a-z]+\.[a-z_]+)"')
"""The first argument of every call that names a finding."""
DOC = Path(__file__).resolve().parents[3] / "docs" / "doctor.md"


def f(status: str) -> Finding:
    return Finding("x.y", status, "s")  # type: ignore[arg-type]


def test_anchor_follows_githubs_rule() -> None:
    assert anchor("reach.tcp") == "reachtcp"
    assert anchor("capacity.read_only") == "capacityread_only"
    assert anchor("Exit codes") == "exit-codes"
    assert ok("tls.expiry", "fine").link == "docs/doctor.md#tlsexpiry"


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["ok"], 0),
        (["ok", "unknown"], 0),
        (["ok", "warn"], 1),
        (["warn", "fail", "ok"], 2),
        (["unknown"], 3),
        ([], 3),
    ],
)
def test_exit_code_is_the_worst_status(statuses: list[str], code: int) -> None:
    assert exit_code([f(s) for s in statuses]) == code


def test_nothing_reachable_is_unknown_even_with_failures() -> None:
    assert exit_code([f("fail"), f("ok")], reachable=False) == 3


def test_a_status_outside_the_four_is_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        f("bad")


def test_every_finding_id_has_a_section_in_the_docs() -> None:
    """Each id the checks can emit is a heading of docs/doctor.md, so every link resolves."""
    source = Path(__file__).resolve().parents[3] / "src" / "sturdysearch" / "doctor"
    ids = set()
    for path in source.glob("*.py"):
        ids |= set(FINDING_ID.findall(path.read_text()))
    headings = {anchor(h) for h in re.findall(r"^### (.+)$", DOC.read_text(), re.MULTILINE)}
    missing = sorted(i for i in ids if anchor(i) not in headings)
    assert not missing, f"docs/doctor.md lacks sections for {missing}"
    assert len(ids) > 30
