"""The command line without a cluster: help texts, ``--version``, usage errors, the summary
and its exit codes, the Ctrl-C handler, and the dead-letter line numbers behind their feature
check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sturdysearch
from sturdysearch.cli.bulk_cmd import _Feeder, _Outcome, _summary, retried_text
from sturdysearch.cli.display import Display, PlainDisplay
from sturdysearch.cli.inputs import StopReading, Unusable, Watch
from sturdysearch.cli.main import build_parser, main
from sturdysearch.cli.sigint import Interrupts

COMMANDS = [
    [],
    ["bulk-load"],
    ["replay"],
    ["demo"],
    ["doctor"],
    ["lint"],
    ["cluster"],
    ["cluster", "start"],
]


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv) or "sturdysearch")
def test_help_has_no_raw_markup(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(argv, capsys)
    for markup in ("``", ":class:", ":func:", ":data:", ".. "):
        assert markup not in text


@pytest.mark.parametrize("command", ["bulk-load", "replay"])
def test_help_lists_the_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text([command], capsys)
    for code in ("0 ", "3 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in text
    assert "exit codes:" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sturdysearch {sturdysearch.__version__}"


def test_update_without_an_id_field_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text('{"a": 1}\n')
    argv = ["bulk-load", str(source), "--index", "i", "--url", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--op", "update"])
    assert exit_info.value.code == 2
    assert "--op update needs --id-field" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--skip-lines", "-1"])
    assert "--skip-lines must be 0 or more" in capsys.readouterr().err


def stats(**counts: int) -> SimpleNamespace:
    base = {"added": 0, "succeeded": 0, "dead_lettered": 0, "pending": 0}
    base |= {"retried_requests": 0, "retried_documents": 0}
    return SimpleNamespace(**{**base, **counts})


def test_retried_counts_requests_and_documents() -> None:
    assert retried_text(stats(retried_requests=2, retried_documents=40)) == (
        "2 requests retried (40 documents)"
    )


@pytest.mark.parametrize(
    ("outcome", "code", "words"),
    [
        (_Outcome(stats(added=5, succeeded=5)), 0, "nothing dead-lettered"),
        (_Outcome(stats(added=5, succeeded=4, dead_lettered=1), "d.jsonl"), 3, "in d.jsonl"),
        (
            _Outcome(stats(added=4, succeeded=3, dead_lettered=1), "d.jsonl", refused=1),
            3,
            "1 dead-lettered in d.jsonl (1 of them invalid input, never sent)",
        ),
        (_Outcome(stats(added=4, succeeded=4), interrupts=1, last=9), 130, "--skip-lines 9"),
        (_Outcome(stats(added=4, succeeded=3, pending=1), interrupts=2, last=9), 130, "flight"),
        (_Outcome(stats(added=4, succeeded=4), stopped="index closed", last=4), 1, "stopped"),
    ],
)
def test_summary_exit_codes(
    outcome: _Outcome, code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _summary(outcome, 1.0) == code
    assert words in capsys.readouterr().out


def test_the_handler_lives_only_during_the_load() -> None:
    before = signal.getsignal(signal.SIGINT)
    watch = Watch()
    with Interrupts(watch) as interrupts:
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)  # the first: a flag, no exception
        assert interrupts.count == 1 and watch.stopped
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second aborts
        assert signal.getsignal(signal.SIGINT) is before  # a third acts as always
    assert signal.getsignal(signal.SIGINT) is before


def test_the_first_ctrl_c_ends_a_blocked_read() -> None:
    watch = Watch()
    with Interrupts(watch), pytest.raises(StopReading):
        watch.waiting = True  # as _Counted.readinto sets it around the read
        os.kill(os.getpid(), signal.SIGINT)
    watch.waiting = False


class FakeIndexer:
    """Records the calls the feeder makes (the BulkIndexer's signatures)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def index(self, document: Any, id: Any = None, *, context: Any = None) -> None:
        self.calls.append(("index", document, id, context))

    def create(self, document: Any, id: Any, *, context: Any = None) -> None:
        self.calls.append(("create", document, id, context))

    def update(self, id: Any, *, doc: Any = None, context: Any = None) -> None:
        self.calls.append(("update", id, doc, context))

    def reject(
        self, record: Any, reason: str, *, op: str, id: Any = None, context: Any = None
    ) -> None:
        self.calls.append(("reject", record, reason, op, id, context))


def feeder_of(bulk: FakeIndexer, op: str, id_field: str | None, unit: str = "line") -> _Feeder:
    return _Feeder(bulk, op, id_field, "in.jsonl", Display("loading", None), unit)  # type: ignore[arg-type]


def test_every_call_says_which_input_record_it_is() -> None:
    bulk = FakeIndexer()
    feeder_of(bulk, "index", None).add(3, b"{}")
    feeder_of(bulk, "index", None, unit="item").add(4, b"{}")
    assert bulk.calls == [
        ("index", b"{}", None, {"input": "in.jsonl", "line": 3}),
        ("index", b"{}", None, {"input": "in.jsonl", "item": 4}),
    ]


def test_records_that_cannot_be_sent_are_dead_lettered_and_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bulk = FakeIndexer()
    feeder = feeder_of(bulk, "update", "id")
    feeder.add(1, b'{"id": "a", "n": 1}')
    feeder.add(2, b"not json")
    feeder.add(3, b'{"n": 1}')
    feeder.add(4, b'{"id": 1.5}')
    feeder.add(5, {"id": 7, "n": 2})
    feeder.add(6, Unusable("3 fields where the header has 2", ["a", "b", "c"]))
    at = {n: {"input": "in.jsonl", "line": n} for n in range(7)}
    assert bulk.calls == [
        ("update", "a", {"id": "a", "n": 1}, at[1]),
        (
            "reject",
            b"not json",
            "not a JSON object, so not a partial document",
            "update",
            None,
            at[2],
        ),
        (
            "reject",
            b'{"n": 1}',
            "no id field: an update needs the document's id",
            "update",
            None,
            at[3],
        ),
        ("reject", b'{"id": 1.5}', "id is float, not a string or int", "update", None, at[4]),
        ("update", 7, {"id": 7, "n": 2}, at[5]),
        ("reject", ["a", "b", "c"], "3 fields where the header has 2", "update", None, at[6]),
    ]
    assert feeder.refused == 4
    err = capsys.readouterr().err
    assert "line 2: not sent (dead-lettered): not a JSON object" in err
    assert "line 3: not sent (dead-lettered): no id field" in err
    assert "line 4: not sent (dead-lettered): id is float" in err
    create = FakeIndexer()
    feeder_of(create, "create", None).add(1, [1, 2])
    # Another JSON value goes to the indexer, which dead-letters it with the parser's reason.
    assert create.calls == [("create", b"[1, 2]", None, at[1])]


def test_plain_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    display = PlainDisplay("loading", 2_000_000)
    display.advance(1_000_000)
    display.stats(stats(succeeded=1234, dead_lettered=5))
    assert display.line().startswith("loading: 50% of 2.0 MB read, 1,234 ok, 5 dead, 0:00:0")


def test_help_and_version_work_without_rich(tmp_path: Path) -> None:
    fake = tmp_path / "rich"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('rich is not installed (test)')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for argv in (["--version"], ["--help"], ["bulk-load", "--help"], ["demo", "--help"]):
        run = subprocess.run(
            [sys.executable, "-m", "sturdysearch.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr


def test_parser_builds() -> None:
    assert build_parser().prog == "sturdysearch"
