"""The sans-IO core: everything that decides, nothing that waits.

Nothing in this package opens a socket, sleeps, or reads a clock: times are passed in as
monotonic seconds, bytes are fed in, and decisions come out. The sync and async drivers in
``sturdysearch._sync`` / ``sturdysearch._async`` do the I/O.
"""
