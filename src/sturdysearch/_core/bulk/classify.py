"""What each bulk outcome means: the rule tables.

Theory of operation. A ``_bulk`` call fails in two places, and each has its own table.

*The whole request* (:func:`classify_request`) either got a trustworthy answer (then every item
is looked at), or it did not, and then what matters is whether the request may have reached a
server:

* ``resend``: certainly not applied. The connection was refused, no node was live, or the server
  refused the request before doing any work (429, 503; see ``retry.REJECTED_BEFORE_WORK``).
  Every item goes back to the queue; the resend draws on the retry budget like any other
  (after ``NoLiveNodesError`` it also waits for the client's next scheduled probe).
* ``lost``: maybe applied, maybe not, maybe in part. The connection broke after the body was
  sent, the answer timed out, was truncated, did not parse or had the wrong number of items, or a
  500/502/504 came back (a proxy's 502/504 says nothing about what the node behind it did).
  Items with an id (``index``/``create``/``delete``, ``update`` without a script) are idempotent
  and go back to the queue; the others would be duplicated by a resend, so they are
  dead-lettered with outcome ``unknown``.
* ``split``: 413, the body is over the server's ``http.max_content_length``. The batch is cut in
  halves that are sent on their own; a single item that is still too large is dead-lettered.
* ``reject``: any other 4xx. The request itself is wrong (a bad index name, a closed index); every
  item is dead-lettered. 401 and 403 are also ``fatal``: the indexer stops taking documents,
  since every later batch would fail the same way.

*Each item* of a trustworthy answer (:func:`classify_item`) is ``done``, ``retry`` or ``reject``
by its status, with a few error types overriding the status (:data:`RETRY_TYPES`). A 404 on
``delete`` without an error is ``done``: the document is absent, as asked.
"""

from __future__ import annotations

from typing import Literal

from sturdysearch._core.retry import REJECTED_BEFORE_WORK
from sturdysearch.errors import (
    ApiError,
    ConnectionError,
    DeadlineExceeded,
    NoLiveNodesError,
    SturdySearchError,
    TLSError,
)

ItemVerdict = Literal["done", "retry", "reject"]
RequestVerdict = Literal["resend", "lost", "split", "reject", "fatal"]

#: Item statuses worth another attempt: overload (429) and server-side trouble (5xx). The
#: servers answer a mapping error, a bad document or a version conflict with 4xx, which a retry
#: would only repeat.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Error types that are transient whatever status accompanies them: rejected executions (write
#: queue full, indexing pressure), shards not available yet (node restarting, primary being
#: promoted), nodes leaving, and a tripped circuit breaker. Elasticsearch and OpenSearch spell
#: some of these differently.
RETRY_TYPES = frozenset(
    {
        "es_rejected_execution_exception",
        "rejected_execution_exception",
        "opensearch_rejected_execution_exception",
        "circuit_breaking_exception",
        "unavailable_shards_exception",
        "no_shard_available_action_exception",
        "primary_missing_action_exception",
        "shard_not_in_primary_mode_exception",
        "node_not_connected_exception",
        "node_disconnected_exception",
        "node_closed_exception",
        "connect_transport_exception",
        "receive_timeout_transport_exception",
        "process_cluster_event_timeout_exception",
        "retry_on_primary_exception",
    }
)

#: Whole-request statuses after which no later batch can succeed either.
FATAL_STATUSES = frozenset({401, 403})


def classify_item(op: str, status: int, error_type: str | None) -> ItemVerdict:
    """The fate of one item of a trustworthy answer."""
    if 200 <= status < 300:
        return "done"
    if error_type in RETRY_TYPES or status in RETRY_STATUSES:
        return "retry"
    if status == 404 and op == "delete" and error_type is None:
        return "done"  # result "not_found": the document is absent, which is what was asked
    return "reject"


def classify_request(exc: SturdySearchError) -> RequestVerdict:
    """The fate of a batch whose request raised ``exc`` instead of answering."""
    if isinstance(exc, ApiError):
        status = exc.status
        if status == 413:
            return "split"
        if status in REJECTED_BEFORE_WORK:
            return "resend"
        if status >= 500 or status == 408:
            return "lost"
        if status in FATAL_STATUSES:
            return "fatal"
        return "reject"
    if isinstance(exc, TLSError):
        return "fatal"
    if isinstance(exc, NoLiveNodesError):
        return "resend"
    if isinstance(exc, (ConnectionError, DeadlineExceeded)):
        return "lost" if exc.request_sent else "resend"
    # ReadTimeout, MalformedResponseError, and anything else: the body went out.
    return "lost"
