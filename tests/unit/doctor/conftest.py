"""Canned server answers for the doctor's judges, recorded from real nodes
(``answers/<flavor>-<version>/<name>.json``: ``{"status": ..., "body": ...}``; the cluster
settings are cut to the keys the checks read, and no file holds a password)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sturdysearch.doctor.context import Answer

ANSWERS = Path(__file__).parent / "answers"
SERVERS = sorted(p.name for p in ANSWERS.iterdir() if p.is_dir())


def recorded(server: str, name: str) -> Answer:
    data = json.loads((ANSWERS / server / f"{name}.json").read_text())
    return Answer(data["status"], data["body"])


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def canned(server: str) -> object:
    """``canned(name)``: the answer ``name`` recorded from ``server``."""
    return lambda name: recorded(server, name)
