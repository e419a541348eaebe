"""Is a ``_bulk`` answer trustworthy, and what did each item get?

An HTTP 200 is not enough. The answer must be a JSON object whose ``items`` list has exactly one
entry per action sent, each ``{op: {"status": int, ...}}``. Anything else (a truncated or
rewritten body, a proxy's HTML page, the item-count bug of Elasticsearch 7.10/7.11 that Logstash
guards against) means nobody can say which items were applied, so the whole request is
treated as lost (see ``classify``).

The bulk indexer asks the server to leave out what it does not read (``FILTER_PATH``), which
makes the answer about four times smaller and parsing it correspondingly cheaper; an answer in
full is read the same way.

Most answers of a steady load say the same thing of every item: ``{"index":{"result":
"created","status":201}}``, thousands of times. :func:`decode_answer` recognises such an
answer from its bytes, by comparing it with that one item repeated, and returns a
:class:`UniformAnswer` instead of the parsed list: parsing it built two dicts per document and
walking them cost as much CPU as encoding the document. The comparison is exact (every byte of
the answer is checked), so it is as strict as parsing, and stricter about the shape; any other
answer is parsed and read item by item as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

#: The parts of the answer the indexer reads (Elasticsearch and OpenSearch ``filter_path``).
FILTER_PATH = "errors,items.*.status,items.*.result,items.*.error"

_UNIFORM_HEAD = b'{"errors":false,"items":['
_UNIFORM_TAIL = b"]}"
_SUCCESS_ITEM = re.compile(
    rb'\{"(index|create|update|delete)":\{"result":"(created|updated|deleted|noop)",'
    rb'"status":(2[0-9][0-9])\}\}'
)


@dataclass(frozen=True, slots=True)
class UniformAnswer:
    """A ``_bulk`` answer whose ``count`` items are all the same success."""

    op: str
    result: str
    status: int
    count: int


def decode_answer(data: bytes) -> Any:
    """``RequestSpec.decode`` of a filtered ``_bulk`` answer: a :class:`UniformAnswer` when
    every item is the same success, else the parsed JSON. Raises ``ValueError`` for what is
    not JSON."""
    uniform = uniform_answer(data)
    return orjson.loads(data) if uniform is None else uniform


def uniform_answer(data: bytes) -> UniformAnswer | None:
    """The answer as a :class:`UniformAnswer` if it is exactly ``{"errors":false,"items":[X,
    X,...,X]}`` with ``X`` one success item as the filtered answer writes it; else ``None``."""
    start = len(_UNIFORM_HEAD)
    if not data.startswith(_UNIFORM_HEAD):
        return None
    end = data.find(b"}},", start)
    if end < 0:
        end = data.find(b"}}]}", start)
        if end < 0:
            return None
    end += 2
    first = data[start:end]
    match = _SUCCESS_ITEM.fullmatch(first)
    if match is None:
        return None
    # Items plus separators, with one separator more than there are: a whole number of "X,".
    count, rest = divmod(len(data) - start - len(_UNIFORM_TAIL) + 1, len(first) + 1)
    if rest or not data.endswith(_UNIFORM_TAIL):
        return None
    if not data.startswith(b",".join([first] * count), start):
        return None
    op, result, status = match.groups()
    return UniformAnswer(op.decode(), result.decode(), int(status), count)


class BadAnswer(Exception):
    """The answer cannot be trusted; ``str()`` says why."""


def answer_items(body: Any, expected: int) -> list[Any]:
    """The ``items`` list of a parsed 2xx ``_bulk`` answer, checked to hold ``expected`` entries.

    Raises ``BadAnswer``. The entries themselves are checked by :func:`item_fields`.
    """
    if not isinstance(body, dict):
        raise BadAnswer(f"the answer is a {type(body).__name__}, not a JSON object")
    items = body.get("items")
    if not isinstance(items, list):
        raise BadAnswer("the answer has no items list")
    if len(items) != expected:
        raise BadAnswer(f"the answer has {len(items)} items for {expected} actions")
    return items


def item_fields(entry: Any) -> tuple[str, int, dict[str, Any]]:
    """``(op, status, details)`` of one entry; raises ``BadAnswer`` if it is malformed."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise BadAnswer(f"malformed item {str(entry)[:200]}")
    ((op, details),) = entry.items()
    if not isinstance(details, dict):
        raise BadAnswer(f"malformed item {str(entry)[:200]}")
    status = details.get("status")
    if type(status) is not int:
        raise BadAnswer(f"item without a status: {str(entry)[:200]}")
    return op, status, details


def item_error(details: dict[str, Any]) -> tuple[str | None, str]:
    """``(error type, reason)`` of a failed item, following ``caused_by`` for the reason when
    the top one is empty."""
    error = details.get("error")
    if isinstance(error, str):
        return None, error
    if not isinstance(error, dict):
        return None, ""
    error_type = error.get("type")
    reason = error.get("reason")
    caused = error.get("caused_by")
    if isinstance(caused, dict) and isinstance(caused.get("reason"), str):
        cause_text = f"{caused.get('type', 'cause')}: {caused['reason']}"
        reason = f"{reason}; caused by {cause_text}" if isinstance(reason, str) else cause_text
    return (
        error_type if isinstance(error_type, str) else None,
        reason if isinstance(reason, str) else "",
    )
