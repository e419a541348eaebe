"""Test support shipped with the library: real nodes on demand, a fault-injecting proxy."""
