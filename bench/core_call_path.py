"""Instructions the sans-IO core spends on one call's way out: ``start_call`` then
``encode_for`` (what every request pays before a socket is touched), for A/B comparisons
under valgrind, which counts instructions whatever else the machine is doing.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/core_call_path.py 1000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/core_call_path.py 21000

The difference of the two totals divided by 20,000 is the cost per call (start-up cancels out).
Without an argument it times the loop instead (noisy on a shared machine). Run it with
``PYTHONPATH=<checkout>/src`` for the other side of an A/B.
"""

from __future__ import annotations

import statistics
import sys
import time

from sturdysearch._core.config import build_config
from sturdysearch._core.driver import TransportBase
from sturdysearch._core.request import RequestSpec


class _Guard:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    transport = TransportBase(
        build_config("http://127.0.0.1:9200"), clock=time.monotonic, rand=lambda: 0.5
    )
    node = transport.config.nodes[0]
    transport.remember_headers(node)
    guard = _Guard()
    body = b'{"query":{"match_all":{}}}'

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            spec = RequestSpec("POST", "/logs/_search", body=body, idempotent=True)
            call = transport.start_call(spec, guard)
            transport.encode_for(call, node)
        return (time.perf_counter() - start) / n * 1e6

    if len(sys.argv) > 1:
        run(int(sys.argv[1]))
        return
    rounds = [run(100_000) for _ in range(7)]
    print(f"{statistics.median(rounds):.3f} us per call (best {min(rounds):.3f})")


if __name__ == "__main__":
    main()
