"""`sturdysearch lint` as users run it: formats, selection, suppression and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sturdysearch.cli.main import main
from sturdysearch.lint.rules import RULES

BAD = """from elasticsearch import Elasticsearch
es = Elasticsearch("https://h:9200", request_timeout=5, verify_certs=False)
es2 = Elasticsearch("https://h:9200", request_timeout=5, sniff_on_start=True)
"""

GO_BAD = """package app

import (
	"crypto/tls"
	"github.com/elastic/go-elasticsearch/v8"
)

var _ = elasticsearch.Config{}
var cfg = &tls.Config{InsecureSkipVerify: true}
var cfg2 = &tls.Config{InsecureSkipVerify: true} //nolint:SSG201
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lint", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(BAD)
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "main.go").write_text(GO_BAD)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "dep.py").write_text(BAD)  # never walked into
    return tmp_path


def test_text_output_and_exit_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(project))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{project / 'app.py'}:2:")
    assert " SSP101 verify_certs=False" in lines[0]
    assert any(f"{project / 'svc' / 'main.go'}:9:" in line and "SSG201" in line for line in lines)
    assert not any(":10:" in line and "main.go" in line for line in lines), "nolint ignored"
    assert not any(".venv" in line for line in lines)
    assert lines[-1].startswith("Found 4 findings")


def test_clean_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.py").write_text(
        "from elasticsearch import Elasticsearch\n"
        'es = Elasticsearch("https://h:9200", request_timeout=5)\n'
    )
    code, out, _ = run(capsys, str(tmp_path))
    assert (code, out) == (0, "All checks passed.\n")


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json", str(project / "app.py"))
    assert code == 1
    items = json.loads(out)
    assert [(i["line"], i["code"]) for i in items] == [(2, "SSP101"), (3, "SSP114")]
    first = items[0]
    assert {"path", "line", "column", "code", "message"} <= set(first)
    assert first["column"] == 70 and first["related"] == ["B501", "S501", "S323"]


def test_sarif_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "sarif", str(project))
    assert code == 1
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    run0 = doc["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in RULES]
    for result in run0["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    assert {r["ruleId"] for r in run0["results"]} == {"SSP101", "SSP114", "SSG201", "SSG202"}


def test_generic_suppressions_of_the_related_rule_are_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Code reviewed for Bandit's B501, Ruff's S501 or gosec's G402 is not flagged again."""
    source = BAD.replace("verify_certs=False)", "verify_certs=False)  # nosec B501")
    (tmp_path / "a.py").write_text(source)
    _, out, _ = run(capsys, "--format", "json", str(tmp_path / "a.py"))
    assert [i["code"] for i in json.loads(out)] == ["SSP114"]
    (tmp_path / "a.py").write_text(
        BAD.replace("verify_certs=False)", "verify_certs=False)  # noqa: S501")
    )
    _, out, _ = run(capsys, "--format", "json", str(tmp_path / "a.py"))
    assert [i["code"] for i in json.loads(out)] == ["SSP114"]
    go = GO_BAD.replace("var cfg = ", "// #nosec G402 -- a test server\nvar cfg = ")
    (tmp_path / "main.go").write_text(go)
    _, out, _ = run(capsys, "--format", "json", "--select", "SSG201", str(tmp_path / "main.go"))
    assert json.loads(out) == []
    go = GO_BAD.replace("var cfg = ", "// #nosec G101\nvar cfg = ")
    (tmp_path / "main.go").write_text(go)
    _, out, _ = run(capsys, "--format", "json", "--select", "SSG201", str(tmp_path / "main.go"))
    assert [i["line"] for i in json.loads(out)] == [10], "a #nosec for another rule is not ours"


def test_select_and_ignore(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--format", "json", "--select", "SSP", str(project))
    assert {i["code"] for i in json.loads(out)} == {"SSP101", "SSP114"}
    _, out, _ = run(capsys, "--format", "json", "--select", "ssg2,SSP114", str(project))
    assert {i["code"] for i in json.loads(out)} == {"SSG201", "SSG202", "SSP114"}
    code, out, _ = run(capsys, "--format", "json", "--ignore", "SSP101,SSP114,SSG", str(project))
    assert (code, json.loads(out)) == (0, [])


def test_noqa(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = BAD.replace("verify_certs=False)", "verify_certs=False)  # noqa: SSP101")
    source = source.replace("sniff_on_start=True)", "sniff_on_start=True)  # noqa: E501")
    (tmp_path / "a.py").write_text(source)
    _, out, _ = run(capsys, "--format", "json", str(tmp_path))
    assert [i["code"] for i in json.loads(out)] == ["SSP114"], "only the named code is silenced"
    (tmp_path / "a.py").write_text(
        BAD.replace("sniff_on_start=True)", "sniff_on_start=True)  # noqa")
    )
    _, out, _ = run(capsys, "--format", "json", str(tmp_path))
    assert [i["code"] for i in json.loads(out)] == ["SSP101"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no/such/path"], "no such file or directory"),
        (["--select", "SSP999", "."], "unknown rule code or prefix 'SSP999'"),
        (["--ignore", "XYZ", "."], "unknown rule code or prefix 'XYZ'"),
        ([], "name at least one PATH"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_bad_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lint", "--format", "xml", "."])
    assert info.value.code == 2


def test_syntax_error_is_reported_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text("from elasticsearch import x\ndef (:\n")
    (tmp_path / "a.py").write_text(BAD)
    code, out, err = run(capsys, str(tmp_path))
    assert code == 1 and "SSP101" in out
    assert "broken.py: not checked, syntax error at line 2" in err


def test_exclude(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--format", "json", "--exclude", "svc", str(project))
    assert {i["code"] for i in json.loads(out)} == {"SSP101", "SSP114"}


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--list-rules")
    assert code == 0
    assert len(out.splitlines()) == len(RULES)
    assert "SSP106 bulk-generator-unconsumed (pitfall 8)" in out


def test_missing_go_extra_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sturdysearch.lint.runner as runner

    def no_tree_sitter() -> object:
        raise ImportError("No module named 'tree_sitter'")

    monkeypatch.setattr(runner, "load_parser", no_tree_sitter)
    code, _, err = run(capsys, str(project))
    assert code == 2
    assert "pip install 'sturdysearch[lint]'" in err
