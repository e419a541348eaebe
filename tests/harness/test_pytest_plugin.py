"""The pytest plugin's collection behaviour, run in a child pytest (no servers are started)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TEST_FILE = textwrap.dedent(
    """
    import pytest

    def test_plain():
        pass

    def test_uses_cluster(search_cluster):
        raise AssertionError("must not run without servers")

    def test_uses_factory(cluster_factory):
        raise AssertionError("must not run without servers")

    @pytest.mark.integration
    def test_marked():
        raise AssertionError("must not run without servers")

    def test_servers(sturdy_servers):
        print("SERVERS", ",".join(str(s) for s in sturdy_servers))
    """
)


def run_pytest(tmp_path: Path, *args: str, servers: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(TEST_FILE)
    env = {k: v for k, v in os.environ.items() if k != "STURDY_TEST_SERVERS"}
    if servers is not None:
        env["STURDY_TEST_SERVERS"] = servers
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-s", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("servers", [None, "", " , "])
def test_without_servers_integration_tests_skip_with_reason(
    tmp_path: Path, servers: str | None
) -> None:
    result = run_pytest(tmp_path, servers=servers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 3 skipped" in result.stdout
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips
    assert all("no test servers configured: STURDY_TEST_SERVERS is empty" in s for s in skips)


def test_fixtures_are_auto_marked_integration(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path, "-m", "not integration", "--collect-only", "-q", servers="opensearch:2.19.6"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_sample.py::test_plain" in result.stdout
    assert "test_uses_cluster" not in result.stdout
    assert "test_uses_factory" not in result.stdout
    assert "test_marked" not in result.stdout


def test_ids_and_option_override(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        "--collect-only",
        "-q",
        "--sturdy-servers=es:9.5.4,opensearch:2.19.6",
        servers="opensearch:1.3.20",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_uses_cluster[elasticsearch-9.5.4]" in result.stdout
    assert "test_uses_cluster[opensearch-2.19.6]" in result.stdout
    assert "1.3.20" not in result.stdout


def test_bad_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, servers="opensearch:two")
    assert result.returncode == 4
    assert "STURDY_TEST_SERVERS: invalid version" in result.stderr
