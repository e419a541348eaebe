"""Concurrent `search` calls from asyncio against the canned nginx server.

32 tasks on one event loop each send searches back to back for a fixed time; every contender
sends the same body to `POST /bench/_search` and parses the same ~4.4 KB answer:

* `raw-aiohttp`: one `aiohttp.ClientSession` (connector limited to 32 per host), `orjson.dumps`
  of the body, `orjson.loads` of the answer, status checked. The floor for an aiohttp client,
  and the baseline of the ratios.
* `AsyncElasticsearch` (elasticsearch-py 9, aiohttp transport, default settings).
* `AsyncOpenSearch` (opensearch-py, default settings).
* `sturdysearch`: `AsyncClient([url], connections_per_node=32)`.

Contenders alternate over `--rounds` rounds; we report the median requests/s, the ratio to
raw aiohttp, and the process CPU per call. Run: `python bench/async_search.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from canned_server import CannedServer

BODY = {
    "query": {
        "bool": {
            "filter": [{"term": {"service.name": "storefront"}}],
            "must": [{"match": {"message": "timeout"}}],
        }
    },
    "size": 10,
}
TASKS = 32

Setup = Callable[
    [str], Awaitable[tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]]
]


async def raw_aiohttp(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=TASKS))
    target = f"{url}/bench/_search"
    headers = {"content-type": "application/json", "accept": "application/json"}

    async def call() -> Any:
        async with session.post(target, data=orjson.dumps(BODY), headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(resp.status)
            return orjson.loads(data)

    return call, session.close


async def es_async(url: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from elasticsearch import AsyncElasticsearch

    # The peers run at their defaults, as their users run them.
    client = AsyncElasticsearch(url, connections_per_node=TASKS)  # noqa: SSP103

    async def call() -> Any:
        return (await client.search(index="bench", body=BODY)).body

    return call, client.close


async def os_async(url: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from opensearchpy import AsyncOpenSearch

    client = AsyncOpenSearch([url], pool_maxsize=TASKS)  # noqa: SSP103 (peer at its defaults)

    async def call() -> Any:
        return await client.search(index="bench", body=BODY)

    return call, client.close


async def sturdy_async(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from sturdysearch import AsyncClient

    client = AsyncClient([url], connections_per_node=TASKS)

    async def call() -> Any:
        return (await client.search(index="bench", body=BODY)).body

    return call, client.close


CONTENDERS: dict[str, Setup] = {
    "raw-aiohttp": raw_aiohttp,
    "AsyncElasticsearch": es_async,
    "AsyncOpenSearch": os_async,
    "sturdysearch": sturdy_async,
}


async def measure(setup: Setup, url: str, seconds: float) -> tuple[float, float]:
    call, close = await setup(url)
    try:
        first = await call()
        if len(first["hits"]["hits"]) != 10:
            raise RuntimeError("wrong answer")
        await asyncio.gather(*(call() for _ in range(200)))  # warm-up
        done = 0
        stop_at = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                answer = await call()
                if not answer["hits"]["hits"]:
                    raise RuntimeError("empty answer")
                done += 1

        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        return done / wall, cpu / done * 1e6
    finally:
        await close()


def run(seconds: float = 5.0, rounds: int = 3) -> dict[str, Any]:
    """Every contender ``rounds`` times (order rotating), ``seconds`` each; the medians."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
    with CannedServer() as url:
        for r in range(rounds):
            names = list(CONTENDERS)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                rps, cpu = asyncio.run(measure(CONTENDERS[name], url, seconds))
                results[name].append((rps, cpu))
                print(
                    f"  round {r + 1}/{rounds} {name:<20} {rps:>8,.0f} req/s {cpu:7.1f} us CPU/call",
                    flush=True,
                )
    base = statistics.median(r for r, _ in results["raw-aiohttp"])
    contenders = {}
    for name, rows in results.items():
        rps = statistics.median(r for r, _ in rows)
        contenders[name] = {
            "req_per_s": rps,
            "vs_raw": rps / base,
            "cpu_us_per_call": statistics.median(c for _, c in rows),
            "rounds": [{"req_per_s": r, "cpu_us_per_call": c} for r, c in rows],
        }
    return {"tasks": TASKS, "seconds": seconds, "rounds": rounds, "contenders": contenders}


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"async_search: {report['tasks']} tasks, {report['seconds']:g} s x {report['rounds']} "
        "rounds per contender",
        f"{'contender':<20} {'req/s':>9} {'vs raw':>7} {'CPU us/call':>12}",
    ]
    for name, row in report["contenders"].items():
        lines.append(
            f"{name:<20} {row['req_per_s']:>9,.0f} {row['vs_raw']:>6.2f}x "
            f"{row['cpu_us_per_call']:>12.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    report = run(args.seconds, args.rounds)
    print()
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
