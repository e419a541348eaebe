"""Multi-step calls as sans-IO generators, shared by the blocking and the asyncio client.

A flow is a generator that yields what it needs done and is told what happened::

    RequestSpec  -> the driver performs it and sends back the Response, or throws the error in
    Sleep(s)     -> the driver waits s seconds and sends back None
    Page(hits)   -> (scan only) the driver hands the hits to the consumer and sends back None

and finally returns its result (``StopIteration.value``). Flows never read a clock, sleep or
touch a socket; randomness for jitter is passed in. :class:`FlowRun` wraps a flow with the call's
deadline: each request's timeout is clamped to the time left, and a sleep or a request that no
longer fits throws ``DeadlineExceeded`` into the flow (which may add what it knows, e.g. the id of
a server task that keeps running). The drivers (``_run_flow`` in the clients) are a dozen lines.

Flows here:

* :func:`detect` - ``GET /``, falling back to ``GET /_nodes/_local`` (Elasticsearch builds without
  the rest-root module answer ``GET /`` with 405).
* :func:`update_with_retry` - read, apply ``fn``, write back conditionally on
  ``if_seq_no``/``if_primary_term``, retry on 409 with jittered backoff.
* :func:`by_query` - start ``_delete_by_query``/``_update_by_query`` as a server task, poll
  ``_tasks/{id}`` until done.
* :func:`scan` - every matching document once, by point in time + ``search_after`` where the
  server has a unique tiebreaker, else by scroll; the PIT or scroll is released on every exit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sturdysearch._core import api
from sturdysearch._core.dialect import (
    Dialect,
    ServerInfo,
    parse_nodes_info,
    parse_server_info,
    with_hint,
)
from sturdysearch._core.request import RequestSpec, index_segment
from sturdysearch._core.responses import Response, error_class
from sturdysearch._core.results import ByQueryResult, WriteResult
from sturdysearch._core.serialize import dumps
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    ApiError,
    ConflictError,
    ConnectionError,
    DeadlineExceeded,
    IncompleteResultsError,
    ServerError,
    SturdySearchError,
    TransportError,
)

logger = logging.getLogger("sturdysearch")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds, then resume the flow."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Page:
    """Hits for the consumer of a scan."""

    hits: Sequence[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """The flow finished with ``value``."""

    value: T


Step = RequestSpec | Sleep | Page
Flow = Generator[Step, Any, T]


class Abandoned(Exception):
    """Thrown into a scan whose consumer stopped early: release what you hold, then stop."""


class FlowRun(Generic[T]):
    """One run of a flow under an optional deadline; the driver reports facts (answers, errors,
    the time) and gets back the next step or :class:`Done`. ``per_request`` is the timeout of a
    request that names none (the client's default), before clamping to the deadline."""

    __slots__ = ("abandoned", "deadline", "finished", "flow", "per_request")

    def __init__(
        self, flow: Flow[T], deadline: Deadline | None = None, *, per_request: float | None = None
    ) -> None:
        self.flow = flow
        self.deadline = deadline
        self.per_request = per_request
        self.finished = False
        self.abandoned = False

    def start(self, now: float) -> Step | Done[T]:
        return self._advance(lambda: next(self.flow), now)

    def send(self, value: Any, now: float) -> Step | Done[T]:
        return self._advance(lambda: self.flow.send(value), now)

    def throw(self, error: BaseException, now: float) -> Step | Done[T]:
        return self._advance(lambda: self.flow.throw(error), now)

    def abandon(self, now: float) -> Step | Done[T]:
        """The consumer stopped: let the flow release what it holds (its next steps are the
        releasing requests), then :class:`Done`."""
        self.abandoned = True
        return self.throw(Abandoned(), now)

    def _advance(self, resume: Callable[[], Step], now: float) -> Step | Done[T]:
        while True:
            try:
                step = resume()
            except StopIteration as stop:
                self.finished = True
                return Done(stop.value)
            except Abandoned:
                self.finished = True
                if not self.abandoned:
                    raise
                return Done(None)  # type: ignore[arg-type]
            except BaseException:
                self.finished = True
                raise
            late = self._too_late(step, now)
            if late is None:
                return self._bounded(step, now)
            resume = self._thrower(late)

    def _thrower(self, error: BaseException) -> Callable[[], Step]:
        return lambda: self.flow.throw(error)

    def _too_late(self, step: Step, now: float) -> DeadlineExceeded | None:
        if self.deadline is None or isinstance(step, Page):
            return None
        remaining = self.deadline.remaining(now)
        needed = step.seconds if isinstance(step, Sleep) else 0.0
        if remaining > needed:
            return None
        return DeadlineExceeded(
            f"the call's deadline of {self.deadline.budget:g} s passed between its steps; "
            "give it more time with timeout=",
            request_sent=False,
        )

    def _bounded(self, step: Step, now: float) -> Step:
        if not isinstance(step, RequestSpec):
            return step
        limit = step.timeout if step.timeout is not None else self.per_request
        if self.deadline is not None:
            remaining = self.deadline.remaining(now)
            limit = remaining if limit is None else min(limit, remaining)
        if limit == step.timeout:
            return step
        return step._replace(timeout=limit)


# -- detection ---------------------------------------------------------------------------------

#: Statuses with which a server says "GET / is not served here" (no rest-root module: 405 on
#: Elasticsearch 8+, or a proxy that only forwards API paths: 404/400).
ROOT_NOT_SERVED = frozenset({400, 404, 405})


def detect(*, timeout: float | None = None) -> Flow[ServerInfo]:
    """Who is the server: ``GET /``, else ``GET /_nodes/_local``. Raises what the server
    answered when neither works (401/403 without the ``monitor`` privilege, for instance)."""
    try:
        root = yield api.info(timeout=timeout)
    except ApiError as exc:
        if exc.status not in ROOT_NOT_SERVED:
            raise
        nodes = yield api.nodes_local_info(timeout=timeout)
        return parse_nodes_info(nodes.body, nodes.meta.headers, nodes.meta.node)
    return parse_server_info(root.body, root.meta.node)


def ping(*, timeout: float | None = None) -> Flow[bool]:
    """``HEAD /`` answered 2xx; a 404 there is ``False``. Builds without a root endpoint answer
    405: then the node is asked for its own info instead."""
    try:
        response = yield api.ping(timeout=timeout)
    except ApiError as exc:
        if exc.status != 405:
            raise
        yield api.nodes_local_info(timeout=timeout)
        return True
    return bool(response.body)


# -- optimistic concurrency --------------------------------------------------------------------


def backoff(attempt: int, rand: float, *, base: float, cap: float) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**(attempt-1)))``."""
    return float(rand * min(cap, base * 2 ** (attempt - 1)))


def _may_have_applied(exc: SturdySearchError) -> bool:
    """Whether a failed write may still have been applied by the server."""
    if isinstance(exc, ApiError):
        return isinstance(exc, ServerError) and exc.status in (502, 504)
    if isinstance(exc, (ConnectionError, DeadlineExceeded)):
        return exc.request_sent
    return isinstance(exc, TransportError)


def update_with_retry(
    *,
    index: str,
    id: Any,
    fn: Callable[[Any], Any],
    rand: Callable[[], float],
    max_attempts: int = 10,
    backoff_base: float = 0.02,
    backoff_cap: float = 1.0,
    create_if_missing: bool = False,
    refresh: bool | str | None = None,
    routing: str | None = None,
) -> Flow[WriteResult]:
    """Read the document, compute ``fn(source)``, write it back only if nobody wrote in between
    (``if_seq_no``/``if_primary_term``); on 409 read again and retry, after a jittered backoff,
    up to ``max_attempts`` times.

    ``fn`` gets the current ``_source`` (or ``None`` for a missing document when
    ``create_if_missing``, which then writes with ``op_type=create``) and returns the new one;
    it may be called several times and must not have side effects. Raises ``NotFoundError`` for
    a missing document (without ``create_if_missing``), ``ConflictError`` after
    ``max_attempts`` lost races, and ``TypeError`` if ``fn`` returns ``None``.

    The write is sent as not idempotent: were the transport to resend it after a lost answer,
    our own success would come back as a 409 and ``fn`` would be applied twice. After such an
    ambiguous failure the flow reads the document: unchanged means our write did not land and
    the loop goes on; changed means it may have, and the error is raised with that warning.
    """
    if not 1 <= max_attempts <= 1000:
        raise ValueError("max_attempts must be between 1 and 1000")
    for attempt in range(1, max_attempts + 1):
        current = yield api.get(index=index, id=id, routing=routing, ignore=404)
        missing = current.meta.status == 404
        if missing and (not create_if_missing or current.body.get("found") is not False):
            raise _not_found(current, id, index)
        new = fn(None if missing else current["_source"])
        if new is None:
            raise TypeError("update_with_retry: fn returned None; return the new document")
        if missing:
            write = api.create(index=index, id=id, document=new, refresh=refresh, routing=routing)
        else:
            write = api.index(
                index=index,
                id=id,
                document=new,
                refresh=refresh,
                routing=routing,
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
        write = write._replace(idempotent=False)
        try:
            written = yield write
        except ConflictError as exc:
            if attempt == max_attempts:
                raise ConflictError(
                    409,
                    error_type=exc.error_type,
                    reason=f"update_with_retry gave up after {max_attempts} attempts, each lost "
                    f"to a concurrent write of document {id!r}; raise max_attempts or reduce "
                    f"contention (last: {exc.reason})",
                    root_cause=exc.root_cause,
                    body=exc.body,
                    node=exc.node,
                    headers=exc.headers,
                ) from exc
            yield Sleep(backoff(attempt, rand(), base=backoff_base, cap=backoff_cap))
            continue
        except SturdySearchError as exc:
            if isinstance(exc, DeadlineExceeded) or not _may_have_applied(exc):
                raise
            check = yield api.get(index=index, id=id, routing=routing, ignore=404)
            unchanged = (
                check.meta.status == 404
                if missing
                else (check.meta.status == 200 and _token(check) == _token(current))
            )
            if not unchanged:
                raise _ambiguous(exc, id) from exc
            continue
        return WriteResult(written.body, written.meta)
    raise AssertionError("unreachable")  # pragma: no cover


def _not_found(answer: Response, id: Any, index: str) -> ApiError:
    body = answer.body if isinstance(answer.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):  # the index itself is missing
        return error_class(404)(
            404,
            error_type=_error_type(body),
            reason=error.get("reason") if isinstance(error.get("reason"), str) else None,
            body=body,
            node=answer.meta.node,
        )
    return error_class(404)(
        404,
        error_type="document_missing",
        reason=f"document {id!r} not found in index {index!r} (pass create_if_missing=True "
        "to create it)",
        body=body,
        node=answer.meta.node,
    )


def _ambiguous(exc: SturdySearchError, id: Any) -> SturdySearchError:
    note = (
        f"the write may have been applied (document {id!r} changed since it was read) and was "
        "not retried, because applying fn again could apply it twice: read the document to see"
    )
    if isinstance(exc, ApiError):
        return type(exc)(
            exc.status,
            error_type=exc.error_type,
            reason=f"{exc.reason or 'no reason given'}; {note}",
            body=exc.body,
            node=exc.node,
            headers=exc.headers,
        )
    if isinstance(exc, TransportError):
        return TransportError(f"{exc.message}; {note}", node=exc.node, errors=(exc,))
    return exc


def _token(response: Response) -> tuple[Any, Any]:
    return response.body.get("_seq_no"), response.body.get("_primary_term")


def _error_type(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


# -- one request ------------------------------------------------------------------------------


def single(spec: RequestSpec) -> Flow[Response]:
    """One request; if the server refuses it because its build lacks the module serving that
    API (reindex, lang-mustache, lang-painless), the error says so."""
    try:
        response: Response = yield spec
    except ApiError as exc:
        hinted = with_hint(exc, spec.path)
        if hinted is exc:
            raise
        raise hinted from exc
    return response


# -- by-query tasks ----------------------------------------------------------------------------

#: Seconds between task polls: doubling from the first to the last.
POLL_FIRST = 0.05
POLL_MAX = 1.0


def by_query(start: RequestSpec, *, wait_for_completion: bool = True) -> Flow[ByQueryResult]:
    """Run a ``*_by_query`` request started as a server task (``start`` carries
    ``wait_for_completion=false``) and poll ``GET /_tasks/{id}`` until it completes.

    Returns the task's final answer as :class:`ByQueryResult` (or, with
    ``wait_for_completion=False``, the started task's id in ``.task``). Raises the typed
    ``ApiError`` of a failed task, and ``DeadlineExceeded`` naming the task, which keeps running
    on the server, when the deadline passes first.
    """
    started = yield from single(start)
    if not wait_for_completion:
        return ByQueryResult(started.body, started.meta)
    task = started.body.get("task") if isinstance(started.body, dict) else None
    if not isinstance(task, str):
        # The server ran it synchronously after all (it ignores the parameter): done.
        return ByQueryResult(started.body, started.meta)
    delay = POLL_FIRST
    try:
        while True:
            status = yield api.tasks_get(task_id=task)
            if status.body.get("completed") is True:
                break
            yield Sleep(delay)
            delay = min(delay * 2, POLL_MAX)
    except DeadlineExceeded as exc:
        raise DeadlineExceeded(
            f"{exc.message}; task {task} ({start.path}) keeps running on the server: follow it "
            f"with client.tasks.get(task_id={task!r}) or stop it with "
            f"client.tasks.cancel(task_id={task!r})",
            node=exc.node,
            request_sent=exc.request_sent,
        ) from exc
    error = status.body.get("error")
    if isinstance(error, dict):
        raise ServerError(
            500,
            error_type=error.get("type") if isinstance(error.get("type"), str) else None,
            reason=f"task {task} failed: {error.get('reason')}",
            body=status.body,
            node=status.meta.node,
        )
    response = status.body.get("response")
    result = ByQueryResult(response if isinstance(response, dict) else {}, status.meta)
    result.body.setdefault("task", task)
    return result


# -- scan --------------------------------------------------------------------------------------

PAGINATIONS = ("auto", "pit", "scroll")


def check_shards(page: Response) -> None:
    """Raise ``IncompleteResultsError`` when shards failed or the search timed out: a scan that
    silently missed a shard's documents is the bug this prevents."""
    shards = page.body.get("_shards") if isinstance(page.body, dict) else None
    failed = shards.get("failed", 0) if isinstance(shards, dict) else 0
    if failed or page.body.get("timed_out") is True:
        failures = shards.get("failures", []) if isinstance(shards, dict) else []
        first = failures[0] if failures and isinstance(failures[0], dict) else {}
        cause = first.get("reason", {}) if isinstance(first.get("reason"), dict) else {}
        total = shards.get("total") if isinstance(shards, dict) else "?"
        raise IncompleteResultsError(
            page.meta.status,
            error_type=cause.get("type") or ("timed_out" if not failed else "shard_failure"),
            reason=(
                f"{failed} of {total} shards failed"
                + (f": {cause.get('reason')}" if cause.get("reason") else "")
                if failed
                else "the search timed out on some shards"
            )
            + "; the results would be incomplete",
            body=page.body,
            node=page.meta.node,
        )


def scan(
    dialect: Dialect,
    *,
    index: str | Sequence[str],
    query: Mapping[str, Any] | None = None,
    size: int = 1000,
    keep_alive: str = "5m",
    sort: Sequence[Any] | None = None,
    source: Any = None,
    pagination: str = "auto",
    timeout: float | None = None,
    slice: tuple[int, int] | None = None,
) -> Flow[None]:
    """Every document matching ``query`` exactly once, a page at a time (:class:`Page`).

    ``slice=(i, n)`` reads only the ``i``-th of ``n`` disjoint slices (``0 <= i < n``), so that
    ``n`` readers in parallel read every document once between them.

    ``pagination="auto"`` uses a point in time with ``search_after`` where the server has a
    unique tiebreaker (``_shard_doc``: Elasticsearch 7.12+, OpenSearch 3.3+), else scroll.
    The PIT or scroll context is released however the flow ends: exhausted, failed, or
    abandoned by its consumer (:class:`Abandoned` thrown in).
    """
    if pagination not in PAGINATIONS:
        raise ValueError(f"pagination must be one of {PAGINATIONS}, not {pagination!r}")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 10000:
        raise ValueError("size (hits per page) must be an integer from 1 to 10000")
    use_pit = dialect.scan_uses_pit if pagination == "auto" else pagination == "pit"
    if use_pit and not dialect.scan_uses_pit:
        raise ValueError(
            f"pagination='pit': {dialect.describe()} "
            + (
                "has no point-in-time API"
                if dialect.pit is None
                else "has no unique sort tiebreaker (_shard_doc) for search_after, so pages "
                "could skip or repeat documents"
            )
            + "; use pagination='scroll' or 'auto'"
        )
    body: dict[str, Any] = {"size": size}
    if slice is not None:
        number, total = _check_slice(slice)
        if total > 1:
            body["slice"] = {"id": number, "max": total}
    if query is not None:
        body["query"] = query
    if source is not None:
        body["_source"] = source
    if use_pit:
        yield from _pit_pages(dialect, index, body, sort, keep_alive, timeout)
    else:
        yield from _scroll_pages(index, body, sort, keep_alive, timeout)


def _check_slice(value: Any) -> tuple[int, int]:
    def whole(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(whole(x) for x in value)
        or not 0 <= value[0] < value[1]
    ):
        raise ValueError(f"slice must be (id, max) with 0 <= id < max, not {value!r}")
    return value[0], value[1]


def _release(spec: RequestSpec) -> Generator[Step, Any, None]:
    try:
        yield spec
    except SturdySearchError as exc:
        logger.warning(
            "could not release a search context (%s %s): %s; the server drops it when its "
            "keep_alive passes",
            spec.method,
            spec.path,
            exc,
        )


def _pit_pages(
    dialect: Dialect,
    index: str | Sequence[str],
    body: dict[str, Any],
    sort: Sequence[Any] | None,
    keep_alive: str,
    timeout: float | None,
) -> Flow[None]:
    tiebreaker = dialect.pit_tiebreaker
    assert tiebreaker is not None
    order: list[Any] = list(sort) if sort else []
    if not any(_sort_field(s) == tiebreaker for s in order):
        order.append({tiebreaker: "asc"})
    body = {**body, "sort": order, "track_total_hits": False}
    opened = yield dialect.open_pit(_index_list(index), keep_alive, timeout=timeout)
    pit_id = dialect.pit_id(opened.body)
    try:
        after: Any = None
        while True:
            request = {**body, "pit": {"id": pit_id, "keep_alive": keep_alive}}
            if after is not None:
                request["search_after"] = after
            # A PIT search is a read of a frozen view: resending it is harmless.
            page = yield RequestSpec(
                "POST", "/_search", body=dumps(request), idempotent=True, timeout=timeout
            )
            pit_id = page.body.get("pit_id") or pit_id  # may change with any answer
            check_shards(page)
            hits = page.body["hits"]["hits"]
            if hits:
                yield Page(hits)
            if len(hits) < body["size"]:
                break
            after = hits[-1]["sort"]
    except GeneratorExit:
        raise  # closed with no driver left to send anything
    except BaseException:
        yield from _release(dialect.close_pit(pit_id, timeout=timeout))
        raise
    yield from _release(dialect.close_pit(pit_id, timeout=timeout))


def _scroll_pages(
    index: str | Sequence[str],
    body: dict[str, Any],
    sort: Sequence[Any] | None,
    keep_alive: str,
    timeout: float | None,
) -> Flow[None]:
    body = {**body, "sort": list(sort) if sort else ["_doc"]}
    # Starting a scroll is a read; a resend after a lost answer leaves the first context to
    # expire after keep_alive, which is cheaper than failing the scan.
    page = yield RequestSpec(
        "POST",
        f"/{index_segment(index)}/_search",
        params={"scroll": keep_alive},
        body=dumps(body),
        idempotent=True,
        timeout=timeout,
    )
    scroll_id = page.body.get("_scroll_id")
    try:
        while True:
            scroll_id = page.body.get("_scroll_id") or scroll_id  # release the latest one
            check_shards(page)
            hits = page.body["hits"]["hits"]
            if not hits:
                break
            yield Page(hits)
            # Not idempotent: each call moves the cursor, so a resend would skip a page.
            page = yield RequestSpec(
                "POST",
                "/_search/scroll",
                body=dumps({"scroll": keep_alive, "scroll_id": scroll_id}),
                idempotent=False,
                timeout=timeout,
            )
    except GeneratorExit:
        raise
    except BaseException:
        if scroll_id:
            yield from _release(api.clear_scroll(scroll_id=scroll_id, timeout=timeout))
        raise
    if scroll_id:
        yield from _release(api.clear_scroll(scroll_id=scroll_id, timeout=timeout))


def _sort_field(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and len(entry) == 1:
        return str(next(iter(entry)))
    return None


def _index_list(index: str | Sequence[str]) -> str | list[str]:
    return index if isinstance(index, str) else list(index)


__all__ = [
    "Abandoned",
    "Done",
    "Flow",
    "FlowRun",
    "Page",
    "Sleep",
    "Step",
    "by_query",
    "check_shards",
    "detect",
    "ping",
    "scan",
    "single",
    "update_with_retry",
]
