"""The layering that ``docs/architecture.md`` describes, checked on the source (``ast``, nothing
is imported):

* ``_core`` decides and does no I/O: it imports no driver (``_sync``, ``_async``), nothing that
  does I/O on the drivers' behalf (``_io``), no clock, random source, thread or event loop, and
  calls no wall clock (``datetime.now()``...). Time and random numbers reach it as arguments or
  as the callables a driver hands in (``TransportBase(clock=..., rand=...)``).
* ``_sync`` and ``_async`` never import each other; ``_io`` (shared by both) imports neither.

``import sturdysearch`` loading no asyncio is checked in ``test_public_api``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sturdysearch"

CORE_FORBIDDEN = (
    "sturdysearch._sync",
    "sturdysearch._async",
    "sturdysearch._io",
    "sturdysearch.cli",
    "sturdysearch.testing",
    "time",
    "random",
    "secrets",
    "uuid",
    "threading",
    "asyncio",
    "concurrent",
    "socket",
    "select",
    "selectors",
    "subprocess",
)
"""What ``_core`` may not import: the drivers and their I/O, clocks and random sources,
threads and loops, sockets and processes."""

WALL_CLOCK_CALLS = frozenset({"now", "utcnow", "today", "urandom", "getrandbits"})
"""Attribute calls that read a clock or a random source whatever module they come from."""


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``, those under
    ``TYPE_CHECKING`` and inside functions included."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # ``from . import x`` in a.b.c means a.b; in a.b's __init__ it means a.b.
                anchor = module_name(path).split(".")
                if path.name != "__init__.py":
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def offences(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules(folder):
        for line, name in imports(path):
            for prefix in forbidden:
                if within(name, prefix):
                    found.append(f"{path.relative_to(PACKAGE)}:{line}: imports {name}")
    return sorted(set(found))


def test_every_folder_is_checked() -> None:
    for folder in ("_core", "_sync", "_async", "_io"):
        assert modules(folder), folder


def test_the_core_imports_no_driver_clock_or_random_source() -> None:
    assert offences("_core", CORE_FORBIDDEN) == []


def test_the_core_calls_no_wall_clock_or_random_source() -> None:
    found = []
    for path in modules("_core"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WALL_CLOCK_CALLS
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.func.attr}()")
    assert found == []


@pytest.mark.parametrize(
    ("folder", "other"),
    [
        ("_sync", ("sturdysearch._async",)),
        ("_async", ("sturdysearch._sync",)),
        ("_io", ("sturdysearch._sync", "sturdysearch._async")),
    ],
)
def test_the_drivers_never_import_each_other(folder: str, other: tuple[str, ...]) -> None:
    assert offences(folder, other) == []


def test_the_checker_sees_what_it_forbids(tmp_path: Path) -> None:
    """The import walk resolves relative imports and finds imports in any block."""
    sample = PACKAGE / "_core" / "driver.py"
    names = {name for _, name in imports(sample)}
    assert "sturdysearch._core.budget" in names
    assert "sturdysearch.errors.TransportError" in names
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sturdysearch._sync.pool import NodePool\n"
        "def f():\n    import time\n"
    )
    seen = {name for _, name in imports(fake)}
    assert {"sturdysearch._sync.pool", "time"} <= seen
