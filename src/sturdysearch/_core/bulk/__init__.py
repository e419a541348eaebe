"""The bulk indexer's sans-IO core: encoding, batching, answer checking, item classification,
retries and accounting. Drivers (``sturdysearch._sync.bulk``) add threads, sockets and files.

Modules: ``encode`` (documents and action lines to NDJSON), ``classify`` (the rule tables),
``answer`` (is a ``_bulk`` answer trustworthy, and what did each item get), ``engine`` (the state
machine every document passes through), ``abort`` (why a load stops, in words that say what to
fix), ``deadletter`` (the dead-letter record format),
``config`` (options and statistics) and ``driving`` (what both drivers do that never waits).
"""
