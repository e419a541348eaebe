"""The Spark data source for real: PySpark in local mode (2 cores), real nodes.

The job scenario (``make test`` runs it with 20,000 rows, ``make test-all`` with 1,000,000):
16 partitions, 0.1% of the rows violating the mapping, a 3-node cluster whose node 2 is
SIGKILLed while the job runs, and a task that fails once (an upstream UDF raises on its first
attempt) and is retried. The index must hold exactly the valid rows, the dead-letter files
exactly the invalid ones, the summary must agree, and reading the index back must give every
document once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

pyspark = pytest.importorskip(
    "pyspark", reason="the spark extra is not installed (make venv installs it)"
)

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from sturdysearch import Client  # noqa: E402
from sturdysearch.spark import register  # noqa: E402
from sturdysearch.testing import sigv4_route  # noqa: E402
from sturdysearch.testing.cluster import LocalCluster  # noqa: E402

MAPPING = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "status": {"type": "integer"},
        "host": {"type": "keyword"},
        "bytes": {"type": "long"},
        "at": {"type": "date"},
    },
}
PARTITIONS = 16


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """Local mode with 2 cores and up to 2 attempts per task (local mode retries nothing
    unless asked: ``local[2,2]``); the Python workers run this interpreter (Spark's own
    Python runners, which plan a data source's write, read ``PYSPARK_PYTHON``)."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # tests talk to loopback only
    session = (
        SparkSession.builder.master("local[2,2]")
        .appName("sturdysearch-tests")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        # Small Arrow batches and stream buffers between the JVM and the Python workers: rows
        # reach the writer while its partition is still being produced, so a task that fails
        # mid-partition has written part of it.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200")
        .config("spark.buffer.size", "4096")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    register(session)
    yield session
    session.stop()


def is_bad(i: int) -> bool:
    return i % 1000 == 999


def rows(spark: SparkSession, n: int, partitions: int = PARTITIONS) -> Any:
    """``n`` rows with string ids ``0``..``n-1``; 0.1% carry a status the mapping refuses."""
    return spark.range(0, n, numPartitions=partitions).select(
        F.col("id").cast("string").alias("id"),
        F.when(F.col("id") % 1000 == 999, F.lit("not-a-number"))
        .otherwise((F.col("id") % 5 * 100 + 200).cast("string"))
        .alias("status"),
        F.concat(F.lit("web-"), (F.col("id") % 37).cast("string")).alias("host"),
        (F.col("id") * 7).alias("bytes"),
        F.timestamp_seconds(F.col("id") + 1_700_000_000).alias("at"),
    )


def new_index(client: Client, *, replicas: int = 0, shards: int = 3) -> str:
    name = f"spark-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=name,
        mappings=MAPPING,
        settings={"number_of_shards": shards, "number_of_replicas": replicas},
    )
    return name


def writer(df: Any, urls: list[str], index: str, dlq: Path) -> Any:
    return (
        df.write.format("sturdysearch")
        .mode("append")
        .option("url", ",".join(urls))
        .option("index", index)
        .option("id_column", "id")
        .option("dead_letter_dir", str(dlq))
        .option("batch_actions", "500")
    )


def the_summary(dlq: Path) -> tuple[Path, dict[str, Any]]:
    (job,) = [p for p in dlq.iterdir() if p.is_dir()]
    return job, orjson.loads((job / "summary.json").read_bytes())


def dead_ids(job: Path) -> list[str]:
    ids = []
    for path in sorted(job.glob("part-*.jsonl")):
        for line in path.read_bytes().splitlines():
            record = orjson.loads(line)
            ids.append(next(iter(record["action"].values()))["_id"])
    return ids


def read_ids(spark: SparkSession, urls: list[str], index: str, **options: str) -> list[str]:
    reader = spark.read.format("sturdysearch").option("url", ",".join(urls)).option("index", index)
    for key, value in options.items():
        reader = reader.option(key, value)
    return [row["_id"] for row in reader.option("id_column", "_id").load().select("_id").collect()]


def test_write_read_back_and_account_for_every_row(
    spark: SparkSession, client: Client, node_url: str, tmp_path: Path
) -> None:
    n = 3_000
    index = new_index(client)
    dlq = tmp_path / "dlq"
    writer(rows(spark, n, partitions=4), [node_url], index, dlq).save()
    job, summary = the_summary(dlq)
    bad = {str(i) for i in range(n) if is_bad(i)}
    assert summary["status"] == "committed" and summary["exact"] is True
    assert (summary["rows"], summary["indexed"], summary["dead_lettered"]) == (n, n - 3, 3)
    assert summary["partitions"] == 4 and summary["superseded_attempts"] == []
    assert sorted(dead_ids(job)) == sorted(bad)
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == n - 3
    stored = client.get(index=index, id="42")["_source"]
    assert stored == {
        "id": "42",
        "status": "400",  # as sent; the mapping indexes it as an integer (read back below)
        "host": "web-5",
        "bytes": 294,
        "at": "2023-11-14T22:14:02+00:00",  # the instant, with its offset
    }
    # Read back: every document once, with the mapping's types; sliced by shard (3 slices).
    frame = (
        spark.read.format("sturdysearch")
        .option("url", node_url)
        .option("index", index)
        .option("id_column", "_id")
        .load()
    )
    assert frame.rdd.getNumPartitions() == 3
    types = dict(frame.dtypes)
    assert types["status"] == "int" and types["bytes"] == "bigint" and types["host"] == "string"
    ids = [row["_id"] for row in frame.select("_id").collect()]
    assert len(ids) == len(set(ids)) == n - 3 and set(ids) == {str(i) for i in range(n)} - bad
    row = frame.where(F.col("_id") == "42").collect()[0]
    assert (row["status"], row["bytes"], row["host"]) == (400, 294, "web-5")
    # A query, some fields, another slice count.
    few = (
        spark.read.format("sturdysearch")
        .option("url", node_url)
        .option("index", index)
        .option("query", orjson.dumps({"term": {"host": "web-5"}}).decode())
        .option("fields", "status,host")
        .option("slices", "2")
        .load()
    )
    assert few.columns == ["status", "host"] and few.rdd.getNumPartitions() == 2
    expected = sum(1 for i in range(n) if i % 37 == 5 and not is_bad(i))
    assert few.count() == expected
    client.indices.delete(index=index)


def test_a_rerun_overwrites_instead_of_duplicating(
    spark: SparkSession, client: Client, node_url: str, tmp_path: Path
) -> None:
    index = new_index(client)
    for run in ("first", "second"):
        writer(rows(spark, 1_000, partitions=2), [node_url], index, tmp_path / run).save()
    _, second = the_summary(tmp_path / "second")
    assert second["updated"] + second["noop"] == 999 and second["created"] == 0
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 999
    client.indices.delete(index=index)


def test_refusals_before_any_task(spark: SparkSession, node_url: str, tmp_path: Path) -> None:
    df = rows(spark, 10, partitions=1)
    where = str(tmp_path)
    cases = [
        ("append", {"dead_letter_dir": where}, "without document ids"),
        ("overwrite", {"id_column": "id", "dead_letter_dir": where}, "mode('overwrite') is"),
        ("append", {"es.mapping.id": "id"}, "'es.mapping.id' (sturdysearch: id_column)"),
        ("append", {"id_column": "at", "dead_letter_dir": where}, "must be a string or an int"),
        ("append", {"id_column": "id", "dead_letter_dir": where, "workers": "0"}, "workers"),
        ("append", {"id_column": "id", "dead_letter_dir": "s3://b/dlq"}, "not an object store"),
    ]
    for mode, options, said in cases:
        # A fresh writer per case: DataFrameWriter.option() changes the writer it is called on.
        write = df.write.format("sturdysearch").mode(mode).option("url", node_url)
        for key, value in {"index": "x", **options}.items():
            write = write.option(key, value)
        with pytest.raises(Exception) as refused:
            write.save()
        assert said in str(refused.value), str(refused.value)[:2000]
    assert not any(tmp_path.iterdir())  # no task ran, nothing was written


def test_an_aborted_job_says_what_was_written(
    spark: SparkSession, client: Client, node_url: str, tmp_path: Path
) -> None:
    """The index is closed: every task stops at once with the server's reason (a
    BulkAbortedError, not thousands of dead letters), Spark retries and gives up, and the
    job's summary says it aborted, and why."""
    index = new_index(client)
    client.indices.close(index=index)
    dlq = tmp_path / "dlq"
    with pytest.raises(Exception, match="closed"):
        writer(rows(spark, 2_000, partitions=2), [node_url], index, dlq).save()
    _, summary = the_summary(dlq)
    assert summary["status"] == "aborted" and "did not commit" in summary["reason"]
    assert summary["indexed"] == 0
    errors = [a["error"] for a in summary["superseded_attempts"]]
    stopped = [e for e in errors if e.startswith("BulkAbortedError") and "is closed" in e]
    # Every attempt that ran stopped for the closed index (Spark may kill the last one first,
    # or cut its input off once the job failed).
    cut_off = ("no report", "none of its own")
    assert stopped and all(e in stopped or e.startswith(cut_off) for e in errors), errors
    client.indices.delete(index=index)


def test_structured_streaming_writes_each_micro_batch_exactly(
    spark: SparkSession, client: Client, node_url: str, tmp_path: Path
) -> None:
    index = new_index(client)
    source = tmp_path / "in"
    source.mkdir()
    for part in range(3):
        lines = [
            orjson.dumps({"id": str(i), "status": "bad" if i % 100 == 7 else str(200 + i % 3)})
            for i in range(part * 100, part * 100 + 100)
        ]
        (source / f"part-{part}.json").write_bytes(b"\n".join(lines) + b"\n")
    stream = (
        spark.readStream.schema("id string, status string")
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
    )
    dlq = tmp_path / "dlq"
    query = (
        stream.writeStream.format("sturdysearch")
        .option("url", node_url)
        .option("index", index)
        .option("id_column", "id")
        .option("dead_letter_dir", str(dlq))
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(300)
    assert query.exception() is None
    (job,) = [p for p in dlq.iterdir() if p.is_dir()]
    assert job.name.startswith("stream-checkpoint-")  # named after the checkpoint location
    batches = sorted(job.glob("batch-*/summary.json"))
    summaries = [orjson.loads(p.read_bytes()) for p in batches]
    assert len(summaries) == 3 and all(s["status"] == "committed" for s in summaries)
    assert sum(s["rows"] for s in summaries) == 300
    assert sum(s["dead_lettered"] for s in summaries) == 3
    assert all(s["exact"] for s in summaries)
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 297
    client.indices.delete(index=index)


# -- security on, SigV4, proxies ---------------------------------------------------------------


def route_options(cluster: Any) -> dict[str, str]:
    """The Spark options that reach ``cluster`` as the suites' ``connection`` does: the CA and
    the admin of a secured one, SigV4 (the keys come from the environment) through the
    verifier, squid as the proxy."""
    options: dict[str, str] = {"url": ",".join(cluster.urls)}
    if getattr(cluster.spec, "sigv4", False):
        options |= {"aws_region": sigv4_route.REGION, "aws_service": sigv4_route.SERVICE}
    if getattr(cluster.spec, "proxy", False):
        options["proxy"] = cluster.squid.url
    if cluster.security is not None:
        security = cluster.security
        options |= {
            "ca_certs": security.ca_certs,
            "user": security.user,
            "password": security.password,
        }
    return options


SIGV4_JOB = """
import os, sys
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
import orjson
from pyspark.sql import SparkSession, functions as F
from sturdysearch.spark import register
options = orjson.loads(sys.argv[1])
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
register(spark)
df = spark.range(0, 500, numPartitions=2).select(F.col("id").cast("string").alias("id"))
write = df.write.format("sturdysearch").mode("append")
for key, value in options.items():
    write = write.option(key, value)
write.save()
read = spark.read.format("sturdysearch").option("id_column", "_id")
for key, value in options.items():
    if key not in ("dead_letter_dir", "id_column", "refresh"):
        read = read.option(key, value)
print("READ", read.load().count())
spark.stop()
"""


@pytest.mark.sturdysearch_secured
def test_security_on_sigv4_and_proxies(
    spark: SparkSession,
    search_cluster: Any,
    client: Client,
    connection: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Write and read back with the options each route needs (through the SigV4 verifier,
    every signature is checked by botocore's signer; through squid, the requests really went
    through it: the ``connection`` fixture asserts both)."""
    options = route_options(search_cluster)
    index = f"spark-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=index, settings={"number_of_replicas": 0})
    dlq = tmp_path / "dlq"
    job = {**options, "index": index, "id_column": "id", "dead_letter_dir": str(dlq)}
    job["refresh"] = "true"  # searchable once save() returns: the read below sees it all
    sigv4 = getattr(search_cluster.spec, "sigv4", False)
    squid = getattr(search_cluster, "squid", None)
    signed_before = search_cluster.verified if sigv4 else 0
    proxied_before = len(squid.entries()) if squid is not None else 0
    if sigv4:
        # The executors sign with botocore's default chain: the keys go in their environment,
        # which is fixed when Spark starts, so this job runs in a Spark of its own.
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": sigv4_route.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": sigv4_route.SECRET_KEY,
            "AWS_SESSION_TOKEN": sigv4_route.SESSION_TOKEN,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        run = subprocess.run(
            [sys.executable, "-c", SIGV4_JOB, orjson.dumps(job).decode()],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "READ 500" in run.stdout
        assert sigv4_route.SECRET_KEY not in run.stdout + run.stderr
    else:
        df = spark.range(0, 500, numPartitions=2).select(F.col("id").cast("string").alias("id"))
        write = df.write.format("sturdysearch").mode("append")
        for key, value in job.items():
            write = write.option(key, value)
        write.save()
        read = spark.read.format("sturdysearch").option("index", index).option("id_column", "_id")
        for key, value in options.items():
            read = read.option(key, value)
        assert read.load().count() == 500
    _, summary = the_summary(dlq)
    assert (summary["rows"], summary["indexed"], summary["exact"]) == (500, 500, True)
    # The tasks' own requests (two bulk requests, the refresh, the reads) were signed and
    # checked, or went through squid.
    if sigv4:
        assert search_cluster.verified >= signed_before + 4
    if squid is not None:
        assert len(squid.entries()) >= proxied_before + 4
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 500
    client.indices.delete(index=index)
    password = getattr(search_cluster.security, "password", None)
    if password:  # the password is in no report or summary
        for path in dlq.rglob("*.json"):
            assert password not in path.read_text()


# -- the job scenario ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_nodes(cluster_factory: Any) -> Iterator[LocalCluster]:
    cluster: LocalCluster = cluster_factory(nodes=3)
    try:
        yield cluster
    finally:
        cluster.close()


class KillSwitch:
    """A named pipe the Spark task writes one byte to when the job is far enough along; a
    thread here waits on it (a blocking read, no polling) and SIGKILLs node 2 then."""

    def __init__(self, cluster: LocalCluster, path: Path) -> None:
        self.path = str(path)
        os.mkfifo(self.path)
        self.killed = threading.Event()
        self._cluster = cluster
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        with open(self.path, "rb") as fifo:  # blocks until the task opens it
            if fifo.read(1):
                self._cluster.stop_node(2, kill=True)
                self.killed.set()

    def close(self) -> None:
        if not self.killed.is_set():  # never triggered: release the reader
            with open(self.path, "wb", buffering=0) as fifo:
                fifo.write(b"")
        self._thread.join(timeout=60)


def job_scenario(spark: SparkSession, cluster: LocalCluster, n: int, tmp_path: Path) -> None:
    with Client(cluster.urls) as direct:
        index = new_index(direct, replicas=1)
        cluster.wait_for_health("green", timeout=120)
    switch = KillSwitch(cluster, tmp_path / "kill")
    per_partition = n // PARTITIONS
    fail_at = 5 * per_partition + per_partition * 3 // 4  # late in partition 5
    kill_at = 8 * per_partition + per_partition // 2  # mid partition 8
    fifo = switch.path

    first_of_five = str(5 * per_partition)
    node = cluster.urls[0]
    schema = rows(spark, 1).schema

    def upstream(batches: Iterator[Any]) -> Iterator[Any]:
        """A flaky upstream step (Arrow batches in, the same out): fails once, late in
        partition 5's first attempt, once that attempt has indexed its first rows (so the
        retry has documents to overwrite); in partition 8 it tells the test to kill a node."""
        import time
        import urllib.error
        import urllib.request

        from pyspark import TaskContext

        context = TaskContext.get()
        first = context is not None and context.attemptNumber() == 0
        for batch in batches:
            ids = batch.column(0).to_pylist()
            if first and str(fail_at) in ids:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # a realtime GET: no refresh needed
                    try:
                        urllib.request.urlopen(f"{node}/{index}/_doc/{first_of_five}", timeout=5)
                        break
                    except urllib.error.HTTPError:  # 404: not indexed yet
                        time.sleep(0.05)
                raise RuntimeError(f"upstream failure at row {fail_at} (first attempt only)")
            if first and str(kill_at) in ids:
                with open(fifo, "wb", buffering=0) as f:
                    f.write(b"k")
            yield batch

    df = rows(spark, n).mapInArrow(upstream, schema)
    dlq = tmp_path / "dlq"
    try:
        writer(df, cluster.urls, index, dlq).save()
    finally:
        switch.close()
    assert switch.killed.is_set(), "node 2 was never killed"
    bad = {str(i) for i in range(n) if is_bad(i)}
    job, summary = the_summary(dlq)
    assert summary["status"] == "committed" and summary["exact"] is True
    assert summary["rows"] == n and summary["partitions"] == PARTITIONS
    assert summary["indexed"] == n - len(bad) and summary["dead_lettered"] == len(bad)
    superseded = {(a["partition"], a["attempt"]) for a in summary["superseded_attempts"]}
    assert (5, 0) in superseded, summary["superseded_attempts"]
    # The failed attempt had indexed part of its partition; the retry overwrote it.
    assert summary["indexed_by_other_attempts"] > 0, summary["superseded_attempts"]
    (retry,) = [t for t in summary["tasks"] if t["partition"] == 5]
    assert retry["attempt"] == 1 and retry["updated"] > 0
    assert summary["retried_requests"] > 0  # the killed node's requests went elsewhere
    dead = dead_ids(job)
    assert len(dead) == len(set(dead)) and set(dead) == bad
    with Client(cluster.urls[:2]) as direct:
        direct.indices.refresh(index=index)
        assert direct.count(index=index)["count"] == n - len(bad)
        assert direct.count(index=index, query={"ids": {"values": sorted(bad)}})["count"] == 0
    ids = read_ids(spark, cluster.urls[:2], index)
    assert len(ids) == len(set(ids)) == n - len(bad)
    assert set(ids) == {str(i) for i in range(n)} - bad
    cluster.start_node(2)
    cluster.wait_for_health("green", nodes=3, timeout=180)
    with Client(cluster.urls) as direct:
        direct.indices.delete(index=index)


def test_a_job_survives_a_killed_node_and_a_failed_task(
    spark: SparkSession, three_nodes: LocalCluster, tmp_path: Path
) -> None:
    job_scenario(spark, three_nodes, 20_000, tmp_path)


@pytest.mark.slow
def test_a_million_rows_survive_a_killed_node_and_a_failed_task(
    spark: SparkSession, three_nodes: LocalCluster, tmp_path: Path
) -> None:
    job_scenario(spark, three_nodes, 1_000_000, tmp_path)
