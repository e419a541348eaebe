"""The dead-letter record: one JSON line per action that will not be indexed, and why.

::

    {"action": {"index": {"_index": "logs", "_id": "42"}},
     "document": {...the source exactly as sent...},
     "outcome": "rejected", "status": 400, "error_type": "document_parsing_exception",
     "reason": "...", "attempts": 1, "time": "2026-01-02T03:04:05.678Z"}

``action`` always names its ``_index``, so a record can be replayed on its own. ``document`` is
the source line as it was sent (``null`` for ``delete``, and for a document that could not be
serialized, whose ``document_repr`` holds its ``repr()`` instead).

Outcomes:

* ``rejected`` - the server refused the action for good (mapping error, 400, 404 index missing,
  409 conflict on create). Fix the document or the index, then replay.
* ``exhausted`` - transient failures (429, 5xx, lost connections) until the attempts or the
  delivery timeout ran out. Usually safe to replay as is.
* ``unknown`` - a request carrying this action was lost after it may have reached the server,
  and the action is not idempotent (no id, or an update script): it may or may not have been
  applied, and a resend could apply it twice. Check before replaying.
* ``unserializable`` - the document could not be turned into JSON (NaN, unsupported type,
  cycle); ``reason`` names the field. Never sent.
* ``invalid`` - the producer could not make an action of this input at all (a line that is not
  JSON, a record without the id an update needs) and handed it to ``BulkIndexer.reject()``;
  ``document_repr`` holds the input as given, ``reason`` what is wrong with it. Never sent.
* ``too_large`` - bigger than any request the server accepts (413 on its own). Never applied.
* ``aborted`` - the indexer stopped before it could be applied: a failure every document
  would meet stopped the load (``BulkAbortedError``; ``reason`` says what to fix), or it was
  interrupted twice. Replay once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from sturdysearch._core.bulk.encode import split_item

OUTCOMES = (
    "rejected",
    "exhausted",
    "unknown",
    "unserializable",
    "invalid",
    "too_large",
    "aborted",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One action that will not be indexed. ``line`` is the encoded action as sent (``None``
    when the document could not be serialized: then ``action`` and ``document_repr`` hold what
    is known)."""

    line: bytes | None
    outcome: str
    reason: str
    status: int | None = None
    error_type: str | None = None
    attempts: int = 0
    action: Mapping[str, Any] | None = None
    document_repr: str | None = None
    context: Any = None
    """What the producer said about the action when it added it (``context=``, e.g. the
    input file and line): never sent, written as the record's ``context``."""

    def action_dict(self) -> dict[str, Any]:
        """The action as ``{op: meta}``."""
        if self.line is not None:
            action, _ = split_item(self.line)
            parsed: dict[str, Any] = orjson.loads(action)
            return parsed
        return dict(self.action or {})

    @property
    def op(self) -> str:
        return next(iter(self.action_dict()), "")

    @property
    def id(self) -> str | None:
        meta: Any = next(iter(self.action_dict().values()), None)
        value = meta.get("_id") if isinstance(meta, dict) else None
        return value if isinstance(value, str) else None


def encode_record(letter: DeadLetter, *, index: str | None, at: float) -> bytes:
    """The record's JSON line (with newline). ``index`` fills in ``_index`` when the action has
    none (it went to the request's default index); ``at`` is the wall-clock time (epoch
    seconds)."""
    action = letter.action_dict()
    source: bytes | None = None
    if letter.line is not None:
        _, source = split_item(letter.line)
    if index is not None and len(action) == 1:
        ((op, meta),) = action.items()
        if isinstance(meta, dict) and "_index" not in meta:
            action = {op: {"_index": index, **meta}}
    record: dict[str, Any] = {
        "action": action,
        "document": orjson.Fragment(source) if source is not None else None,
        "outcome": letter.outcome,
        "status": letter.status,
        "error_type": letter.error_type,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "time": datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds"),
    }
    if letter.document_repr is not None:
        record["document_repr"] = letter.document_repr
    if letter.context is not None:
        record["context"] = letter.context
    # ``default=repr``: a context value JSON cannot hold is written as its repr(), never lost.
    return orjson.dumps(record, default=repr, option=orjson.OPT_APPEND_NEWLINE)


class BadRecord(ValueError):
    """A dead-letter line that cannot be replayed; ``str()`` says why."""


def decode_record(line: bytes) -> tuple[str, dict[str, Any], Any, dict[str, Any]]:
    """``(op, meta, document, record)`` of one record; raises ``BadRecord``.

    ``document`` is ``None`` for ``delete`` (and for unserializable documents, which cannot be
    replayed: ``BadRecord``)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    action = record.get("action")
    if not isinstance(action, dict) or len(action) != 1:
        raise BadRecord("no action")
    ((op, meta),) = action.items()
    if op not in ("index", "create", "update", "delete") or not isinstance(meta, dict):
        raise BadRecord(f"unknown action {op!r}")
    document = record.get("document")
    if op != "delete" and not isinstance(document, dict):
        raise BadRecord(
            "no document to send"
            + {
                "unserializable": " (it could not be serialized)",
                "invalid": " (the input was not a record that could be sent)",
            }.get(str(record.get("outcome")), "")
        )
    return op, meta, document if op != "delete" else None, record


#: How much of a document that is not sent is kept in its record (``document_repr``).
SHOWN_CHARS = 2000


def _shown(document: Any) -> str:
    # A line as read keeps no line ending: it is the record's, not the input's.
    if isinstance(document, (bytes, bytearray, memoryview)):
        text = bytes(document[: SHOWN_CHARS * 4]).decode("utf-8", "replace")
        return text.rstrip("\r\n")[:SHOWN_CHARS]
    if isinstance(document, str):
        return document.rstrip("\r\n")[:SHOWN_CHARS]
    try:
        return repr(document)[:SHOWN_CHARS]
    except Exception as repr_exc:  # a broken __repr__ must not abort the stream either
        return f"<{type(document).__name__}: repr failed: {repr_exc!r}>"


def unserializable(
    op: str, meta: Mapping[str, Any], document: Any, exc: Exception, context: Any = None
) -> DeadLetter:
    """The dead letter of a document that could not be encoded: the action, the document's
    ``repr()`` (cut at 2,000 characters) and the serializer's reason."""
    try:
        shown = repr(document)[:SHOWN_CHARS]
    except Exception as repr_exc:
        shown = f"<{type(document).__name__}: repr failed: {repr_exc!r}>"
    return DeadLetter(
        None,
        "unserializable",
        str(exc),
        action={op: dict(meta)},
        document_repr=shown,
        error_type=type(exc).__name__,
        context=context,
    )


def invalid(
    op: str, meta: Mapping[str, Any], record: Any, reason: str, context: Any = None
) -> DeadLetter:
    """The dead letter of input the producer could not make an action of
    (``BulkIndexer.reject``): the action it would have been, the input as given (bytes and
    text as text, anything else as its ``repr()``, cut at 2,000 characters), and why."""
    if not isinstance(reason, str) or not reason:
        raise ValueError("reject() needs the reason the record cannot be sent, as a string")
    return DeadLetter(
        None,
        "invalid",
        reason,
        action={op: dict(meta)},
        document_repr=_shown(record),
        context=context,
    )
