"""``sturdysearch demo`` end to end, as ``make demo`` runs it: a subprocess that starts its own
node, and must show each step and finish well within a minute once the distribution is cached.

The demo starts a node of its own (that is what it shows), so this module uses no
``search_cluster``: run on its own, it is the only node running.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from sturdysearch.testing.specs import ServerSpec

pytestmark = pytest.mark.sturdysearch_integration


def test_demo_shows_each_step_in_under_a_minute(sturdy_servers: tuple[ServerSpec, ...]) -> None:
    plain = [spec for spec in sturdy_servers if spec.is_plain]
    if not plain:
        pytest.skip("the demo starts a plain node: no security-off server is configured")
    spec = plain[0]
    # Fetch the distribution first (a no-op once it is cached), so that the time measured is
    # the demo's own, as on every run of `make demo` after the first.
    from sturdysearch.testing.distributions import DistributionCache
    from sturdysearch.testing.paths import cache_root

    DistributionCache(cache_root()).fetch(spec)
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sturdysearch.cli",
            "demo",
            "--server",
            f"{spec.flavor}:{spec.version}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    out = run.stdout
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(r"indexed 2996 of 3000 in .*; 4 dead-lettered in ", out), out
    assert out.count("rejected ") == 3 and out.count("unserializable ") == 1, out
    (cut,) = re.findall(r"DeadlineExceeded after (\d+\.\d+) s", out)
    assert 1.0 <= float(cut) < 1.5
    assert "reach.tcp" in out and "doctor exit code" in out
    assert out.rstrip().endswith("node stopped")
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"
