"""Nodes that outlive the process that started them (``sturdysearch cluster start``).

The CLI starts a cluster, records where its processes are, and exits; a later ``status`` or
``stop`` finds them from this record. Process ids get reused, so a process group is trusted
only while a process in it still carries the node's own directory on its command line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sturdysearch.testing import processes

STATE_FILE_NAME = "cli-cluster.json"


@dataclass(frozen=True)
class NodeState:
    name: str
    url: str
    http_port: int
    transport_port: int
    pgid: int
    pid: int
    config_dir: str
    log_path: str


@dataclass(frozen=True)
class ClusterState:
    spec: str
    cluster_name: str
    workdir: str
    nodes: tuple[NodeState, ...]
    security: dict[str, str] | None = None
    """``SecurityInfo.to_dict()`` of a secured cluster: CA, fingerprint, users, passwords."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw: dict[str, Any] = json.loads(text)
        nodes = tuple(NodeState(**node) for node in raw.pop("nodes"))
        return cls(nodes=nodes, **raw)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]


def node_is_ours(state: ClusterState, node: NodeState) -> bool:
    """Whether the node's process group still holds a process of *this* node.

    Recognised by the node's own directory on the command line (its config path, temp dir or
    error-file path, depending on the server): unique per node and per run, so a recycled pgid
    now belonging to some other program never matches.
    """
    marker = f"{Path(node.config_dir).parent}/"
    return any(
        marker in arg
        for process in processes.processes_in_group(node.pgid)
        for arg in process.cmdline
    )


def stop_detached(state: ClusterState, *, grace: float = 30.0, remove_workdir: bool = True) -> int:
    """Stops the nodes that are still ours; returns how many were running."""
    groups = [(node.pgid, None) for node in state.nodes if node_is_ours(state, node)]
    if groups:
        processes.terminate_groups(groups, grace=grace)
    if remove_workdir:
        shutil.rmtree(state.workdir, ignore_errors=True)
    return len(groups)


def save_state(path: Path, state: ClusterState) -> None:
    """Writes atomically so a crashed CLI never leaves a half-written record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state.to_json())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_state(path: Path) -> ClusterState | None:
    try:
        return ClusterState.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
