"""The sans-IO core: everything that decides, nothing that waits.

Nothing in this package opens a socket, sleeps, or reads a clock or a random source: times are
passed in as monotonic seconds (or read through the clock a driver hands to ``TransportBase``),
random numbers likewise, bytes are fed in, and decisions come out. The sync and async drivers
in ``sturdysearch._sync`` / ``sturdysearch._async`` do the I/O, and never import each other.
``tests/unit/test_layering.py`` holds the package to this; ``docs/architecture.md`` shows the
layers.
"""
