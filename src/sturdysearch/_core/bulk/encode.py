"""Documents and actions to the NDJSON lines of a ``_bulk`` body.

One item is one ``bytes`` value: the action line, then (except for ``delete``) the source line,
each ending in a newline. The item is kept exactly as it was first encoded, so a retry resends
the same bytes and a dead-letter record holds exactly what the server was sent.

Documents go through orjson at full speed; the checks :func:`sturdysearch._core.serialize.dumps`
adds (a NaN or an infinity would silently be stored as ``null``, an unsupported type or a cycle
must name its field) run only when the fast output could hide such a value, i.e. when it
contains ``null`` or orjson refused the document. The fast path also leaves out the orjson
options for numpy values and non-string keys (together they made orjson ~60% slower on a
plain log document): without them orjson refuses such a document, which then
takes the careful path, where the options apply. Either way a document encodes to the same
bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from sturdysearch._core.serialize import dumps
from sturdysearch.errors import SerializationError

OPS = ("index", "create", "update", "delete")

_dumps = orjson.dumps
#: The fast path's only option: the source line comes out of orjson with its newline.
LINE = orjson.OPT_APPEND_NEWLINE
#: ``null`` in orjson's output may be a NaN or infinity it wrote as null (a compiled search is
#: faster than ``bytes.__contains__`` for this).
has_null = re.compile(b"null").search


def default(obj: Any) -> Any:
    """orjson's fallback: any ``Mapping`` (not only ``dict``) is an object."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError


def source_line(document: Any) -> bytes:
    """The document as one line of JSON, with its newline: the hot path of the bulk indexers
    (the threaded one has it inlined in ``BulkIndexer.index``). Raises like
    :func:`encode_source`."""
    if type(document) is dict:
        try:
            data = _dumps(document, default=default, option=LINE)
        except TypeError:
            pass  # numpy, a non-str key, or a type JSON has not: the careful path decides
        else:
            if has_null(data) is None:
                return data
    return encode_source(document) + b"\n"


def encode_source(document: Any) -> bytes:
    """The document as one line of JSON (no trailing newline), by the careful path.

    ``document`` is a mapping or dataclass; ``bytes`` are taken as JSON you serialized yourself
    and are checked to hold one JSON object. Raises ``SerializationError`` naming the offending
    field for NaN, infinity, integers beyond 64 bits, unsupported types and reference cycles.
    """
    if isinstance(document, (bytes, bytearray, memoryview)):
        return raw_source(bytes(document))
    if isinstance(document, str):
        raise SerializationError(
            "a document must be a mapping, a dataclass or JSON bytes, not str: pass a dict, or "
            "encode the string to bytes if it already is JSON",
            path="document",
            type_name="str",
        )
    return dumps(document, what="document")


def raw_source(raw: bytes) -> bytes:
    """Check caller-serialized JSON: one object; pretty-printed input is compacted to one line."""
    raw = raw.strip()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(
            f"document bytes are not valid JSON ({exc}); first bytes: {raw[:80]!r}",
            path="document",
            type_name="bytes",
        ) from None
    if not isinstance(parsed, dict):
        raise SerializationError(
            f"document bytes must hold a JSON object, not {type(parsed).__name__}",
            path="document",
            type_name="bytes",
        )
    if b"\n" in raw or b"\r" in raw:
        return _dumps(parsed)
    return raw


def id_text(id: Any) -> str:
    """A document id as the servers store it. Only ``str`` and ``int`` are accepted: anything
    else (a float, a UUID object, None) is more often a bug than an id, so it raises
    ``TypeError`` at once instead of being stringified."""
    if type(id) is str:
        return id
    if isinstance(id, int) and not isinstance(id, bool):
        return str(id)
    raise TypeError(f"a document id must be str or int, not {type(id).__name__}: {id!r}")


def action_line(op: str, meta: Mapping[str, Any]) -> bytes:
    """``{"op": {meta}}`` plus newline. ``meta`` holds ``_id``, ``_index``, ``routing``..."""
    if op not in OPS:
        raise ValueError(f"unknown bulk action {op!r}; use one of {', '.join(OPS)}")
    return _dumps({op: meta}) + b"\n"


def split_item(line: bytes) -> tuple[bytes, bytes | None]:
    """An encoded item back into its action line and source line (``None`` for delete), both
    without newlines."""
    cut = line.index(b"\n")
    source = line[cut + 1 : -1]
    return line[:cut], source or None


def item_meta(
    id: Any, index: str | None, routing: str | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The metadata of an action line; ``None`` values are left out."""
    meta: dict[str, Any] = {}
    if index is not None:
        meta["_index"] = index
    if id is not None:
        meta["_id"] = id_text(id)
    if routing is not None:
        meta["routing"] = routing
    if extra:
        meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def update_body(
    doc: Any,
    script: Mapping[str, Any] | None,
    upsert: Any,
    doc_as_upsert: bool | None,
    scripted_upsert: bool | None,
) -> dict[str, Any]:
    """The source line of an ``update``: exactly one of ``doc`` (a merge, idempotent) or
    ``script`` (not idempotent); raises ``ValueError`` otherwise."""
    if (doc is None) == (script is None):
        raise ValueError("update needs exactly one of doc= or script=")
    body: dict[str, Any] = {"doc": doc} if doc is not None else {"script": script}
    if upsert is not None:
        body["upsert"] = upsert
    if doc_as_upsert is not None:
        body["doc_as_upsert"] = doc_as_upsert
    if scripted_upsert is not None:
        body["scripted_upsert"] = scripted_upsert
    return body
