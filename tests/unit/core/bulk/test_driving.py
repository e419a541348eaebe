"""What both bulk drivers share: options, query, trace fields, success items, the stop error."""

from __future__ import annotations

import errno

import pytest

from sturdysearch._core.bulk.config import BulkConfig, ItemResult
from sturdysearch._core.bulk.driving import (
    batch_event,
    bulk_params,
    bulk_path,
    dead_letter_error,
    item_results,
    make_config,
)
from sturdysearch._core.bulk.engine import Batch, Settlement
from sturdysearch.errors import ConfigError


def test_options_or_config_not_both() -> None:
    assert make_config("X", None, {"workers": 3}).workers == 3
    config = BulkConfig(workers=4)
    assert make_config("X", config, {}) is config
    with pytest.raises(ConfigError, match=r"unknown X option.*the options are .*workers"):
        make_config("X", None, {"wokers": 3})
    with pytest.raises(ConfigError, match="not both"):
        make_config("X", config, {"workers": 3})


def test_path_and_query() -> None:
    assert bulk_path(None) == "/_bulk" and bulk_path("logs") == "/logs/_bulk"
    query = bulk_params(BulkConfig(request_timeout=60.0), None, "p", {"routing": "r", "x": None})
    assert query["timeout"] == "30s" and query["pipeline"] == "p" and query["routing"] == "r"
    assert "refresh" not in query and "x" not in query
    assert query["filter_path"].startswith("errors,items")


def test_trace_fields_and_success_items() -> None:
    line = b'{"index":{"_id":"7","_index":"other"}}\n{"a":1}\n'
    batch = Batch(0.0, 1.0)
    batch.lines.append(line)
    batch.nbytes = len(line)
    settlement = Settlement("answered", succeeded=1, successes=[(line, "index", 201, "created")])
    event = batch_event(batch, settlement, None, 0.5)
    assert event["actions"] == 1 and event["status"] == 200 and event["error"] is None
    assert list(item_results(settlement, "logs")) == [
        ItemResult(op="index", id="7", index="other", status=201, result="created")
    ]


def test_dead_letter_error_holds_the_records() -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    error = dead_letter_error("/x/dlq.jsonl", cause, [b"{}\n"])
    assert error.records == (b"{}\n",) and error.path == "/x/dlq.jsonl"
    assert "1 dead-letter record(s)" in str(error)
