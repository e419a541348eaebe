"""``sturdysearch.cli.inputs``: every format, compressed or not, from a file or a pipe, read as
a stream with the numbers ``--skip-lines`` counts."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from sturdysearch.cli import inputs
from sturdysearch.cli.inputs import InputError, Unusable, Watch, open_source


def records(path: Path | str, fmt: str = "auto", skip: int = 0) -> list[tuple[int, object]]:
    with open_source(str(path), fmt) as source:
        return list(source.records(skip))


def test_json_lines_keep_their_line_numbers_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n{bad}\n{"a": 3}')
    assert records(path) == [(1, b'{"a": 1}\n'), (4, b"{bad}\n"), (5, b'{"a": 3}')]
    assert records(path, skip=4) == [(5, b'{"a": 3}')]


def test_a_json_array_is_read_element_by_element(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(' \n [ {"a": 1}, 5 , {"b": [1, {"c": "x]}"}]}, 12345678901234567890 ] \n')
    assert records(path) == [
        (1, {"a": 1}),
        (2, 5),
        (3, {"b": [1, {"c": "x]}"}]}),
        (4, 12345678901234567890),
    ]
    assert records(path, skip=3) == [(4, 12345678901234567890)]
    (tmp_path / "empty.json").write_text("[]")
    assert records(tmp_path / "empty.json") == []


def test_a_json_array_is_parsed_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 7 bytes cut every element, number and string somewhere in the middle.
    monkeypatch.setattr(inputs, "_CHUNK", 7)
    documents = [{"i": i, "text": "é" * (i % 5), "n": 10**i} for i in range(40)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(documents, indent=2, ensure_ascii=False), encoding="utf-8")
    assert [doc for _, doc in records(path, "json")] == documents


def test_a_broken_json_array_stops_with_the_item_that_broke_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"a": 1}, {"a": tru}, {"a": 2}]')
    with open_source(str(path)) as source:
        stream = source.records()
        assert next(stream) == (1, {"a": 1})
        with pytest.raises(InputError, match="item 2 of the JSON array"):
            next(stream)
    for text, message in (
        ('[{"a": 1} {"a": 2}]', "expected , or ]"),
        ('[{"a": 1}, ', "ends after item 1 without ]"),
        ('[{"a": 1}] x', "text after the end"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            records(path, "json")
    path.write_text('{"a": 1}')
    with pytest.raises(InputError, match="must start with"):
        records(path, "json")


def test_csv_rows_become_string_documents(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b'id,name\r\n1,"multi\nline"\r\n2,bob,extra\r\n\r\n3,\r\n')
    assert records(path) == [
        (3, {"id": "1", "name": "multi\nline"}),
        (4, Unusable("3 fields where the header has 2", ["2", "bob", "extra"])),
        (6, {"id": "3", "name": ""}),
    ]
    assert records(path, skip=4) == [(6, {"id": "3", "name": ""})]
    path.write_text("id,id\n1,2\n")
    with pytest.raises(InputError, match="header must name every column once"):
        records(path)


def test_gzip_is_seen_from_the_content(tmp_path: Path) -> None:
    for name, data, fmt in (
        ("a.jsonl.gz", b'{"a": 1}\n', "jsonl"),
        ("no-extension", b'[{"a": 1}]', "json"),
        ("a.csv.gz", b"a\n1\n", "csv"),
    ):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data))
        with open_source(str(path)) as source:
            assert (source.format, source.compressed) == (fmt, True)
            assert len(list(source.records())) == 1
    (tmp_path / "cut.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(InputError, match="not a complete gzip stream"):
        records(tmp_path / "cut.gz")


def test_progress_counts_the_bytes_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(5000))))
    seen: list[int] = []
    with open_source(str(path), on_bytes=seen.append) as source:
        assert len(list(source.records())) == 5000
        assert sum(seen) == source.size == path.stat().st_size


def test_a_stopped_watch_ends_a_read_from_a_pipe() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"a": 1}\n')
    watch = Watch()
    stdin = os.dup(0)
    try:
        os.dup2(read_end, 0)
        with open_source("-", watch=watch) as source:
            assert source.size is None
            stream = source.records()
            assert next(stream) == (1, b'{"a": 1}\n')
            watch.stopped = True  # as the first Ctrl-C leaves it; the pipe stays open
            with pytest.raises(inputs.StopReading):
                next(stream)
    finally:
        os.dup2(stdin, 0)
        for fd in (stdin, read_end, write_end):
            os.close(fd)
