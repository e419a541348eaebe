"""Rendering a node's settings file and JVM options.

Each node gets its own copy of the distribution's ``config`` directory so the unpacked
distribution stays read-only and shared; the only edits are our settings file, JVM options
with every relative output path removed (they would resolve inside the shared distribution),
and a ``jvm.options.d`` file with the heap size.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sturdysearch.testing.flavors import ServerProfile

LOOPBACK = "127.0.0.1"
_HEAP_RE = re.compile(r"^[1-9]\d*[kKmMgG]$")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# JVM options we replace: heap (ours), and options writing files relative to the working
# directory, which is the shared read-only distribution.
_DROPPED_JVM_OPTIONS = (
    "-Xms",
    "-Xmx",
    "-Xlog:",
    "-Xloggc:",
    "-XX:HeapDumpPath=",
    "-XX:ErrorFile=",
    "-XX:+HeapDumpOnOutOfMemoryError",
)
_VERSION_PREFIX_RE = re.compile(r"^\s*\d+(?:-\d*)?:")


@dataclass(frozen=True)
class NodeAddress:
    name: str
    http_port: int
    transport_port: int


@dataclass(frozen=True)
class NodeSettingsInput:
    """Everything that determines one node's settings file."""

    profile: ServerProfile
    cluster_name: str
    node: NodeAddress
    cluster_nodes: Sequence[NodeAddress]
    data_dir: Path
    logs_dir: Path
    has_security_module: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)


def validate_heap(heap: str) -> str:
    if not _HEAP_RE.match(heap):
        raise ValueError(f"invalid heap size {heap!r}: use a JVM size such as 512m or 1g")
    return heap


def render_settings(spec: NodeSettingsInput) -> dict[str, object]:
    """The node's settings, with the caller's ``extra`` applied last.

    An ``extra`` value of None removes a default (e.g. to re-enable disk thresholds).
    """
    settings: dict[str, object] = {
        "cluster.name": spec.cluster_name,
        "node.name": spec.node.name,
        "network.host": LOOPBACK,
        "http.port": spec.node.http_port,
        "transport.port": spec.node.transport_port,
        "path.data": str(spec.data_dir),
        "path.logs": str(spec.logs_dir),
        # Test machines often have nearly full disks; the default watermarks would then make
        # indices read-only or leave replicas unassigned, failing tests for no reason of theirs.
        "cluster.routing.allocation.disk.threshold_enabled": False,
    }
    if len(spec.cluster_nodes) == 1:
        settings["discovery.type"] = "single-node"
    else:
        settings["discovery.seed_hosts"] = [
            f"{LOOPBACK}:{n.transport_port}" for n in spec.cluster_nodes
        ]
        settings[spec.profile.cluster_manager_setting] = [n.name for n in spec.cluster_nodes]
    if spec.has_security_module:
        # The Elasticsearch integ-test-zips ship x-pack-security; 8.x+ would enable it (TLS,
        # passwords) and 7.x warns on every response unless it is explicitly off. Tests talk
        # plain HTTP without credentials.
        settings["xpack.security.enabled"] = False
    for key, value in spec.extra.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return settings


def to_yaml(settings: Mapping[str, object]) -> str:
    """Renders flat settings as YAML, one ``key: value`` per line.

    Values are written as JSON, which YAML parsers read as flow scalars/sequences/mappings;
    this quotes strings correctly without a YAML dependency.
    """
    lines = ["# Written by sturdysearch.testing; regenerated on every node start."]
    for key, value in settings.items():
        rendered_key = key if _PLAIN_KEY_RE.match(key) else json.dumps(key)
        lines.append(f"{rendered_key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def filter_jvm_options(text: str, jdk_modules: frozenset[str] = frozenset()) -> str:
    """Comments out the heap and file-output options of a distribution's ``jvm.options``.

    With ``jdk_modules`` (a trimmed runtime's module list), ``--add-modules`` lines naming a
    module it lacks are disabled too: the JVM refuses to start over them, and the servers only
    add optional ones there (``jdk.incubator.vector``, which Lucene can do without).
    """
    out = []
    for line in text.splitlines():
        option = _VERSION_PREFIX_RE.sub("", line).strip()
        if option.startswith(_DROPPED_JVM_OPTIONS) or _missing_module(option, jdk_modules):
            out.append(f"# (disabled by sturdysearch) {line}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _missing_module(option: str, jdk_modules: frozenset[str]) -> bool:
    if not jdk_modules or not option.startswith("--add-modules="):
        return False
    wanted = option.split("=", 1)[1].split(",")
    return any(m not in jdk_modules and not m.startswith("ALL-") for m in wanted)


def render_jvm_options(heap: str, logs_dir: Path, extra: Sequence[str] = ()) -> str:
    """Our ``jvm.options.d`` file: heap, error-file location, then the caller's options."""
    validate_heap(heap)
    for option in extra:
        if not option.startswith("-") or "\n" in option:
            raise ValueError(f"invalid JVM option {option!r}: expected one option like -Dx=y")
    lines = [
        "# Written by sturdysearch.testing.",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        f"-XX:ErrorFile={logs_dir}/hs_err_pid%p.log",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def write_node_config(
    *,
    distribution_home: Path,
    config_dir: Path,
    settings: Mapping[str, object],
    profile: ServerProfile,
    heap: str,
    logs_dir: Path,
    jdk_modules: frozenset[str] = frozenset(),
    extra_jvm_options: Sequence[str] = (),
) -> None:
    """Creates or refreshes ``config_dir`` from the distribution's config directory.

    Files the server writes itself (e.g. Elasticsearch's keystore) survive a refresh, so a
    restarted node sees the same configuration it had.
    """
    source = distribution_home / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    for item in source.rglob("*"):
        target = config_dir / item.relative_to(source)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            shutil.copy2(item, target)
    jvm_options = (source / "jvm.options").read_text(encoding="utf-8")
    (config_dir / "jvm.options").write_text(
        filter_jvm_options(jvm_options, jdk_modules), encoding="utf-8"
    )
    options_d = config_dir / "jvm.options.d"
    options_d.mkdir(exist_ok=True)
    (options_d / "sturdysearch.options").write_text(
        render_jvm_options(heap, logs_dir, extra_jvm_options), encoding="utf-8"
    )
    (config_dir / profile.config_file).write_text(to_yaml(settings), encoding="utf-8")
