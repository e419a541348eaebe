"""The Spark data source's options: parsed once on the driver, every mistake refused with what
to write instead (elasticsearch-hadoop's keys included). Pure logic: no Spark here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sturdysearch.errors import ConfigError
from sturdysearch.spark.options import PEER_KEYWORDS, parse_read, parse_write

BASE = {"url": "http://127.0.0.1:9200", "index": "logs", "dead_letter_dir": "/tmp/dlq"}


def write(**options: Any) -> Any:
    return parse_write({**BASE, **options})


def test_a_complete_write() -> None:
    parsed = parse_write(
        {
            "URL": "https://a:9200, https://b:9200",  # keys are case-insensitive, as in Spark
            "Index": "logs",
            "id_column": "id",
            "dead_letter_dir": "file:///shared/dlq",
            "batch_actions": "500",
            "batch_mb": "2.5",
            "workers": "3",
            "abort_after": "30",
            "api_key": "c2VjcmV0",
            "op": "update",
            "keep_id_column": "false",
        }
    )
    assert parsed.connection.urls == ("https://a:9200", "https://b:9200")
    assert (parsed.index, parsed.id_column, parsed.ids, parsed.op) == (
        "logs",
        "id",
        "column",
        "update",
    )
    assert parsed.dead_letter_dir == "/shared/dlq" and parsed.keep_id_column is False
    assert parsed.indexer == {
        "max_actions": 500,
        "max_bytes": int(2.5 * 1024 * 1024),
        "workers": 3,
        "abort_after": 30.0,
    }
    assert "c2VjcmV0" not in repr(parsed)  # secrets never in a repr
    assert parsed.connection.client_kwargs()["api_key"] == "c2VjcmV0"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({}, "without document ids"),
        ({"ids": "content_hash", "id_column": "id"}, "contradict"),
        ({"ids": "none"}, "at_least_once"),
        ({"ids": "random"}, "ids must be one of"),
        ({"op": "upsert", "id_column": "id"}, "op must be one of"),
        ({"op": "update", "ids": "content_hash"}, "op='update' needs"),
        ({"id_column": "id", "workers": "0"}, "'workers' must be greater than 0"),
        ({"id_column": "id", "batch_actions": "many"}, "'batch_actions' must be an integer"),
        ({"id_column": "id", "keep_id_column": "maybe"}, "true or false"),
        ({"id_column": "id", "dead_letter_dir": "s3://bucket/dlq"}, "not an object store"),
        ({"id_column": "id", "password": "p"}, "'password' needs 'user'"),
        ({"id_column": "id", "aws_service": "s3"}, "aws_service must be"),
        ({"id_column": "id", "ca_certs": "/no/such/ca.pem"}, "is not a file"),
        ({"id_column": "id", "url": ""}, "option 'url' is required"),
    ],
)
def test_write_mistakes_say_what_to_do(options: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=None) as refused:
        write(**options)
    assert said in str(refused.value)


def test_ids_modes() -> None:
    assert write(ids="content_hash").ids == "content_hash"
    assert write(at_least_once="true").ids == "none"
    with pytest.raises(ConfigError, match="dead_letter_dir"):
        parse_write({"url": BASE["url"], "index": "i", "id_column": "id"})
    assert parse_write({**BASE, "index": "", "path": "from-save", "id_column": "id"}).index == (
        "from-save"
    )


def test_peer_keys_are_named_with_ours() -> None:
    with pytest.raises(ConfigError) as refused:
        write(**{"es.nodes": "h", "opensearch.mapping.id": "id", "colour": "blue"})
    text = str(refused.value)
    assert "'es.nodes' (sturdysearch: url" in text
    assert "'opensearch.mapping.id' (sturdysearch: id_column)" in text
    assert "'colour'" in text and "the options are" in text
    assert all(key.startswith(("es.", "opensearch.")) for key in PEER_KEYWORDS)


def test_reads(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    parsed = parse_read(
        {
            "url": "https://a:9200",
            "index": "logs-*",
            "query": '{"query": {"term": {"level": "error"}}}',
            "fields": "a, b",
            "slices": "4",
            "pagination": "scroll",
            "id_column": "_id",
            "user": "reader",
            "password": "s3cret",
            "ca_certs": str(ca),
        }
    )
    assert parsed.query == {"term": {"level": "error"}}  # {"query": ...} unwrapped
    assert parsed.fields == ("a", "b") and parsed.slices == 4 and parsed.pagination == "scroll"
    assert "s3cret" not in repr(parsed)
    assert parsed.connection.client_kwargs()["basic_auth"] == ("reader", "s3cret")
    for options, said in [
        ({"query": "{not json"}, "query is not JSON"),
        ({"query": "[1]"}, "JSON object"),
        ({"size": "20000"}, "at most 10000"),
        ({"pagination": "cursor"}, "pagination must be"),
        ({"dead_letter_dir": "/x"}, "unknown option(s) 'dead_letter_dir'"),
        ({"es.read.field.include": "a"}, "(sturdysearch: fields)"),
    ]:
        with pytest.raises(ConfigError) as refused:
            parse_read({"url": "http://h:9200", "index": "i", **options})
        assert said in str(refused.value), options
