"""sturdysearch: a client for Elasticsearch and OpenSearch that is hard to use wrong."""

from __future__ import annotations

__version__ = "0.1.0"
