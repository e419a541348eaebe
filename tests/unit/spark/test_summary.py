"""A job's summary from its tasks' reports: only committed attempts count, every other
attempt found on disk is superseded and moved aside. Pure logic and files: no Spark."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from sturdysearch.spark.summary import (
    NO_ERROR_OF_ITS_OWN,
    TaskReport,
    attempt_stem,
    summarize,
    write_report,
)


def report(partition: int, attempt: int, rows: int, dead: int, **extra: object) -> TaskReport:
    return TaskReport(
        partition, attempt, rows=rows, indexed=rows - dead, dead_lettered=dead, **extra
    )  # type: ignore[arg-type]


def attempt(directory: Path, r: TaskReport, letters: int) -> None:
    (directory / (attempt_stem(r.partition, r.attempt) + ".jsonl")).write_bytes(b"{}\n" * letters)
    write_report(str(directory), r)


def test_committed_attempts_count_and_the_others_move_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = report(1, 0, rows=400, dead=1, error="RuntimeError: upstream failure")
    retry = report(
        1, 1, rows=1000, dead=2, dead_letter_file=str(tmp_path / "part-00001-attempt-1.jsonl")
    )
    zero = report(0, 0, rows=1000, dead=0)
    for r, letters in ((first, 1), (retry, 2), (zero, 0)):
        attempt(tmp_path, r, letters)
    (tmp_path / "part-00002-attempt-0.jsonl").write_bytes(b"")  # killed before it reported
    two = report(2, 1, rows=10, dead=0)
    attempt(tmp_path, two, 0)
    with caplog.at_level(logging.INFO, logger="sturdysearch.spark"):
        summary = summarize(
            str(tmp_path), [zero, retry, two], job="j", index="logs", status="committed"
        )
    assert (summary["rows"], summary["indexed"], summary["dead_lettered"]) == (2010, 2008, 2)
    assert summary["exact"] is True and summary["partitions"] == 3
    assert summary["dead_letter_files"] == ["part-00001-attempt-1.jsonl"]
    superseded = {(a["partition"], a["attempt"]): a for a in summary["superseded_attempts"]}
    assert set(superseded) == {(1, 0), (2, 0)}
    assert superseded[(1, 0)]["indexed"] == 399 and "upstream" in superseded[(1, 0)]["error"]
    assert superseded[(2, 0)]["error"] == "no report: the attempt was killed"
    assert summary["indexed_by_other_attempts"] == 399
    moved = sorted(p.name for p in (tmp_path / "superseded").iterdir())
    assert moved == [
        "part-00001-attempt-0.jsonl",
        "part-00001-attempt-0.report.json",
        "part-00002-attempt-0.jsonl",
    ]
    assert orjson.loads((tmp_path / "summary.json").read_bytes()) == summary
    (logged,) = caplog.records
    assert (
        logged.levelname == "WARNING"
        and "2008 of 2010 rows indexed into logs" in logged.getMessage()
    )


def test_an_inexact_task_makes_the_summary_say_so(tmp_path: Path) -> None:
    lost = TaskReport(0, 0, rows=10, indexed=8, dead_lettered=1, pending=1)
    assert not lost.exact
    summary = summarize(str(tmp_path), [lost], job="j", index="i", status="committed")
    assert summary["exact"] is False


def test_an_aborted_job_keeps_its_files_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failed = report(0, 0, rows=50, dead=50, error="BulkAbortedError: index [i] is closed")
    attempt(tmp_path, failed, 50)
    with caplog.at_level(logging.INFO, logger="sturdysearch.spark"):
        summary = summarize(
            str(tmp_path),
            [],
            job="j",
            index="i",
            status="aborted",
            reason="the job failed",
            move_superseded=False,
        )
    assert summary["status"] == "aborted" and summary["reason"] == "the job failed"
    assert summary["superseded_attempts"][0]["error"].startswith("BulkAbortedError")
    assert not (tmp_path / "superseded").exists()
    assert caplog.records[0].levelname == "ERROR"


def test_reports_round_trip() -> None:
    r = report(3, 2, rows=5, dead=1, seconds=1.5)
    assert TaskReport.from_json(r.to_json()) == r


def test_a_superseded_attempt_that_raised_nothing_says_so(tmp_path: Path) -> None:
    """An attempt whose input Spark cut off (its upstream failed) or that lost to another
    attempt raised nothing itself: the summary says that instead of ``"error": null``."""
    winner, loser = report(0, 1, rows=10, dead=0), report(0, 0, rows=4, dead=0)
    for r in (winner, loser):
        attempt(tmp_path, r, 0)
    summary = summarize(str(tmp_path), [winner], job="j", index="logs", status="committed")
    (superseded,) = summary["superseded_attempts"]
    assert superseded == {"partition": 0, "attempt": 0, "indexed": 4, "error": NO_ERROR_OF_ITS_OWN}
