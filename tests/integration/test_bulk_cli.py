"""``sturdysearch bulk-load`` and ``sturdysearch replay`` against a real node."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sturdysearch import Client
from sturdysearch.cli.bulk_cmd import EXIT_DEAD_LETTERED, EXIT_OK
from sturdysearch.cli.main import EXIT_FAILURE, main


@pytest.fixture
def cli_index(client: Client) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    client.indices.create(
        index=name,
        mappings={"properties": {"status": {"type": "integer"}}},
        settings={"number_of_shards": 1, "number_of_replicas": 0},
    )
    yield name
    client.indices.delete(index=name, ignore=404)


def test_bulk_load_then_replay(
    client: Client,
    node_url: str,
    cli_index: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "logs.jsonl"
    with open(source, "wb") as f:
        for i in range(3000):
            status = "bad" if i % 1000 == 1 else 200
            f.write(orjson.dumps({"id": f"d{i}", "status": status}) + b"\n")
        f.write(b"\n{not json}\n")
    dlq = tmp_path / "dlq.jsonl"
    argv = ["bulk-load", str(source), "--url", node_url, "--index", cli_index]
    code = main([*argv, "--id-field", "id", "--dead-letter", str(dlq), "--no-progress"])
    out = capsys.readouterr().out
    assert code == EXIT_DEAD_LETTERED
    assert "indexed 2997 of 3001" in out and f"4 dead-lettered in {dlq}" in out
    client.indices.refresh(index=cli_index)
    assert client.count(index=cli_index)["count"] == 2997
    records = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert sorted(r["outcome"] for r in records) == ["rejected"] * 3 + ["unserializable"]

    # Make the field accept the rejected values (a new index with a looser mapping), replay.
    client.indices.delete(index=cli_index)
    client.indices.create(index=cli_index, mappings={"properties": {"status": {"type": "keyword"}}})
    again = tmp_path / "again.jsonl"
    code = main(["replay", str(dlq), "--url", node_url, "--dead-letter", str(again)])
    out = capsys.readouterr().out
    assert code == EXIT_DEAD_LETTERED  # the unserializable line cannot be sent, still
    assert "indexed 3 of 4" in out
    (left,) = [orjson.loads(line) for line in again.read_bytes().splitlines()]
    assert left["outcome"] == "unserializable" and "cannot be replayed" in left["reason"]


def test_bulk_load_everything_indexed(
    node_url: str, cli_index: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "ok.jsonl"
    source.write_bytes(b"".join(orjson.dumps({"status": i}) + b"\n" for i in range(100)))
    argv = ["bulk-load", str(source), "--url", node_url, "--index", cli_index]
    assert main([*argv, "--dead-letter", str(tmp_path / "d.jsonl")]) == EXIT_OK
    assert "nothing dead-lettered" in capsys.readouterr().out


def test_bulk_load_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STURDYSEARCH_URL", raising=False)
    assert main(["bulk-load", "x.jsonl", "--index", "i"]) == EXIT_FAILURE
    assert "no cluster given: pass --url" in capsys.readouterr().err
    missing = str(tmp_path / "missing.jsonl")
    assert main(["bulk-load", missing, "--index", "i", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot read" in capsys.readouterr().err
