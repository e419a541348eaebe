"""`sturdysearch cluster` without servers: argument handling and the empty states."""

from __future__ import annotations

from pathlib import Path

import pytest

from sturdysearch.cli.cluster_cmd import parse_setting
from sturdysearch.cli.errors import CliError
from sturdysearch.cli.main import main


def test_parse_setting_reads_json_values() -> None:
    assert parse_setting("thread_pool.write.queue_size=2") == ("thread_pool.write.queue_size", 2)
    assert parse_setting("a.b=true") == ("a.b", True)
    assert parse_setting("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_setting("node.attr.zone=eu-1") == ("node.attr.zone", "eu-1")
    with pytest.raises(CliError, match="KEY=VALUE"):
        parse_setting("novalue")


def test_status_and_stop_without_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STURDY_CLI_STATE_FILE", str(tmp_path / "state.json"))
    assert main(["cluster", "status"]) == 1
    assert "no cluster started" in capsys.readouterr().out
    assert main(["cluster", "stop"]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_start_rejects_bad_arguments_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STURDY_CLI_STATE_FILE", str(tmp_path / "state.json"))
    assert main(["cluster", "start", "--nodes", "0"]) == 1
    assert "--nodes must be at least 1" in capsys.readouterr().err
    assert main(["cluster", "start", "--server", "solr:9.0.0"]) == 1
    assert "unknown server flavor" in capsys.readouterr().err
    assert main(["cluster", "start", "--heap", "lots"]) == 1
    assert "invalid heap size" in capsys.readouterr().err
