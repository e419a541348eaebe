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


def _suppressed(finding: Finding, marks: dict[int, set[str] | None]) -> bool:
    if finding.line not in marks:
        return False
    codes = marks[finding.line]
    return codes is None or finding.code in codes


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
        raw.extend(f for f in found if not _suppressed(f, marks))
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
            marks_by_path = {p: nolint_lines(s) for p, s in sources}
            for f in check_go_package(sources, parser):
                if not _suppressed(f, marks_by_path[f.path]):
                    raw.append(f)
    result.findings = sorted(f for f in set(raw) if f.code in chosen)
    return result
