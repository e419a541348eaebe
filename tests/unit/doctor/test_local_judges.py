"""The judges that need no server answer: reach timings, TLS facts, the client's
configuration; and the runner's and the output's contracts."""

from __future__ import annotations

import datetime
import json
import threading

import pytest

from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.config import PoolConfig, build_config
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Timeouts
from sturdysearch.doctor import client_config, reach, tls
from sturdysearch.doctor.findings import Finding, ok
from sturdysearch.doctor.output import _plain, as_json, as_text
from sturdysearch.doctor.probe import NodeProbe, Step, parse_head
from sturdysearch.doctor.runner import Check, Report, run_all
from sturdysearch.testing.tls import CertAuthority

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def probe(**fields: object) -> NodeProbe:
    base = NodeProbe("http://10.0.0.1:9200", "10.0.0.1", 9200, False, dns=Step(0.001))
    base.addresses = ["10.0.0.1"]
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def ids(findings: list[Finding]) -> dict[str, str]:
    return {f.id: f.status for f in findings}


# -- reach --------------------------------------------------------------------------------


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 11)]
    assert reach.percentile(values, 0.5) == 5.0
    assert reach.percentile(values, 0.95) == 10.0
    assert reach.percentile([3.0], 0.5) == 3.0


def test_a_healthy_node() -> None:
    healthy = probe(tcp=Step(0.001), first_byte=Step(0.002), status=200, latencies=[0.002] * 10)
    assert ids(reach.judge(healthy, Timeouts())) == {
        "reach.dns": "ok",
        "reach.tcp": "ok",
        "reach.http": "ok",
        "reach.latency": "ok",
    }


def test_each_step_fails_on_its_own() -> None:
    assert ids(reach.judge(probe(dns=Step(error="Name or service not known")), Timeouts())) == {
        "reach.dns": "fail"
    }
    timed_out = reach.judge(probe(tcp=Step(error="timed out", timeout=True)), Timeouts())
    assert ids(timed_out)["reach.tcp"] == "fail"
    assert "firewall" in timed_out[-1].meaning
    silent = reach.judge(probe(tcp=Step(0.001), first_byte=Step(error="timed out")), Timeouts())
    assert ids(silent)["reach.http"] == "fail"
    tls_probe = probe(tls=True, tcp=Step(0.001), handshake=Step(error="WRONG_VERSION_NUMBER"))
    assert ids(reach.judge(tls_probe, Timeouts()))["reach.tls"] == "fail"


def test_times_through_a_proxy_say_so() -> None:
    proxied = probe(
        proxy="http://proxy:3128",
        proxy_host="proxy",
        proxy_port=3128,
        tcp=Step(0.001),
        first_byte=Step(0.002),
        status=200,
        latencies=[0.002] * 10,
    )
    findings = reach.judge(proxied, Timeouts())
    assert set(ids(findings).values()) == {"ok"}
    assert all(f.summary.endswith("via proxy http://proxy:3128") for f in findings)
    assert all(f.details["proxy"] == "http://proxy:3128" for f in findings)
    assert "proxy:3128" in findings[1].summary  # the TCP connect is to the proxy
    tunneled = probe(
        tls=True,
        proxy="http://proxy:3128",
        proxy_host="proxy",
        proxy_port=3128,
        tcp=Step(0.001),
        tunnel=Step(0.002, error="the proxy refused to open a tunnel: 403 Forbidden"),
    )
    refused = reach.judge(tunneled, Timeouts())
    assert ids(refused) == {"reach.dns": "ok", "reach.tcp": "fail"}
    assert "did not open a tunnel to 10.0.0.1:9200" in refused[-1].summary


def test_slow_steps_warn_against_the_clients_timeouts() -> None:
    slow = probe(
        dns=Step(1.5),
        tcp=Step(1.5),
        first_byte=Step(6.0),
        status=200,
        latencies=[2.0] * 10,
    )
    assert set(ids(reach.judge(slow, Timeouts())).values()) == {"warn"}


# -- tls ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CertAuthority:
    return CertAuthority()


def test_validity_is_read_from_der(ca: CertAuthority) -> None:
    cert = ca.expired_cert("127.0.0.1")
    not_before, not_after = tls.validity(cert.der)
    assert not_before < not_after < datetime.datetime.now(datetime.timezone.utc)
    with pytest.raises(tls.DerError):
        tls.validity(b"\x30\x03\x02\x01")


def test_expiry(ca: CertAuthority) -> None:
    der = ca.server_cert("127.0.0.1").der
    _, not_after = tls.validity(der)
    assert tls.judge_expiry(der, None, "n", not_after - datetime.timedelta(days=90)).status == "ok"
    assert (
        tls.judge_expiry(der, None, "n", not_after - datetime.timedelta(days=10)).status == "warn"
    )
    expired = tls.judge_expiry(der, None, "n", not_after + datetime.timedelta(days=1))
    assert expired.status == "fail" and "expired" in expired.summary
    assert tls.judge_expiry(None, 10, "n", NOW).status == "fail"


def https_probe(**fields: object) -> NodeProbe:
    return probe(url="https://127.0.0.1:9200", host="127.0.0.1", tls=True, **fields)


def test_tls_node_findings(ca: CertAuthority) -> None:
    config = build_config(["https://127.0.0.1:9200"], ca_certs=ca.cert_pem)
    now = datetime.datetime.now(datetime.timezone.utc)
    good = https_probe(cert_der=ca.server_cert("127.0.0.1").der, tls_version="TLSv1.3")
    assert set(ids(tls.judge_node(good, config, now)).values()) == {"ok"}
    wrong_host = https_probe(
        cert_der=ca.wrong_host_cert().der, verify_code=64, verify_message="IP address mismatch"
    )
    assert ids(tls.judge_node(wrong_host, config, now))["tls.hostname"] == "fail"
    unknown_ca = https_probe(cert_der=good.cert_der, verify_code=20, verify_message="unknown CA")
    assert ids(tls.judge_node(unknown_ca, config, now))["tls.chain"] == "fail"
    old = https_probe(cert_der=good.cert_der, tls_version="TLSv1")
    assert ids(tls.judge_node(old, config, now))["tls.version"] == "fail"
    # The client's handshake refused the protocol; a second one learned what the node offers.
    legacy = https_probe(handshake=Step(error="TLSV1_ALERT_PROTOCOL_VERSION"))
    legacy.legacy_version = "TLSv1.1"
    assert ids(tls.judge_node(legacy, config, now)) == {"tls.version": "fail"}


def test_pin(ca: CertAuthority) -> None:
    cert = ca.server_cert("127.0.0.1")
    config = build_config(["https://127.0.0.1:9200"], ssl_assert_fingerprint=cert.fingerprint.hex)
    now = datetime.datetime.now(datetime.timezone.utc)
    good = https_probe(cert_der=cert.der, tls_version="TLSv1.3")
    assert ids(tls.judge_node(good, config, now))["tls.pin"] == "ok"
    bad = https_probe(cert_der=cert.der, tls_version="TLSv1.3", pin_error="mismatch")
    assert ids(tls.judge_node(bad, config, now))["tls.pin"] == "fail"


def test_verification_off_warns_loudly() -> None:
    config = build_config(["https://127.0.0.1:9200"], dangerously_skip_tls_verify=True)
    finding = tls.judge_verification(config)
    assert finding.status == "warn" and "OFF" in finding.summary


def test_credentials_in_clear() -> None:
    remote = build_config(
        ["http://10.0.0.1:9200"], basic_auth=("u", "p"), allow_credentials_over_http=True
    )
    assert tls.judge_plaintext(remote)[0].status == "fail"
    assert tls.judge_plaintext(build_config(["http://10.0.0.1:9200"]))[0].status == "warn"
    local = build_config(["http://127.0.0.1:9200"], basic_auth=("u", "p"))
    assert tls.judge_plaintext(local)[0].status == "ok"


def test_redirects() -> None:
    moved = https_probe(status=301, location="http://elsewhere:9200/")
    assert tls.judge_redirects([moved])[0].status == "fail"
    assert tls.judge_redirects([probe(status=302, location="https://x/")])[0].status == "warn"
    assert tls.judge_redirects([probe(status=200)])[0].status == "ok"


def test_parse_head() -> None:
    assert parse_head(b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\n\r\n") == (301, "https://x/")
    assert parse_head(b"SSH-2.0-OpenSSH\r\n") == (None, None)


# -- client configuration -----------------------------------------------------------------


def test_timeouts() -> None:
    assert client_config.judge_timeouts(Timeouts()).status == "ok"
    assert client_config.judge_timeouts(Timeouts(total=200)).status == "warn"
    assert client_config.judge_timeouts(Timeouts(read=20, total=10)).status == "warn"


def test_retries() -> None:
    assert client_config.judge_retries(RetryPolicy(), BudgetConfig()).status == "ok"
    assert client_config.judge_retries(RetryPolicy(max_attempts=1), BudgetConfig()).status == "warn"
    assert client_config.judge_retries(RetryPolicy(), BudgetConfig(ratio=0.9)).status == "warn"


def test_pool_against_concurrency() -> None:
    pool = PoolConfig(connections_per_node=4)
    assert client_config.judge_pool(pool, 2, None).status == "ok"
    assert client_config.judge_pool(pool, 2, 8).status == "ok"
    crowded = client_config.judge_pool(pool, 2, 9)
    assert crowded.status == "warn" and "connections_per_node=5" in crowded.fix


def test_proxy_variables_not_used() -> None:
    config = build_config(["http://127.0.0.1:9200"])
    env = {"HTTPS_PROXY": "http://user:secret@proxy:3128"}  # noqa: SSP113 (proxy credentials doctor must not show)
    finding = client_config.judge_proxy_env(config, env)
    assert finding.status == "warn" and "secret" not in str(finding.to_dict())
    assert client_config.judge_proxy_env(config, {}).status == "ok"
    proxied = build_config(["http://127.0.0.1:9200"], proxy="http://user:secret@proxy:3128")  # noqa: SSP113 (proxy credentials doctor must not show)
    used = client_config.judge_proxy_env(proxied, env)
    assert used.status == "ok" and "secret" not in used.summary


# -- runner and output --------------------------------------------------------------------


def test_a_check_that_raises_or_hangs_becomes_unknown() -> None:
    release = threading.Event()

    def boom(ctx: object) -> list[Finding]:
        raise RuntimeError("kaput")

    def hang(ctx: object) -> list[Finding]:
        release.wait(10)
        return []

    def fine(ctx: object) -> list[Finding]:
        return [ok("x.fine", "fine")]

    checks = [Check("x.boom", boom), Check("x.hang", hang), Check("x.fine", fine)]
    try:
        findings = run_all(checks, None, 0.2)  # type: ignore[arg-type]
    finally:
        release.set()
    assert [(f.id, f.status) for f in findings] == [
        ("x.boom", "unknown"),
        ("x.hang", "unknown"),
        ("x.fine", "ok"),
    ]
    assert "kaput" in findings[0].summary and "did not finish" in findings[1].summary


def report() -> Report:
    findings = (
        ok("reach.tcp", "connected", node="http://a:9200"),
        Finding("tls.expiry", "fail", "expired " * 12, "m", "f", node="https://b:9200"),
    )
    return Report(findings, 2, True)


def test_json_output() -> None:
    data = json.loads(as_json(report()))
    assert data["exit_code"] == 2
    assert data["findings"][1]["link"] == "docs/doctor.md#tlsexpiry"
    assert set(data["findings"][0]) >= {"id", "status", "summary", "meaning", "fix", "link"}


@pytest.mark.parametrize("render", [as_text, _plain])
def test_text_output_fits_80_columns(render: object) -> None:
    text = render(report())  # type: ignore[operator]
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "How to fix: f" in text and "docs/doctor.md#tlsexpiry" in text
    assert "exit 2" in text
