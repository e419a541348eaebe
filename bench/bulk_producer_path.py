"""Instructions the producer spends per ``BulkIndexer.index(doc, id)``: encoding the document,
the action line and the engine's bookkeeping, with nothing sent (the batch never fills and the
process leaves with ``os._exit`` before any flush), for A/B comparisons under valgrind, which
counts instructions whatever else the machine is doing.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/bulk_producer_path.py 1000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/bulk_producer_path.py 21000

The difference of the two totals divided by 20,000 is the cost per document (start-up cancels
out). ``--context`` passes ``context={"input": ..., "line": n}`` with every document, as
``sturdysearch bulk-load`` does. Without a count it times the loop instead (noisy on a shared
machine). Run it with ``PYTHONPATH=<checkout>/src`` for the other side of an A/B.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from sturdysearch import BulkIndexer
from sturdysearch._core.events import Tracer


class _NoClient:
    """What the indexer needs of a client to take documents; it is never asked to send."""

    def __init__(self) -> None:
        self.tracer = Tracer()

    def perform(self, spec: Any) -> Any:
        raise AssertionError("nothing is sent in this benchmark")


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--context"]
    with_context = "--context" in sys.argv
    count = int(args[0]) if args else 200_000
    directory = tempfile.mkdtemp(prefix="sturdysearch-bench-")
    bulk = BulkIndexer(
        _NoClient(),  # type: ignore[arg-type]
        "logs",
        dead_letter=os.path.join(directory, "dlq.jsonl"),
        max_actions=1_000_000,
        max_bytes=64 << 20,  # 200,000 documents are about 16 MB
        max_pending_bytes=1 << 30,
        flush_interval=3600.0,
    )
    docs = [{"id": f"d{i}", "msg": "hello world", "status": 200, "n": i} for i in range(count)]
    start = time.perf_counter()
    if with_context:
        for n, doc in enumerate(docs):
            bulk.index(doc, doc["id"], context={"input": "logs.jsonl", "line": n})
    else:
        for doc in docs:
            bulk.index(doc, doc["id"])
    seconds = time.perf_counter() - start
    if not args:
        print(f"{seconds / count * 1e6:.3f} us per document")
    sys.stdout.flush()
    os._exit(0)  # no close(): nothing is ever sent


if __name__ == "__main__":
    main()
