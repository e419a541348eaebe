"""``sturdysearch lint``: the seed's pitfalls found in Python and Go code that uses
Elasticsearch/OpenSearch clients.

``lint_paths`` runs the checkers over files and directories; ``RULES`` is the catalogue every
output and ``docs/lint.md`` describe. The Python checker needs only the standard library; the Go
checker needs the ``lint`` extra (tree-sitter and its Go grammar).
"""

from sturdysearch.lint.findings import Finding, Rule
from sturdysearch.lint.rules import BY_CODE, RULES, resolve_codes
from sturdysearch.lint.runner import LintResult, LintUsageError, lint_paths

__all__ = [
    "BY_CODE",
    "RULES",
    "Finding",
    "LintResult",
    "LintUsageError",
    "Rule",
    "lint_paths",
    "resolve_codes",
]
