"""Finding the files, running the checkers, and applying ``--select``, ``--ignore`` and the
inline suppressions (``# noqa: CODE`` in Python, ``//nolint:CODE`` in Go)."""

from __future__ import annotations

import fnmatch
import io
import os
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sturdysearch.lint.findings import Finding
from sturdysearch.lint.golang import check_go_package, load_parser, nolint_lines
from sturdysearch.lint.python import check_python
from sturdysearch.lint.rules import BY_CODE

SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        "site-packages",
        "vendor",
        "build",
        "dist",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    }
)
_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)


class LintUsageError(Exception):
    """Bad paths or a missing extra: the run cannot judge what it was asked to."""


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: reason", printed to stderr


def discover(paths: Iterable[str], exclude: Iterable[str] = ()) -> tuple[list[Path], list[Path]]:
    """(Python files, Go files) under the given paths; a named file is always taken."""
    patterns = list(exclude)
    py: list[Path] = []
    go: list[Path] = []

    def excluded(p: Path) -> bool:
        text = p.as_posix()
        return any(fnmatch.fnmatch(text, pat) or fnmatch.fnmatch(p.name, pat) for pat in patterns)

    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise LintUsageError(f"{raw}: no such file or directory")
        if root.is_file():
            if root.suffix == ".py":
                py.append(root)
            elif root.suffix == ".go":
                go.append(root)
            else:
                raise LintUsageError(f"{raw}: not a .py or .go file")
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIPPED_DIRS
                and not d.startswith(".")
                and not excluded(Path(dirpath) / d)
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if excluded(path):
                    continue
                if name.endswith(".py"):
                    py.append(path)
                elif name.endswith(".go"):
                    go.append(path)
    return sorted(set(py)), sorted(set(go))


def python_noqa(source: str) -> dict[int, set[str] | None]:
    found: dict[int, set[str] | None] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        match = _NOQA.search(tok.string)
        if match is None:
            continue
        codes = match.group("codes")
        line = tok.start[0]
        if not codes:
            found[line] = None
        else:
            found[line] = {c.upper() for c in re.split(r"[\s,]+", codes) if c}
    return found


_NOSEC = re.compile(r"#nosec\b(?P<codes>[\sA-Z0-9,-]*)", re.IGNORECASE)


def nosec_lines(source: str, same_line_only: bool) -> dict[int, set[str] | None]:
    """Bandit's ``# nosec B501`` and gosec's ``// #nosec G402``, honoured for the rules that
    relate to those ids: code already reviewed for the generic rule is not flagged again.
    gosec users put the comment on the line above as often as on the line itself."""
    found: dict[int, set[str] | None] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        if "nosec" not in line.lower():
            continue
        match = _NOSEC.search(line.replace("# nosec", "#nosec"))
        if match is None:
            continue
        codes = {c.upper() for c in re.split(r"[\s,]+", match.group("codes")) if c}
        value: set[str] | None = codes or None
        targets = (
            [number] if same_line_only or line.split("//")[0].strip() else [number, number + 1]
        )
        for target in targets:
            found[target] = value
    return found


def _suppressed(finding: Finding, *marks: dict[int, set[str] | None]) -> bool:
    """A mark names the finding's code or a generic id its rule relates to (``# noqa: S501``)."""
    related = set(BY_CODE[finding.code].related)
    for table in marks:
        if finding.line not in table:
            continue
        codes = table[finding.line]
        if codes is None or finding.code in codes or related & codes:
            return True
    return False


def lint_paths(
    paths: Iterable[str],
    select: set[str] | None = None,
    ignore: set[str] | None = None,
    exclude: Iterable[str] = (),
) -> LintResult:
    chosen = set(BY_CODE) if select is None else set(select)
    chosen -= ignore or set()
    py_files, go_files = discover(paths, exclude)
    result = LintResult(files=len(py_files) + len(go_files))
    raw: list[Finding] = []
    for path in py_files:
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            result.skipped.append(f"{path}: not readable as UTF-8 ({exc})")
            continue
        try:
            found = check_python(source, str(path))
        except SyntaxError as exc:
            result.skipped.append(f"{path}: not checked, syntax error at line {exc.lineno}")
            continue
        marks = python_noqa(source)
        nosec = nosec_lines(source, same_line_only=True)
        raw.extend(f for f in found if not _suppressed(f, marks, nosec))
    if go_files:
        try:
            parser = load_parser()
        except ImportError as exc:
            raise LintUsageError(
                f"{len(go_files)} Go file(s) to check but tree-sitter is not installed ({exc}); "
                f"pip install 'sturdysearch[lint]', or name only Python paths"
            ) from exc
        by_dir: dict[Path, list[Path]] = {}
        for path in go_files:
            by_dir.setdefault(path.parent, []).append(path)
        for _directory, files in sorted(by_dir.items()):
            sources = [(str(p), p.read_bytes()) for p in files]
            marks_by_path = {
                p: (nolint_lines(s), nosec_lines(s.decode("utf-8", "replace"), False))
                for p, s in sources
            }
            for f in check_go_package(sources, parser):
                if not _suppressed(f, *marks_by_path[f.path]):
                    raw.append(f)
    result.findings = sorted(f for f in set(raw) if f.code in chosen)
    return result
