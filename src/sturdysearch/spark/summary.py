"""Exact accounting across a Spark job: each task's report, and the job's summary.

Every write task runs one ``BulkIndexer`` over its partition and reports what it did (a
:class:`TaskReport`: rows read, documents indexed, dead-lettered, retried...), as its commit
message and as a JSON file beside its dead letters. The driver's commit merges the reports of
the attempts Spark committed, one per partition, into the job's summary. An attempt that
failed, was retried or lost a speculative race wrote documents too, but the committed attempt
of its partition wrote them again under the same ids, and dead-lettered again what it could
not write: such an attempt is *superseded*, its files are moved aside (``superseded/``), and
the summary counts only committed attempts, so that ``rows == indexed + dead_lettered`` holds
for the job exactly as it does for one indexer.

Pure logic and file moves: no Spark import.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

logger = logging.getLogger("sturdysearch.spark")

SUMMARY_FILE = "summary.json"
SUPERSEDED_DIR = "superseded"

#: What a superseded attempt that raised nothing is reported with: its writer saw its input end
#: (Spark cancels a task whose upstream failed, or whose other attempt committed first), so the
#: failure is Spark's to tell (the driver log), not the writer's.
NO_ERROR_OF_ITS_OWN = (
    "none of its own: its input ended early (Spark cancelled the task after a failure upstream, "
    "or another attempt of it committed first)"
)
_ATTEMPT_FILE = re.compile(r"^part-(\d+)-attempt-(\d+)\.(jsonl|report\.json)$")


def attempt_stem(partition: int, attempt: int) -> str:
    """The name shared by an attempt's dead-letter file and report."""
    return f"part-{partition:05d}-attempt-{attempt}"


@dataclass(frozen=True)
class TaskReport:
    """What one task attempt did to its partition (its ``BulkIndexer``'s final stats)."""

    partition: int
    attempt: int
    rows: int
    """Rows read from the partition: every one was added to the indexer or rejected."""
    indexed: int = 0
    created: int = 0
    updated: int = 0
    noop: int = 0
    dead_lettered: int = 0
    pending: int = 0
    """Without an outcome (only for an attempt that was interrupted)."""
    retried_requests: int = 0
    retried_documents: int = 0
    dead_letter_file: str | None = None
    seconds: float = 0.0
    error: str | None = None
    """Why the attempt failed, for an attempt that did."""

    @property
    def exact(self) -> bool:
        return self.rows == self.indexed + self.dead_lettered and self.pending == 0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> TaskReport:
        raw = orjson.loads(data)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def write_report(directory: str, report: TaskReport) -> str:
    """Write ``report`` beside the attempt's dead letters (atomically); returns the path."""
    path = os.path.join(directory, attempt_stem(report.partition, report.attempt) + ".report.json")
    _write_atomically(path, report.to_json())
    return path


def _write_atomically(path: str, data: bytes) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def _attempt_files(directory: str) -> dict[tuple[int, int], list[str]]:
    found: dict[tuple[int, int], list[str]] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in names:
        match = _ATTEMPT_FILE.match(name)
        if match:
            key = (int(match.group(1)), int(match.group(2)))
            found.setdefault(key, []).append(name)
    return found


def _reports_on_disk(directory: str, names: dict[tuple[int, int], list[str]]) -> list[TaskReport]:
    reports = []
    for (partition, attempt), files in sorted(names.items()):
        report_name = attempt_stem(partition, attempt) + ".report.json"
        if report_name in files:
            with open(os.path.join(directory, report_name), "rb") as f:
                reports.append(TaskReport.from_json(f.read()))
        else:  # killed before it could report: only its dead letters say it ran
            reports.append(
                TaskReport(partition, attempt, rows=0, error="no report: the attempt was killed")
            )
    return reports


def summarize(
    directory: str,
    committed: Iterable[TaskReport],
    *,
    job: str,
    index: str,
    status: str,
    reason: str | None = None,
    move_superseded: bool = True,
) -> dict[str, Any]:
    """The job's summary, written to ``<directory>/summary.json`` and logged.

    ``committed``: the reports of the attempts Spark committed. Every other attempt found in
    ``directory`` is superseded; with ``move_superseded`` its files go to ``superseded/``
    (a committed job), otherwise they stay for inspection (an aborted one)."""
    committed = sorted(committed, key=lambda r: r.partition)
    kept = {(r.partition, r.attempt) for r in committed}
    on_disk = _attempt_files(directory)
    others = [
        r for r in _reports_on_disk(directory, on_disk) if (r.partition, r.attempt) not in kept
    ]
    if move_superseded and others:
        target = os.path.join(directory, SUPERSEDED_DIR)
        os.makedirs(target, exist_ok=True)
        for report in others:
            for name in on_disk.get((report.partition, report.attempt), []):
                os.replace(os.path.join(directory, name), os.path.join(target, name))
    totals = {
        name: sum(getattr(r, name) for r in committed)
        for name in (
            "rows",
            "indexed",
            "created",
            "updated",
            "noop",
            "dead_lettered",
            "pending",
            "retried_requests",
            "retried_documents",
        )
    }
    exact = all(r.exact for r in committed)
    summary: dict[str, Any] = {
        "status": status,
        "job": job,
        "index": index,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **totals,
        "exact": exact and totals["rows"] == totals["indexed"] + totals["dead_lettered"],
        "partitions": len(committed),
        "dead_letter_files": sorted(
            os.path.basename(r.dead_letter_file) for r in committed if r.dead_letter_file
        ),
        "tasks": [asdict(r) for r in committed],
        "indexed_by_other_attempts": sum(r.indexed for r in others),
        "superseded_attempts": [
            {
                "partition": r.partition,
                "attempt": r.attempt,
                "indexed": r.indexed,
                "error": r.error or NO_ERROR_OF_ITS_OWN,
            }
            for r in others
        ],
    }
    if reason is not None:
        summary["reason"] = reason
    _write_atomically(
        os.path.join(directory, SUMMARY_FILE), orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    )
    log_summary(summary, directory)
    return summary


def log_summary(summary: dict[str, Any], directory: str) -> None:
    text = (
        f"sturdysearch write {summary['status']}: {summary['indexed']} of {summary['rows']} rows "
        f"indexed into {summary['index']}, {summary['dead_lettered']} dead-lettered in "
        f"{directory} ({summary['partitions']} partitions"
        + (
            f", {len(summary['superseded_attempts'])} superseded attempts"
            if summary["superseded_attempts"]
            else ""
        )
        + ")"
    )
    if summary["status"] != "committed":
        text += f"; {summary.get('reason') or 'the job failed'}"
        logger.error("%s", text)
    elif summary["dead_lettered"] or not summary["exact"]:
        logger.warning("%s", text)
    else:
        logger.info("%s", text)
