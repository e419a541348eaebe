"""What both bulk drivers (threads and asyncio) do that never waits: options, the request's
path and query, the trace event of a finished request, the items reported to ``on_success``,
and the error that stops an indexer whose dead-letter file failed. One copy here, so that a
change reaches both drivers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any

import orjson

from sturdysearch._core.bulk.answer import FILTER_PATH
from sturdysearch._core.bulk.config import BulkConfig, ItemResult
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.bulk.encode import split_item
from sturdysearch._core.bulk.engine import Batch, Settlement
from sturdysearch._core.request import index_segment
from sturdysearch._core.retry import RetryPolicy
from sturdysearch.errors import ConfigError, DeadLetterError, SturdySearchError

_CONFIG_FIELDS = frozenset(f.name for f in fields(BulkConfig))


def make_config(owner: str, config: BulkConfig | None, options: Mapping[str, Any]) -> BulkConfig:
    """The indexer's configuration from ``config=`` or keyword options (not both); an unknown
    option is a ``ConfigError`` that lists the known ones."""
    unknown = sorted(set(options) - _CONFIG_FIELDS)
    if unknown:
        raise ConfigError(
            f"unknown {owner} option(s) {', '.join(unknown)}; the options are "
            f"{', '.join(sorted(_CONFIG_FIELDS))}"
        )
    if config is not None and options:
        raise ConfigError("give config= or individual options, not both")
    return config or BulkConfig(**options)


def bulk_path(index: str | None) -> str:
    return f"/{index_segment(index)}/_bulk" if index else "/_bulk"


def bulk_params(
    config: BulkConfig,
    refresh: bool | str | None,
    pipeline: str | None,
    params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The query parameters of every request (``None`` values left out)."""
    query: dict[str, Any] = {
        "filter_path": FILTER_PATH,
        # The server gives up waiting for an unavailable primary shard before the client
        # gives up on the request, so the answer says which items failed (503 per item)
        # instead of the whole request being lost.
        "timeout": f"{max(1, int(config.request_timeout / 2))}s",
        "refresh": refresh,
        "pipeline": pipeline,
        **(params or {}),
    }
    return {k: v for k, v in query.items() if v is not None}


def batch_event(
    batch: Batch, settlement: Settlement, failure: SturdySearchError | None, duration: float
) -> dict[str, Any]:
    """The fields of the ``bulk.batch`` trace event of one finished request."""
    return {
        "kind": batch.kind,
        "actions": len(batch),
        "bytes": batch.nbytes,
        "outcome": settlement.verdict,
        "error": None if failure is None else type(failure).__name__,
        "status": getattr(failure, "status", None) if failure is not None else 200,
        "succeeded": settlement.succeeded,
        "retried": settlement.retried,
        "dead_lettered": settlement.dead_lettered,
        "retry_delay": settlement.delay,
        "duration": duration,
    }


def item_results(settlement: Settlement, default_index: str | None) -> Iterator[ItemResult]:
    """One :class:`ItemResult` per applied action of a settled request, for ``on_success``."""
    for line, op, status, result in settlement.successes:
        action, _ = split_item(line)
        meta = orjson.loads(action).get(op, {})
        yield ItemResult(
            op=op,
            id=meta.get("_id"),
            index=meta.get("_index", default_index),
            status=status,
            result=result,
        )


def dead_letter_error(path: str, cause: OSError, records: list[bytes]) -> DeadLetterError:
    """What the adding methods and ``close()`` raise (``from cause``) once the dead-letter
    file failed."""
    return DeadLetterError(
        f"cannot write the dead-letter file {path}: {cause}; {len(records)} dead-letter "
        "record(s) are in this exception's .records: save them, fix the cause, then replay "
        "them",
        path=path,
        records=records,
    )


#: The transport makes one attempt per bulk request; the engine decides about the next one.
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


class DeadLetterLog:
    """The WARNING summaries of a bulk load's dead letters: at most one per ``interval``
    seconds while it runs (the first at once), and one when it closes. Without them a load that
    dead-letters looks healthy until someone reads ``stats`` or the file."""

    __slots__ = ("_first", "_interval", "_last", "_path", "_pending", "_reasons", "total")

    #: Distinct reasons quoted per summary.
    REASONS = 3

    def __init__(self, path: str, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._last: float | None = None
        self._pending = 0
        self._reasons: list[str] = []
        self._first: list[str] = []
        self.total = 0

    def add(self, letters: list[DeadLetter], now: float) -> dict[str, Any] | None:
        """Record ``letters``; the summary's fields when one is due now, else ``None``."""
        if not letters:
            return None
        self._pending += len(letters)
        self.total += len(letters)
        for letter in letters:
            if len(self._reasons) >= self.REASONS:
                break
            reason = f"{letter.outcome}: {letter.reason}"[:300]
            if reason not in self._reasons:
                self._reasons.append(reason)
            if len(self._first) < self.REASONS and reason not in self._first:
                self._first.append(reason)
        if self._last is not None and now - self._last < self._interval:
            return None
        return self._summary(now, closing=False)

    def closing(self, now: float) -> dict[str, Any] | None:
        """The summary of the whole load when it closes, if anything was dead-lettered."""
        if not self.total:
            return None
        return self._summary(now, closing=True)

    def _summary(self, now: float, *, closing: bool) -> dict[str, Any]:
        fields = {
            "count": self.total if closing else self._pending,
            "total": self.total,
            "reasons": list(self._first if closing else self._reasons),
            "file": self._path,
            "closing": closing,
        }
        self._last = now
        self._pending = 0
        self._reasons = []
        return fields
