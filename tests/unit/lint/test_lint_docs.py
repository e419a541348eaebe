"""docs/lint.md documents every rule: its code, pitfall, related ids and a bad and a fixed
example. The table of rules in code is the source; the doc must not fall behind it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sturdysearch.lint.rules import RULES

DOC = Path(__file__).resolve().parents[3] / "docs" / "lint.md"


def section(code: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^### {code}\n(.*?)(?=^### |^## |\Z)", text, re.S | re.M)
    assert match, f"docs/lint.md has no section for {code}"
    return match.group(1)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_is_documented(rule: object) -> None:
    from sturdysearch.lint.findings import Rule

    assert isinstance(rule, Rule)
    body = section(rule.code)
    assert f"**{rule.name}** · pitfall {rule.pitfall}" in body
    for related in rule.related:
        assert related in body, f"{rule.code}: related id {related} not named"
    assert "# bad" in body or "// bad" in body, f"{rule.code}: no bad example"
    assert "# fixed" in body or "// fixed" in body, f"{rule.code}: no fixed example"


def test_pre_commit_hook_runs_the_command() -> None:
    hooks = (DOC.parents[1] / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "id: sturdysearch-lint" in hooks and "entry: sturdysearch lint" in hooks
