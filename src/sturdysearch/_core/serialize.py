"""Request bodies are built by serialization, never by string concatenation.

orjson does the work. Two things it does not do are added here, because each silently corrupts
data: it writes NaN and infinity as ``null`` (the document is stored with the field emptied), and
its error for an unsupported type does not say where the value is. :func:`dumps` refuses
non-finite floats and names the offending field's path and type.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sturdysearch.errors import SerializationError

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
#: Deeper nesting than this is treated as a cycle (orjson's own limit is 254).
_MAX_DEPTH = 254


_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _find_problem(obj: Any, path: str, depth: int, seen: set[int]) -> tuple[str, str, str] | None:
    """Return ``(path, reason, type name)`` of the first value that must not be serialized
    (non-finite float, integer beyond 64 bits, reference cycle), else ``None``."""
    if isinstance(obj, (str, bool, type(None))):
        return None
    if isinstance(obj, int):
        if _INT_MIN <= obj <= _INT_MAX:
            return None
        return (
            path,
            "integer outside the 64-bit range JSON parsers accept; send it as a string",
            "int",
        )
    if isinstance(obj, float):
        if math.isfinite(obj):
            return None
        return path, f"{obj!r} is not valid JSON (orjson would silently write null)", "float"
    if depth > _MAX_DEPTH:
        return path, "nesting too deep (a reference cycle?)", type(obj).__name__
    if isinstance(obj, Mapping):
        if id(obj) in seen:
            return path, "reference cycle", type(obj).__name__
        seen.add(id(obj))
        for key, value in obj.items():
            found = _find_problem(value, f"{path}[{key!r}]", depth + 1, seen)
            if found:
                return found
        seen.discard(id(obj))
        return None
    if isinstance(obj, (list, tuple)):
        if id(obj) in seen:
            return path, "reference cycle", type(obj).__name__
        seen.add(id(obj))
        for i, value in enumerate(obj):
            found = _find_problem(value, f"{path}[{i}]", depth + 1, seen)
            if found:
                return found
        seen.discard(id(obj))
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if id(obj) in seen:
            return path, "reference cycle", type(obj).__name__
        seen.add(id(obj))
        for field in dataclasses.fields(obj):
            found = _find_problem(getattr(obj, field.name), f"{path}.{field.name}", depth + 1, seen)
            if found:
                return found
        seen.discard(id(obj))
        return None
    return None


def _default(obj: Any) -> Any:
    """orjson's fallback: any ``Mapping`` (not only ``dict``) is an object."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError


def _unsupported_path(obj: Any, path: str, depth: int = 0) -> tuple[str, str] | None:
    """Locate the first value orjson refuses, to name it in the error."""
    if depth > _MAX_DEPTH:
        return path, "nesting too deep"
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{path} key {key!r}", type(key).__name__
            found = _unsupported_path(value, f"{path}[{key!r}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found = _unsupported_path(value, f"{path}[{i}]", depth + 1)
            if found:
                return found
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            found = _unsupported_path(getattr(obj, field.name), f"{path}.{field.name}", depth + 1)
            if found:
                return found
        return None
    try:
        orjson.dumps(obj, default=_default, option=_OPTIONS)
    except TypeError:
        return path, type(obj).__name__
    return None


def _plain_and_finite(obj: Any, depth: int = 0) -> bool:
    """Fast check that ``obj`` is made only of dicts, lists, tuples, strings, bools, None,
    64-bit ints and finite floats. Builds no paths and allocates nothing, so the common case
    costs little; ``False`` sends the value through :func:`_find_problem`, which names the
    problem (or finds none, for types it knows and this does not, such as dataclasses)."""
    t = type(obj)
    if t is str or t is bool or obj is None:
        return True
    if t is int:
        return bool(_INT_MIN <= obj <= _INT_MAX)
    if t is float:
        return math.isfinite(obj)
    if depth > _MAX_DEPTH:
        return False
    if t is dict:
        for value in obj.values():
            if type(value) is not str and not _plain_and_finite(value, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        for value in obj:
            if type(value) is not str and not _plain_and_finite(value, depth + 1):
                return False
        return True
    return False


def dumps(obj: Any, *, what: str = "body") -> bytes:
    """Serialize ``obj`` to JSON bytes, or raise ``SerializationError`` naming the bad field.

    ``what`` is the name used for the root in paths (``body``, ``document``).
    """
    if isinstance(obj, (str, bytes, bytearray, memoryview)):
        raise SerializationError(
            f"{what} must be a mapping, list or dataclass, not {type(obj).__name__}: JSON built "
            "as a string invites injection and inconsistent escaping. Pass a dict; to send bytes "
            "you built yourself, use raw_body=",
            path=what,
            type_name=type(obj).__name__,
        )
    problem = None if _plain_and_finite(obj) else _find_problem(obj, what, 0, set())
    if problem:
        path, reason, type_name = problem
        raise SerializationError(
            f"cannot serialize {path}: {reason}", path=path, type_name=type_name
        )
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except TypeError as exc:
        found = _unsupported_path(obj, what)
        if found:
            path, type_name = found
            raise SerializationError(
                f"cannot serialize {path}: type {type_name} is not JSON serializable "
                "(convert it to str, int, float, bool, None, list or dict)",
                path=path,
                type_name=type_name,
            ) from exc
        raise SerializationError(f"cannot serialize {what}: {exc}", path=what) from exc


def dumps_ndjson(lines: Sequence[Any], *, what: str = "body") -> bytes:
    """Serialize a list of actions/documents as newline-delimited JSON (``_bulk``, ``_msearch``).

    Every line ends with a newline, as the bulk API requires of the last one too.
    """
    if isinstance(lines, (str, bytes)):
        raise SerializationError(
            f"{what} must be a list of mappings, not {type(lines).__name__}",
            path=what,
            type_name=type(lines).__name__,
        )
    out = [dumps(line, what=f"{what}[{i}]") for i, line in enumerate(lines)]
    out.append(b"")
    return b"\n".join(out)


def loads(data: bytes) -> Any:
    """Parse JSON; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
