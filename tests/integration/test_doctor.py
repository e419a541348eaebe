"""``sturdysearch doctor`` end to end: the command run as a subprocess against real nodes,
each finding shown to pass and to trigger.

One shared single node per configured server serves most cases (settings changed by a test
are reset by it); one extra single-node cluster, with a one-thread write pool and a
published address that answers nothing, serves the rejection and discovery cases. Doctor
runs with short ``--timeout``s so the file stays within a few minutes per server.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sturdysearch import Client
from sturdysearch.testing import sigv4_route
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.flavors import Flavor
from sturdysearch.testing.proxy import FaultProxy
from sturdysearch.testing.specs import ServerSpec
from sturdysearch.testing.tls import CertificateSet, TLSProxy

TIMEOUT = "3"
UNREACHABLE_HOST = "10.255.255.1"
"""A private address nothing answers on here: what a node behind NAT publishes."""


class Run:
    def __init__(self, completed: subprocess.CompletedProcess[str], as_json: bool) -> None:
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.findings: list[dict[str, Any]] = (
            json.loads(completed.stdout)["findings"] if as_json and completed.stdout else []
        )

    def status(self, finding_id: str, node: str | None = None) -> str:
        """The worst status of ``finding_id`` (for ``node`` when given)."""
        order = ["ok", "unknown", "warn", "fail"]
        found = [
            f["status"]
            for f in self.findings
            if f["id"] == finding_id and (node is None or f["node"] == node)
        ]
        assert found, f"no {finding_id} finding in:\n{self.stdout}\n{self.stderr}"
        return max(found, key=order.index)

    def finding(self, finding_id: str) -> dict[str, Any]:
        return next(f for f in self.findings if f["id"] == finding_id)


def doctor(
    *args: str, as_json: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Run:
    command = [sys.executable, "-m", "sturdysearch.cli", "doctor", "--timeout", TIMEOUT, *args]
    if as_json:
        command.append("--json")
    environ = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    environ.pop("STURDYSEARCH_URL", None)
    environ.update(env or {})
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environ, cwd=cwd, check=False
    )
    return Run(completed, as_json)


ROUTE_SKIP = (
    "through the SigV4 and proxy routes only the healthy-node run and the secrets check are "
    "repeated: this test changes and judges the node behind the route, which the direct run "
    "of the same test covers"
)


def is_route(cluster: Any) -> bool:
    return bool(getattr(cluster.spec, "sigv4", False) or getattr(cluster.spec, "proxy", False))


def connection_args(cluster: Any, *, user: str | None = None, routes: bool = False) -> list[str]:
    """doctor's options for ``cluster``: the URLs, the CA and credentials of a secured one,
    ``--aws-region``/``--aws-service`` through the SigV4 verifier (the keys come from
    :func:`connection_env`), ``--proxy`` through squid."""
    if is_route(cluster) and not routes:
        pytest.skip(ROUTE_SKIP)
    args = [arg for url in cluster.urls for arg in ("--url", url)]
    if getattr(cluster.spec, "sigv4", False):
        args += ["--aws-region", sigv4_route.REGION, "--aws-service", sigv4_route.SERVICE]
    if getattr(cluster.spec, "proxy", False):
        args += ["--proxy", cluster.squid.url]
    if cluster.security is not None:
        security = cluster.security
        args += [
            "--ca-certs",
            security.ca_certs,
            "--user",
            user or f"{security.user}:{security.password}",
        ]
    return args


def connection_env(cluster: Any) -> dict[str, str]:
    """The environment doctor's botocore reads the SigV4 verifier's test keys from (and no
    profile file or instance metadata)."""
    if not getattr(cluster.spec, "sigv4", False):
        return {}
    return {
        "AWS_ACCESS_KEY_ID": sigv4_route.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": sigv4_route.SECRET_KEY,
        "AWS_SESSION_TOKEN": sigv4_route.SESSION_TOKEN,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def admin(search_cluster: Any) -> Iterator[Client]:
    with Client(search_cluster.urls, **search_cluster.client_options()) as client:
        yield client


@pytest.mark.sturdysearch_secured
def test_a_healthy_node(search_cluster: Any) -> None:
    sigv4 = getattr(search_cluster.spec, "sigv4", False)
    squid = getattr(search_cluster, "squid", None)
    verified_before = search_cluster.verified if sigv4 else 0
    proxied_before = len(squid.entries()) if squid is not None else 0
    run = doctor(*connection_args(search_cluster, routes=True), env=connection_env(search_cluster))
    node = search_cluster.urls[0]
    for finding_id in ("reach.dns", "reach.tcp", "reach.http", "reach.latency"):
        assert run.status(finding_id, node) == "ok", run.finding(finding_id)
    healthy = (
        "identity.server",
        "identity.versions",
        "identity.dialect",
        "auth.scheme",
        "discovery.publish",
        "config.timeouts",
        "config.retries",
        "config.pool",
        "config.proxy",
        "cluster.health",
        "cluster.unassigned",
        "cluster.master",
        "capacity.read_only",
        "capacity.shards",
        "capacity.heap",
        "capacity.gc",
        "capacity.breakers",
        "capacity.rejections",
        "capacity.connections",
        "tls.redirect",
    )
    not_ok = [run.finding(finding_id) for finding_id in healthy if run.status(finding_id) != "ok"]
    assert not not_ok, (not_ok, shards(search_cluster))
    if sigv4:
        # Every call signed and verified; the probes' unsigned GET / refused (403).
        assert "sigv4" in run.finding("auth.scheme")["summary"]
        assert run.status("auth.credentials") == "ok"
        assert run.status("auth.security") == "ok"
        assert run.finding("reach.http")["summary"].endswith("(HTTP 403)")
        assert search_cluster.verified > verified_before
        assert run.code == 1  # the harness turns the disk thresholds off (capacity.disk)
    elif search_cluster.security is None:
        assert run.status("auth.security") == "warn"
        assert run.status("tls.plaintext") == "ok"  # loopback
        assert run.code == 1
    else:
        assert run.status("auth.credentials") == "ok"
        assert run.status("auth.security") == "ok"
        assert "admin" in run.finding("auth.whoami")["summary"]
        for finding_id in ("tls.verify", "tls.chain", "tls.hostname", "tls.expiry", "tls.version"):
            assert run.status(finding_id) == "ok"
    if squid is not None:
        # The probes and the checks went through squid, and the times say so.
        assert f"via proxy {squid.url}" in run.finding("reach.tcp")["summary"]
        assert squid.url in run.finding("config.proxy")["summary"]
        squid.wait_for(lambda entries: len(entries) > proxied_before + 10)
    # The deprecation API is missing from integration builds and from OpenSearch.
    assert run.status("upgrade.deprecations") == "unknown"


def shards(cluster: Any) -> Any:
    """The cluster's shards, for a failure message (what another test left behind)."""
    with Client(cluster.urls, **cluster.client_options()) as client:
        return client.request("GET", "/_cat/shards", params={"format": "json"}).body


@pytest.mark.sturdysearch_secured
def test_the_table_fits_80_columns_and_no_secret_is_printed(search_cluster: Any) -> None:
    args = connection_args(search_cluster, routes=True)
    env = connection_env(search_cluster)
    table = doctor(*args, as_json=False, env=env)
    assert table.code in (0, 1), table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "reach.tcp" in table.stdout and f"exit {table.code}" in lines[-1]
    secrets = [search_cluster.security.password] if search_cluster.security is not None else []
    if env:
        secrets += [sigv4_route.SECRET_KEY, sigv4_route.SESSION_TOKEN]
    if secrets:
        as_json = doctor(*args, env=env)
        for output in (table.stdout, table.stderr, as_json.stdout, as_json.stderr):
            for secret in secrets:
                assert secret not in output


def test_a_blackholed_node_alone_cannot_be_checked(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.blackhole())
    run = doctor("--url", proxy.url, "--timeout", "1")
    assert run.status("reach.http", proxy.url) == "fail"
    assert run.code == 3


def test_a_blackholed_node_fails_beside_a_healthy_one(node_url: str, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.blackhole())
    run = doctor("--url", node_url, "--url", proxy.url)
    assert run.status("reach.tcp", proxy.url) == "ok"  # it accepts connections...
    assert run.status("reach.http", proxy.url) == "fail"  # ...and never answers
    assert run.status("reach.http", node_url) == "ok"
    assert run.status("identity.server") == "ok"
    assert run.code == 2


def test_a_refused_node(node_url: str, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.refuse())
    run = doctor("--url", node_url, "--url", proxy.url)
    assert run.status("reach.tcp", proxy.url) == "fail"
    assert "refused" in next(
        f["summary"] for f in run.findings if f["id"] == "reach.tcp" and f["node"] == proxy.url
    )


def test_a_root_endpoint_that_is_not_served(proxy: FaultProxy) -> None:
    """As on Amazon OpenSearch Serverless: GET / answers 404; identity is unknown, not a crash."""
    proxy.set_fault(Fault.status(404).matching(method="GET", path_prefix="/_nodes/_local"))
    proxy.add_fault(Fault.status(404).matching(method="GET", path_regex=r"^/(\?.*)?$"))
    run = doctor("--url", proxy.url)
    assert run.status("identity.server") == "unknown"
    assert "Serverless" in run.finding("identity.server")["meaning"]
    assert run.status("cluster.master") == "ok"  # the other checks still ran


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates() -> CertificateSet:
    return CertificateSet.create()


@pytest.fixture(scope="module")
def ca_file(certificates: CertificateSet, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(certificates.ca.write_cert(tmp_path_factory.mktemp("ca") / "ca.pem"))


def test_tls_in_order(node_url: str, certificates: CertificateSet, ca_file: str) -> None:
    with TLSProxy(node_url, cert=certificates.server) as p:
        run = doctor("--url", p.url, "--ca-certs", ca_file)
    for finding_id in (
        "tls.verify",
        "tls.chain",
        "tls.hostname",
        "tls.expiry",
        "tls.version",
        "reach.tls",
    ):
        assert run.status(finding_id) == "ok", run.finding(finding_id)
    assert "expires" not in run.finding("tls.expiry")["summary"]


def test_an_expired_certificate(node_url: str, certificates: CertificateSet, ca_file: str) -> None:
    with TLSProxy(node_url, cert=certificates.expired) as p:
        run = doctor("--url", p.url, "--ca-certs", ca_file)
    assert run.status("tls.expiry") == "fail"
    assert "expired" in run.finding("tls.expiry")["summary"]
    assert run.code == 2


def test_a_wrong_host_certificate(
    node_url: str, certificates: CertificateSet, ca_file: str
) -> None:
    with TLSProxy(node_url, cert=certificates.wrong_host) as p:
        run = doctor("--url", p.url, "--ca-certs", ca_file)
    assert run.status("tls.hostname") == "fail"
    assert run.status("tls.chain") == "ok"
    assert run.code == 2


def test_an_unknown_ca(node_url: str, certificates: CertificateSet, ca_file: str) -> None:
    with TLSProxy(node_url, cert=certificates.unknown_ca) as p:
        run = doctor("--url", p.url, "--ca-certs", ca_file)
    assert run.status("tls.chain") == "fail"


def test_a_pin(node_url: str, certificates: CertificateSet) -> None:
    with TLSProxy(node_url, cert=certificates.server) as p:
        good = doctor("--url", p.url, "--fingerprint", certificates.server.fingerprint.hex)
        bad = doctor("--url", p.url, "--fingerprint", certificates.expired.fingerprint.hex)
    assert good.status("tls.pin") == "ok" and good.status("tls.verify") == "ok"
    assert bad.status("tls.pin") == "fail"


# -- cluster state ---------------------------------------------------------------------------

DISK = "cluster.routing.allocation.disk."


def put_disk_settings(
    client: Client, low: str | None, high: str | None, flood: str | None, enabled: bool | None
) -> None:
    client.request(
        "PUT",
        "/_cluster/settings",
        body={
            "persistent": {
                f"{DISK}threshold_enabled": enabled,
                f"{DISK}watermark.low": low,
                f"{DISK}watermark.high": high,
                f"{DISK}watermark.flood_stage": flood,
            }
        },
    )


@pytest.mark.sturdysearch_secured
def test_disk_watermarks(search_cluster: Any, admin: Client) -> None:
    args = connection_args(search_cluster)
    try:
        put_disk_settings(admin, "3b", "2b", "1b", True)
        below = doctor(*args)
        put_disk_settings(admin, "900tb", "2b", "1b", True)
        past_low = doctor(*args)
    finally:
        put_disk_settings(admin, None, None, None, None)
    off = doctor(*args)
    assert below.status("capacity.disk") == "ok"
    assert past_low.status("capacity.disk") == "warn"
    assert "past the low watermark" in past_low.finding("capacity.disk")["summary"]
    assert off.status("capacity.disk") == "warn"  # the harness turns the thresholds off
    assert "threshold_enabled=false" in off.finding("capacity.disk")["summary"]


@pytest.mark.sturdysearch_secured
def test_an_unassigned_replica_is_explained(search_cluster: Any, admin: Client) -> None:
    args = connection_args(search_cluster)
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    admin.request(
        "PUT", f"/{name}", body={"settings": {"number_of_shards": 1, "number_of_replicas": 1}}
    )
    try:
        run = doctor(*args)
    finally:
        admin.request("DELETE", f"/{name}")
    # _cluster/health says yellow; Elasticsearch's health report (8.7+) counts a replica that
    # a single node can never hold as no problem, so there cluster.health stays ok.
    health = run.finding("cluster.health")
    assert health["status"] == "warn" or "health report: green" in health["summary"]
    assert run.status("cluster.unassigned") == "warn"
    unassigned = run.finding("cluster.unassigned")
    assert "replica" in unassigned["summary"] and "same_shard" in unassigned["meaning"]


@pytest.mark.sturdysearch_secured
def test_read_only_indices(search_cluster: Any, admin: Client) -> None:
    args = connection_args(search_cluster)
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    admin.request("PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}})
    try:
        admin.request(
            "PUT", f"/{name}/_settings", body={"index.blocks.read_only_allow_delete": True}
        )
        run = doctor(*args)
    finally:
        admin.request("DELETE", f"/{name}")
    assert run.status("capacity.read_only") == "fail"
    assert name in run.finding("capacity.read_only")["summary"]


@pytest.mark.sturdysearch_secured
def test_bulk_readiness_of_an_index(search_cluster: Any, admin: Client) -> None:
    args = connection_args(search_cluster)  # first: a skip must not leave indices behind
    ready, loose = (f"doctor-{uuid.uuid4().hex[:8]}" for _ in range(2))
    pipeline = f"doctor-{uuid.uuid4().hex[:8]}"
    admin.request("PUT", f"/_ingest/pipeline/{pipeline}", body={"processors": []})
    admin.request(
        "PUT",
        f"/{ready}",
        body={
            "settings": {
                "number_of_replicas": 0,
                "refresh_interval": "-1",
                "default_pipeline": pipeline,
            },
            "mappings": {"properties": {"a": {"type": "keyword"}}},
        },
    )
    admin.request(
        "PUT",
        f"/{loose}",
        body={
            "settings": {
                "number_of_replicas": 1,
                "mapping.total_fields.limit": 2,
                "default_pipeline": "doctor-no-such-pipeline",
            },
            "mappings": {"properties": {"a": {"type": "keyword"}, "b": {"type": "long"}}},
        },
    )
    try:
        good = doctor(*args, "--index", ready)
        bad = doctor(*args, "--index", loose)
        missing = doctor(*args, "--index", "doctor-does-not-exist")
    finally:
        admin.request("DELETE", f"/{ready},{loose}")
        admin.request("DELETE", f"/_ingest/pipeline/{pipeline}")
    for finding_id in (
        "index.exists",
        "index.refresh",
        "index.replicas",
        "index.fields",
        "index.pipeline",
    ):
        assert good.status(finding_id) == "ok", good.finding(finding_id)
    assert bad.status("index.refresh") == "warn"
    assert bad.status("index.replicas") == "warn"
    assert bad.status("index.fields") == "fail"
    assert bad.status("index.pipeline") == "fail"
    assert missing.status("index.exists") == "fail"


def test_connection_churn_is_seen_on_the_server(node_url: str) -> None:
    """A client that opens a connection per request, while doctor samples http.total_opened."""
    split = urlsplit(node_url)
    stop = threading.Event()
    opened = 0

    def churn() -> None:
        nonlocal opened
        while not stop.is_set() and opened < 20_000:
            conn = http.client.HTTPConnection(split.hostname or "", split.port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            opened += 1

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        run = doctor("--url", node_url)
    finally:
        stop.set()
        thread.join(10)
    assert opened >= 200
    assert run.status("capacity.connections") == "warn"
    assert run.finding("capacity.connections")["details"]["per_second"] > 10


# -- the client's configuration ----------------------------------------------------------


FACTORY = """
from sturdysearch import Client, RetryPolicy


def client():
    return Client({urls!r}, connections_per_node=2, retry=RetryPolicy(max_attempts=1), timeout=200)
"""


def test_a_factory_configuration_is_judged(node_url: str, tmp_path: Path) -> None:
    (tmp_path / "doctor_app.py").write_text(FACTORY.format(urls=[node_url]))
    run = doctor(
        "--factory",
        "doctor_app:client",
        "--concurrency",
        "10",
        env={"HTTPS_PROXY": "http://user:proxy-secret@proxy.invalid:3128"},  # noqa: SSP113 (proxy credentials doctor must not show)
        cwd=tmp_path,
    )
    assert run.status("config.pool") == "warn"
    assert run.status("config.retries") == "warn"
    assert run.status("config.timeouts") == "warn"
    assert run.status("config.proxy") == "warn"
    assert "proxy-secret" not in run.stdout
    fits = doctor("--url", node_url, "--concurrency", "10")
    assert fits.status("config.pool") == "ok"


def test_unusable_options_exit_3(tmp_path: Path) -> None:
    assert doctor("--factory", "no_such_module:client", cwd=tmp_path).code == 3
    assert doctor(as_json=False).code == 3  # no URL at all


# -- a cluster of its own: one write thread, a published address nobody answers -----------


@pytest.fixture(scope="module")
def cramped(cluster_factory: Any) -> Iterator[Any]:
    cluster = cluster_factory(
        nodes=1,
        settings={
            "thread_pool.write.size": 1,
            "thread_pool.write.queue_size": 1,
            "http.publish_host": UNREACHABLE_HOST,
        },
    )
    try:
        yield cluster
    finally:
        cluster.close()


def burst(url: str, index: str) -> int:
    """Concurrent bulk requests until the write pool rejects some; returns the rejections."""
    rows = "".join(
        '{"index": {}}\n' + json.dumps({"n": i, "text": "x" * 200}) + "\n" for i in range(300)
    )

    def one(_: int) -> int:
        with Client([url], retry=None) as client:
            response = client.request(
                "POST",
                f"/{index}/_bulk",
                raw_body=rows.encode(),
                content_type="application/x-ndjson",
                ignore=(429,),
            )
            if response.meta.status == 429:
                return 1
            return sum(1 for item in response.body["items"] if item["index"]["status"] == 429)

    with ThreadPoolExecutor(16) as pool:
        for _ in range(10):
            rejected = sum(pool.map(one, range(32)))
            if rejected:
                return rejected
    return 0


BREAKER = "indices.breaker.request.limit"


def test_a_tripped_circuit_breaker(cramped: Any) -> None:
    """The request breaker lowered to 1 byte: an aggregation trips it (429); restored, the
    trip stays counted in the node's stats."""
    url = cramped.urls[0]
    name = "doctor-breaker"
    with Client([url], retry=None) as admin:
        admin.request(
            "PUT",
            f"/{name}",
            body={
                "settings": {"number_of_replicas": 0},
                "mappings": {"properties": {"tag": {"type": "keyword"}}},
            },
        )
        for i in range(20):
            admin.request("PUT", f"/{name}/_doc/{i}", body={"tag": f"t{i % 5}"})
        admin.request("POST", f"/{name}/_refresh")
        before = doctor("--url", url)
        try:
            admin.request("PUT", "/_cluster/settings", body={"persistent": {BREAKER: "1b"}})
            tripped = admin.request(
                "POST",
                f"/{name}/_search",
                body={"size": 0, "aggs": {"tags": {"terms": {"field": "tag"}}}},
                ignore=(429, 500, 503),
            )
        finally:
            admin.request("PUT", "/_cluster/settings", body={"persistent": {BREAKER: None}})
            admin.request("DELETE", f"/{name}")
    assert "circuit_breaking_exception" in json.dumps(tripped.body), tripped.body
    after = doctor("--url", url)
    assert before.status("capacity.breakers") == "ok"
    assert after.status("capacity.breakers") == "warn"
    assert "request" in after.finding("capacity.breakers")["summary"]


SNIFFING_FACTORY = """
from sturdysearch import Client


def client():
    return Client({urls!r}, sniff_on_node_failure=True)
"""


def test_a_sniffing_client_and_an_unreachable_published_address(
    cramped: Any, tmp_path: Path
) -> None:
    """The node publishes an address nobody answers on: a warning for a client that does
    not sniff (the test below), a failure for one that does."""
    (tmp_path / "doctor_sniff.py").write_text(SNIFFING_FACTORY.format(urls=cramped.urls))
    run = doctor("--factory", "doctor_sniff:client", cwd=tmp_path)
    assert run.status("discovery.publish") == "fail"
    assert "which sniffs" in run.finding("discovery.publish")["meaning"]


def test_write_rejections_and_unreachable_published_addresses(cramped: Any) -> None:
    url = cramped.urls[0]
    before = doctor("--url", url)
    assert before.status("capacity.rejections") == "ok"
    assert before.status("discovery.publish") == "warn"
    assert UNREACHABLE_HOST in before.finding("discovery.publish")["summary"]
    assert burst(url, "doctor-burst") > 0
    after = doctor("--url", url)
    assert after.status("capacity.rejections") == "warn"
    assert "write" in after.finding("capacity.rejections")["summary"]


# -- security on ------------------------------------------------------------------------------


def test_a_wrong_password(secured_cluster: Any) -> None:
    run = doctor(
        *connection_args(secured_cluster, user=f"{secured_cluster.security.user}:wrong-password")
    )
    assert run.status("auth.credentials") == "fail"
    assert "401" in run.finding("auth.credentials")["summary"]
    assert run.code == 2
    assert "wrong-password" not in run.stdout + run.stderr


def test_the_limited_user(secured_cluster: Any) -> None:
    security = secured_cluster.security
    run = doctor(
        *connection_args(
            secured_cluster, user=f"{security.limited_user}:{security.limited_password}"
        )
    )
    assert run.status("auth.credentials") == "ok"
    if secured_cluster.spec.flavor is Flavor.ELASTICSEARCH:
        assert run.status("identity.server") == "ok"  # its role has cluster:monitor
    else:
        # The security plugin's user without any role may not even read GET /: doctor says
        # so instead of guessing the server.
        identity = run.finding("identity.server")
        assert identity["status"] == "unknown" and "403" in identity["summary"]
    assert security.limited_password not in run.stdout + run.stderr


def test_no_credentials_on_a_secured_node(secured_cluster: Any) -> None:
    run = doctor(
        *secured_cluster_urls(secured_cluster), "--ca-certs", secured_cluster.security.ca_certs
    )
    assert run.status("auth.credentials") == "fail"


def test_api_key_expiry(secured_cluster: Any) -> None:
    if secured_cluster.spec.flavor is not Flavor.ELASTICSEARCH:
        pytest.skip("API keys are an Elasticsearch feature; OpenSearch has none to check")
    with Client(secured_cluster.urls, **secured_cluster.client_options()) as client:
        short = client.request(
            "POST", "/_security/api_key", body={"name": "doctor-short", "expiration": "3d"}
        ).body
        lasting = client.request("POST", "/_security/api_key", body={"name": "doctor-long"}).body
    base = [*secured_cluster_urls(secured_cluster), "--ca-certs", secured_cluster.security.ca_certs]
    expiring = doctor(*base, "--api-key", short["encoded"])
    forever = doctor(*base, "--api-key", lasting["encoded"])
    assert expiring.status("auth.api_key") == "warn"
    assert forever.status("auth.api_key") == "ok"
    assert short["encoded"] not in expiring.stdout and short["api_key"] not in expiring.stdout


def secured_cluster_urls(cluster: Any) -> Sequence[str]:
    return [arg for url in cluster.urls for arg in ("--url", url)]


# -- the remaining findings, each made to trigger --------------------------------------------

ROOT = r"^/(\?.*)?$"
"""``GET /`` as the proxy sees its target (the probes' and ``info()``'s request)."""


def test_an_unresolvable_host() -> None:
    run = doctor("--url", "http://doctor-no-such-host.invalid:9200", "--timeout", "1")
    assert run.status("reach.dns") == "fail"
    assert "cannot resolve doctor-no-such-host.invalid" in run.finding("reach.dns")["summary"]
    assert run.code == 3


def test_https_to_a_plain_http_port(node_url: str) -> None:
    url = node_url.replace("http://", "https://", 1)
    run = doctor("--url", url)
    assert run.status("reach.tcp", url) == "ok"
    assert run.status("reach.tls", url) == "fail"
    assert "WRONG_VERSION_NUMBER" in run.finding("reach.tls")["summary"]
    assert run.code == 3


SLOW_FACTORY = """
from sturdysearch import Client


def client():
    return Client({urls!r}, read_timeout=2)
"""


def test_a_slow_path(proxy: FaultProxy, tmp_path: Path) -> None:
    """Every GET / held back 1.2 s (the probes' series, and info()): p95 above 1 s, and,
    for a client whose read_timeout is 2 s, a first byte slower than half of it."""
    proxy.set_fault(Fault.latency(1.2).matching(method="GET", path_regex=ROOT))
    (tmp_path / "doctor_slow.py").write_text(SLOW_FACTORY.format(urls=[proxy.url]))
    run = doctor("--factory", "doctor_slow:client", cwd=tmp_path)
    assert run.status("reach.latency", proxy.url) == "warn"
    assert run.finding("reach.latency")["details"]["p95"] >= 1.2
    assert run.status("reach.http", proxy.url) == "warn"
    assert "over half of read_timeout=2 s" in run.finding("reach.http")["summary"]


def test_credentials_in_clear_to_another_host() -> None:
    """Judged from the configuration, before any probe: the host need not even resolve."""
    target = "http://search.doctor-test.invalid:9200"
    with_credentials = doctor("--url", target, "--user", "app:in-clear-pw", "--timeout", "1")
    anonymous = doctor("--url", target, "--timeout", "1")
    assert with_credentials.status("tls.plaintext") == "fail"
    assert "in clear" in with_credentials.finding("tls.plaintext")["summary"]
    assert "in-clear-pw" not in with_credentials.stdout + with_credentials.stderr
    assert anonymous.status("tls.plaintext") == "warn"
    assert with_credentials.code == anonymous.code == 3  # nothing could be reached


INSECURE_FACTORY = """
from sturdysearch import Client


def client():
    return Client({urls!r}, dangerously_skip_tls_verify=True)
"""


def test_verification_turned_off(
    node_url: str, certificates: CertificateSet, tmp_path: Path
) -> None:
    with TLSProxy(node_url, cert=certificates.unknown_ca) as p:
        (tmp_path / "doctor_insecure.py").write_text(INSECURE_FACTORY.format(urls=[p.url]))
        run = doctor("--factory", "doctor_insecure:client", cwd=tmp_path)
    assert run.status("tls.verify") == "warn"
    assert "VERIFICATION IS OFF" in run.finding("tls.verify")["summary"]
    assert run.status("tls.chain") == "ok"  # not checked: nothing is
    assert run.status("identity.server") == "ok"  # and the calls went through


def redirect(status: int, location: str) -> Fault:
    return Fault.status(status, headers={"Location": location}, body=b"").matching(
        method="GET", path_regex=ROOT
    )


def test_redirects(node_url: str, certificates: CertificateSet, ca_file: str) -> None:
    with FaultProxy(node_url) as p:
        p.set_fault(redirect(301, "http://search.example.com:9200/"))
        moved = doctor("--url", p.url)
    with TLSProxy(node_url, cert=certificates.server) as p:
        p.set_fault(redirect(302, "http://search.example.com:9200/"))
        downgraded = doctor("--url", p.url, "--ca-certs", ca_file)
    assert moved.status("tls.redirect") == "warn"
    assert "search.example.com" in moved.finding("tls.redirect")["summary"]
    assert downgraded.status("tls.redirect") == "fail"  # https to http: credentials in clear
    assert "in clear" in downgraded.finding("tls.redirect")["meaning"]


def test_a_node_that_offers_only_tls_1_1(
    node_url: str, certificates: CertificateSet, ca_file: str
) -> None:
    with warnings.catch_warnings():  # TLSv1_1 is deprecated: the node under test is old
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.TLSVersion.TLSv1_1
    with TLSProxy(node_url, cert=certificates.server, maximum_version=old) as p:
        run = doctor("--url", p.url, "--ca-certs", ca_file)
    assert run.status("reach.tls") == "fail"  # the client's handshake is refused...
    assert run.status("tls.version") == "fail"  # ...and doctor says why
    assert "only TLSv1.1" in run.finding("tls.version")["summary"]


def test_heap_thresholds_against_the_real_heap(node_url: str) -> None:
    """The node's real heap_used_percent judged against thresholds below it: no test can
    hold a real node's heap above 85 % (the breakers exist to prevent it), but every live
    JVM uses more than 1 %."""
    warned = doctor("--url", node_url, "--heap-warn", "1")
    failed = doctor("--url", node_url, "--heap-warn", "1", "--heap-fail", "1")
    assert warned.status("capacity.heap") == "warn"
    assert "warns at 1%, fails at 95%" in warned.finding("capacity.heap")["summary"]
    assert failed.status("capacity.heap") == "fail"
    assert failed.code == 2
    assert doctor("--url", node_url, "--heap-warn", "0").code == 3  # not a percentage


SHARDS = "cluster.max_shards_per_node"


def put_shard_limit(client: Client, limit: int | None) -> None:
    client.request("PUT", "/_cluster/settings", body={"persistent": {SHARDS: limit}})


def test_shards_near_and_at_the_limit(node_url: str) -> None:
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    with Client([node_url]) as admin:
        admin.request(
            "PUT",
            f"/{name}",
            body={"settings": {"number_of_shards": 6, "number_of_replicas": 0}},
            params={"wait_for_active_shards": "all"},
        )
        try:
            health = admin.request("GET", "/_cluster/health").body
            shards = int(health["active_shards"]) + int(health["unassigned_shards"])
            assert shards >= 6
            put_shard_limit(admin, shards + 1)  # above 85 %, below the limit
            near = doctor("--url", node_url)
            put_shard_limit(admin, shards)
            full = doctor("--url", node_url)
        finally:
            put_shard_limit(admin, None)
            admin.request("DELETE", f"/{name}")
    assert near.status("capacity.shards") == "warn"
    assert f"{shards} shards of {shards + 1} allowed" in near.finding("capacity.shards")["summary"]
    assert full.status("capacity.shards") == "fail"


@pytest.mark.sturdysearch_integration
def test_urls_of_two_different_clusters(
    sturdy_servers: tuple[ServerSpec, ...], sturdy_cluster_pool: Any
) -> None:
    plain = list(dict.fromkeys(s for s in sturdy_servers if s.is_plain))
    if len(plain) < 2:
        pytest.skip(
            "needs two different plain servers in STURDY_TEST_SERVERS (such as the default "
            "opensearch:2.19.6,elasticsearch:9.5.4): doctor is given one URL of each"
        )
    first, second = (sturdy_cluster_pool.shared(spec) for spec in plain[:2])
    run = doctor("--url", first.urls[0], "--url", second.urls[0])
    versions = run.finding("identity.versions")
    assert versions["status"] == "fail"
    assert "different clusters" in versions["summary"]
    for spec in plain[:2]:
        assert f"{spec.flavor.value} {spec.version}" in versions["summary"]


def wait_for_no_master(cluster: Any, deadline: float) -> None:
    """Polls the first node until it answers that no master is elected (the condition, not
    a delay): 503 once its wait for one (1 s) runs out; Elasticsearch 9.5.4 answers 500
    (a null_pointer_exception in _cat/master) instead."""
    renamed = cluster.spec.flavor is Flavor.OPENSEARCH and cluster.spec.major >= 2
    wait = "cluster_manager_timeout" if renamed else "master_timeout"
    with Client([cluster.urls[0]], retry=None) as client:
        while time.monotonic() < deadline:
            answer = client.request(
                "GET", "/_cat/master", params={"format": "json", wait: "1s"}, ignore=(500, 503)
            )
            if answer.meta.status in (500, 503):
                return
            threading.Event().wait(0.2)  # between polls of the condition
    raise AssertionError(f"{cluster.urls[0]} still has a master")


@pytest.mark.slow
def test_a_cluster_without_a_master(cluster_factory: Any) -> None:
    """Three nodes, two stopped: the last one has no quorum and elects nobody."""
    cluster = cluster_factory(nodes=3)
    try:
        url = cluster.urls[0]
        before = doctor("--url", url)
        cluster.stop_node(1)
        cluster.stop_node(2)
        wait_for_no_master(cluster, time.monotonic() + 60)
        after = doctor("--url", url)
    finally:
        cluster.close()
    assert before.status("cluster.master") == "ok"
    assert after.status("cluster.master") == "fail"
    assert after.code == 2
