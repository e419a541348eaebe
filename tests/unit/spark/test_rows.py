"""Arrow batches to documents, documents back to rows, mappings to schemas (PySpark's types
and pyarrow, no session)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (make venv installs it)")

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from sturdysearch.errors import ConfigError
from sturdysearch.spark.rows import (
    DocumentMismatch,
    RowEncoder,
    _instant,
    content_id,
    row_maker,
    schema_of_mapping,
)

SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("at", TimestampType()),
        StructField("price", DecimalType(10, 2)),
        StructField("blob", BinaryType()),
        StructField("inner", StructType([StructField("seen", ArrayType(TimestampType()))])),
        StructField("n", LongType()),
        StructField("tags", MapType(StringType(), LongType())),
    ]
)


def batch(*rows: dict[str, object]) -> pa.RecordBatch:
    """Rows as Spark hands them to an Arrow writer (timestamps in the session's zone)."""
    return pa.RecordBatch.from_pylist(list(rows), schema=to_arrow_schema(SCHEMA, timezone="UTC"))


def test_values_json_has_no_form_for_are_converted() -> None:
    at = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    row = {
        "id": "a",
        "at": at,
        "price": Decimal("1.10"),
        "blob": b"\x00\x01",
        "inner": {"seen": [at]},
        "n": 7,
        "tags": [("x", 1), ("y", 2)],
    }
    ((document, doc_id),) = RowEncoder(SCHEMA, "id", keep_id_column=True).documents(batch(row))
    assert doc_id == "a" and document["id"] == "a"
    assert document["at"] == at and document["at"].tzinfo is not None
    assert document["price"] == "1.10" and document["blob"] == "AAE="
    assert document["inner"]["seen"] == [at] and document["n"] == 7
    assert document["tags"] == {"x": 1, "y": 2}  # Arrow's pairs, as an object
    ((dropped, _),) = RowEncoder(SCHEMA, "id", keep_id_column=False).documents(batch(row))
    assert "id" not in dropped
    naive = dt.datetime(2024, 5, 1, 12, 0, 0)
    assert _instant(naive) == naive.astimezone()  # a naive one: the worker's local time


def test_id_columns_are_checked_up_front() -> None:
    with pytest.raises(ConfigError, match="not a column"):
        RowEncoder(SCHEMA, "missing", True)
    with pytest.raises(ConfigError, match="must be a string or an integer column"):
        RowEncoder(SCHEMA, "at", True)
    documents = RowEncoder(SCHEMA, "n", True).documents(batch({"id": "a", "n": 3}, {"id": "b"}))
    assert [doc_id for _, doc_id in documents] == [3, None]  # a null id: the writer rejects it


def test_content_ids_are_stable() -> None:
    assert content_id(b'{"a":1}\n') == content_id(b'{"a":1}\n') != content_id(b'{"a":2}\n')
    assert len(content_id(b"x")) == 40


MAPPINGS = {
    "logs-1": {
        "mappings": {
            "properties": {
                "level": {"type": "keyword"},
                "n": {"type": "integer"},
                "took": {"type": "double"},
                "user": {"properties": {"name": {"type": "text"}, "age": {"type": "long"}}},
                "tags": {"type": "nested", "properties": {"k": {"type": "keyword"}}},
                "where": {"type": "geo_point"},
            }
        }
    },
    "logs-2": {"mappings": {"properties": {"n": {"type": "long"}, "extra": {"type": "boolean"}}}},
}


def test_a_schema_from_the_mappings() -> None:
    schema = schema_of_mapping(MAPPINGS)
    types = {f.name: f.dataType for f in schema.fields}
    assert types["n"] == IntegerType()  # the first index that maps it decides
    assert types["took"] == DoubleType() and types["where"] == StringType()
    assert types["user"] == StructType(
        [StructField("age", LongType()), StructField("name", StringType())]
    )
    assert types["tags"] == ArrayType(StructType([StructField("k", StringType())]))
    assert "extra" in types
    chosen = schema_of_mapping(MAPPINGS, fields=("n", "level"), id_column="_id")
    assert chosen.fieldNames() == ["_id", "n", "level"]
    with pytest.raises(ConfigError, match="nope are not in the mapping"):
        schema_of_mapping(MAPPINGS, fields=("nope",))


def test_documents_shaped_to_the_schema() -> None:
    schema = schema_of_mapping(MAPPINGS, id_column="_id")
    make = row_maker(schema, "_id")
    hit = {
        "_id": "d1",
        "_index": "logs-1",
        "_source": {
            "level": ["a", "b"],  # an array in a string column: its JSON
            "n": "12",
            "took": 3,
            "user": {"name": "ann", "age": 40},
            "tags": {"k": "one"},  # a single object where nested says array
            "where": {"lat": 1.0, "lon": 2.0},
        },
    }
    values = dict(zip(schema.fieldNames(), make(hit), strict=True))
    assert values["_id"] == "d1" and values["level"] == '["a","b"]' and values["n"] == 12
    assert values["took"] == 3.0 and values["user"] == (40, "ann")
    assert values["tags"] == [("one",)] and values["where"] == '{"lat":1.0,"lon":2.0}'
    assert values["extra"] is None
    with pytest.raises(DocumentMismatch, match="document 'd2' of 'logs-1': n holds an array"):
        make({"_id": "d2", "_index": "logs-1", "_source": {"n": [1, 2]}})
    with pytest.raises(DocumentMismatch, match="n is 'x', which is not int"):
        make({"_id": "d3", "_index": "logs-1", "_source": {"n": "x"}})
