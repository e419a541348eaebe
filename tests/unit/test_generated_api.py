"""The generated API: current with its table, typed for mypy, visible to ``inspect``."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._async.api import NAMESPACES

ROOT = Path(__file__).resolve().parents[2]


def test_generated_api_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_api.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def public_methods(obj: object) -> list[tuple[str, object]]:
    return [
        (name, getattr(obj, name))
        for name in dir(obj)
        if not name.startswith("_") and inspect.isfunction(getattr(obj, name, None))
    ]


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_no_public_method_takes_bare_kwargs(client_class: type) -> None:
    client = client_class("http://127.0.0.1:9")
    try:
        owners: list[object] = [client_class]
        owners += [type(getattr(client, attr)) for attr in NAMESPACES]
        loose = []
        for owner in owners:
            for name, fn in public_methods(owner):
                for p in inspect.signature(fn).parameters.values():  # type: ignore[arg-type]
                    if p.kind is inspect.Parameter.VAR_KEYWORD:
                        loose.append(f"{getattr(owner, '__name__', owner)}.{name}")
        assert loose == []
    finally:
        if client_class is Client:
            client.close()


def test_every_table_endpoint_has_a_method() -> None:
    table = json.loads((ROOT / "scripts" / "api" / "endpoints.json").read_text())
    client = Client("http://127.0.0.1:9")
    missing = []
    for endpoint_id, entry in table["endpoints"].items():
        flavors = [f for f in ("elasticsearch", "opensearch") if entry.get(f)]
        if all(entry[f].get("visibility") in ("private", "feature_flag") for f in flavors):
            continue
        namespace, _, name = endpoint_id.rpartition(".")
        owner: object = client
        if namespace:
            owner = getattr(client, namespace.replace(".", "_"), None)
        method = name.lstrip("_")
        if owner is None or not callable(
            getattr(owner, method, getattr(owner, method + "_", None))
        ):
            missing.append(endpoint_id)
    client.close()
    assert missing == []


MISSPELT = """
from sturdysearch import Client

c = Client("http://127.0.0.1:9200")
c.search(qurey={"match_all": {}})
c.search(size="ten")
c.index(index="i", docment={})
c.indices.create(index="i", mapings={})
c.cluster.put_settings(persistant={})
"""


def test_mypy_rejects_misspelt_keywords(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(MISSPELT))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if "error:" in line]
    for word in ('"qurey"', '"size"', '"docment"', '"mapings"', '"persistant"'):
        assert any(word in line for line in lines), (word, result.stdout)
