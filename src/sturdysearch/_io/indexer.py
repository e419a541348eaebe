"""The constructor both bulk indexers share: their options, typed once, and what they open.

``BulkIndexer`` (threads) and ``AsyncBulkIndexer`` (tasks) take the same arguments with the
same meaning; this base holds that signature, so ``help()``, editors and ``mypy`` see every
option, and builds the :class:`~sturdysearch._core.bulk.session.BulkSession` and the
dead-letter file (opened here, so that an unwritable path fails before any document is taken).
Each driver then adds its own waiting machinery in ``_start_driver``.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.bulk.config import (
    BULK_BUDGET,
    MIB,
    SERVER_MAX_CONTENT_LENGTH,
    BulkConfig,
    BulkStats,
    ItemResult,
    given_options,
)
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.bulk.driving import make_config
from sturdysearch._core.bulk.session import BulkSession
from sturdysearch._core.events import Tracer
from sturdysearch._io.deadletter import DeadLetterFile, default_path


class _Traced(Protocol):
    @property
    def tracer(self) -> Tracer: ...


ClientT = TypeVar("ClientT", bound=_Traced)


class IndexerBase(Generic[ClientT]):
    """What a bulk indexer is given and opens; see :class:`~sturdysearch.BulkIndexer`."""

    def __init__(
        self,
        client: ClientT,
        index: str | None = None,
        *,
        dead_letter: str | os.PathLike[str] | None = None,
        refresh: bool | str | None = None,
        pipeline: str | None = None,
        params: Mapping[str, Any] | None = None,
        on_success: Callable[[ItemResult], None] | None = None,
        on_failure: Callable[[DeadLetter], None] | None = None,
        on_progress: Callable[[BulkStats], None] | None = None,
        config: BulkConfig | None = None,
        max_actions: int = 10_000,
        max_bytes: int = 5 * MIB,
        flush_interval: float = 1.0,
        workers: int = 2,
        max_pending_bytes: int | None = None,
        delivery_timeout: float = 120.0,
        request_timeout: float = 60.0,
        max_attempts: int = 50,
        backoff_base: float = 0.1,
        backoff_cap: float = 10.0,
        budget: BudgetConfig = BULK_BUDGET,
        max_document_bytes: int = SERVER_MAX_CONTENT_LENGTH - MIB,
        abort_after: float = 60.0,
    ) -> None:
        owner = type(self).__name__
        self.config = make_config(owner, config, given_options(locals()))
        self.default_index = index
        self._client = client
        self._tracer = client.tracer
        self._dead_letters = DeadLetterFile(dead_letter or default_path(index))
        self._session = BulkSession(
            owner,
            client.tracer,
            self.config,
            index=index,
            refresh=refresh,
            pipeline=pipeline,
            params=params,
            on_success=on_success,
            on_failure=on_failure,
            on_progress=on_progress,
            dead_letter_path=self._dead_letters.path,
            now=time.monotonic(),
        )
        self._engine = self._session.engine
        # ``_closed``: no more input is taken (``close()`` or ``abort()``). ``_finished``: the
        # one shutdown has closed the dead-letter file and reported. Until then every
        # ``close()`` waits for the workers and tries to finish, so neither an ``abort()`` before
        # it nor an interrupt (KeyboardInterrupt, cancellation) that lands anywhere inside an
        # earlier ``close()`` leaves the workers running or the file unflushed.
        self._closed = False
        self._finished = False
        self._start_driver()

    def _start_driver(self) -> None:
        """Set up the driver's threads or tasks, locks or conditions."""
        raise NotImplementedError

    @property
    def dead_letter_path(self) -> str:
        return self._dead_letters.path


def show_client_type(cls: type, client_type: str) -> None:
    """Make ``help(cls)`` and editors show ``client: <client_type>`` rather than the base's
    type variable (``mypy`` already resolves it from ``IndexerBase[...]``)."""
    init = cls.__init__  # type: ignore[misc]
    signature = inspect.signature(init)
    parameters = [
        p.replace(annotation=client_type) if p.name == "client" else p
        for p in signature.parameters.values()
    ]
    init.__signature__ = signature.replace(parameters=parameters)
