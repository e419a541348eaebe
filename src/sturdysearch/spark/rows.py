"""Spark rows to documents, documents to Spark rows, and index mappings to Spark schemas.

Writing: Spark hands each task its rows as Arrow record batches, and a batch becomes dicts in
one call (``RecordBatch.to_pylist()``, much cheaper than a ``Row`` object per row). Only the
values JSON has no form for are converted, which the schema says up front
(:class:`RowEncoder`): a ``TimestampType`` arrives with the session's time zone and is written
with its UTC offset (a naive one is taken as the worker's local time); a ``DecimalType`` as its
exact text (the server parses it); ``BinaryType`` as base64 (the ``binary`` field type); a
``MapType`` (Arrow's list of pairs) as an object. A schema without such columns costs nothing
per row beyond ``to_pylist``.

Reading: the schema comes from the index mapping (:func:`schema_of_mapping`) or from the
user; each hit's ``_source`` is shaped to it by :func:`row_maker`, with a clear error where
a document does not fit (an array where the schema has a scalar: give ``.schema(...)`` with
``array<...>``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import orjson
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from sturdysearch.errors import ConfigError

Convert = Callable[[Any], Any]

# -- writing -----------------------------------------------------------------------------------


def _needs(data_type: DataType) -> Convert | None:
    """The conversion a value of ``data_type`` needs before JSON, or ``None``."""
    if isinstance(data_type, TimestampType):
        return _instant
    if isinstance(data_type, DecimalType):
        return _decimal
    if isinstance(data_type, BinaryType):
        return _binary
    if isinstance(data_type, ArrayType):
        element = _needs(data_type.elementType)
        return None if element is None else _each(element)
    if isinstance(data_type, MapType):
        return _pairs(_needs(data_type.valueType))
    if isinstance(data_type, StructType):
        fixes = {f.name: c for f in data_type.fields if (c := _needs(f.dataType)) is not None}
        if not fixes:
            return None
        return lambda v: None if v is None else _fix(v, fixes)
    return None


def _each(convert: Convert) -> Convert:
    return lambda v: None if v is None else [convert(x) for x in v]


def _pairs(convert: Convert | None) -> Convert:
    """A map column (a list of ``(key, value)`` in Arrow, a dict from a ``Row``) as a dict."""

    def as_dict(v: Any) -> Any:
        if v is None:
            return None
        items = v.items() if isinstance(v, dict) else v
        if convert is None:
            return {str(k): x for k, x in items}
        return {str(k): convert(x) for k, x in items}

    return as_dict


def _fix(value: dict[str, Any], fixes: Mapping[str, Convert]) -> dict[str, Any]:
    for name, convert in fixes.items():
        if name in value:
            value[name] = convert(value[name])
    return value


def _instant(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone()  # PySpark gives the worker's local time: keep the instant
    return value


def _decimal(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _binary(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


ID_TYPES = (StringType, LongType, IntegerType, ShortType, ByteType)


class RowEncoder:
    """Record batches of one schema to ``(document, id)``; built once per task."""

    def __init__(self, schema: StructType, id_column: str | None, keep_id_column: bool) -> None:
        names = schema.fieldNames()
        if id_column is not None:
            if id_column not in names:
                raise ConfigError(
                    f"sturdysearch write: id_column {id_column!r} is not a column of the "
                    f"DataFrame (its columns: {', '.join(names)})"
                )
            id_type = schema[id_column].dataType
            if not isinstance(id_type, ID_TYPES):
                raise ConfigError(
                    f"sturdysearch write: id_column {id_column!r} is {id_type.simpleString()}; "
                    "a document id must be a string or an integer column (cast it)"
                )
        self.id_column = id_column
        self.drop_id = id_column is not None and not keep_id_column
        self._fixes = {f.name: c for f in schema.fields if (c := _needs(f.dataType)) is not None}

    def documents(self, batch: Any) -> Iterator[tuple[dict[str, Any], Any]]:
        """``(document, id)`` for each row of the Arrow record batch ``batch``: the id is
        ``None`` when there is no id column, or the row's value is null (the caller rejects
        such a row)."""
        documents: list[dict[str, Any]] = batch.to_pylist()
        fixes = self._fixes
        if fixes:
            for document in documents:
                _fix(document, fixes)
        column = self.id_column
        if column is None:
            for document in documents:
                yield document, None
        elif self.drop_id:
            for document in documents:
                yield document, document.pop(column)
        else:
            for document in documents:
                yield document, document.get(column)


def content_id(source_line: bytes) -> str:
    """The id of a document under ``ids='content_hash'``: 40 hex digits of BLAKE2b over its
    JSON (columns in schema order, so the same row always gets the same id)."""
    return hashlib.blake2b(source_line, digest_size=20).hexdigest()


# -- reading -----------------------------------------------------------------------------------

#: Mapping field types -> Spark types; any other type (geo_point, ip ranges...) reads as its
#: JSON text in a string column.
_SCALARS: dict[str, DataType] = {
    "long": LongType(),
    "unsigned_long": DecimalType(20, 0),
    "integer": IntegerType(),
    "short": ShortType(),
    "byte": ByteType(),
    "double": DoubleType(),
    "float": FloatType(),
    "half_float": FloatType(),
    "scaled_float": DoubleType(),
    "boolean": BooleanType(),
    "binary": BinaryType(),
}


def _field_type(spec: Mapping[str, Any]) -> DataType:
    kind = spec.get("type", "object")
    if kind in ("object", "nested") or ("properties" in spec and "type" not in spec):
        struct = _struct(spec.get("properties") or {})
        return ArrayType(struct) if kind == "nested" else struct
    return _SCALARS.get(kind, StringType())


def _struct(properties: Mapping[str, Any]) -> StructType:
    return StructType(
        [StructField(name, _field_type(spec), True) for name, spec in sorted(properties.items())]
    )


def schema_of_mapping(
    mappings: Mapping[str, Any],
    *,
    fields: tuple[str, ...] | None = None,
    id_column: str | None = None,
) -> StructType:
    """The Spark schema of the answer of ``GET <index>/_mapping`` (every index it names,
    merged: the first index that maps a field decides its type). Dates and keywords are
    strings (a date's format is the mapping's business); ``fields`` keeps only those
    top-level fields, in that order; ``id_column`` adds the document ``_id`` as a string."""
    merged: dict[str, Any] = {}
    for body in mappings.values():
        mapping = body.get("mappings", {}) if isinstance(body, Mapping) else {}
        if "properties" not in mapping and len(mapping) == 1:  # 6.x-style type name
            mapping = next(iter(mapping.values()))
        for name, spec in (mapping.get("properties") or {}).items():
            merged.setdefault(name, spec)
    struct = _struct(merged)
    chosen = list(struct.fields)
    if fields is not None:
        by_name = {f.name: f for f in struct.fields}
        missing = [f for f in fields if f not in by_name]
        if missing:
            raise ConfigError(
                f"sturdysearch read: fields {', '.join(missing)} are not in the mapping "
                f"(mapped: {', '.join(by_name) or 'none'})"
            )
        chosen = [by_name[f] for f in fields]
    if id_column is not None:
        chosen = [StructField(id_column, StringType(), False)] + [
            f for f in chosen if f.name != id_column
        ]
    return StructType(chosen)


class DocumentMismatch(ValueError):
    """A document that does not fit the schema; ``str()`` says which field and what to do."""


def _reader(data_type: DataType, where: str) -> Convert:
    """``value -> value of data_type`` for a field of ``_source``."""
    if isinstance(data_type, StructType):
        makers = [(f.name, _reader(f.dataType, f"{where}.{f.name}")) for f in data_type.fields]

        def struct(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise DocumentMismatch(f"{where} is {type(value).__name__}, not an object")
            return tuple(make(value.get(name)) for name, make in makers)

        return struct
    if isinstance(data_type, ArrayType):
        element = _reader(data_type.elementType, f"{where}[]")
        return lambda v: (
            None if v is None else [element(x) for x in (v if isinstance(v, list) else [v])]
        )
    if isinstance(data_type, MapType):
        inner = _reader(data_type.valueType, f"{where}{{}}")
        return lambda v: None if v is None else {str(k): inner(x) for k, x in v.items()}
    scalar = _scalar(data_type, where)

    def one(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            if isinstance(data_type, StringType):
                return orjson.dumps(value).decode()
            if len(value) == 1:
                return scalar(value[0])
            raise DocumentMismatch(
                f"{where} holds an array of {len(value)} values where the schema has "
                f"{data_type.simpleString()}: give .schema(...) with "
                f"array<{data_type.simpleString()}> for it"
            )
        return scalar(value)

    return one


def _scalar(data_type: DataType, where: str) -> Convert:
    def wrong(value: Any) -> DocumentMismatch:
        return DocumentMismatch(
            f"{where} is {value!r}, which is not {data_type.simpleString()}: give "
            ".schema(...) with the type the documents hold (or string)"
        )

    if isinstance(data_type, StringType):
        return lambda v: v if isinstance(v, str) else orjson.dumps(v).decode()
    if isinstance(data_type, (LongType, IntegerType, ShortType, ByteType)):

        def integral(v: Any) -> int:
            if isinstance(v, bool):
                raise wrong(v)
            if isinstance(v, int):
                return v
            if isinstance(v, float) and v.is_integer():
                return int(v)
            if isinstance(v, str):
                try:
                    return int(v)
                except ValueError:
                    raise wrong(v) from None
            raise wrong(v)

        return integral
    if isinstance(data_type, (DoubleType, FloatType)):

        def fractional(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise wrong(v)
            try:
                return float(v)
            except ValueError:
                raise wrong(v) from None

        return fractional
    if isinstance(data_type, DecimalType):
        return lambda v: Decimal(str(v))
    if isinstance(data_type, BooleanType):

        def boolean(v: Any) -> bool:
            if isinstance(v, bool):
                return v
            if v in ("true", "false"):
                return bool(v == "true")
            raise wrong(v)

        return boolean
    if isinstance(data_type, BinaryType):
        return lambda v: base64.b64decode(v) if isinstance(v, str) else bytes(v)
    if isinstance(data_type, (TimestampType, TimestampNTZType)):

        def instant(v: Any) -> dt.datetime:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return dt.datetime.fromtimestamp(v / 1000, dt.timezone.utc)
            if isinstance(v, str):
                try:
                    return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                except ValueError:
                    raise wrong(v) from None
            raise wrong(v)

        return instant
    if isinstance(data_type, DateType):

        def day(v: Any) -> dt.date:
            if isinstance(v, str):
                try:
                    return dt.date.fromisoformat(v[:10])
                except ValueError:
                    raise wrong(v) from None
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return dt.datetime.fromtimestamp(v / 1000, dt.timezone.utc).date()
            raise wrong(v)

        return day
    raise ConfigError(
        f"sturdysearch read: {where}: the {data_type.simpleString()} type is not supported; "
        "read it as string"
    )


def row_maker(
    schema: StructType, id_column: str | None
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``hit -> tuple`` in the schema's column order (``id_column`` takes the hit's
    ``_id``); raises :class:`DocumentMismatch` naming the document and the field."""
    makers: list[tuple[str, Convert | None]] = []
    for f in schema.fields:
        if f.name == id_column:
            makers.append((f.name, None))
        else:
            makers.append((f.name, _reader(f.dataType, f.name)))

    def make(hit: dict[str, Any]) -> tuple[Any, ...]:
        source = hit.get("_source") or {}
        try:
            return tuple(
                hit.get("_id") if convert is None else convert(source.get(name))
                for name, convert in makers
            )
        except DocumentMismatch as exc:
            raise DocumentMismatch(
                f"document {hit.get('_id')!r} of {hit.get('_index')!r}: {exc}"
            ) from None

    return make
