"""Exceptions raised by the local-cluster harness.

Every message names what went wrong *and* what to do about it, because these surface in test
output and CI logs where the reader has no debugger and little context.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Base class: anything the harness could not do."""


class InvalidSpecError(ClusterError, ValueError):
    """A server spec string such as ``opensearch:2.19.6`` could not be understood."""


class DistributionError(ClusterError):
    """The server distribution could not be downloaded, verified or unpacked."""


class ChecksumMismatchError(DistributionError):
    """A downloaded file does not match its expected digest; the file was discarded."""


class JavaNotFoundError(ClusterError):
    """No installed JDK satisfies the server version's Java requirement."""


class NodeUserError(ClusterError):
    """The unprivileged account the nodes run as could not be found or created."""


class ClusterStartError(ClusterError):
    """A node exited or the cluster did not become healthy in time."""


class ClusterHealthError(ClusterStartError):
    """``wait_for_health`` gave up: timeout, or too few nodes left running to get there."""


class ClusterStateError(ClusterError):
    """An operation does not fit the cluster's current state (e.g. starting a running node)."""
