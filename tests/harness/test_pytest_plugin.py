"""The pytest plugin's collection behaviour, run in a child pytest (no servers are started):
opt-in, its own marker, skips with a reason, ids and options."""

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

    @pytest.mark.sturdysearch_integration
    def test_marked():
        raise AssertionError("must not run without servers")

    @pytest.mark.integration
    def test_users_own_integration_marker():
        print("USERS OWN TEST RAN")

    def test_servers(sturdy_servers):
        print("SERVERS", ",".join(str(s) for s in sturdy_servers))
    """
)


PLUGIN = ("-p", "sturdysearch.testing.pytest_plugin")


def run_pytest(
    tmp_path: Path, *args: str, servers: str | None, conftest: str = ""
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(TEST_FILE)
    # A project's own marker, registered as a project does.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    integration: the project's own integration tests\n"
    )
    (tmp_path / "conftest.py").write_text(conftest)
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
    result = run_pytest(tmp_path, *PLUGIN, servers=servers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 3 skipped" in result.stdout
    assert "USERS OWN TEST RAN" in result.stdout
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips
    assert all("no test servers configured: STURDY_TEST_SERVERS is empty" in s for s in skips)


def test_fixtures_are_auto_marked_with_the_plugins_own_marker(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        *PLUGIN,
        "-m",
        "not sturdysearch_integration",
        "--collect-only",
        "-q",
        servers="opensearch:2.19.6",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_sample.py::test_plain" in result.stdout
    assert "test_users_own_integration_marker" in result.stdout
    assert "test_uses_cluster" not in result.stdout
    assert "test_uses_factory" not in result.stdout
    assert "test_marked" not in result.stdout
    # The project's own marker selects its own tests only.
    own = run_pytest(tmp_path, *PLUGIN, "-m", "integration", "--collect-only", "-q", servers="")
    assert own.returncode == 0, own.stdout + own.stderr
    assert "test_users_own_integration_marker" in own.stdout
    assert "test_uses_cluster" not in own.stdout


def test_installing_the_package_does_not_load_the_plugin(tmp_path: Path) -> None:
    """Without opting in, a project's pytest run is untouched: no fixtures, no skips."""
    result = run_pytest(tmp_path, servers="")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fixture 'search_cluster' not found" in result.stdout
    assert "USERS OWN TEST RAN" in result.stdout
    assert "no test servers configured" not in result.stdout


def test_a_conftest_line_opts_in(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path, servers="", conftest='pytest_plugins = ["sturdysearch.testing.pytest_plugin"]\n'
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 3 skipped" in result.stdout


def test_ids_and_option_override(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        *PLUGIN,
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
    result = run_pytest(tmp_path, *PLUGIN, servers="opensearch:two")
    assert result.returncode == 4
    assert "STURDY_TEST_SERVERS: invalid version" in result.stderr
