"""`sturdysearch cluster start|status|stop`: a local cluster that outlives the command.

``start`` launches the nodes detached from this process (no parent-death signal, own session),
records them in a state file under the cache directory, prints their URLs and exits; ``status``
and ``stop`` find them through that file. One such cluster at a time keeps ``stop`` unambiguous.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sturdysearch.cli.errors import CliError

DEFAULT_SERVER = "opensearch:2.19.6"
STATE_FILE_ENV = "STURDY_CLI_STATE_FILE"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "cluster",
        help="start, inspect or stop a local OpenSearch/Elasticsearch cluster",
        description="Run real OpenSearch/Elasticsearch nodes on 127.0.0.1, without Docker.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    start = actions.add_parser("start", help="start nodes, print their URLs, leave them running")
    start.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help=f"FLAVOR:VERSION, e.g. elasticsearch:9.5.4 (default: {DEFAULT_SERVER})",
    )
    start.add_argument("--nodes", type=int, default=1, help="number of nodes (default: 1)")
    start.add_argument("--heap", default="512m", help="JVM heap per node (default: 512m)")
    start.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra node setting; VALUE is parsed as JSON when it can be (repeatable)",
    )
    start.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for health (default: 180)"
    )
    start.add_argument(
        "--security",
        action="store_true",
        help=(
            "security on, as production clusters run: HTTPS with a CA made for the cluster, and "
            "passwords (OpenSearch: the security plugin, so a version that has one, e.g. "
            "opensearch:2.19.4); `cluster status --json` prints the CA, fingerprint and users"
        ),
    )
    start.set_defaults(func=run_start)

    status = actions.add_parser("status", help="show the cluster started by `cluster start`")
    status.add_argument(
        "--json",
        action="store_true",
        help="print URLs, health and (security on) the CA file, its fingerprint, users and "
        "passwords as JSON",
    )
    status.set_defaults(func=run_status)

    stop = actions.add_parser("stop", help="stop the cluster started by `cluster start`")
    stop.set_defaults(func=run_stop)


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CliError(
            f"--setting {text!r}: expected KEY=VALUE, e.g. thread_pool.write.queue_size=2"
        )
    try:
        value: object = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _state_path() -> Path:
    """``$STURDY_CLI_STATE_FILE``, else a file in the cache directory.

    The override lets separate shells (or tests) each keep a cluster of their own.
    """
    override = os.environ.get(STATE_FILE_ENV)
    if override:
        return Path(override)
    from sturdysearch.testing.paths import cache_root
    from sturdysearch.testing.state import STATE_FILE_NAME

    return cache_root() / STATE_FILE_NAME


def run_start(args: argparse.Namespace) -> int:
    from sturdysearch.testing.cluster import LocalCluster
    from sturdysearch.testing.errors import ClusterError
    from sturdysearch.testing.state import load_state, node_is_ours, save_state, stop_detached

    if args.nodes < 1:
        raise CliError(f"--nodes must be at least 1, not {args.nodes}")
    settings = dict(parse_setting(item) for item in args.setting)
    path = _state_path()
    previous = load_state(path)
    if previous is not None:
        if any(node_is_ours(previous, node) for node in previous.nodes):
            raise CliError(
                f"a {previous.spec} cluster started earlier is still running at "
                f"{', '.join(previous.urls)}; stop it first with `sturdysearch cluster stop`"
            )
        stop_detached(previous, grace=0)  # nothing runs; just remove its leftover files
        path.unlink(missing_ok=True)
    print(f"starting {args.server} with {args.nodes} node(s)...", file=sys.stderr)
    try:
        cluster = LocalCluster(
            args.server,
            nodes=args.nodes,
            settings=settings,
            heap=args.heap,
            startup_timeout=args.timeout,
            die_with_parent=False,
            security=args.security,
        )
        with cluster:
            state = cluster.detach()
    except (ClusterError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    save_state(path, state)
    print(
        f"{state.spec} cluster {state.cluster_name} is up; stop it with "
        "`sturdysearch cluster stop`",
        file=sys.stderr,
    )
    if state.security is not None:
        security = state.security
        print(
            f"security on: CA {security['ca_certs']} (SHA-256 fingerprint "
            f"{security['ca_fingerprint']}); user {security['user']!r}, password "
            f"{security['password']!r} (also in `sturdysearch cluster status --json`)",
            file=sys.stderr,
        )
    for url in state.urls:
        print(url)
    return 0


def run_status(args: argparse.Namespace) -> int:
    from sturdysearch.testing.state import load_state, node_is_ours

    state = load_state(_state_path())
    if state is None:
        if args.json:
            print(json.dumps({"running": False, "nodes": []}))
        else:
            print("no cluster started by `sturdysearch cluster start`")
        return 1
    alive = {node.name: node_is_ours(state, node) for node in state.nodes}
    health = _health(state)
    if args.json:
        report: dict[str, Any] = {
            "running": all(alive.values()),
            "spec": state.spec,
            "cluster_name": state.cluster_name,
            "workdir": state.workdir,
            "url": state.urls[0] if state.urls else None,
            "urls": state.urls,
            "nodes": [
                {"name": n.name, "url": n.url, "pid": n.pid, "running": alive[n.name]}
                for n in state.nodes
            ],
            "health": health.get("status") if health else None,
            "security": state.security,
        }
        print(json.dumps(report, indent=2))
        return 0 if all(alive.values()) else 1
    print(f"{state.spec} cluster {state.cluster_name} (files in {state.workdir})")
    for node in state.nodes:
        print(
            f"  {node.name}  {node.url}  pid {node.pid}  "
            f"{'running' if alive[node.name] else 'NOT running'}  log {node.log_path}"
        )
    if health:
        print(f"health: {health.get('status')} with {health.get('number_of_nodes')} node(s)")
    if state.security is not None:
        print(
            f"security on: CA {state.security['ca_certs']}, fingerprint "
            f"{state.security['ca_fingerprint']}, user {state.security['user']!r} "
            "(password: `sturdysearch cluster status --json`)"
        )
    return 0 if all(alive.values()) else 1


def _health(state: Any) -> dict[str, Any] | None:
    """The first answer of ``_cluster/health`` from any node (as the admin when security is
    on), or ``None``."""
    import base64
    import ssl

    from sturdysearch.testing.health import NodeUnreachable, get_json

    context = None
    authorization = None
    if state.security is not None:
        context = ssl.create_default_context(cafile=state.security["ca_certs"])
        pair = f"{state.security['user']}:{state.security['password']}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    for node in state.nodes:
        try:
            _, body = get_json(
                f"{node.url}/_cluster/health",
                timeout=3.0,
                context=context,
                authorization=authorization,
            )
        except (NodeUnreachable, OSError):
            continue
        if isinstance(body, dict):
            return body
    return None


def run_stop(args: argparse.Namespace) -> int:
    from sturdysearch.testing.state import load_state, stop_detached

    path = _state_path()
    state = load_state(path)
    if state is None:
        print("nothing to stop: no cluster started by `sturdysearch cluster start`")
        return 0
    stopped = stop_detached(state)
    path.unlink(missing_ok=True)
    print(f"stopped {stopped} running node(s) of {state.spec} cluster {state.cluster_name}")
    return 0
