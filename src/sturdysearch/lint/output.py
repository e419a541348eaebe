"""The three output formats: ruff-like text, a JSON list, and SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sturdysearch.lint.findings import Finding
from sturdysearch.lint.rules import BY_CODE, RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/sturdysearch/sturdysearch/blob/main/docs/lint.md"


def as_text(findings: list[Finding]) -> str:
    lines = [f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}" for f in findings]
    if findings:
        counts = Counter(f.code for f in findings)
        summary = ", ".join(f"{code} x{n}" for code, n in sorted(counts.items()))
        noun = "finding" if len(findings) == 1 else "findings"
        lines.append(f"Found {len(findings)} {noun} ({summary}).")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines) + "\n"


def as_json(findings: list[Finding]) -> str:
    items = [
        {
            "path": f.path,
            "line": f.line,
            "column": f.column,
            "code": f.code,
            "name": BY_CODE[f.code].name,
            "message": f.message,
            "pitfall": BY_CODE[f.code].pitfall,
            "related": list(BY_CODE[f.code].related),
        }
        for f in findings
    ]
    return json.dumps(items, indent=2) + "\n"


def as_sarif(findings: list[Finding], version: str) -> str:
    used = sorted({f.code for f in findings})
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "helpUri": f"{INFORMATION_URI}#{rule.code.lower()}",
            "defaultConfiguration": {"level": "warning"},
            "properties": {
                "pitfall": rule.pitfall,
                "language": rule.language,
                "related": list(rule.related),
                "tags": ["security" if rule.pitfall == 3 else "reliability"],
            },
        }
        for rule in RULES
    ]
    index = {rule.code: i for i, rule in enumerate(RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "warning",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": Path(f.path).as_posix()},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in findings
    ]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sturdysearch-lint",
                        "version": version,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"rulesWithFindings": used},
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
