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
* ``fatal``: any other 4xx, a TLS failure, or the proxy refusing its credentials (407). The
  request itself is wrong (credentials refused, 401/403; a bad index name or parameter in the
  path or the query, which every later request carries too), so every later batch would fail
  the same way: the batch is dead-lettered and the indexer stops with ``BulkAbortedError``.

*Each item* of a trustworthy answer (:func:`classify_item`) is ``done``, ``retry``, ``reject``
or ``systemic`` by its status, with a few error types overriding the status
(:data:`RETRY_TYPES`, :func:`systemic_item`). A 404 on ``delete`` without an error is ``done``:
the document is absent, as asked. ``systemic`` is a rejection that says nothing about the
document and everything about its index: the index name is invalid, the index is missing
(auto-create off), closed, or blocked against writes, or the credentials may not write to it.
Such an item is dead-lettered like any rejection; when *every* item of an answer is
``systemic`` and they all went to one index, the engine stops the load (``engine``).

*No answer at all* (refused, reset, timed out, no live node, or a gateway's 502/503/504) is
transient one request at a time, and :func:`unanswered` says which failures count towards the
indexer's ``abort_after``: no answer for that long and the load stops.
"""

from __future__ import annotations

from typing import Literal

from sturdysearch._core.retry import REJECTED_BEFORE_WORK
from sturdysearch.errors import (
    ApiError,
    ConnectionError,
    DeadlineExceeded,
    NoLiveNodesError,
    ProxyAuthenticationError,
    SturdySearchError,
    TLSError,
)

ItemVerdict = Literal["done", "retry", "reject", "systemic"]
RequestVerdict = Literal["resend", "lost", "split", "fatal"]

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

#: Item error types that concern the item's index, not the document: every document sent to
#: that index fails the same way until someone changes the index, the cluster's settings or
#: the credentials. ``cluster_block_exception`` is judged by its reason (:func:`systemic_item`).
SYSTEMIC_TYPES = frozenset(
    {
        "security_exception",  # 403: these credentials may not write to this index
        "invalid_index_name_exception",  # upper case, a leading "_", a forbidden character
        "index_not_found_exception",  # missing, and action.auto_create_index does not allow it
        "index_closed_exception",
    }
)

#: Blocks that lift by themselves: the cluster is starting, or has no elected master. Every
#: other block (read-only, read-only-allow-delete after the disk filled up, write) stays until
#: an operator removes it: the flood-stage block is answered with 429, but retrying it for the
#: delivery timeout only defers the same rejection.
TRANSIENT_BLOCKS = ("SERVICE_UNAVAILABLE/",)


def systemic_item(status: int, error_type: str | None, reason: str) -> bool:
    """Whether a failed item's error concerns its index rather than the document (see
    :data:`SYSTEMIC_TYPES`)."""
    if error_type in SYSTEMIC_TYPES:
        return True
    if error_type == "cluster_block_exception":
        return not any(block in reason for block in TRANSIENT_BLOCKS)
    return False


def classify_item(op: str, status: int, error_type: str | None, reason: str = "") -> ItemVerdict:
    """The fate of one item of a trustworthy answer (``reason``: the server's, which tells a
    block that lifts by itself from one that does not)."""
    if 200 <= status < 300:
        return "done"
    if error_type is not None and systemic_item(status, error_type, reason):
        return "systemic"
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
        return "fatal"  # 401, 403, and every other 4xx of the request itself
    if isinstance(exc, (TLSError, ProxyAuthenticationError)):
        return "fatal"
    if isinstance(exc, NoLiveNodesError):
        return "resend"
    if isinstance(exc, (ConnectionError, DeadlineExceeded)):
        return "lost" if exc.request_sent else "resend"
    # ReadTimeout, MalformedResponseError, and anything else: the body went out.
    return "lost"


#: Whole-request statuses that say no node could serve the request: a gateway without a
#: backend, or a node without an elected master. Like a refused connection, they count
#: towards ``abort_after``.
UNANSWERED_STATUSES = frozenset({502, 503, 504})


def unanswered(exc: SturdySearchError | None) -> bool:
    """Whether a failed request got no answer from the cluster (``None``: an answer that
    could not be trusted, truncated or malformed): refused, reset, timed out, no live node, or
    a 502/503/504. Any other answer, even an error, shows that a node is there."""
    if isinstance(exc, ApiError):
        return exc.status in UNANSWERED_STATUSES
    return True
