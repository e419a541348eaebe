"""The bulk indexer's options (validated at construction) and its statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.timeouts import MAX_TOTAL, check_seconds
from sturdysearch.errors import ConfigError

MIB = 1024 * 1024
#: The servers' default ``http.max_content_length`` (Elasticsearch and OpenSearch: 100mb).
SERVER_MAX_CONTENT_LENGTH = 100 * MIB
#: The bulk indexer's retry budget: more generous than the client's (10%), because item
#: rejections under load are the normal way a cluster asks a bulk writer to slow down.
BULK_BUDGET = BudgetConfig(ratio=0.2, max_tokens=20.0, initial_tokens=20.0)


def _positive_int(name: str, value: object, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value!r} is above the limit of {maximum}")


@dataclass(frozen=True, slots=True)
class BulkConfig:
    """How the indexer batches, sends and retries. Every bound is finite."""

    max_actions: int = 10_000
    """A batch is sent once it holds this many actions..."""
    max_bytes: int = 5 * MIB
    """...or this many bytes of NDJSON (the figure both vendors recommend starting from). Must
    stay below the server's ``http.max_content_length`` (100 MiB by default); a 413 halves it."""
    flush_interval: float = 1.0
    """...or when its first action has waited this many seconds."""
    workers: int = 2
    """Requests in flight at once (fewer while the cluster rejects work with 429s)."""
    max_pending_bytes: int | None = None
    """Memory bound: bytes of documents added but not yet indexed or dead-lettered, counting
    those waiting for a retry. Adding blocks at the bound. ``None``: ``(workers + 2) *
    max_bytes``; at least ``2 * max_bytes``."""
    delivery_timeout: float = 120.0
    """Seconds from adding a document to its outcome (indexed or dead-lettered), retries
    included, like Kafka's ``delivery.timeout.ms``. Counted from when its batch was opened."""
    request_timeout: float = 60.0
    """Deadline of one ``_bulk`` request (the client's ``read_timeout`` does not apply: the
    server answers only when the whole batch is done)."""
    max_attempts: int = 50
    """Sends of one document that may have reached a server; the delivery timeout usually
    ends retries first."""
    backoff_base: float = 0.1
    """Seconds; upper bound of the first retry delay (full jitter, doubling per attempt)."""
    backoff_cap: float = 10.0
    """Seconds; the largest retry delay before a server's Retry-After. Also the delay of a
    retry the retry budget refuses."""
    budget: BudgetConfig = BULK_BUDGET
    """Retry budget across requests: each answered request deposits ``ratio``, each request
    failure or rejection that is retried withdraws one; without a token the retry waits
    ``backoff_cap`` instead of its short backoff. It slows retries down; it never drops a
    document."""
    max_document_bytes: int = SERVER_MAX_CONTENT_LENGTH - MIB
    """Larger actions are dead-lettered unsent: no server with default settings accepts them."""
    abort_after: float = 60.0
    """Seconds without any answer from the cluster (connections refused or reset, timeouts, no
    live node, a gateway's 502/503/504), counted from the first request that got none, after
    which the load stops with ``BulkAbortedError`` instead of dead-lettering every document
    after its ``delivery_timeout``. Any answer (even an error) starts the count anew, so an
    outage shorter than this (a node restarting, a network blip) only delays the load."""

    def __post_init__(self) -> None:
        _positive_int("max_actions", self.max_actions)
        _positive_int("max_bytes", self.max_bytes, SERVER_MAX_CONTENT_LENGTH - MIB)
        _positive_int("workers", self.workers, 256)
        _positive_int("max_attempts", self.max_attempts, 1000)
        _positive_int("max_document_bytes", self.max_document_bytes, SERVER_MAX_CONTENT_LENGTH)
        check_seconds("flush_interval", self.flush_interval)
        check_seconds("delivery_timeout", self.delivery_timeout)
        check_seconds("request_timeout", self.request_timeout, maximum=MAX_TOTAL)
        check_seconds("backoff_base", self.backoff_base)
        check_seconds("backoff_cap", self.backoff_cap)
        check_seconds("abort_after", self.abort_after)
        if self.backoff_base > self.backoff_cap:
            raise ConfigError("need backoff_base <= backoff_cap")
        if self.max_pending_bytes is not None:
            _positive_int("max_pending_bytes", self.max_pending_bytes)
            if self.max_pending_bytes < 2 * self.max_bytes:
                raise ConfigError(
                    f"max_pending_bytes={self.max_pending_bytes} must be at least twice "
                    f"max_bytes={self.max_bytes}, so that a batch can fill while another is sent"
                )

    @property
    def pending_limit(self) -> int:
        if self.max_pending_bytes is not None:
            return self.max_pending_bytes
        return (self.workers + 2) * self.max_bytes


@dataclass(frozen=True, slots=True)
class BulkStats:
    """A consistent snapshot of an indexer's counters.

    While the indexer runs, ``added == succeeded + dead_lettered + pending``; after ``close()``
    ``pending`` is 0 (unless a dead-letter write failed: those documents are held by the
    raised ``DeadLetterError``, and counted here as pending). A load stopped by
    ``BulkAbortedError`` is no exception: what it held is dead-lettered (``aborted``).
    """

    added: int = 0
    """Actions handed to the indexer, including those rejected before sending."""
    succeeded: int = 0
    """Actions the cluster applied: ``created + updated + deleted + noop + not_found``."""
    created: int = 0
    updated: int = 0
    deleted: int = 0
    noop: int = 0
    not_found: int = 0
    """Deletes of a document that was not there (the desired state, so a success)."""
    dead_lettered: int = 0
    """Actions written to the dead-letter file."""
    pending: int = 0
    """Actions without an outcome yet: buffered, in flight or waiting for a retry."""
    retried_requests: int = 0
    """``_bulk`` requests that resent actions after a failure (retries, and the halves of a
    batch split after a 413), among ``batches``."""
    retried_documents: int = 0
    """Actions sent again after a failure, counted per send (one action can count several
    times): ``retried_documents / added`` is the share of extra work."""
    batches: int = 0
    """``_bulk`` requests sent, retries included."""
    failed_requests: int = 0
    """Requests without a trustworthy answer (connection lost, 5xx, bad answer, 413...)."""
    splits: int = 0
    """Batches cut in half after a 413."""
    bytes: int = 0
    """NDJSON bytes sent, retries included."""
    retries_denied: int = 0
    """Retries the retry budget refused: those actions waited ``backoff_cap`` instead of
    being resent at once (an outage shows here)."""

    @property
    def retried(self) -> int:
        """Deprecated alias of :attr:`retried_documents`; say ``retried_requests`` or
        ``retried_documents``, which tell a few resent requests from many resent documents."""
        return self.retried_documents


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One applied action, as given to ``on_success``."""

    op: str
    """``index``, ``create``, ``update`` or ``delete``."""
    id: str | None
    """The document id, when the action named one (the server's generated ids are not read)."""
    index: str | None
    """The action's ``_index``, or the indexer's default index."""
    status: int
    result: str
    """``created``, ``updated``, ``deleted``, ``noop`` or ``not_found``."""


#: Every option's default, so that an indexer's keywords can tell which ones were given.
CONFIG_DEFAULTS: dict[str, object] = {f.name: f.default for f in fields(BulkConfig)}


def given_options(arguments: Mapping[str, object]) -> dict[str, object]:
    """The options an indexer's constructor was given: those of its ``locals()`` that name a
    :class:`BulkConfig` field and differ from its default."""
    return {
        name: arguments[name]
        for name, default in CONFIG_DEFAULTS.items()
        if name in arguments and arguments[name] != default
    }
