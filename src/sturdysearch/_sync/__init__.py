"""Blocking driver: sockets, a bounded pool per node, and the call loop over the sans-IO core."""
