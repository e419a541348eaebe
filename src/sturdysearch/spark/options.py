"""The options of the ``sturdysearch`` Spark data source, parsed and checked on the driver.

Spark hands a data source its options as strings (``.option("workers", "4")``), with keys
matched case-insensitively. They are parsed here once, on the driver, into small frozen
dataclasses, so that a bad option fails ``save()`` or ``load()`` before a task starts, with a
message that says what to write instead, also for the keys elasticsearch-hadoop and
opensearch-hadoop users bring along (``es.nodes``, ``es.mapping.id``...). The parsed options
are what the tasks get (pickled); the client is built in each task from them, since
credentials objects such as ``AwsSigV4`` refuse to be pickled.

Pure logic: no Spark import, so the unit tests run without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from sturdysearch.errors import ConfigError

#: elasticsearch-hadoop / opensearch-hadoop keys -> what to write here instead.
PEER_KEYWORDS: dict[str, str] = {
    "es.nodes": "url (comma-separated http(s)://host:port URLs)",
    "es.port": "url (the port goes in each URL)",
    "es.resource": "index",
    "es.resource.write": "index",
    "es.resource.read": "index",
    "es.mapping.id": "id_column",
    "es.write.operation": "op (index, create or update)",
    "es.net.http.auth.user": "user",
    "es.net.http.auth.pass": "password",
    "es.net.http.header.authorization": "api_key (or user and password)",
    "es.net.ssl": "url with https:// (certificates are always verified)",
    "es.net.ssl.cert.allow.self.signed": "ca_certs (the CA that signed the certificate)",
    "es.net.ssl.truststore.location": "ca_certs (a PEM file)",
    "es.batch.size.entries": "batch_actions",
    "es.batch.size.bytes": "batch_mb",
    "es.batch.write.retry.count": "abort_after (retries are bounded by time, not a count)",
    "es.batch.write.retry.wait": "abort_after (retries back off with jitter on their own)",
    "es.query": "query (a JSON query clause)",
    "es.read.field.include": "fields",
    "es.nodes.wan.only": "url (only the URLs given are used unless sniffing is asked for)",
    "es.ingest.pipeline": "pipeline",
    "es.net.proxy.http.host": "proxy (http://host:port)",
    "es.net.proxy.https.host": "proxy (http://host:port)",
    "es.mapping.exclude": "keep_id_column=false (for the id column)",
    "es.batch.write.refresh": "refresh",
}
for _key in list(PEER_KEYWORDS):
    PEER_KEYWORDS["opensearch." + _key[3:]] = PEER_KEYWORDS[_key]

CONNECTION_KEYS = frozenset(
    {
        "url",
        "api_key",
        "user",
        "password",
        "ca_certs",
        "aws_region",
        "aws_service",
        "proxy",
        "timeout",
    }
)
WRITE_KEYS = CONNECTION_KEYS | {
    "index",
    "id_column",
    "ids",
    "at_least_once",
    "op",
    "dead_letter_dir",
    "keep_id_column",
    "pipeline",
    "batch_actions",
    "batch_mb",
    "workers",
    "abort_after",
    "delivery_timeout",
    "refresh",
}
READ_KEYS = CONNECTION_KEYS | {
    "index",
    "query",
    "fields",
    "slices",
    "size",
    "pagination",
    "id_column",
    "keep_alive",
}
#: Keys Spark itself passes along (``path`` from ``save(path)``/``load(path)``; a streaming
#: query's ``checkpointLocation``).
SPARK_KEYS = frozenset({"path", "checkpointlocation", "queryname"})
OPS = ("index", "create", "update")
ID_MODES = ("column", "content_hash", "none")


@dataclass(frozen=True)
class Connection:
    """How each task reaches the cluster. ``repr`` never shows the secrets."""

    urls: tuple[str, ...]
    api_key: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    aws_region: str | None = None
    aws_service: str = "es"
    proxy: str | None = None
    timeout: float = 30.0

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Client`` (built in the task: see the module docstring)."""
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.user is not None:
            kwargs["basic_auth"] = (self.user, self.password or "")
        if self.ca_certs is not None:
            kwargs["ca_certs"] = self.ca_certs
        if self.proxy is not None:
            kwargs["proxy"] = self.proxy
        if self.aws_region is not None:
            from sturdysearch.auth import AwsSigV4

            kwargs["auth"] = AwsSigV4(self.aws_region, self.aws_service)  # type: ignore[arg-type]
        return kwargs


@dataclass(frozen=True)
class WriteOptions:
    connection: Connection
    index: str
    dead_letter_dir: str
    id_column: str | None = None
    ids: str = "column"
    """``column`` (from ``id_column``), ``content_hash`` or ``none`` (at-least-once)."""
    op: str = "index"
    keep_id_column: bool = True
    pipeline: str | None = None
    indexer: dict[str, Any] = field(default_factory=dict)
    """``BulkIndexer`` options (``max_actions``, ``max_bytes``, ``workers``...)."""
    refresh: bool = False
    """Refresh the index once the job committed, so that what it wrote is searchable at
    once (elasticsearch-hadoop's ``es.batch.write.refresh``)."""
    stream: str | None = None
    """A streaming query's checkpoint location (or name): it names the query's folder under
    ``dead_letter_dir``, the same in every micro-batch and across restarts."""


@dataclass(frozen=True)
class ReadOptions:
    connection: Connection
    index: str
    query: dict[str, Any] | None = None
    fields: tuple[str, ...] | None = None
    slices: int | None = None
    """``None``: one slice per primary shard of the index."""
    size: int = 1000
    pagination: str = "auto"
    id_column: str | None = None
    """The output column that holds each document's ``_id`` (none if ``None``)."""
    keep_alive: str = "5m"


class _Options:
    """Case-insensitive string options, each taken once, the rest reported as unknown."""

    def __init__(self, options: Mapping[str, str], known: frozenset[str], what: str) -> None:
        self._values = {str(k).lower(): v for k, v in options.items()}
        self._what = what
        unknown = sorted(set(self._values) - known - SPARK_KEYS)
        if unknown:
            hints = []
            for key in unknown:
                instead = PEER_KEYWORDS.get(key)
                hints.append(f"{key!r} (sturdysearch: {instead})" if instead else repr(key))
            raise ConfigError(
                f"sturdysearch {what}: unknown option(s) {', '.join(hints)}; the options are "
                f"{', '.join(sorted(known))} (docs/spark.md)"
            )

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._values.get(key)
        if value is None or str(value).strip() == "":
            return default
        return str(value).strip()

    def required(self, key: str, example: str) -> str:
        value = self.text(key)
        if value is None:
            raise ConfigError(f"sturdysearch {self._what}: option {key!r} is required: {example}")
        return value

    def number(self, key: str, kind: type, *, minimum: float = 0.0) -> Any:
        value = self.text(key)
        if value is None:
            return None
        try:
            parsed = kind(value)
        except ValueError:
            raise ConfigError(
                f"sturdysearch {self._what}: option {key!r} must be a{'n integer' if kind is int else ' number'}, "
                f"not {value!r}"
            ) from None
        if parsed <= minimum:
            raise ConfigError(
                f"sturdysearch {self._what}: option {key!r} must be greater than {minimum:g}, "
                f"not {value!r}"
            )
        return parsed

    def flag(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(
            f"sturdysearch {self._what}: option {key!r} must be true or false, not {value!r}"
        )


def _connection(opts: _Options) -> Connection:
    url = opts.required("url", '.option("url", "https://es1:9200,https://es2:9200")')
    urls = tuple(u.strip() for u in url.split(",") if u.strip())
    user, password = opts.text("user"), opts.text("password")
    if password is not None and user is None:
        raise ConfigError("sturdysearch: option 'password' needs 'user' too")
    ca_certs = opts.text("ca_certs")
    if ca_certs is not None and not os.path.isfile(ca_certs):
        raise ConfigError(
            f"sturdysearch: ca_certs {ca_certs!r} is not a file (a PEM file every task can read)"
        )
    service = opts.text("aws_service", "es") or "es"
    if service not in ("es", "aoss"):
        raise ConfigError(
            "sturdysearch: aws_service must be 'es' (Amazon OpenSearch Service) or 'aoss' "
            f"(OpenSearch Serverless), not {service!r}"
        )
    return Connection(
        urls=urls,
        api_key=opts.text("api_key"),
        user=user,
        password=password,
        ca_certs=ca_certs,
        aws_region=opts.text("aws_region"),
        aws_service=service,
        proxy=opts.text("proxy"),
        timeout=opts.number("timeout", float) or 30.0,
    )


def parse_write(options: Mapping[str, str]) -> WriteOptions:
    """The write options; raises ``ConfigError`` saying what to write instead."""
    opts = _Options(options, WRITE_KEYS, "write")
    connection = _connection(opts)
    index = opts.text("index") or opts.text("path")
    if index is None:
        raise ConfigError(
            "sturdysearch write: option 'index' is required (or save(\"index-name\")): the "
            "index, alias or data stream to write to"
        )
    op = opts.text("op", "index") or "index"
    if op not in OPS:
        raise ConfigError(f"sturdysearch write: op must be one of {', '.join(OPS)}, not {op!r}")
    id_column = opts.text("id_column")
    at_least_once = opts.flag("at_least_once", False)
    ids = opts.text("ids")
    if ids is None:
        ids = "column" if id_column else ("none" if at_least_once else "")
    if ids not in ID_MODES:
        raise ConfigError(
            "sturdysearch write: refused without document ids: a retried or speculative Spark "
            "task sends its rows again, and without ids they are indexed twice. Give "
            "option('id_column', '<a column with a unique id>'), or option('ids', "
            "'content_hash') (the id is a hash of each row: identical rows become one "
            "document), or option('at_least_once', 'true') to accept duplicates"
            if ids == ""
            else f"sturdysearch write: ids must be one of {', '.join(ID_MODES)}, not {ids!r}"
        )
    if ids == "column" and id_column is None:
        raise ConfigError("sturdysearch write: ids='column' needs option('id_column', ...)")
    if ids != "column" and id_column is not None:
        raise ConfigError(
            f"sturdysearch write: id_column and ids={ids!r} contradict each other; keep one"
        )
    if ids == "none" and not at_least_once:
        raise ConfigError(
            "sturdysearch write: ids='none' indexes the rows of a retried task twice; say "
            "option('at_least_once', 'true') to accept that"
        )
    if op == "update" and ids != "column":
        raise ConfigError("sturdysearch write: op='update' needs option('id_column', ...)")
    dead_letter_dir = opts.required(
        "dead_letter_dir",
        '.option("dead_letter_dir", "/shared/dlq"): a directory the driver and every '
        "executor can write, where each task's dead letters and the job's summary go",
    )
    if "://" in dead_letter_dir and not dead_letter_dir.startswith("file://"):
        raise ConfigError(
            f"sturdysearch write: dead_letter_dir {dead_letter_dir!r} must be a local or "
            "mounted directory (the dead-letter files are fsynced local files), not an object "
            "store URL"
        )
    dead_letter_dir = dead_letter_dir.removeprefix("file://")
    indexer: dict[str, Any] = {}
    actions = opts.number("batch_actions", int)
    if actions is not None:
        indexer["max_actions"] = actions
    mib = opts.number("batch_mb", float)
    if mib is not None:
        indexer["max_bytes"] = int(mib * 1024 * 1024)
    for key, kind in (("workers", int), ("abort_after", float), ("delivery_timeout", float)):
        value = opts.number(key, kind)
        if value is not None:
            indexer[key] = value
    if indexer:
        from sturdysearch import BulkConfig

        try:
            BulkConfig(**indexer)
        except ConfigError as exc:
            raise ConfigError(f"sturdysearch write: {exc}") from None
    return WriteOptions(
        connection=connection,
        index=index,
        dead_letter_dir=dead_letter_dir,
        id_column=id_column,
        ids=ids,
        op=op,
        keep_id_column=opts.flag("keep_id_column", True),
        pipeline=opts.text("pipeline"),
        indexer=indexer,
        refresh=opts.flag("refresh", False),
        stream=opts.text("checkpointlocation") or opts.text("queryname"),
    )


def parse_read(options: Mapping[str, str]) -> ReadOptions:
    """The read options; raises ``ConfigError`` saying what to write instead."""
    opts = _Options(options, READ_KEYS, "read")
    connection = _connection(opts)
    index = opts.text("index") or opts.text("path")
    if index is None:
        raise ConfigError("sturdysearch read: option 'index' is required (or load(\"index-name\"))")
    query: dict[str, Any] | None = None
    raw = opts.text("query")
    if raw is not None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"sturdysearch read: query is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(
                'sturdysearch read: query must be a JSON object such as {"term": {"f": 1}}'
            )
        query = parsed.get("query", parsed) if set(parsed) == {"query"} else parsed
    fields = opts.text("fields")
    pagination = opts.text("pagination", "auto") or "auto"
    if pagination not in ("auto", "pit", "scroll"):
        raise ConfigError(
            f"sturdysearch read: pagination must be auto, pit or scroll, not {pagination!r}"
        )
    size = opts.number("size", int) or 1000
    if size > 10_000:
        raise ConfigError("sturdysearch read: size (hits per page) must be at most 10000")
    return ReadOptions(
        connection=connection,
        index=index,
        query=query,
        fields=tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None,
        slices=opts.number("slices", int),
        size=size,
        pagination=pagination,
        id_column=opts.text("id_column"),
        keep_alive=opts.text("keep_alive", "5m") or "5m",
    )
