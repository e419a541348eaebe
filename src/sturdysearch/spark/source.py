"""The ``sturdysearch`` PySpark data source (Spark 4's ``pyspark.sql.datasource`` API).

Write: every task runs one :class:`~sturdysearch.BulkIndexer` over its partition, with its own
dead-letter file named by partition and attempt, and reports its exact counts as its commit
message; the driver's commit merges them into the job's summary (``summary.py``). Read: one
Spark partition per slice of a sliced point-in-time or scroll search (``Client.scan``), so
every document is read once.

The driver parses and checks the options (``options.py``) when ``save()``/``load()`` starts;
the tasks build their own ``Client`` from them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamArrowWriter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from sturdysearch.errors import ConfigError
from sturdysearch.spark.options import ReadOptions, WriteOptions, parse_read, parse_write
from sturdysearch.spark.rows import RowEncoder, content_id, row_maker, schema_of_mapping
from sturdysearch.spark.summary import TaskReport, attempt_stem, summarize, write_report

logger = logging.getLogger("sturdysearch.spark")

NAME = "sturdysearch"


@dataclass
class TaskCommit(WriterCommitMessage):
    """A task's commit message: its report."""

    report: TaskReport


def _task() -> tuple[int, int, str | None]:
    """``(partition, attempt, streaming batch id)`` of the running task."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:  # not in a Spark task (a direct call, in tests)
        return 0, 0, None
    return (
        context.partitionId(),
        context.attemptNumber(),
        context.getLocalProperty("streaming.sql.batchId"),
    )


def write_partition(
    options: WriteOptions, schema: StructType, directory: str, batches: Iterator[Any]
) -> TaskReport:
    """Index every row of one partition (Arrow record batches); returns (and writes beside the
    dead letters) the attempt's report, also when the rows or the load fail (then
    re-raises)."""
    from sturdysearch import BulkIndexer, Client
    from sturdysearch._core.bulk.encode import source_line
    from sturdysearch.errors import SerializationError

    partition, attempt, _ = _task()
    os.makedirs(directory, exist_ok=True)
    dead_letter = os.path.join(directory, attempt_stem(partition, attempt) + ".jsonl")
    encoder = RowEncoder(schema, options.id_column, options.keep_id_column)
    started = time.monotonic()
    count = 0
    error: BaseException | None = None
    bulk: Any = None
    op = options.op
    by_hash = options.ids == "content_hash"
    try:
        with Client(list(options.connection.urls), **options.connection.client_kwargs()) as client:
            bulk = BulkIndexer(
                client,
                options.index,
                dead_letter=dead_letter,
                pipeline=options.pipeline,
                **options.indexer,
            )
            with bulk:
                add = bulk.create if op == "create" else bulk.index
                for document, doc_id in (d for batch in batches for d in encoder.documents(batch)):
                    count += 1
                    if by_hash:
                        try:
                            doc_id = content_id(source_line(document))
                        except SerializationError:
                            doc_id = None  # dead-lettered as unserializable by add(), with why
                    elif options.ids == "column" and doc_id is None:
                        bulk.reject(document, f"the id column {options.id_column!r} is null", op=op)
                        continue
                    if op == "update":
                        bulk.update(doc_id, doc=document)
                    else:
                        add(document, doc_id)
    except BaseException as exc:
        error = exc
        raise
    finally:
        stats = bulk.stats if bulk is not None else None
        report = TaskReport(
            partition,
            attempt,
            rows=count,
            indexed=stats.succeeded if stats else 0,
            created=stats.created if stats else 0,
            updated=stats.updated if stats else 0,
            noop=stats.noop if stats else 0,
            dead_lettered=stats.dead_lettered if stats else 0,
            pending=stats.pending if stats else 0,
            retried_requests=stats.retried_requests if stats else 0,
            retried_documents=stats.retried_documents if stats else 0,
            dead_letter_file=dead_letter if stats and stats.dead_lettered else None,
            seconds=round(time.monotonic() - started, 3),
            error=None if error is None else f"{type(error).__name__}: {error}"[:2000],
        )
        write_report(directory, report)
    return report


class _Writer:
    """What the batch and the streaming writers share."""

    def __init__(self, options: WriteOptions, schema: StructType) -> None:
        self.options = options
        self.schema = schema
        self.job = self._job_name()
        """The job's folder under ``dead_letter_dir``: its dead letters, reports, summary."""
        RowEncoder(schema, options.id_column, options.keep_id_column)  # checks the id column

    def _job_name(self) -> str:
        """A batch job's folder: its start time and a random part (the one writer object is
        pickled to every task, so all of them and the commit share it)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return f"{stamp}-{uuid.uuid4().hex[:8]}"

    def directory(self, batch: str | int | None = None) -> str:
        base = os.path.join(self.options.dead_letter_dir, self.job)
        return base if batch is None else os.path.join(base, f"batch-{int(batch):06d}")

    def _write(self, iterator: Iterator[Any]) -> TaskCommit:
        _, _, batch = _task()
        report = write_partition(self.options, self.schema, self.directory(batch), iterator)
        return TaskCommit(report)

    def _finish(self, messages: list[Any], batch: int | None, *, committed: bool) -> dict[str, Any]:
        reports = [m.report for m in messages if isinstance(m, TaskCommit)]
        directory = self.directory(batch)
        os.makedirs(directory, exist_ok=True)
        reason = None
        if not committed:
            failed = len(messages) - len(reports)
            reason = (
                f"the job failed: {failed} of {len(messages)} partitions did not commit. "
                "Their documents may be partly indexed (superseded_attempts says how many "
                "each failed attempt wrote); "
                + (
                    "a rerun overwrites them under the same ids"
                    if self.options.ids != "none"
                    else "a rerun indexes them again (at_least_once: duplicates)"
                )
            )
        summary = summarize(
            directory,
            reports,
            job=self.job if batch is None else f"{self.job}/batch-{int(batch):06d}",
            index=self.options.index,
            status="committed" if committed else "aborted",
            reason=reason,
            move_superseded=committed,
        )
        if committed and self.options.refresh:
            from sturdysearch import Client

            connection = self.options.connection
            with Client(list(connection.urls), **connection.client_kwargs()) as client:
                client.indices.refresh(index=self.options.index)
        return summary


class SturdySearchWriter(_Writer, DataSourceArrowWriter):
    """``df.write.format("sturdysearch")``: see docs/spark.md."""

    def write(self, iterator: Iterator[Any]) -> TaskCommit:
        return self._write(iterator)

    def commit(self, messages: list[Any]) -> None:
        self._finish(messages, None, committed=True)

    def abort(self, messages: list[Any]) -> None:
        self._finish(messages, None, committed=False)


class SturdySearchStreamWriter(_Writer, DataSourceStreamArrowWriter):
    """``df.writeStream.format("sturdysearch")``: each micro-batch is a job of its own, with
    its folder ``batch-NNNNNN`` and its summary."""

    def _job_name(self) -> str:
        """The query's folder: named after its checkpoint location, since Spark makes a new
        writer object for the tasks and for the commit of each micro-batch."""
        key = self.options.stream or self.options.index
        digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(key.rstrip("/")))[:40]
        return f"stream-{name}-{digest}"

    def write(self, iterator: Iterator[Any]) -> TaskCommit:
        return self._write(iterator)

    def commit(self, messages: list[Any], batchId: int) -> None:
        self._finish(messages, batchId, committed=True)

    def abort(self, messages: list[Any], batchId: int) -> None:
        self._finish(messages, batchId, committed=False)


@dataclass(frozen=True)
class Slice(InputPartition):
    """One slice of the index: what one read task scans."""

    number: int
    total: int


class SturdySearchReader(DataSourceReader):
    """``spark.read.format("sturdysearch")``: one partition per slice."""

    def __init__(self, options: ReadOptions, schema: StructType, slices: int) -> None:
        self.options = options
        self.schema = schema
        self.slices = slices

    def partitions(self) -> list[Slice]:
        return [Slice(i, self.slices) for i in range(self.slices)]

    def read(self, partition: Any) -> Iterator[tuple[Any, ...]]:
        from sturdysearch import Client

        options = self.options
        make = row_maker(self.schema, options.id_column)
        source: Any = [f.name for f in self.schema.fields if f.name != options.id_column]
        with Client(list(options.connection.urls), **options.connection.client_kwargs()) as client:
            hits = client.scan(
                index=options.index,
                query=options.query,
                size=options.size,
                keep_alive=options.keep_alive,
                source=source if source else False,
                pagination=options.pagination,
                slice=(partition.number, partition.total) if partition.total > 1 else None,
            )
            for hit in hits:
                yield make(hit)


class SturdySearchDataSource(DataSource):
    """Registered as ``"sturdysearch"`` by :func:`sturdysearch.spark.register`."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def _client(self, options: ReadOptions) -> Any:
        from sturdysearch import Client

        return Client(list(options.connection.urls), **options.connection.client_kwargs())

    def schema(self) -> StructType:
        options = parse_read(self.options)
        with self._client(options) as client:
            mappings = client.indices.get_mapping(index=options.index)
        return schema_of_mapping(dict(mappings), fields=options.fields, id_column=options.id_column)

    def reader(self, schema: StructType) -> SturdySearchReader:
        options = parse_read(self.options)
        slices = options.slices
        if slices is None:
            with self._client(options) as client:
                settings = client.indices.get_settings(
                    index=options.index, name="index.number_of_shards"
                )
            slices = sum(
                int(body["settings"]["index"]["number_of_shards"])
                for body in dict(settings).values()
            )
        return SturdySearchReader(options, schema, max(1, slices))

    def writer(self, schema: StructType, overwrite: bool) -> SturdySearchWriter:
        options = parse_write(self.options)
        _refuse_overwrite(overwrite)
        return SturdySearchWriter(options, schema)

    def streamWriter(self, schema: StructType, overwrite: bool) -> SturdySearchStreamWriter:
        options = parse_write(self.options)
        _refuse_overwrite(overwrite)
        return SturdySearchStreamWriter(options, schema)


def _refuse_overwrite(overwrite: bool) -> None:
    if overwrite:
        raise ConfigError(
            "sturdysearch write: mode('overwrite') is refused: it would have to delete the "
            "index's documents before writing, and a failed job would leave it half empty. "
            "Use mode('append'): with id_column a rerun overwrites the same documents; to "
            "replace an index, write a new one and move an alias to it"
        )
