"""``sturdysearch bulk-load`` and ``sturdysearch replay`` against a real node: in-process for
the formats and options, as a subprocess for what a user sees (Ctrl-C, a terminal without
rich, the progress bar in an 80-column tmux pane)."""

from __future__ import annotations

import gzip
import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import Client
from sturdysearch.cli.bulk_cmd import EXIT_DEAD_LETTERED, EXIT_INTERRUPTED, EXIT_OK
from sturdysearch.cli.main import EXIT_FAILURE, main
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy


@pytest.fixture
def cli_index(client: Client) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    client.indices.create(
        index=name,
        mappings={"properties": {"status": {"type": "integer"}}},
        settings={"number_of_shards": 1, "number_of_replicas": 0},
    )
    yield name
    client.indices.delete(index=name, ignore=404)


def test_bulk_load_then_replay(
    client: Client,
    node_url: str,
    cli_index: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "logs.jsonl"
    with open(source, "wb") as f:
        for i in range(3000):
            status = "bad" if i % 1000 == 1 else 200
            f.write(orjson.dumps({"id": f"d{i}", "status": status}) + b"\n")
        f.write(b"\n{not json}\n")
    dlq = tmp_path / "dlq.jsonl"
    argv = ["bulk-load", str(source), "--url", node_url, "--index", cli_index]
    code = main([*argv, "--id-field", "id", "--dead-letter", str(dlq), "--no-progress"])
    out = capsys.readouterr().out
    assert code == EXIT_DEAD_LETTERED
    assert "indexed 2997 of 3001" in out and f"4 dead-lettered in {dlq}" in out
    client.indices.refresh(index=cli_index)
    assert client.count(index=cli_index)["count"] == 2997
    records = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert sorted(r["outcome"] for r in records) == ["rejected"] * 3 + ["unserializable"]
    # Each record says which input line it was (line 3001 is blank, 3002 not JSON).
    assert {r["context"]["input"] for r in records} == {str(source)}
    assert sorted(r["context"]["line"] for r in records) == [2, 1002, 2002, 3002]

    # Make the field accept the rejected values (a new index with a looser mapping), replay.
    client.indices.delete(index=cli_index)
    client.indices.create(index=cli_index, mappings={"properties": {"status": {"type": "keyword"}}})
    again = tmp_path / "again.jsonl"
    code = main(["replay", str(dlq), "--url", node_url, "--dead-letter", str(again)])
    out = capsys.readouterr().out
    assert code == EXIT_DEAD_LETTERED  # the unserializable line cannot be sent, still
    assert "indexed 3 of 4" in out
    (left,) = [orjson.loads(line) for line in again.read_bytes().splitlines()]
    assert left["outcome"] == "unserializable" and "cannot be replayed" in left["reason"]
    assert left["context"] == {"input": str(source), "line": 3002}  # kept by the replay


def test_bulk_load_everything_indexed(
    node_url: str, cli_index: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "ok.jsonl"
    source.write_bytes(b"".join(orjson.dumps({"status": i}) + b"\n" for i in range(100)))
    argv = ["bulk-load", str(source), "--url", node_url, "--index", cli_index]
    assert main([*argv, "--dead-letter", str(tmp_path / "d.jsonl")]) == EXIT_OK
    assert "nothing dead-lettered" in capsys.readouterr().out


def test_bulk_load_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STURDYSEARCH_URL", raising=False)
    assert main(["bulk-load", "x.jsonl", "--index", "i"]) == EXIT_FAILURE
    assert "no cluster given: pass --url" in capsys.readouterr().err
    missing = str(tmp_path / "missing.jsonl")
    assert main(["bulk-load", missing, "--index", "i", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot read" in capsys.readouterr().err


# -- formats, ops, resuming --------------------------------------------------------------------


def load(argv: list[str], node_url: str, index: str, tmp_path: Path) -> int:
    dlq = str(tmp_path / "formats-dlq.jsonl")
    base = ["--url", node_url, "--index", index, "--dead-letter", dlq, "--no-progress"]
    return main(["bulk-load", *argv, *base])


def ids(client: Client, index: str) -> dict[str, Any]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, query={"match_all": {}}, size=100)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_every_format_compressed_or_not(
    client: Client, node_url: str, cli_index: str, tmp_path: Path
) -> None:
    docs = [{"id": f"d{i}", "status": i} for i in range(6)]
    (tmp_path / "a.jsonl").write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs[:2]))
    (tmp_path / "b.json").write_bytes(gzip.compress(orjson.dumps(docs[2:4])))  # sniffed: gzip
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(b"id,status\nd4,4\nd5,5\n"))
    for name in ("a.jsonl", "b.json", "c.csv.gz"):
        assert load([str(tmp_path / name), "--id-field", "id"], node_url, cli_index, tmp_path) == 0
    found = ids(client, cli_index)
    assert sorted(found) == [f"d{i}" for i in range(6)]
    assert found["d4"] == {"id": "d4", "status": "4"}  # CSV values are strings


def test_update_merges_partial_documents(
    client: Client,
    node_url: str,
    cli_index: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client.index(index=cli_index, id="a", document={"id": "a", "status": 1, "name": "kept"})
    source = tmp_path / "changes.jsonl"
    source.write_bytes(b'{"id": "a", "status": 2}\n{"status": 3}\n')
    code = load([str(source), "--op", "update", "--id-field", "id"], node_url, cli_index, tmp_path)
    captured = capsys.readouterr()
    assert code == EXIT_DEAD_LETTERED  # line 2 has no id: not sent, dead-lettered, said so
    assert "line 2: not sent (dead-lettered): no id field" in captured.err
    assert "1 dead-lettered in" in captured.out and "1 of them invalid input" in captured.out
    assert ids(client, cli_index)["a"] == {"id": "a", "status": 2, "name": "kept"}
    dlq = tmp_path / "formats-dlq.jsonl"
    (record,) = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert record["outcome"] == "invalid" and record["document_repr"] == '{"status": 3}'
    assert record["context"] == {"input": str(source), "line": 2}


def test_skip_lines_resumes_after_a_line(
    client: Client, node_url: str, cli_index: str, tmp_path: Path
) -> None:
    source = tmp_path / "a.jsonl"
    source.write_bytes(b"".join(b'{"id": "d%d", "status": %d}\n' % (i, i) for i in range(1, 11)))
    assert (
        load([str(source), "--id-field", "id", "--skip-lines", "7"], node_url, cli_index, tmp_path)
        == 0
    )
    assert sorted(ids(client, cli_index)) == ["d10", "d8", "d9"]


# -- as a user runs it: a subprocess, Ctrl-C, no rich, an 80-column terminal ----------------------

COMMAND = [sys.executable, "-m", "sturdysearch.cli"]


def lines_of(count: int, start: int = 1) -> bytes:
    return b"".join(
        orjson.dumps({"id": f"d{i}", "status": i}) + b"\n" for i in range(start, start + count)
    )


def start_load(node_url: str, index: str, dlq: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = ["bulk-load", "-", "--url", node_url, "--index", index, "--id-field", "id"]
    return subprocess.Popen(
        [*COMMAND, *argv, "--dead-letter", str(dlq), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_line(stream: Any, text: bytes) -> bytes:
    """Read ``stream`` up to the line holding ``text`` (what the loader prints is the cue)."""
    seen = b""
    for line in stream:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never printed; got {seen!r}")


def test_ctrl_c_finishes_what_was_read_and_says_where_to_resume(
    client: Client, node_url: str, cli_index: str, tmp_path: Path
) -> None:
    dlq = tmp_path / "dlq.jsonl"
    loader = start_load(node_url, cli_index, dlq)
    assert loader.stdin is not None and loader.stderr is not None
    loader.stdin.write(lines_of(50))
    loader.stdin.flush()  # and keep the pipe open: the loader then blocks, waiting for more
    wait_for_line(loader.stderr, b"a second Ctrl-C aborts")  # the handler is installed
    loader.send_signal(signal.SIGINT)
    out, err = loader.communicate(timeout=60)
    assert loader.returncode == EXIT_INTERRUPTED, err
    assert b"buffered documents; Ctrl-C again to abort" in err
    (resume,) = re.findall(rb"resume with --skip-lines (\d+)", out)
    read = int(resume)
    assert f"indexed {read} of {read}".encode() in out and b"Traceback" not in err
    client.indices.refresh(index=cli_index)
    assert client.count(index=cli_index)["count"] == read

    # Resuming from there loads the rest, and nothing twice.
    again = subprocess.run(
        [
            *COMMAND,
            "bulk-load",
            "-",
            "--url",
            node_url,
            "--index",
            cli_index,
            "--id-field",
            "id",
            "--skip-lines",
            str(read),
            "--dead-letter",
            str(dlq),
            "--no-progress",
        ],
        input=lines_of(50),
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == EXIT_OK, again.stderr
    assert f"indexed {50 - read} of {50 - read}".encode() in again.stdout
    client.indices.refresh(index=cli_index)
    assert client.count(index=cli_index)["count"] == 50


def test_a_second_ctrl_c_aborts_and_dead_letters_what_was_not_sent(
    client: Client, proxy: FaultProxy, cli_index: str, tmp_path: Path
) -> None:
    # Every _bulk answer is held back 3 s, so that requests are still queued behind the one in
    # flight (one worker, 10 documents a request) when the second Ctrl-C comes.
    # (The path is /{index}/_bulk.) The first Ctrl-C comes once that first request is held:
    # the loader has read its 10 documents then, and goes on reading the 40 left in the pipe.
    proxy.set_fault(Fault.latency(3.0).matching(path_regex="/_bulk"))
    dlq = tmp_path / "dlq.jsonl"
    loader = start_load(proxy.url, cli_index, dlq, "--workers", "1", "--batch-actions", "10")
    assert loader.stdin is not None and loader.stderr is not None
    loader.stdin.write(lines_of(50))
    loader.stdin.flush()
    wait_for_line(loader.stderr, b"a second Ctrl-C aborts")
    proxy.wait_for(lambda stats: stats.faults_applied >= 1, timeout=30)
    loader.send_signal(signal.SIGINT)
    wait_for_line(loader.stderr, b"Ctrl-C again to abort")
    loader.send_signal(signal.SIGINT)
    out, err = loader.communicate(timeout=60)
    assert loader.returncode == EXIT_INTERRUPTED, err
    records = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    aborted = [r for r in records if r["outcome"] == "aborted"]
    (summary,) = re.findall(rb"indexed (\d+) of (\d+)", out)
    indexed, added = map(int, summary)
    assert aborted and indexed + len(aborted) == added
    assert f"{len(aborted)} dead-lettered in {dlq}".encode() in out
    assert b"resume with --skip-lines" in out and b"Traceback" not in err


def test_a_stopped_load_says_why_and_how_far_it_got(
    client: Client, node_url: str, cli_index: str, tmp_path: Path
) -> None:
    client.indices.close(index=cli_index)
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(20))
    dlq = tmp_path / "dlq.jsonl"
    run = subprocess.run(
        [
            *COMMAND,
            "bulk-load",
            str(source),
            "--url",
            node_url,
            "--index",
            cli_index,
            "--id-field",
            "id",
            "--dead-letter",
            str(dlq),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == EXIT_FAILURE, run.stderr
    (stopped,) = [line for line in run.stderr.splitlines() if line.startswith("stopped: ")]
    assert "closed" in stopped
    assert "indexed 0 of 20" in run.stdout and f"in {dlq}" in run.stdout
    assert "Traceback" not in run.stderr


def test_an_unreachable_cluster_is_said_at_once_and_stops_after_abort_after(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    """The node refuses every connection: stderr says so while the load waits, and after
    --abort-after seconds the run stops with one reason (naming the flag), every document
    read accounted for in the dead-letter file."""
    proxy.set_fault(Fault.refuse())
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(500))
    dlq = tmp_path / "dlq.jsonl"
    argv = ["bulk-load", str(source), "--url", proxy.url, "--index", "unreachable"]
    run = subprocess.run(
        [*COMMAND, *argv, "--id-field", "id", "--dead-letter", str(dlq), "--abort-after", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == EXIT_FAILURE, run.stderr
    err = run.stderr.splitlines()
    waiting = [line for line in err if line.startswith("bulk: no answer from the cluster")]
    assert len(waiting) == 1 and "within 2 s (--abort-after)" in waiting[0]
    (stopped,) = [line for line in err if line.startswith("stopped: ")]
    assert "no answer from the cluster for 2." in stopped and "--abort-after sets" in stopped
    records = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert len(records) == 500 and {r["outcome"] for r in records} <= {"aborted", "exhausted"}
    assert sorted(r["context"]["line"] for r in records) == list(range(1, 501))
    assert "indexed 0 of 500" in run.stdout and "Traceback" not in run.stderr


def test_bad_options_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(1))
    for flags, said in [
        (["--abort-after", "0"], "--abort-after: abort_after=0.0 must be greater than zero"),
        (["--workers", "0"], "--workers: workers must be a positive integer"),
        (["--ca-certs", str(tmp_path / "none.pem")], "none.pem: no such file"),
    ]:
        argv = ["bulk-load", str(source), "--url", "http://127.0.0.1:9", "--index", "i"]
        run = subprocess.run([*COMMAND, *argv, *flags], capture_output=True, text=True, timeout=60)
        assert run.returncode == EXIT_FAILURE and said in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_a_secured_cluster_with_its_ca_and_a_password(secured_cluster: Any, tmp_path: Path) -> None:
    security = secured_cluster.security
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(30))
    index = f"cli-{uuid.uuid4().hex[:10]}"
    base = ["bulk-load", str(source), "--index", index, "--id-field", "id", "--no-progress"]
    base += [arg for url in secured_cluster.urls for arg in ("--url", url)]
    dlq = str(tmp_path / "dlq.jsonl")
    user = f"{security.user}:{security.password}"
    run = subprocess.run(
        [*COMMAND, *base, "--ca-certs", security.ca_certs, "--user", user, "--dead-letter", dlq],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == EXIT_OK, run.stderr
    assert "indexed 30 of 30" in run.stdout
    # Without the CA the certificate cannot be verified: one clear line, no traceback.
    run = subprocess.run(
        [*COMMAND, *base, "--user", user, "--dead-letter", dlq, "--abort-after", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == EXIT_FAILURE and "Traceback" not in run.stderr
    assert "certificate" in run.stderr.lower(), run.stderr
    assert security.password not in run.stderr + run.stdout


def run_on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal (where a progress bar would be drawn)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        out = process.communicate(timeout=120)[0]
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return process.returncode, out.decode(), shown.decode(errors="replace")


def test_bulk_load_without_rich_prints_plain_progress(
    node_url: str, cli_index: str, tmp_path: Path
) -> None:
    fake = tmp_path / "no-rich" / "rich"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('rich is not installed (test)')\n")
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(200))
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    argv = [*COMMAND, "bulk-load", str(source), "--url", node_url, "--index", cli_index]
    code, out, shown = run_on_terminal([*argv, "--dead-letter", str(tmp_path / "d.jsonl")], env)
    assert code == EXIT_OK, shown
    assert "indexed 200 of 200" in out
    assert f"loading {source} into {cli_index}" in shown
    assert "Traceback" not in shown and "━" not in shown


@pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (scripts/system-deps.sh should add it): the 80-column "
    "terminal check needs it",
)
def test_the_progress_bar_fits_80_columns_and_agrees_with_the_summary(
    node_url: str, cli_index: str, tmp_path: Path
) -> None:
    source = tmp_path / "a.jsonl"
    source.write_bytes(lines_of(3000) + b"{not json}\n")
    out = tmp_path / "summary.txt"
    socket = f"sturdy-{uuid.uuid4().hex[:8]}"
    command = shlex.join(
        [
            *COMMAND,
            "bulk-load",
            str(source),
            "--url",
            node_url,
            "--index",
            cli_index,
            "--dead-letter",
            str(tmp_path / "d.jsonl"),
        ]
    )
    # The pane lives on after the command (`cat` waits on the terminal) until it is captured.
    script = f"{command} > {shlex.quote(str(out))}; tmux -L {socket} wait-for -S done; cat"
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", script], check=True)
    try:
        subprocess.run([*tmux, "wait-for", "done"], check=True, timeout=120)
        frame = subprocess.run(
            [*tmux, "capture-pane", "-p", "-J"], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    lines = [line.rstrip() for line in frame.splitlines() if line.strip()]
    bars = [line for line in lines if line.startswith("loading ━")]
    assert len(bars) == 1, frame  # one line, not wrapped: -J would have joined a wrapped one
    (bar,) = bars
    assert len(bar) <= 80, bar
    assert all(len(line) <= 80 for line in lines), frame
    summary = out.read_text()
    assert "indexed 3000 of 3001" in summary and "1 dead-lettered" in summary
    assert " 100% " in bar and "3,000 ok" in bar and "1 dead" in bar, bar
