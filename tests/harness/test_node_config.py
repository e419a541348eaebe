"""Rendering node settings and JVM options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sturdysearch.testing.flavors import profile_for
from sturdysearch.testing.node_config import (
    NodeAddress,
    NodeSettingsInput,
    filter_jvm_options,
    render_jvm_options,
    render_settings,
    to_yaml,
    validate_heap,
    write_node_config,
)
from sturdysearch.testing.specs import ServerSpec

NODES = [NodeAddress("node-0", 20001, 20002), NodeAddress("node-1", 20003, 20004)]


def settings_for(spec: str, nodes: list[NodeAddress], **kwargs: object) -> dict[str, object]:
    return render_settings(
        NodeSettingsInput(
            profile=profile_for(ServerSpec.parse(spec)),
            cluster_name="c1",
            node=nodes[0],
            cluster_nodes=nodes,
            data_dir=Path("/w/node-0/data"),
            logs_dir=Path("/w/node-0/logs"),
            **kwargs,  # type: ignore[arg-type]
        )
    )


def test_single_node() -> None:
    s = settings_for("opensearch:2.19.6", NODES[:1])
    assert s["discovery.type"] == "single-node"
    assert "discovery.seed_hosts" not in s
    assert s["network.host"] == "127.0.0.1"
    assert (s["http.port"], s["transport.port"]) == (20001, 20002)
    assert s["cluster.routing.allocation.disk.threshold_enabled"] is False
    assert "action.auto_create_index" not in s
    assert "xpack.security.enabled" not in s


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("opensearch:1.3.20", "cluster.initial_master_nodes"),
        ("opensearch:2.19.6", "cluster.initial_cluster_manager_nodes"),
        ("elasticsearch:9.5.4", "cluster.initial_master_nodes"),
    ],
)
def test_multi_node_discovery(spec: str, key: str) -> None:
    s = settings_for(spec, NODES)
    assert "discovery.type" not in s
    assert s["discovery.seed_hosts"] == ["127.0.0.1:20002", "127.0.0.1:20004"]
    assert s[key] == ["node-0", "node-1"]


def test_security_off_when_module_present_and_extras_win() -> None:
    s = settings_for(
        "elasticsearch:9.5.4",
        NODES[:1],
        has_security_module=True,
        extra={
            "thread_pool.write.queue_size": 2,
            "cluster.routing.allocation.disk.threshold_enabled": None,
            "network.host": "127.0.0.2",
        },
    )
    assert s["xpack.security.enabled"] is False
    assert s["thread_pool.write.queue_size"] == 2
    assert "cluster.routing.allocation.disk.threshold_enabled" not in s
    assert s["network.host"] == "127.0.0.2"


def test_yaml_values_are_json() -> None:
    text = to_yaml({"a.b": "x: y # z", "n": 2, "flag": False, "hosts": ["h:1"], "odd key": 1})
    lines = text.splitlines()[1:]
    assert lines[0] == 'a.b: "x: y # z"'
    assert lines[3] == 'hosts: ["h:1"]'
    assert lines[4] == '"odd key": 1'
    for line in lines:
        json.loads(line.split(": ", 1)[1])


def test_jvm_options_filtering() -> None:
    original = "\n".join(
        [
            "-Xms1g",
            "-Xmx1g",
            "11-:-XX:+UseG1GC",
            "-XX:HeapDumpPath=data",
            "-XX:ErrorFile=logs/hs_err_pid%p.log",
            "9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags",
            "8:-Xloggc:logs/gc.log",
            "-XX:+HeapDumpOnOutOfMemoryError",
            "-XX:+ExitOnOutOfMemoryError",
        ]
    )
    kept = [line for line in filter_jvm_options(original).splitlines() if not line.startswith("#")]
    assert kept == ["11-:-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError"]


def test_jvm_options_drop_modules_a_trimmed_runtime_lacks() -> None:
    original = "20-:--add-modules=jdk.incubator.vector\n--add-modules=ALL-MODULE-PATH\n"
    assert filter_jvm_options(original) == original  # module list unknown: keep everything
    kept = filter_jvm_options(original, frozenset({"java.base"})).splitlines()
    assert kept == [
        "# (disabled by sturdysearch) 20-:--add-modules=jdk.incubator.vector",
        "--add-modules=ALL-MODULE-PATH",
    ]
    full = frozenset({"java.base", "jdk.incubator.vector"})
    assert filter_jvm_options(original, full) == original


def test_jvm_extra_options_and_heap_validation() -> None:
    text = render_jvm_options("512m", Path("/w/logs"))
    assert "-Xms512m\n-Xmx512m\n" in text
    assert "-XX:ErrorFile=/w/logs/hs_err_pid%p.log" in text
    for bad in ("512", "0m", "1.5g", "512mb"):
        with pytest.raises(ValueError, match="heap"):
            validate_heap(bad)


def test_write_node_config_keeps_server_written_files(tmp_path: Path) -> None:
    home = tmp_path / "dist"
    (home / "config" / "jvm.options.d").mkdir(parents=True)
    (home / "config" / "jvm.options").write_text("-Xms1g\n-XX:+UseG1GC\n")
    (home / "config" / "log4j2.properties").write_text("x=1\n")
    profile = profile_for(ServerSpec.parse("opensearch:2.19.6"))
    conf = tmp_path / "node" / "config"
    kwargs = {
        "distribution_home": home,
        "config_dir": conf,
        "profile": profile,
        "heap": "256m",
        "logs_dir": tmp_path / "logs",
    }
    write_node_config(settings={"node.name": "n0"}, **kwargs)  # type: ignore[arg-type]
    (conf / "opensearch.keystore").write_text("secret")
    write_node_config(settings={"node.name": "n0", "x": 1}, **kwargs)  # type: ignore[arg-type]
    assert (conf / "opensearch.keystore").read_text() == "secret"
    assert (conf / "log4j2.properties").exists()
    assert "x: 1" in (conf / "opensearch.yml").read_text()
    assert "-Xmx256m" in (conf / "jvm.options.d" / "sturdysearch.options").read_text()
    assert "# (disabled by sturdysearch) -Xms1g" in (conf / "jvm.options").read_text()


def test_extra_jvm_options_are_appended_and_validated() -> None:
    text = render_jvm_options("512m", Path("/w/logs"), ["-XX:TieredStopAtLevel=1", "-Dx=y"])
    assert text.endswith("-XX:TieredStopAtLevel=1\n-Dx=y\n")
    for bad in ("Xmx1g", "-Da\n-Db"):
        with pytest.raises(ValueError, match="invalid JVM option"):
            render_jvm_options("512m", Path("/w/logs"), [bad])
