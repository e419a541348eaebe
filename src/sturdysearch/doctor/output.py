"""The report: a table that fits 80 columns (with rich, the ``cli`` extra, or plain text
without it), the meaning and fix of every finding that is not ``ok`` below it, and ``--json``.

Nothing secret reaches here: findings are built from the configuration's non-secret parts
(URLs never carry credentials, proxy URLs show ``***``) and from server answers; the raw
probes send no credentials at all.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

from sturdysearch.doctor.findings import Finding
from sturdysearch.doctor.runner import Report

WIDTH = 80
_LABEL = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "unknown": "?"}
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "unknown": "cyan"}


def as_json(report: Report) -> str:
    return (
        json.dumps(
            {"findings": [f.to_dict() for f in report.findings], "exit_code": report.exit_code},
            indent=2,
        )
        + "\n"
    )


def short_node(url: str | None) -> str:
    """``host:port`` of a node URL, for the table's narrow column."""
    if not url:
        return ""
    split = urlsplit(url)
    return split.netloc or url


def tally(report: Report) -> str:
    counts: Counter[str] = Counter(f.status for f in report.findings)
    parts = [
        f"{counts[s]} {name}"
        for s, name in (
            ("fail", "failed"),
            ("warn", "warnings"),
            ("unknown", "unknown"),
            ("ok", "ok"),
        )
        if counts[s]
    ]
    head = f"exit {report.exit_code}: " + ", ".join(parts)
    if not report.reachable:
        head += " - no node answered, so the cluster was not checked"
    return head


def as_text(report: Report, *, color: bool = False) -> str:
    """The table and the details, with rich when it is installed."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return _plain(report)
    return _rich(report, color=color)


def _rich(report: Report, *, color: bool) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=WIDTH, force_terminal=color, no_color=not color, highlight=False
    )
    with_nodes = _several_nodes(report.findings)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    table.add_column("", no_wrap=True, width=4)
    table.add_column("check", no_wrap=True)
    if with_nodes:
        table.add_column("node", no_wrap=True, max_width=21, overflow="ellipsis")
    table.add_column("summary", overflow="fold", ratio=1)
    for f in report.findings:
        cells = [Text(_LABEL[f.status], style=_STYLE[f.status]), Text(f.id)]
        if with_nodes:
            cells.append(Text(short_node(f.node)))
        cells.append(Text(f.summary))
        table.add_row(*cells)
    console.print(table)
    for f in _noteworthy(report.findings):
        console.print()
        title = Text(f"{_LABEL[f.status]} {f.id}", style=_STYLE[f.status])
        if f.node:
            title.append(f"  {f.node}", style="")
        console.print(title)
        console.print(Text("\n".join(_detail_lines(f))))
    console.print()
    console.print(Text(tally(report), style="bold"))
    return buffer.getvalue()


def _detail_lines(f: Finding) -> list[str]:
    lines: list[str] = []
    for label, text in (
        ("", f.summary),
        ("What it means: ", f.meaning),
        ("How to fix: ", f.fix),
        ("Docs: ", f.link),
    ):
        if text:
            lines += textwrap.wrap(
                f"{label}{text}", WIDTH, initial_indent="  ", subsequent_indent="    "
            )
    return lines


def _several_nodes(findings: Sequence[Finding]) -> bool:
    """Whether the node column says anything: with one node, every finding is about it."""
    return len({f.node for f in findings if f.node}) > 1


def _noteworthy(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.status != "ok"]


def _plain(report: Report) -> str:
    lines = []
    with_nodes = _several_nodes(report.findings)
    node_width = 21 if with_nodes else 0
    check_width = max([len(f.id) for f in report.findings] + [5])
    indent = 5 + check_width + 1 + (node_width + 1 if with_nodes else 0)
    for f in report.findings:
        node = short_node(f.node)[:node_width].ljust(node_width) + " " if with_nodes else ""
        prefix = f"{_LABEL[f.status]:<4} {f.id:<{check_width}} {node}"
        wrapped = textwrap.wrap(f.summary, max(20, WIDTH - indent)) or [""]
        lines.append(prefix + wrapped[0])
        lines += [" " * indent + rest for rest in wrapped[1:]]
    for f in _noteworthy(report.findings):
        lines.append("")
        lines.append(f"{_LABEL[f.status]} {f.id}" + (f"  {f.node}" if f.node else ""))
        lines += _detail_lines(f)
    lines += ["", tally(report)]
    return "\n".join(lines) + "\n"
