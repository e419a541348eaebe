"""The launcher against real servers: start, form a cluster, crash and heal, leave no orphans.

Runs for the servers configured in STURDY_TEST_SERVERS (the plugin skips these tests when it is
empty). Tests that need a spec but no running cluster get it from the `server_spec` parameter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sturdysearch.testing import processes
from sturdysearch.testing.cluster import ClusterHealthError, LocalCluster
from sturdysearch.testing.pytest_plugin import (
    NO_SERVERS_REASON,
    ClusterFactory,
    configured_servers,
)
from sturdysearch.testing.specs import ServerSpec

pytestmark = pytest.mark.sturdysearch_integration


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_spec" in metafunc.fixturenames:
        specs = [s for s in configured_servers(metafunc.config) if s.is_plain]
        params = [pytest.param(s, id=s.id) for s in specs] or [
            pytest.param(None, id="no-servers", marks=pytest.mark.skip(reason=NO_SERVERS_REASON))
        ]
        metafunc.parametrize("server_spec", params)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def put(url: str, body: object) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_single_node(search_cluster: LocalCluster) -> None:
    cluster = search_cluster
    node = cluster.nodes[0]
    assert cluster.urls == [node.url] and node.url == f"http://127.0.0.1:{node.http_port}"
    health = get(f"{node.url}/_cluster/health")
    assert health["number_of_nodes"] == 1 and health["status"] in ("green", "yellow")

    info = get(f"{node.url}/_nodes/_local/jvm,settings")
    (details,) = info["nodes"].values()
    assert details["version"] == cluster.version
    assert details["name"] == "node-0"
    # ~512 MB heap (the JVM reports slightly less than -Xmx for G1's regions).
    assert 400 * 2**20 < details["jvm"]["mem"]["heap_max_in_bytes"] <= 512 * 2**20
    settings = details["settings"]
    assert settings["cluster"]["routing"]["allocation"]["disk"]["threshold_enabled"] == "false"

    # Plain HTTP without credentials works for writes too (no security in the way).
    # No replica: a single node cannot hold one, and a yellow cluster would be left behind for
    # the suites that share this node (doctor's healthy-node test judges its health).
    put(f"{node.url}/harness-smoke", {"settings": {"index": {"number_of_replicas": 0}}})
    created = put(f"{node.url}/harness-smoke/_doc/1?refresh=true", {"ok": True})
    assert created["result"] in ("created", "updated")

    # The pid we report is the server JVM itself, running unprivileged.
    assert node.pid is not None and node.is_running()
    jvm = processes.read_process(node.pid)
    assert jvm is not None
    assert processes.runs_main_class(jvm, cluster.profile.main_class)
    assert os.stat(f"/proc/{node.pid}").st_uid != 0 or os.geteuid() != 0
    assert node.log_path.is_file() and node.log_path.stat().st_size > 0


def test_three_nodes_heal_after_a_node_is_killed(
    cluster_factory: ClusterFactory, server_spec: ServerSpec
) -> None:
    seen_pids: set[int] = set()
    groups: set[int] = set()
    with cluster_factory(
        server_spec, nodes=3, settings={"thread_pool.write.queue_size": 2}
    ) as cluster:
        assert len(cluster.urls) == 3 and len(set(cluster.urls)) == 3
        health = cluster.wait_for_health("green", nodes=3, timeout=60)
        assert health["number_of_nodes"] == 3
        for node in cluster.nodes:
            assert node.pid is not None
            seen_pids.add(node.pid)
            groups.add(node.pgid or 0)
        (settings,) = get(f"{cluster.urls[0]}/_nodes/_local/settings")["nodes"].values()
        assert settings["settings"]["thread_pool"]["write"]["queue_size"] == "2"

        # An index with replicas, so "green" after healing means recovery really happened.
        put(
            f"{cluster.urls[0]}/heal-check",
            {"settings": {"number_of_shards": 3, "number_of_replicas": 1}},
        )
        cluster.wait_for_health("green", nodes=3, timeout=60)

        victim = cluster.nodes[1]
        old_pid, old_port = victim.pid, victim.http_port
        assert old_pid is not None
        cluster.stop_node(1, kill=True)
        assert not processes.pid_alive(old_pid)
        assert not victim.is_running() and victim.pid is None
        cluster.wait_for_health("yellow", nodes=2, timeout=60)

        cluster.start_node(1)
        health = cluster.wait_for_health("green", nodes=3, timeout=120)
        assert health["number_of_nodes"] == 3
        assert victim.http_port == old_port
        assert victim.pid is not None and victim.pid != old_pid
        seen_pids.add(victim.pid)
        groups.add(victim.pgid or 0)
        (restarted,) = get(f"{victim.url}/_nodes/_local")["nodes"].values()
        assert restarted["name"] == "node-1"

        # Kill and restart at once: the cluster may still count the dead incarnation, so
        # wait_for_health must not be satisfied until the new JVM has actually joined.
        second = cluster.nodes[2]
        second_old_pid = second.pid
        cluster.stop_node(2, kill=True)
        cluster.start_node(2)
        cluster.wait_for_health("yellow", nodes=3, timeout=120)
        members = get(f"{cluster.urls[0]}/_nodes/process")["nodes"].values()
        assert {m["name"]: m["process"]["id"] for m in members}["node-2"] == second.pid
        assert second.pid != second_old_pid
        seen_pids.add(second.pid or 0)
        groups.add(second.pgid or 0)

        cluster.stop_node(2)  # graceful
        cluster.wait_for_health("yellow", nodes=2, timeout=60)
        started = time.monotonic()
        with pytest.raises(ClusterHealthError, match="only 2 of the 3 expected"):
            cluster.wait_for_health("yellow", nodes=3, timeout=60)
        assert time.monotonic() - started < 5  # fails fast instead of waiting out the timeout
        workdir = cluster.workdir
    assert not [pid for pid in seen_pids if processes.pid_alive(pid)]
    assert not [g for g in groups if processes.processes_in_group(g)]
    assert workdir is not None and not workdir.exists()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from sturdysearch.testing.cluster import ClusterHealthError, LocalCluster
    cluster = LocalCluster(sys.argv[1], nodes=1).start()
    node = cluster.nodes[0]
    print(node.pgid, node.pid, cluster.workdir, flush=True)
    time.sleep(600)
    """
)


def test_nodes_die_with_the_process_that_started_them(server_spec: ServerSpec) -> None:
    """SIGKILL leaves only the kernel's parent-death signal to stop the nodes (including the
    server JVM that Elasticsearch 8+ forks from its launcher). The atexit/SIGTERM path is
    covered without servers in test_processes.py."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(server_spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert parent.stdout is not None
    pgid = pid = 0
    workdir: Path | None = None
    try:
        pgid_text, pid_text, workdir_text = parent.stdout.readline().split()
        pgid, pid, workdir = int(pgid_text), int(pid_text), Path(workdir_text)
        assert processes.pid_alive(pid)
        parent.kill()
        parent.wait(timeout=60)
        assert wait_until(lambda: not processes.processes_in_group(pgid), timeout=30)
        assert not processes.pid_alive(pid)
    finally:
        parent.kill()
        parent.wait()
        if pgid and processes.processes_in_group(pgid):
            processes.signal_group(pgid, signal.SIGKILL)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def test_cli_cluster_outlives_the_command(
    tmp_path: Path, sturdy_servers: tuple[ServerSpec, ...]
) -> None:
    env = {**os.environ, "STURDY_CLI_STATE_FILE": str(tmp_path / "state.json")}
    command = [sys.executable, "-m", "sturdysearch.cli"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "cluster", *args], env=env, capture_output=True, text=True, timeout=300
        )

    plain = [s for s in sturdy_servers if s.is_plain]
    if not plain:
        pytest.skip("no security-off server configured in STURDY_TEST_SERVERS")
    started = cli("start", "--server", str(plain[0]), "--nodes", "1")
    assert started.returncode == 0, started.stderr
    (url,) = started.stdout.split()
    state = json.loads((tmp_path / "state.json").read_text())
    pgid = state["nodes"][0]["pgid"]
    try:
        assert get(f"{url}/_cluster/health")["number_of_nodes"] == 1
        again = cli("start", "--server", str(plain[0]))
        assert again.returncode == 1 and "cluster stop" in again.stderr

        status = cli("status")
        assert status.returncode == 0, status.stdout
        assert "running" in status.stdout and url in status.stdout

        stopped = cli("stop")
        assert stopped.returncode == 0 and "stopped 1 running node" in stopped.stdout
        assert not processes.processes_in_group(pgid)
        assert not (tmp_path / "state.json").exists()
        assert not Path(state["workdir"]).exists()
        assert cli("status").returncode == 1
    finally:
        if processes.processes_in_group(pgid):
            processes.signal_group(pgid, signal.SIGKILL)


def test_cli_secured_cluster_reports_how_to_connect(
    tmp_path: Path, sturdy_servers: tuple[ServerSpec, ...]
) -> None:
    """`cluster start --security`, then `cluster status --json`: what it prints is enough for a
    client to connect with verification on, and nothing less is."""
    from sturdysearch import Client
    from sturdysearch.auth import BasicAuth
    from sturdysearch.errors import AuthenticationError, TLSError

    secured = [s for s in sturdy_servers if s.security and not s.proxy]
    if not secured:
        pytest.skip("no +security server configured in STURDY_TEST_SERVERS")
    env = {**os.environ, "STURDY_CLI_STATE_FILE": str(tmp_path / "state.json")}
    command = [sys.executable, "-m", "sturdysearch.cli", "cluster"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=300
        )

    plain = ServerSpec(secured[0].flavor, secured[0].version)
    started = cli("start", "--server", str(plain), "--security")
    assert started.returncode == 0, started.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    pgid = state["nodes"][0]["pgid"]
    try:
        status = cli("status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        security = report["security"]
        assert report["url"].startswith("https://") and report["health"] in ("green", "yellow")
        assert set(security) >= {"ca_certs", "ca_fingerprint", "user", "password"}
        assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", security["ca_fingerprint"])
        auth = BasicAuth(security["user"], security["password"])
        with Client(report["urls"], ca_certs=security["ca_certs"], auth=auth) as client:
            assert client.info().version == plain.version
        with Client(report["urls"], auth=auth) as client, pytest.raises(TLSError):
            client.info(timeout=10)
        with Client(report["urls"], ca_certs=security["ca_certs"]) as client:
            with pytest.raises(AuthenticationError):
                client.count(index="*")
        assert security["password"] not in cli("status").stdout  # only --json shows it
    finally:
        cli("stop")
        if processes.processes_in_group(pgid):
            processes.signal_group(pgid, signal.SIGKILL)
