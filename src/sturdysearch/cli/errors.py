"""Errors shared by the CLI subcommands."""

from __future__ import annotations


class CliError(Exception):
    """An expected failure: printed as one actionable line, exit code 1, no traceback."""
