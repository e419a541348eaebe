"""pytest plugin: real OpenSearch/Elasticsearch clusters as session fixtures.

Fixtures (all session-scoped):

* ``search_cluster`` - a single-node ``LocalCluster``, parametrized over the configured servers
  (test ids such as ``opensearch-2.19.6``); each is started on first use and stopped at the end
  of the session.
* ``secured_cluster`` - like ``search_cluster``, over the configured ``+security`` servers only.
* ``cluster_factory`` - ``(spec=None, nodes=3, settings=None, **options) -> LocalCluster``: a
  started cluster for multi-node and fault tests, stopped at the end of the session (or earlier
  by the test, e.g. ``with cluster_factory(nodes=3) as cluster:``). ``spec=None`` means the
  first configured security-off server.
* ``sturdy_servers`` - the configured ``ServerSpec`` tuple.

Servers come from ``--sturdy-servers`` or else ``$STURDY_TEST_SERVERS`` (comma-separated specs
such as ``opensearch:2.19.6,elasticsearch:9.5.4``). A spec with ``+security``
(``elasticsearch:9.5.4+security``) is a cluster with TLS and passwords; ``search_cluster`` is
parametrized with such specs only for tests marked ``sturdysearch_secured`` (tests that connect
with ``search_cluster.client_options()``), since a test written for a plain node cannot reach a
secured one. Likewise ``+sigv4`` (``opensearch:2.19.6+sigv4``): the plain node of that release
behind the SigV4 verifier, every request signed (``sturdysearch.testing.sigv4_route``), and
``+proxy``: the cluster reached through squid (``sturdysearch.testing.squid.ProxyRoute``). Tests using these fixtures are marked
``sturdysearch_integration`` (mark others by hand, e.g. a module's ``pytestmark``); when no
server is configured every test so marked is skipped with a reason saying so. Select or
deselect them with ``-m sturdysearch_integration`` / ``-m "not sturdysearch_integration"``.

Opt-in: installing sturdysearch does not load this plugin into anyone's pytest runs. Enable it
with ``-p sturdysearch.testing.pytest_plugin`` (e.g. in ``addopts``) or with
``pytest_plugins = ["sturdysearch.testing.pytest_plugin"]`` in a top-level ``conftest.py``. Its
marker is namespaced so that a project's own ``integration`` marker, and the tests that carry
it, are never touched. The module imports nothing heavy at module level: the cluster machinery
loads on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import pytest

from sturdysearch.testing.errors import InvalidSpecError
from sturdysearch.testing.specs import ServerSpec, parse_server_specs

if TYPE_CHECKING:
    from sturdysearch.testing.cluster import LocalCluster

SERVERS_ENV = "STURDY_TEST_SERVERS"
SERVERS_OPTION = "--sturdy-servers"
INTEGRATION_FIXTURES = ("search_cluster", "secured_cluster", "cluster_factory")
MARKER = "sturdysearch_integration"
"""The plugin's own marker: what it adds to tests using its clusters, and what it skips."""
SECURED_MARKER = "sturdysearch_secured"
"""Marks tests that also run against security-on servers and through the SigV4 verifier
(they connect with the cluster's ``client_options()``)."""
NO_SECURED_REASON = (
    "no security-on server configured: add one such as elasticsearch:9.5.4+security to "
    f"{SERVERS_ENV}"
)
NO_SERVERS_REASON = (
    f"no test servers configured: {SERVERS_ENV} is empty or unset (set it, e.g. "
    f"{SERVERS_ENV}=opensearch:2.19.6,elasticsearch:9.5.4, or pass {SERVERS_OPTION}=...)"
)

_SPECS_KEY = pytest.StashKey[tuple[ServerSpec, ...]]()


class ClusterFactory(Protocol):
    def __call__(
        self,
        spec: ServerSpec | str | None = None,
        nodes: int = 3,
        settings: Mapping[str, object] | None = None,
        **options: Any,
    ) -> LocalCluster: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sturdysearch", "sturdysearch test clusters")
    group.addoption(
        SERVERS_OPTION,
        dest="sturdy_servers",
        default=None,
        metavar="SPECS",
        help=(
            "comma-separated servers for integration tests, e.g. opensearch:2.19.6,"
            f"elasticsearch:9.5.4 (default: ${SERVERS_ENV}; empty skips integration tests)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: needs real OpenSearch/Elasticsearch nodes started by the sturdysearch harness",
    )
    config.addinivalue_line(
        "markers",
        f"{SECURED_MARKER}: also runs against the configured security-on servers (+security specs)",
    )
    option = config.getoption("sturdy_servers", default=None)
    raw = option if option is not None else os.environ.get(SERVERS_ENV, "")
    try:
        config.stash[_SPECS_KEY] = parse_server_specs(raw)
    except InvalidSpecError as exc:
        source = SERVERS_OPTION if option is not None else SERVERS_ENV
        raise pytest.UsageError(f"{source}: {exc}") from exc


def configured_servers(config: pytest.Config) -> tuple[ServerSpec, ...]:
    return config.stash.get(_SPECS_KEY, ())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "secured_cluster" in metafunc.fixturenames:
        secured = [s for s in configured_servers(metafunc.config) if s.security and not s.proxy]
        metafunc.parametrize(
            "secured_cluster",
            secured or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SECURED_REASON))],
            ids=[s.id for s in secured] or ["no-secured-servers"],
            indirect=True,
            scope="session",
        )
    if "search_cluster" not in metafunc.fixturenames:
        return
    specs = configured_servers(metafunc.config)
    if metafunc.definition.get_closest_marker(SECURED_MARKER) is None:
        specs = tuple(s for s in specs if s.is_plain)
    if specs:
        metafunc.parametrize(
            "search_cluster", specs, ids=[s.id for s in specs], indirect=True, scope="session"
        )
    else:
        reason = (
            NO_SERVERS_REASON
            if not configured_servers(metafunc.config)
            else (
                "only security-on servers are configured, and this test is not marked "
                f"{SECURED_MARKER}"
            )
        )
        metafunc.parametrize(
            "search_cluster",
            [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
            ids=["no-servers"],
            indirect=True,
            scope="session",
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the marks must be in place before `-m "not sturdysearch_integration"` deselects.
    have_servers = bool(configured_servers(config))
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if any(name in fixtures for name in INTEGRATION_FIXTURES):
            item.add_marker(MARKER)
        if not have_servers and item.get_closest_marker(MARKER) is not None:
            item.add_marker(pytest.mark.skip(reason=NO_SERVERS_REASON))


class ClusterPool:
    """Owns every cluster the fixtures start during a session.

    A cluster that failed to start is remembered, so the tests after the first one fail fast
    with the same message instead of each spending minutes on a doomed start.
    """

    def __init__(self) -> None:
        self._shared: dict[ServerSpec, LocalCluster] = {}
        self._routes: dict[ServerSpec, Any] = {}
        self._failures: dict[ServerSpec, str] = {}
        self._created: list[LocalCluster] = []

    def shared(self, spec: ServerSpec) -> LocalCluster:
        if spec.sigv4 or spec.proxy:
            # the cluster, reached through the SigV4 verifier or through squid
            route = self._routes.get(spec)
            if route is None:
                behind = self.shared(spec.cluster_spec)
                if spec.sigv4:
                    from sturdysearch.testing.sigv4_route import SigV4Route

                    route = self._routes[spec] = SigV4Route(behind, spec)
                else:
                    from sturdysearch.testing.squid import ProxyRoute

                    route = self._routes[spec] = ProxyRoute(behind, spec)
            return cast("LocalCluster", route)  # it answers for the cluster it wraps
        if spec in self._failures:
            pytest.fail(self._failures[spec], pytrace=False)
        cluster = self._shared.get(spec)
        if cluster is None:
            from sturdysearch.testing.cluster import LocalCluster
            from sturdysearch.testing.errors import ClusterError

            try:
                cluster = LocalCluster(spec, nodes=1).start()
            except ClusterError as exc:
                self._failures[spec] = f"{spec} could not be started: {exc}"
                raise
            self._shared[spec] = cluster
        return cluster

    def create(
        self,
        spec: ServerSpec,
        nodes: int,
        settings: Mapping[str, object] | None,
        options: Mapping[str, Any],
    ) -> LocalCluster:
        from sturdysearch.testing.cluster import LocalCluster

        cluster = LocalCluster(spec, nodes=nodes, settings=settings, **options)
        self._created.append(cluster)
        return cluster.start()

    def close_all(self) -> None:
        for route in self._routes.values():
            route.close()
        self._routes.clear()
        clusters = [*self._created, *self._shared.values()]
        self._created.clear()
        self._shared.clear()
        for cluster in clusters:
            cluster.close()


@pytest.fixture(scope="session")
def sturdy_servers(request: pytest.FixtureRequest) -> tuple[ServerSpec, ...]:
    return configured_servers(request.config)


@pytest.fixture(scope="session")
def sturdy_cluster_pool() -> Iterator[ClusterPool]:
    pool = ClusterPool()
    try:
        yield pool
    finally:
        pool.close_all()


@pytest.fixture(scope="session")
def search_cluster(
    request: pytest.FixtureRequest, sturdy_cluster_pool: ClusterPool
) -> LocalCluster:
    spec: ServerSpec | None = getattr(request, "param", None)
    if spec is None:
        pytest.skip(NO_SERVERS_REASON)
    return sturdy_cluster_pool.shared(spec)


@pytest.fixture(scope="session")
def secured_cluster(
    request: pytest.FixtureRequest, sturdy_cluster_pool: ClusterPool
) -> LocalCluster:
    """A single-node security-on cluster, parametrized over the configured ``+security``
    servers (the same cluster ``search_cluster`` gives tests marked ``sturdysearch_secured``)."""
    spec: ServerSpec | None = getattr(request, "param", None)
    if spec is None:
        pytest.skip(NO_SECURED_REASON)
    return sturdy_cluster_pool.shared(spec)


@pytest.fixture(scope="session")
def cluster_factory(
    sturdy_cluster_pool: ClusterPool, sturdy_servers: tuple[ServerSpec, ...]
) -> ClusterFactory:
    def factory(
        spec: ServerSpec | str | None = None,
        nodes: int = 3,
        settings: Mapping[str, object] | None = None,
        **options: Any,
    ) -> LocalCluster:
        if spec is None:
            plain = [s for s in sturdy_servers if s.is_plain]
            if not plain:
                pytest.skip(NO_SERVERS_REASON)
            spec = plain[0]
        resolved = spec if isinstance(spec, ServerSpec) else ServerSpec.parse(spec)
        return sturdy_cluster_pool.create(resolved, nodes, settings, options)

    return factory
