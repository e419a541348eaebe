"""Real OpenSearch/Elasticsearch clusters on 127.0.0.1, started on demand without Docker.

    from sturdysearch.testing.cluster import LocalCluster, ServerSpec

    with LocalCluster(ServerSpec.parse("opensearch:2.19.6"), nodes=3) as cluster:
        cluster.urls                      # ["http://127.0.0.1:PORT", ...]
        cluster.stop_node(1, kill=True)   # simulate a crash
        cluster.start_node(1)             # same name, ports and data directory
        cluster.wait_for_health("yellow", nodes=3, timeout=120)

The pieces live in sibling modules: ``distributions`` (download, verify, unpack), ``jdk``
(pick a Java), ``node_user`` (who runs the JVM), ``node_config`` (settings files),
``processes`` (spawn and reap), ``health`` (HTTP polling). This module ties them together and
owns the lifecycle.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from sturdysearch.testing import logs, processes, workdirs
from sturdysearch.testing.distributions import DistributionCache, install_distribution
from sturdysearch.testing.errors import (
    ClusterError,
    ClusterHealthError,
    ClusterStartError,
    ClusterStateError,
)
from sturdysearch.testing.es_analysis import install_analysis_plugin
from sturdysearch.testing.flavors import ServerProfile, profile_for
from sturdysearch.testing.health import (
    NodeUnreachable,
    get_json,
    health_satisfied,
    health_url,
)
from sturdysearch.testing.jdk import JdkInstall, discover_jdks, read_jdk, select_jdk
from sturdysearch.testing.node_config import (
    LOOPBACK,
    NodeAddress,
    NodeSettingsInput,
    render_settings,
    validate_heap,
    write_node_config,
)
from sturdysearch.testing.node_user import NodeUser, resolve_node_user
from sturdysearch.testing.paths import SYSTEM_CACHE_DIR, cache_root, traversable_by
from sturdysearch.testing.ports import allocate_ports
from sturdysearch.testing.security import ClusterSecurity, SecurityInfo
from sturdysearch.testing.specs import Flavor, ServerSpec
from sturdysearch.testing.state import ClusterState, NodeState

__all__ = [
    "ClusterError",
    "ClusterHealthError",
    "ClusterStartError",
    "ClusterStateError",
    "Flavor",
    "LocalCluster",
    "LocalNode",
    "ServerSpec",
]

log = logging.getLogger(__name__)

DEFAULT_HEAP = "512m"
DEFAULT_STARTUP_TIMEOUT = 180.0
STOP_GRACE_SECONDS = 30.0
# C1-only JIT: measured here, it cuts the CPU a node burns until healthy by about 40%
# (OpenSearch 2.19.6: 7.5 s -> 4.7 s; Elasticsearch 9.5.4: 14 s -> 8.7 s), which matters with
# three JVMs on two cores. Peak throughput is lower, which test workloads never reach.
STARTUP_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
_LOG_TAIL_LINES = 40
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LocalNode:
    """One node of a LocalCluster: its fixed address and files, and its current process."""

    def __init__(
        self,
        index: int,
        address: NodeAddress,
        directory: Path,
        profile: ServerProfile,
        scheme: str = "http",
    ) -> None:
        self.index = index
        self.scheme = scheme
        self.name = address.name
        self.http_port = address.http_port
        self.transport_port = address.transport_port
        self.address = address
        self.directory = directory
        self._profile = profile
        self._popen: subprocess.Popen[bytes] | None = None
        self._server_pid: int | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.http_port}"

    @property
    def config_dir(self) -> Path:
        return self.directory / "config"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.directory / "tmp"

    @property
    def log_path(self) -> Path:
        """The node's stdout and stderr (the server's own log files are in ``logs_dir``)."""
        return self.directory / "stdout.log"

    @property
    def pgid(self) -> int | None:
        """The node's process group; every process of the node is in it."""
        return None if self._popen is None else self._popen.pid

    @property
    def pid(self) -> int | None:
        """The server JVM's pid, or None while it is not (yet) running.

        For OpenSearch and Elasticsearch 7 this is the process we started (the script execs
        java); Elasticsearch 8+ starts a small CLI JVM that forks the server, and this is the
        server.
        """
        pgid = self.pgid
        if pgid is None:
            return None
        if self._server_pid is not None and processes.pid_alive(self._server_pid):
            return self._server_pid
        found = processes.find_jvm(pgid, self._profile.main_class)
        self._server_pid = found.pid if found else None
        return self._server_pid

    def is_running(self) -> bool:
        """Whether any process of this node is alive (starting, serving or shutting down)."""
        if self._popen is None:
            return False
        self._popen.poll()
        return bool(processes.processes_in_group(self._popen.pid))

    def exit_code(self) -> int | None:
        """The launched process's exit code once it has ended unexpectedly, else None."""
        return None if self._popen is None else self._popen.poll()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Recent stdout/stderr (which carries the server's console log), for error reports."""
        summary = logs.summarize(logs.read_tail_text(self.log_path), lines)
        return (
            f"--- {self.name}: {self.log_path} (server logs in {self.logs_dir}) ---\n"
            f"{summary or '(no output)'}"
        )

    def __repr__(self) -> str:
        return f"LocalNode({self.name!r}, url={self.url!r}, running={self.is_running()})"


class LocalCluster:
    """A cluster of 1..N nodes on loopback, torn down on exit (or at interpreter exit).

    Construction is cheap; ``start()`` (or entering the ``with`` block) downloads the
    distribution if needed, picks a JDK, starts the nodes and waits until the cluster reports
    ``yellow`` or better with all nodes joined.

    ``security=True`` (or a ``+security`` spec) runs the nodes as production clusters run:
    TLS with a CA made for the cluster and passwords (``sturdysearch.testing.security``);
    ``cluster.security`` then says how to connect and ``cluster.client_options()`` gives the
    client keywords.

    ``jvm_options`` are added to each node's JVM options; ``optimize_for_startup=False``
    drops the C1-only JIT setting (``STARTUP_JVM_OPTIONS``), e.g. for benchmarks against the
    nodes. ``die_with_parent=False`` is for nodes that must outlive this process (the CLI's
    ``cluster start``); such a cluster must be handed over with ``detach()``.
    """

    def __init__(
        self,
        spec: ServerSpec | str,
        nodes: int = 1,
        settings: Mapping[str, object] | None = None,
        heap: str = DEFAULT_HEAP,
        *,
        java_home: Path | str | None = None,
        jvm_options: Sequence[str] = (),
        optimize_for_startup: bool = True,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        die_with_parent: bool = True,
        keep_workdir: bool = False,
        cache_dir: Path | None = None,
        security: bool = False,
    ) -> None:
        self.spec = spec if isinstance(spec, ServerSpec) else ServerSpec.parse(spec)
        if security and not self.spec.security:
            self.spec = ServerSpec(self.spec.flavor, self.spec.version, security=True)
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.profile = profile_for(self.spec)
        self.node_count = nodes
        self.settings: dict[str, object] = dict(settings or {})
        self.heap = validate_heap(heap)
        # Caller's options last, so they can override ours (e.g. -XX:TieredStopAtLevel=4).
        self.jvm_options = (*(STARTUP_JVM_OPTIONS if optimize_for_startup else ()), *jvm_options)
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        self.keep_workdir = keep_workdir
        self.name = f"sturdy-{self.spec.flavor.value}-{secrets.token_hex(4)}"
        self._java_home = Path(java_home) if java_home is not None else None
        self._cache_dir = cache_dir
        self._nodes: list[LocalNode] = []
        self._workdir: Path | None = None
        self._distribution_home: Path | None = None
        self._jdk: JdkInstall | None = None
        self._user: NodeUser | None = None
        self._has_security_module = False
        self._security: ClusterSecurity | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._started = False
        self._closed = False

    # ----------------------------------------------------------------- public accessors

    @property
    def flavor(self) -> Flavor:
        return self.spec.flavor

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def nodes(self) -> tuple[LocalNode, ...]:
        return tuple(self._nodes)

    @property
    def urls(self) -> list[str]:
        """Every node's base URL in node order, whether or not the node is up right now."""
        return [node.url for node in self._nodes]

    @property
    def url(self) -> str:
        """The first node's URL: enough for single-node clusters."""
        self._require_started()
        return self._nodes[0].url

    @property
    def security(self) -> SecurityInfo | None:
        """How to connect to a secured cluster (CA, fingerprint, users); ``None`` when
        security is off."""
        return self._security.info if self._security is not None else None

    def client_options(self) -> dict[str, Any]:
        """Keywords for ``Client``/``AsyncClient`` beside ``cluster.urls``: the CA and the admin
        user when security is on, nothing otherwise."""
        return self._security.info.client_options() if self._security is not None else {}

    @property
    def jdk(self) -> JdkInstall | None:
        return self._jdk

    @property
    def workdir(self) -> Path | None:
        return self._workdir

    @property
    def distribution_home(self) -> Path | None:
        return self._distribution_home

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalCluster:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> LocalCluster:
        """Prepares everything, starts all nodes and waits for a healthy cluster."""
        if self._closed:
            raise ClusterStateError("this LocalCluster was closed; create a new one")
        if self._started:
            raise ClusterStateError("cluster already started")
        self._started = True
        try:
            self._prepare()
            if self.die_with_parent:
                processes.REAPER.register(self)
            for node in self._nodes:
                self._spawn(node)
            started = time.monotonic()
            self.wait_for_health("yellow", nodes=self.node_count, timeout=self.startup_timeout)
            log.info(
                "%s cluster %s healthy after %.1fs: %s",
                self.profile.display_name,
                self.name,
                time.monotonic() - started,
                ", ".join(self.urls),
            )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stops every node (SIGTERM, then SIGKILL) and deletes the working directory."""
        if self._closed:
            return
        self._closed = True
        processes.REAPER.unregister(self)
        self._terminate(self._nodes, kill=False, grace=STOP_GRACE_SECONDS)
        if self._workdir is not None and not self.keep_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    stop = close

    def emergency_stop(self) -> None:
        """Used at interpreter exit: a short grace period, then SIGKILL."""
        self._closed = True
        self._terminate(self._nodes, kill=False, grace=5.0)
        if self._workdir is not None and not self.keep_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def detach(self) -> ClusterState:
        """Hands the running nodes over to the caller: they keep running after we exit.

        Returns what is needed to find and stop them later (see ``sturdysearch.testing.state``).
        Only for clusters created with ``die_with_parent=False``: the others carry a kernel
        death signal that cannot be revoked from here.
        """
        self._require_started()
        if self.die_with_parent:
            raise ClusterStateError("only a cluster created with die_with_parent=False can detach")
        assert self._workdir is not None
        state = ClusterState(
            spec=str(self.spec),
            cluster_name=self.name,
            workdir=str(self._workdir),
            nodes=tuple(
                NodeState(
                    name=node.name,
                    url=node.url,
                    http_port=node.http_port,
                    transport_port=node.transport_port,
                    pgid=node.pgid or 0,
                    pid=node.pid or 0,
                    config_dir=str(node.config_dir),
                    log_path=str(node.log_path),
                )
                for node in self._nodes
            ),
            security=self.security.to_dict() if self.security is not None else None,
        )
        for node in self._nodes:
            node._popen = None
        self._closed = True
        return state

    # ----------------------------------------------------------------- fault injection

    def stop_node(
        self, index: int, kill: bool = False, timeout: float = STOP_GRACE_SECONDS
    ) -> None:
        """Stops one node: gracefully (SIGTERM, SIGKILL after ``timeout``) or ``kill``-ed.

        ``kill=True`` sends SIGKILL to every process of the node at once, like a crash or the
        OOM killer; its data directory is left as the dying process left it.
        """
        node = self._node(index)
        if node.pgid is None:
            raise ClusterStateError(f"{node.name} is not running")
        self._terminate([node], kill=kill, grace=timeout)

    def start_node(self, index: int, wait: bool = False, timeout: float = 120.0) -> None:
        """Starts a stopped node again with the same name, ports, settings and data.

        With ``wait=True`` it returns once the node answers HTTP; use ``wait_for_health`` to
        wait for it to rejoin the cluster.
        """
        node = self._node(index)
        if node.is_running():
            raise ClusterStateError(f"{node.name} is already running")
        self._terminate([node], kill=True, grace=0)  # reap leftovers of a crashed run
        self._write_config(node)
        self._spawn(node)
        if wait:
            self._wait_for_http(node, timeout)

    def wait_for_health(
        self, status: str = "yellow", nodes: int | None = None, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Waits until the cluster is at least ``status`` with exactly ``nodes`` nodes.

        ``nodes`` defaults to the number of nodes currently running. Asks each running node in
        turn, so it works while some are down, and also checks that every running node's
        current JVM is a member (see ``_not_joined``). Returns the ``_cluster/health`` body;
        raises ClusterHealthError with every node's log tail on timeout, or at once when fewer
        than ``nodes`` nodes are running at all.
        """
        self._require_started()
        expected = nodes if nodes is not None else sum(n.is_running() for n in self._nodes)
        deadline = time.monotonic() + timeout
        last_answer = "no node answered HTTP yet"
        while True:
            self._require_running(expected)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClusterHealthError(
                    f"{self.profile.display_name} cluster {self.name} did not reach "
                    f"{status} with {expected} node(s) within {timeout:.0f}s; last answer: "
                    f"{last_answer}\n{self.log_report()}"
                )
            asked_at = time.monotonic()
            for node in self._nodes:
                if node.pgid is None:
                    continue
                # The server holds the request until the condition holds or `wait` passes.
                wait = min(5.0, max(remaining, 1.0))
                url = health_url(node.url, status=status, nodes=expected, wait_seconds=wait)
                try:
                    code, body = self._get_json(url, timeout=wait + 5.0)
                except NodeUnreachable as exc:
                    last_answer = f"{node.name}: {exc}"
                    continue
                if health_satisfied(body, status=status, nodes=expected):
                    missing = self._not_joined(node)
                    if not missing:
                        return dict(body)
                    last_answer = f"{node.name}: {', '.join(missing)} not (re)joined yet"
                else:
                    last_answer = f"{node.name}: HTTP {code} {_short(body)}"
                break
            if time.monotonic() - asked_at < 1.0:
                time.sleep(0.5)  # nobody waited server-side (not up, or a quick error)

    def _not_joined(self, asked: LocalNode) -> list[str]:
        """Running nodes whose *current* JVM is not in the cluster yet.

        The node count alone is not enough: right after a node is killed and restarted the
        cluster may still list the dead incarnation, so ``wait_for_nodes`` is met before the
        new one has joined. The nodes-info API reports each member's pid, which tells them apart.
        """
        try:
            _, body = self._get_json(f"{asked.url}/_nodes/process", timeout=30.0)
        except NodeUnreachable:
            return ["(nodes info unavailable)"]
        members = body.get("nodes", {}) if isinstance(body, dict) else {}
        reported = {
            (info.get("name"), info.get("process", {}).get("id"))
            for info in members.values()
            if isinstance(info, dict)
        }
        return [
            node.name
            for node in self._nodes
            if node.is_running() and (node.name, node.pid) not in reported
        ]

    def _get_json(self, url: str, timeout: float) -> tuple[int, Any]:
        """The harness's own HTTP (urllib, not the client under test), as the admin when
        security is on."""
        if self._security is None:
            return get_json(url, timeout=timeout)
        if self._ssl_context is None:
            self._ssl_context = self._security.ssl_context()
        return get_json(
            url,
            timeout=timeout,
            context=self._ssl_context,
            authorization=self._security.basic_header(),
        )

    def log_report(self) -> str:
        """Every node's recent log output, for failure messages."""
        return "\n".join(node.log_tail() for node in self._nodes)

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.spec)!r}, nodes={self.node_count}, name={self.name!r})"

    # ----------------------------------------------------------------- internals

    def _prepare(self) -> None:
        self._jdk = self._choose_jdk()
        self._user = resolve_node_user()
        root = self._cache_dir or cache_root()
        cache = DistributionCache(root)
        zip_path = cache.fetch(self.spec)
        plugin_zip = None
        customize = None
        if self.spec.security and self.flavor is Flavor.OPENSEARCH:
            plugin_zip = cache.fetch_plugin(self.spec)
        elif self.spec.security:
            version = self.spec.version

            def customize(home: Path) -> None:
                install_analysis_plugin(home, version)

        install_root = _install_root(root, self._user)
        self._distribution_home = install_distribution(
            zip_path, self.spec, install_root, plugin_zip, customize
        )
        self._has_security_module = (
            self._distribution_home / "modules" / "x-pack-security"
        ).is_dir()
        removed = workdirs.sweep_stale_workdirs(workdirs.workdir_base(self._user))
        if removed:
            log.info("removed %d stale working directories", len(removed))
        self._workdir = workdirs.make_workdir(self.spec, self._user)
        scheme = "http"
        if self.spec.security:
            self._security = ClusterSecurity(self.profile)
            self._security.prepare(self._workdir / "client")
            scheme = "https"
        ports = allocate_ports(2 * self.node_count)
        addresses = [
            NodeAddress(f"node-{i}", ports[2 * i], ports[2 * i + 1]) for i in range(self.node_count)
        ]
        for index, address in enumerate(addresses):
            node = LocalNode(index, address, self._workdir / address.name, self.profile, scheme)
            for directory in (node.directory, node.data_dir, node.logs_dir, node.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
            self._nodes.append(node)
        for node in self._nodes:
            self._write_config(node)
        self._user.own(self._workdir)

    def _choose_jdk(self) -> JdkInstall:
        if self._java_home is not None:
            jdk = read_jdk(self._java_home)
            if jdk is None:
                raise ClusterError(
                    f"java_home={self._java_home} is not a JDK (no bin/java or release file)"
                )
            if not self.profile.java.accepts(jdk.major):
                log.warning(
                    "%s supports %s; using %s anyway because java_home was given",
                    self.profile.display_name,
                    self.profile.java.describe(),
                    jdk,
                )
            return jdk
        return select_jdk(self.profile.java, discover_jdks(), server=self.profile.display_name)

    def _write_config(self, node: LocalNode) -> None:
        assert self._distribution_home is not None and self._user is not None
        settings = render_settings(
            NodeSettingsInput(
                profile=self.profile,
                cluster_name=self.name,
                node=node.address,
                cluster_nodes=[n.address for n in self._nodes],
                data_dir=node.data_dir,
                logs_dir=node.logs_dir,
                has_security_module=self._has_security_module,
                extra={
                    **(self._security.settings() if self._security is not None else {}),
                    **self.settings,
                },
            )
        )
        write_node_config(
            distribution_home=self._distribution_home,
            config_dir=node.config_dir,
            settings=settings,
            profile=self.profile,
            heap=self.heap,
            logs_dir=node.logs_dir,
            jdk_modules=self._jdk.modules if self._jdk is not None else frozenset(),
            extra_jvm_options=self.jvm_options,
        )
        if self._security is not None:
            self._security.write_node_files(node.config_dir)
        self._user.own(node.config_dir)

    def _environment(self, node: LocalNode) -> dict[str, str]:
        """A minimal environment: the caller's JAVA_TOOL_OPTIONS and the like must not leak."""
        assert self._jdk is not None
        return {
            "PATH": _PATH,
            "HOME": str(node.directory),
            "LANG": "C.UTF-8",
            self.profile.env_java_home: str(self._jdk.home),
            self.profile.env_path_conf: str(node.config_dir),
            self.profile.env_tmpdir: str(node.tmp_dir),
            self.profile.env_java_opts: "",
        }

    def _spawn(self, node: LocalNode) -> None:
        assert self._distribution_home is not None and self._user is not None
        header = (
            f"--- sturdysearch: starting {node.name} of {self.spec} at "
            f"{datetime.now(timezone.utc).isoformat()} with {self._jdk} ---\n"
        )
        with node.log_path.open("ab") as output:
            output.write(header.encode())
            output.flush()
            node._popen = processes.spawn(
                [str(self._distribution_home / self.profile.script)],
                env=self._environment(node),
                cwd=node.directory,
                output=output,
                user=self._user,
                die_with_parent=self.die_with_parent,
            )
        node._server_pid = None
        if not self._user.is_current:
            os.chown(node.log_path, self._user.uid, self._user.gid)

    def _terminate(self, nodes: Sequence[LocalNode], *, kill: bool, grace: float) -> None:
        groups = [(n._popen.pid, n._popen) for n in nodes if n._popen is not None]
        if groups:
            processes.terminate_groups(groups, grace=grace, kill=kill)
        for node in nodes:
            node._popen = None
            node._server_pid = None

    def _require_running(self, expected: int) -> None:
        """Fails fast when fewer than ``expected`` nodes are even running.

        Waiting longer cannot help then, and a node that exited on its own (bad setting, wrong
        Java, port taken) is exactly what the reader of the error needs to see.
        """
        running = sum(node.is_running() for node in self._nodes)
        if running >= expected:
            return
        exited = [
            f"{node.name} exited with code {node.exit_code()}"
            for node in self._nodes
            if node.exit_code() is not None and not node.is_running()
        ]
        raise ClusterHealthError(
            f"{self.profile.display_name} cluster {self.name}: only {running} of the {expected} "
            f"expected node(s) are running ({'; '.join(exited) or 'others were stopped'}; "
            f"java: {self._jdk})\n{self.log_report()}"
        )

    def _wait_for_http(self, node: LocalNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.is_running():
                raise ClusterStartError(
                    f"{node.name} exited with code {node.exit_code()}\n{node.log_tail()}"
                )
            try:
                self._get_json(node.url, timeout=5.0)
                return
            except NodeUnreachable:
                time.sleep(0.3)
        raise ClusterStartError(
            f"{node.name} did not answer HTTP within {timeout:.0f}s\n{node.log_tail()}"
        )

    def _node(self, index: int) -> LocalNode:
        self._require_started()
        if not 0 <= index < len(self._nodes):
            raise IndexError(f"node index {index} out of range 0..{len(self._nodes) - 1}")
        return self._nodes[index]

    def _require_started(self) -> None:
        if not self._started:
            raise ClusterStateError("cluster not started: call start() or use `with`")
        if self._closed:
            raise ClusterStateError("cluster already closed")


def _install_root(root: Path, user: NodeUser) -> Path:
    """Where to unpack distributions so that ``user`` can read them.

    Normally inside the cache; when we are root and the cache is under a private home
    directory, in the system cache instead (root-owned, so nobody can tamper with it).
    """
    preferred = root / "installs"
    if user.is_current or traversable_by(preferred, user.uid, user.gid):
        return preferred
    return SYSTEM_CACHE_DIR / "installs"


def _short(body: object, limit: int = 300) -> str:
    text = str(body)
    return text if len(text) <= limit else text[:limit] + "..."
