"""I/O that both drivers share and neither owns: the dead-letter file, written the same way by
the threaded indexer and (from a worker thread) by the asyncio one."""
