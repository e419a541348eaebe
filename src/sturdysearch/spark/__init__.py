"""A PySpark data source that writes with exact accounting and reads an index in parallel.

::

    from sturdysearch.spark import register
    register(spark)
    (df.write.format("sturdysearch").mode("append")
        .option("url", "https://es1:9200").option("index", "logs")
        .option("id_column", "id").option("dead_letter_dir", "/shared/dlq").save())
    spark.read.format("sturdysearch").option("url", ...).option("index", "logs").load()

Needs ``pip install "sturdysearch[spark]"`` (PySpark 4 with pyarrow); docs/spark.md has the
options, the guarantees and the summary format.
"""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(spark: Any) -> None:
    """Register the ``"sturdysearch"`` format with the ``SparkSession`` ``spark``."""
    try:
        from sturdysearch.spark.source import SturdySearchDataSource
    except ImportError as exc:  # pyspark or pyarrow missing
        raise ImportError(
            f"the sturdysearch Spark data source needs PySpark 4 and pyarrow ({exc}): "
            'pip install "sturdysearch[spark]"'
        ) from exc
    spark.dataSource.register(SturdySearchDataSource)
