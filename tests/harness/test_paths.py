"""Cache location (XDG) and whether the node user can reach a directory."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sturdysearch.testing.paths import cache_root, traversable_by


def test_cache_root_follows_xdg(tmp_path: Path) -> None:
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "sturdysearch"
    assert cache_root({"STURDY_CACHE_DIR": "/x", "XDG_CACHE_HOME": "/y"}) == Path("/x")
    # The XDG spec says relative paths are invalid and must be ignored.
    assert cache_root({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "sturdysearch"
    assert cache_root({}) == Path.home() / ".cache" / "sturdysearch"


def test_traversable_by() -> None:
    # Not under pytest's tmp_path: its parent is 0700, which is exactly what this detects.
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        private = base / "private"
        inner = private / "inner"
        inner.mkdir(parents=True)
        private.chmod(0o700)
        stranger = (54321, 54321)
        assert not traversable_by(inner / "not-yet", *stranger)
        private.chmod(0o711)
        assert traversable_by(inner / "not-yet", *stranger)
        assert traversable_by(inner, 0, 0)  # root passes everywhere
    finally:
        shutil.rmtree(base)
