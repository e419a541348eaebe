"""What every check is handed: the client, its configuration, the options of the run and the
server answers fetched so far.

Several checks judge the same answer (``_nodes/http`` serves identity and discovery,
``_cluster/health`` the cluster and shard checks), so :meth:`Context.get` fetches each path
once per run, even when checks running in parallel ask for it at the same moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sturdysearch.doctor.findings import Finding, unknown

if TYPE_CHECKING:
    from sturdysearch import Client, ServerInfo
    from sturdysearch._core.config import ClientConfig
    from sturdysearch.doctor.probe import NodeProbe

#: Statuses returned to the checks instead of raised: each is an answer they judge.
ANSWERED = (400, 401, 403, 404, 405, 406, 409, 500, 501, 503)


@dataclass(frozen=True, slots=True)
class Options:
    """The run's flags that checks read."""

    timeout: float = 5.0
    """Seconds each check may take."""
    concurrency: int | None = None
    """Concurrent requests the application will run (``--concurrency``)."""
    index: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    churn_interval: float = 1.5
    """Seconds between the two samples of ``http.total_opened``."""
    heap_warn: float = 85.0
    """``capacity.heap`` warns at this ``heap_used_percent`` (``--heap-warn``)..."""
    heap_fail: float = 95.0
    """...and fails at this one (``--heap-fail``)."""
    gc_warn: float = 5.0
    """``capacity.gc`` warns at this percentage of uptime in old-generation GC."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's answer: the status and the parsed body (a dict, list, or text)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        """The server's reason, short: ``error.reason`` or the error string."""
        body = self.body
        if isinstance(body, Mapping):
            error = body.get("error")
            if isinstance(error, Mapping):
                reason = error.get("reason") or error.get("type")
                return str(reason)[:300]
            if error is not None:
                return str(error)[:300]
        if isinstance(body, (bytes, bytearray)):
            return body[:300].decode("utf-8", "replace")
        return str(body)[:300]


class Context:
    """Shared by the checks of one run; thread-safe."""

    def __init__(self, client: Client, options: Options) -> None:
        self.client = client
        """What the server checks call through: the judged client, or a twin of it limited to
        the nodes that answered the probes (see ``runner.working_client``)."""
        self.config: ClientConfig = client.config
        """The judged configuration: the user's, always."""
        self.options = options
        self.server: ServerInfo | None = None
        """What ``client.info()`` said, once the identity check has run."""
        self.probes: dict[str, NodeProbe] = {}
        """The reach probe of each configured node, by URL."""
        self._answers: dict[tuple[str, str], Answer] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def flavor(self) -> str | None:
        return self.server.flavor if self.server is not None else None

    @property
    def version(self) -> tuple[int, int, int] | None:
        return self.server.version_tuple if self.server is not None else None

    @property
    def reachable(self) -> bool:
        """Whether any node answered HTTP (or no probe ran)."""
        return not self.probes or any(p.answered for p in self.probes.values())

    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, method: str = "GET"
    ) -> Answer:
        """``method path`` once per run; statuses in :data:`ANSWERED` come back as answers,
        transport failures raise (the runner turns them into ``unknown``)."""
        query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        key = (method, f"{path}?{query}")
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._answers.get(key)
            if cached is not None:
                return cached
            response = self.client.request(
                method,
                path,
                params=params,
                timeout=self.options.timeout,
                ignore=ANSWERED,
                idempotent=True,
            )
            answer = Answer(response.meta.status, response.body)
            self._answers[key] = answer
            return answer

    def fresh(self, path: str, params: Mapping[str, str] | None = None) -> tuple[float, Answer]:
        """``GET path`` now, not from the cache, with the monotonic time it was answered."""
        response = self.client.request(
            "GET", path, params=params, timeout=self.options.timeout, ignore=ANSWERED
        )
        return time.monotonic(), Answer(response.meta.status, response.body)


def nodes_of(body: Any) -> Mapping[str, Mapping[str, Any]]:
    nodes = body.get("nodes") if isinstance(body, Mapping) else None
    if not isinstance(nodes, Mapping):
        return {}
    return {k: v for k, v in nodes.items() if isinstance(v, Mapping)}


def refused(id: str, answer: Answer, api: str) -> Finding:
    """An answer that is not a result: a missing privilege, a missing API, an error."""
    if answer.status == 403:
        return unknown(
            id,
            f"not allowed to read {api} (403)",
            f"The user lacks the privilege to call {api}: {answer.error_text()}",
            "Run doctor as a user with the 'monitor' cluster privilege (Elasticsearch) or "
            "cluster_monitor permissions (OpenSearch).",
        )
    if answer.status == 401:
        return unknown(id, f"not checked: {api} refused the credentials (401)")
    return unknown(id, f"{api} answered HTTP {answer.status}: {answer.error_text()}")
