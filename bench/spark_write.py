"""Spark writes: the ``sturdysearch`` data source against opensearch-hadoop, on the same Spark.

    .venv/bin/python bench/spark_write.py                          # 1,000,000 rows, 3 rounds
    .venv/bin/python bench/spark_write.py --rows 100000 --rounds 1 --url http://127.0.0.1:9200

One real OpenSearch 2.19.6 node (started with ``LocalCluster`` unless ``--url`` is given), one
local-mode Spark (``local[2]``, the PySpark the Makefile installs), the same DataFrame of log
rows (``spark.range`` in 16 partitions, ids ``0``..``N-1``) written by each contender in turn
into a fresh index (1 shard, no replica, refresh every 30 s, an explicit mapping):

* ``sturdysearch`` - ``df.write.format("sturdysearch")`` with ``id_column``;
* ``opensearch-hadoop`` - opensearch-hadoop's ``OpenSearchOutputFormat`` (the
  ``opensearch-spark-30_2.13`` jar from Maven Central) through ``saveAsNewAPIHadoopFile`` over
  the rows as JSON with ``opensearch.mapping.id``: the way its documentation has PySpark write.
  Its DataFrame source (``org.opensearch.spark.sql``) is built for Spark 3 and fails on Spark 4
  (``NoSuchMethodError: Dataset.sqlContext()``, as elasticsearch-hadoop 9.3.2's does); the
  Hadoop output format works.

Reported per contender: rows per second (the median of ``--rounds`` runs, in an order that
rotates each round), and the accounting: the documents in the index afterwards, and what the
contender says about the rows it did not write. ``--bad`` (default 0.1%) of the rows of a
second, accounting run carry a value the mapping refuses: sturdysearch's summary must say
``rows == indexed + dead_lettered``; opensearch-hadoop fails the job, and the bench records
what it said and what the index holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = "opensearch:2.19.6"
CONNECTOR = ("org.opensearch.client", "opensearch-spark-30_2.13", "1.2.0")
MAVEN = "https://repo1.maven.org/maven2"
PARTITIONS = 16
MAPPING = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "host": {"type": "keyword"},
        "status": {"type": "integer"},
        "bytes": {"type": "long"},
        "message": {"type": "text"},
    },
}


def connector_jar() -> str:
    """The connector jar, from Maven Central into the cache, checked against its .sha1."""
    group, artifact, version = CONNECTOR
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sturdysearch" / "jars"
    cache.mkdir(parents=True, exist_ok=True)
    name = f"{artifact}-{version}.jar"
    target = cache / name
    if not target.exists():
        base = f"{MAVEN}/{group.replace('.', '/')}/{artifact}/{version}/{name}"
        data = urllib.request.urlopen(base, timeout=120).read()
        expected = urllib.request.urlopen(base + ".sha1", timeout=60).read().decode().split()[0]
        if hashlib.sha1(data).hexdigest() != expected:
            raise SystemExit(f"{name}: the download does not match its .sha1")
        temporary = target.with_suffix(".part")
        temporary.write_bytes(data)
        temporary.replace(target)
    return str(target)


def session(jar: str) -> Any:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sturdysearch-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.jars", jar)
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    from sturdysearch.spark import register

    register(spark)
    return spark


def frame(spark: Any, rows: int, bad_every: int | None) -> Any:
    from pyspark.sql import functions as F

    status = (F.col("id") % 5 * 100 + 200).cast("string")
    if bad_every:
        status = F.when(F.col("id") % bad_every == bad_every - 1, F.lit("n/a")).otherwise(status)
    return spark.range(0, rows, numPartitions=PARTITIONS).select(
        F.col("id").cast("string").alias("id"),
        F.concat(F.lit("web-"), (F.col("id") % 37).cast("string")).alias("host"),
        status.alias("status"),
        (F.col("id") * 7).alias("bytes"),
        F.concat(F.lit("GET /api/v2/orders/"), F.col("id").cast("string")).alias("message"),
    )


def fresh_index(url: str) -> str:
    from sturdysearch import Client

    name = f"spark-bench-{uuid.uuid4().hex[:8]}"
    with Client([url]) as client:
        client.indices.create(
            index=name,
            mappings=MAPPING,
            settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "30s"},
        )
    return name


def count(url: str, index: str) -> int:
    from sturdysearch import Client

    with Client([url]) as client:
        client.indices.refresh(index=index)
        found: int = client.count(index=index)["count"]
        client.indices.delete(index=index)
        return found


def write_sturdysearch(df: Any, url: str, index: str, dlq: str) -> dict[str, Any]:
    (
        df.write.format("sturdysearch")
        .mode("append")
        .option("url", url)
        .option("index", index)
        .option("id_column", "id")
        .option("dead_letter_dir", dlq)
        .save()
    )
    (job,) = [p for p in Path(dlq).iterdir() if p.is_dir()]
    summary = json.loads((job / "summary.json").read_text())
    return {
        "said": f"indexed {summary['indexed']}, dead-lettered {summary['dead_lettered']} (with "
        f"the reason each) of {summary['rows']} rows; exact: {summary['exact']}",
        "dead_lettered": summary["dead_lettered"],
    }


def write_hadoop(df: Any, url: str, index: str, dlq: str) -> dict[str, Any]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    conf = {
        "opensearch.nodes": host,
        "opensearch.port": port,
        "opensearch.nodes.wan.only": "true",
        "opensearch.resource": index,
        "opensearch.input.json": "yes",
        "opensearch.mapping.id": "id",
    }
    pairs = df.toJSON().map(lambda line: (None, line))
    pairs.saveAsNewAPIHadoopFile(
        path="-",
        outputFormatClass="org.opensearch.hadoop.mr.OpenSearchOutputFormat",
        keyClass="org.apache.hadoop.io.NullWritable",
        valueClass="org.apache.hadoop.io.Text",
        conf=conf,
    )
    return {"said": "the job succeeded", "dead_lettered": None}


CONTENDERS = {"sturdysearch": write_sturdysearch, "opensearch-hadoop": write_hadoop}


def one(spark: Any, name: str, url: str, rows: int, bad_every: int | None) -> dict[str, Any]:
    index = fresh_index(url)
    df = frame(spark, rows, bad_every)
    with tempfile.TemporaryDirectory(prefix="spark-bench-dlq-") as dlq:
        started = time.perf_counter()
        try:
            outcome = CONTENDERS[name](df, url, index, dlq)
            failed = None
        except Exception as exc:  # the job failed: record what it said
            text = str(exc)
            said = next(
                (
                    line.strip()
                    for line in text.splitlines()
                    if "Could not write" in line or "Bailing" in line
                ),
                text.splitlines()[0] if text else type(exc).__name__,
            )
            outcome, failed = {"said": f"the job failed: {said[:300]}", "dead_lettered": None}, said
        seconds = time.perf_counter() - started
    indexed = count(url, index)
    return {
        "contender": name,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds) if failed is None else None,
        "indexed": indexed,
        **outcome,
    }


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    spark = session(connector_jar())
    names = [n for n in CONTENDERS if not args.only or any(w in n for w in args.only)]
    try:
        for name in names:  # warm-up: JIT, Python workers, the connector's first request
            one(spark, name, url, min(args.rows, 20_000), None)
        speed: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                result = one(spark, name, url, args.rows, None)
                print(json.dumps(result), flush=True)
                speed[name].append(result)
        bad_every = round(1 / args.bad) if args.bad else None
        accounting = {}
        for name in names:
            result = one(spark, name, url, args.rows, bad_every)
            print(json.dumps(result), flush=True)
            accounting[name] = result
    finally:
        spark.stop()
    summary = {}
    for name in names:
        runs = [r["rows_per_s"] for r in speed[name] if r["rows_per_s"]]
        summary[name] = {
            "rows_per_s_median": statistics.median(runs) if runs else None,
            "rows_per_s": runs,
            "indexed_every_row": all(r["indexed"] == args.rows for r in speed[name]),
            "accounting": accounting[name],
        }
    base = summary.get("opensearch-hadoop", {}).get("rows_per_s_median")
    for name in names:
        mine = summary[name]["rows_per_s_median"]
        summary[name]["ratio_to_opensearch_hadoop"] = (
            round(mine / base, 2) if mine and base else None
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bad", type=float, default=0.001, help="share of invalid rows")
    parser.add_argument("--url", help="use this node instead of starting one")
    parser.add_argument("--heap", default="1g", help="JVM heap of the started node")
    parser.add_argument("--only", nargs="*", help="contenders whose name contains a word")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.url:
        results = run(args, args.url)
    else:
        from sturdysearch.testing.cluster import LocalCluster, ServerSpec

        with LocalCluster(
            ServerSpec.parse(SERVER), nodes=1, heap=args.heap, optimize_for_startup=False
        ) as cluster:
            results = run(args, cluster.urls[0])
    report = {
        "server": SERVER,
        "connector": ":".join(CONNECTOR),
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
