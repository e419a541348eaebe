"""The judges of server answers, on answers recorded from real nodes (Elasticsearch 9.5.4
and OpenSearch 2.19.4, security on) and on variations of them that trigger each finding."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sturdysearch._core.config import build_config
from sturdysearch._core.dialect import parse_server_info
from sturdysearch.doctor import auth, capacity, cluster, deprecations, discovery, identity, index
from sturdysearch.doctor.context import Answer

from .conftest import recorded as recorded_answer

Canned = Callable[[str], Answer]


def statuses(findings: list[Any]) -> dict[str, str]:
    return {f.id: f.status for f in findings}


# -- identity -----------------------------------------------------------------------------


def test_urls_of_different_clusters_fail(canned: Canned) -> None:
    ours = parse_server_info(
        {"cluster_name": "a", "version": {"number": "2.19.6", "distribution": "opensearch"}}, "n"
    )
    theirs = parse_server_info(
        {"cluster_name": "b", "version": {"number": "9.5.4", "build_flavor": "default"}}, "m"
    )
    both = {"http://a:9200": ours, "http://b:9200": theirs}
    finding = identity.judge_versions(canned("nodes_http"), both)
    assert finding.status == "fail" and "different clusters" in finding.summary
    same = {"http://a:9200": ours, "http://c:9200": ours, "http://d:9200": "ConnectionError: x"}
    assert identity.judge_versions(canned("nodes_http"), same).status in ("ok", "warn")


def test_one_version_everywhere(canned: Canned) -> None:
    assert identity.judge_versions(canned("nodes_http")).status == "ok"


def test_mixed_versions_warn(canned: Canned) -> None:
    answer = canned("nodes_http")
    body = copy.deepcopy(answer.body)
    (node,) = body["nodes"].values()
    body["nodes"]["other"] = {**node, "name": "node-1", "version": "1.0.0"}
    finding = identity.judge_versions(Answer(200, body))
    assert finding.status == "warn"
    assert "mixed versions" in finding.summary and "node-1" in finding.summary


def test_root_refused_is_unknown_with_the_reason() -> None:
    for status in (403, 404):
        finding = identity.judge_refused_root(status)
        assert finding.status == "unknown"
        assert "Serverless" in finding.meaning


def test_opensearch_root_is_identified() -> None:
    body = recorded_answer("opensearch-2.19.4", "root").body
    finding = identity.judge_server(parse_server_info(body, "n"))
    assert finding.status == "ok" and finding.summary.startswith("opensearch 2.19.4")


def test_old_or_unknown_servers_warn() -> None:
    old = {"version": {"number": "6.8.0"}, "tagline": "You Know, for Search"}
    assert identity.judge_server(parse_server_info(old, "n")).status == "warn"
    other = {"version": {"number": "1.0.0"}, "tagline": "something else"}
    assert identity.judge_server(parse_server_info(other, "n")).status == "warn"


# -- auth ---------------------------------------------------------------------------------


def whoami_answer(canned: Canned, server: str, prefix: str = "") -> Answer:
    name = "authenticate" if server.startswith("elasticsearch") else "authinfo"
    if not prefix:
        name = "es_authenticate" if server.startswith("elasticsearch") else "os_authinfo"
    return canned(prefix + name)


def test_accepted_credentials_name_the_user(canned: Canned, server: str) -> None:
    findings = auth.judge_auth("basic", whoami_answer(canned, server), anonymous_refused=True)
    assert statuses(findings) == {
        "auth.credentials": "ok",
        "auth.whoami": "ok",
        "auth.security": "ok",
    }
    assert "admin" in findings[1].summary


def test_the_limited_user_is_identified(canned: Canned, server: str) -> None:
    findings = auth.judge_auth("basic", whoami_answer(canned, server, "limited_"), True)
    assert "limited" in findings[1].summary


def test_a_wrong_password_fails_with_401(canned: Canned, server: str) -> None:
    findings = auth.judge_auth("basic", whoami_answer(canned, server, "wrong_"), True)
    assert statuses(findings)["auth.credentials"] == "fail"
    assert "401" in findings[0].summary


def test_no_credentials_on_a_secured_cluster(canned: Canned, server: str) -> None:
    findings = auth.judge_auth(None, whoami_answer(canned, server, "wrong_"), True)
    assert "sends no credentials" in findings[0].summary


def test_security_off_is_a_warning(canned: Canned, server: str) -> None:
    # The other flavor's who-am-I path answers "no handler", as on a security-off node.
    missing = canned("os_authinfo" if server.startswith("elasticsearch") else "es_authenticate")
    assert missing.status == 400
    findings = auth.judge_auth("basic", missing, anonymous_refused=False)
    assert statuses(findings) == {"auth.credentials": "ok", "auth.security": "warn"}
    assert "anyone who reaches the port" in findings[-1].summary


def test_signed_requests_behind_aws() -> None:
    # A domain without fine-grained access control has no who-am-I API; the unsigned probe
    # was refused (403), the signed calls answered.
    missing = Answer(400, {"error": "no handler found for uri [/_plugins/_security/authinfo]"})
    findings = auth.judge_auth("sigv4", missing, anonymous_refused=True)
    assert statuses(findings) == {"auth.credentials": "ok", "auth.security": "ok"}
    assert "signed requests are accepted" in findings[0].summary
    # AWS's answer to a signature that does not check out is a 403, not a 401.
    bad = Answer(403, {"message": "The request signature we calculated does not match"})
    refused = auth.judge_auth("sigv4", bad, anonymous_refused=True)
    assert statuses(refused)["auth.credentials"] == "fail"
    # A 403 for a missing privilege still means the signature was good.
    privilege = Answer(403, {"message": "User: arn:aws:iam::1:user/u is not authorized"})
    assert statuses(auth.judge_auth("sigv4", privilege, True))["auth.credentials"] == "ok"


def test_403_is_not_401() -> None:
    findings = auth.judge_auth("basic", Answer(403, {"error": {"reason": "no"}}), True)
    assert statuses(findings) == {
        "auth.credentials": "ok",
        "auth.whoami": "unknown",
        "auth.security": "ok",
    }


def test_api_key_expiry() -> None:
    answer = recorded_answer("elasticsearch-9.5.4", "api_key")
    key = answer.body["api_keys"][0]
    day = 86_400_000
    assert auth.judge_api_key(answer, key["creation"]).status == "warn"  # 3 days left
    assert auth.judge_api_key(answer, key["creation"] - 10 * day).status == "ok"
    assert auth.judge_api_key(answer, key["expiration"] + 1).status == "fail"
    body = copy.deepcopy(answer.body)
    body["api_keys"][0]["invalidated"] = True
    assert auth.judge_api_key(Answer(200, body), key["creation"]).status == "fail"
    body["api_keys"][0].update(invalidated=False, expiration=None)
    assert "never expires" in auth.judge_api_key(Answer(200, body), 0).summary


# -- cluster ------------------------------------------------------------------------------


def test_health_report() -> None:
    body = recorded_answer("elasticsearch-9.5.4", "health_report").body
    assert cluster.judge_health_report(body).status == "ok"
    sick = copy.deepcopy(body)
    sick["status"] = "yellow"
    sick["indicators"]["disk"].update(status="yellow", symptom="disk is filling up")
    finding = cluster.judge_health_report(sick)
    assert finding.status == "warn" and "disk is filling up" in finding.summary
    sick["status"] = "red"
    assert cluster.judge_health_report(sick).status == "fail"


def test_yellow_cluster_health(canned: Canned) -> None:
    finding = cluster.judge_cluster_health(canned("cluster_health"))
    assert finding.status == "warn" and "1 unassigned" in finding.summary


def test_green_and_red_cluster_health(canned: Canned) -> None:
    body = copy.deepcopy(canned("cluster_health").body)
    body.update(status="green", unassigned_shards=0)
    assert cluster.judge_cluster_health(Answer(200, body)).status == "ok"
    body["status"] = "red"
    assert cluster.judge_cluster_health(Answer(200, body)).status == "fail"


def test_unassigned_replica_is_explained(canned: Canned) -> None:
    health = canned("cluster_health").body
    finding = cluster.judge_unassigned(health, canned("allocation_explain"))
    assert finding.status == "warn"
    assert "[doctor-rec][0] replica" in finding.summary
    assert "same_shard" in finding.meaning


def test_unassigned_primary_fails(canned: Canned) -> None:
    explain = copy.deepcopy(canned("allocation_explain").body)
    explain["primary"] = True
    health = canned("cluster_health").body
    assert cluster.judge_unassigned(health, Answer(200, explain)).status == "fail"
    assert cluster.judge_unassigned({"unassigned_shards": 0}, None).status == "ok"


def test_master(canned: Canned) -> None:
    assert cluster.judge_cat_master(canned("cat_master")).status == "ok"
    refused = Answer(503, {"error": {"reason": "master_not_discovered_exception"}})
    assert cluster.judge_cat_master(refused).status == "fail"
    nobody = Answer(200, [{"id": None, "host": None, "ip": None, "node": None}])
    assert cluster.judge_cat_master(nobody).status == "fail"
    # Something that is not a node (a gateway's 404) says nothing about the master.
    assert cluster.judge_cat_master(Answer(404, {"error": "not found"})).status == "unknown"
    assert cluster.judge_master_indicator({"status": "green", "symptom": "ok"}).status == "ok"
    assert cluster.judge_master_indicator({"status": "red", "symptom": "x"}).status == "fail"


def test_no_master_behind_a_green_report() -> None:
    # Elasticsearch 9.5.4, two of three nodes stopped: the indicator is still green.
    lost = {
        "status": "green",
        "symptom": "The cluster has a stable master node",
        "details": {"current_master": {"node_id": None, "name": None}, "recent_masters": []},
    }
    assert cluster.judge_master_indicator(lost).status == "fail"
    report = {"status": "green", "indicators": {"master_is_stable": {"status": "green"}}}
    assert cluster.judge_health_report(report, lost).status == "fail"
    assert cluster.judge_health_report(report, None).status == "ok"
    found = {**lost, "details": {"current_master": {"node_id": "x", "name": "node-0"}}}
    assert cluster.judge_master_indicator(found).status == "ok"
    # Without a master, _cluster/health answers 503 once its master_timeout runs out.
    missing = Answer(503, {"error": {"type": "master_not_discovered_exception"}, "status": 503})
    assert cluster.judge_cluster_health(missing).status == "fail"


# -- capacity -----------------------------------------------------------------------------


def with_settings(body: Any, **persistent: str) -> Any:
    changed = copy.deepcopy(body)
    changed.setdefault("persistent", {}).update(persistent)
    return changed


DISK = "cluster.routing.allocation.disk."


def test_disk_thresholds_off_warn(canned: Canned) -> None:
    finding = capacity.judge_disk(canned("stats_fs").body, canned("cluster_settings").body)
    assert finding.status == "warn" and "threshold_enabled=false" in finding.summary


def test_disk_below_the_watermarks(canned: Canned) -> None:
    settings = with_settings(
        canned("cluster_settings").body, **{f"{DISK}threshold_enabled": "true"}
    )
    big = with_settings(
        settings,
        **{
            f"{DISK}watermark.low": "1b",
            f"{DISK}watermark.high": "1b",
            f"{DISK}watermark.flood_stage": "1b",
        },
    )
    assert capacity.judge_disk(canned("stats_fs").body, big).status == "ok"


@pytest.mark.parametrize(
    ("low", "high", "flood", "status", "level"),
    [
        ("900tb", "1b", "1b", "warn", "low"),
        ("900tb", "800tb", "1b", "warn", "high"),
        ("900tb", "800tb", "700tb", "fail", "flood_stage"),
        ("1%", "2%", "3%", "fail", "flood_stage"),
    ],
)
def test_disk_past_a_watermark(
    canned: Canned, low: str, high: str, flood: str, status: str, level: str
) -> None:
    settings = with_settings(
        canned("cluster_settings").body,
        **{
            f"{DISK}threshold_enabled": "true",
            f"{DISK}watermark.low": low,
            f"{DISK}watermark.high": high,
            f"{DISK}watermark.flood_stage": flood,
        },
    )
    finding = capacity.judge_disk(canned("stats_fs").body, settings)
    assert finding.status == status
    assert f"past the {level} watermark" in finding.summary


def test_watermark_values() -> None:
    total = 1000 * 1024**3
    assert capacity.free_needed("85%", total, None) == int(total * 0.15)
    assert capacity.free_needed("0.85", total, None) == int(total * 0.15)
    assert capacity.free_needed("85%", total, 100 * 1024**3) == 100 * 1024**3
    assert capacity.free_needed("500mb", total, None) == 500 * 1024**2
    assert capacity.free_needed("1b", total, None) == 1
    assert capacity.free_needed("junk", total, None) is None
    assert capacity.parse_bytes("20GB") == 20 * 1024**3


def test_default_headroom_applies_to_default_watermarks_only(canned: Canned) -> None:
    settings = canned("cluster_settings").body
    total = 10_000 * 1024**3
    marks = capacity.watermarks(settings, total)
    if "cluster.routing.allocation.disk.watermark.low.max_headroom" in settings["defaults"]:
        assert marks["low"] == 200 * 1024**3  # Elasticsearch 8.5+: 200GB, not 15% of 10 TB
        explicit = with_settings(settings, **{f"{DISK}watermark.low": "85%"})
        assert capacity.watermarks(explicit, total)["low"] == int(total * 0.15)
    else:
        assert marks["low"] == int(total * 0.15)


def test_blocks(canned: Canned) -> None:
    settings = canned("cluster_settings").body
    assert capacity.judge_blocks(canned("index_blocks").body, settings).status == "ok"
    blocked = {"logs": {"settings": {"index.blocks.read_only_allow_delete": "true"}}}
    finding = capacity.judge_blocks(blocked, settings)
    assert finding.status == "fail" and "logs" in finding.summary
    write = {"logs": {"settings": {"index.blocks.write": "true"}}}
    assert capacity.judge_blocks(write, settings).status == "warn"
    whole = with_settings(settings, **{"cluster.blocks.read_only": "true"})
    assert capacity.judge_blocks({}, whole).status == "fail"


def test_shards(canned: Canned) -> None:
    health = canned("cluster_health").body
    assert capacity.judge_shards(health, 1000).status == "ok"
    assert capacity.judge_shards(health, 3).status == "fail"
    assert (
        capacity.judge_shards({**health, "active_shards": 9, "unassigned_shards": 0}, 10).status
        == "warn"
    )


def test_heap_and_gc(canned: Canned) -> None:
    body = canned("stats_jvm").body
    assert capacity.judge_heap(body).status == "ok"
    assert capacity.judge_gc(body).status == "ok"
    hot = copy.deepcopy(body)
    for node in hot["nodes"].values():
        node["jvm"]["mem"]["heap_used_percent"] = 90
        node["jvm"]["gc"]["collectors"]["old"]["collection_time_in_millis"] = node["jvm"][
            "uptime_in_millis"
        ]
    assert capacity.judge_heap(hot).status == "warn"
    assert capacity.judge_gc(hot).status == "warn"
    for node in hot["nodes"].values():
        node["jvm"]["mem"]["heap_used_percent"] = 97
    assert capacity.judge_heap(hot).status == "fail"


def test_breakers(canned: Canned) -> None:
    body = canned("stats_breaker").body
    assert capacity.judge_breakers(body).status == "ok"
    tripped = copy.deepcopy(body)
    next(iter(tripped["nodes"].values()))["breakers"]["parent"]["tripped"] = 3
    finding = capacity.judge_breakers(tripped)
    assert finding.status == "warn" and "parent x3" in finding.summary


def test_rejections(canned: Canned) -> None:
    body = canned("stats_thread_pool").body
    assert capacity.judge_rejections(body).status == "ok"
    rejected = copy.deepcopy(body)
    next(iter(rejected["nodes"].values()))["thread_pool"]["write"]["rejected"] = 12
    finding = capacity.judge_rejections(rejected)
    assert finding.status == "warn" and "write 12" in finding.summary


def test_connection_churn(canned: Canned) -> None:
    opened = capacity._opened(canned("stats_http").body)
    assert opened > 0
    assert capacity.judge_churn(opened, opened + 2, 1.5).status == "ok"
    assert capacity.judge_churn(opened, opened + 300, 1.5).status == "warn"


# -- discovery ----------------------------------------------------------------------------


def test_published_addresses(canned: Canned) -> None:
    (target,) = discovery.published(canned("nodes_http").body, "https")
    assert target.url is not None and target.url.startswith("https://127.0.0.1:")
    config = build_config(["http://127.0.0.1:9200"])
    assert discovery.judge_publish([target], config)[0].status == "ok"
    unreachable = discovery.Published(
        "node-0", "10.255.255.1:9200", "http://10.255.255.1:9200", "timed out"
    )
    assert discovery.judge_publish([unreachable], config)[0].status == "warn"
    sniffing = build_config(["http://127.0.0.1:9200"], sniff_on_start=True)
    assert discovery.judge_publish([unreachable], sniffing)[0].status == "fail"


def test_named_publish_addresses_keep_the_name() -> None:
    body = {"nodes": {"a": {"name": "n", "http": {"publish_address": "es1.example/10.0.0.1:9200"}}}}
    (target,) = discovery.published(body, "https")
    assert target.url == "https://es1.example:9200"


# -- index --------------------------------------------------------------------------------


def test_bulk_readiness_settings(canned: Canned) -> None:
    findings = index.judge_settings("doctor-rec", canned("index_settings").body)
    assert statuses(findings) == {"index.refresh": "warn", "index.replicas": "warn"}
    body = copy.deepcopy(canned("index_settings").body)
    body["doctor-rec"]["settings"].update(
        {"index.refresh_interval": "-1", "index.number_of_replicas": "0"}
    )
    assert statuses(index.judge_settings("doctor-rec", body)) == {
        "index.refresh": "ok",
        "index.replicas": "ok",
    }


def test_field_count(canned: Canned) -> None:
    mapping = canned("index_mapping").body
    assert index.count_fields(mapping["doctor-rec"]["mappings"]["properties"]) == 4
    settings = canned("index_settings").body
    assert index.judge_fields("doctor-rec", mapping, settings).status == "ok"
    tight = copy.deepcopy(settings)
    tight["doctor-rec"]["settings"]["index.mapping.total_fields.limit"] = "4"
    assert index.judge_fields("doctor-rec", mapping, tight).status == "fail"


def test_missing_pipeline(canned: Canned) -> None:
    wanted = {"does-not-exist": "index.default_pipeline"}
    missing = index.judge_pipelines(wanted, {"does-not-exist": canned("pipeline_missing")})
    assert missing.status == "fail"
    present = index.judge_pipelines(wanted, {"does-not-exist": Answer(200, {"x": {}})})
    assert present.status == "ok"


# -- deprecations -------------------------------------------------------------------------


def test_no_deprecation_api(canned: Canned) -> None:
    assert deprecations.judge_deprecations(canned("deprecations")).status == "unknown"


def test_no_deprecation_api_on_7_17() -> None:
    # Elasticsearch 7.17.29's integ-test build routes the path to the typed document API.
    answer = Answer(
        405,
        {
            "error": "Incorrect HTTP method for uri [/_migration/deprecations] and method "
            "[GET], allowed: [POST]",
            "status": 405,
        },
    )
    finding = deprecations.judge_deprecations(answer)
    assert finding.status == "unknown" and "no deprecation API" in finding.summary
    other = deprecations.judge_deprecations(Answer(405, {"error": "something else"}))
    assert "no deprecation API" not in other.summary


def test_deprecations_listed() -> None:
    # The shape of Elasticsearch's answer (docs: migration/apis/deprecation.asciidoc).
    body = {
        "cluster_settings": [
            {"level": "critical", "message": "Cluster name cannot contain ':'", "url": "u"}
        ],
        "node_settings": [],
        "index_settings": {"logs": [{"level": "warning", "message": "old setting", "url": "v"}]},
        "ml_settings": [],
    }
    finding = deprecations.judge_deprecations(Answer(200, body))
    assert finding.status == "warn" and "2 deprecation(s), 1 critical" in finding.summary
    empty = {"cluster_settings": [], "node_settings": [], "index_settings": {}}
    assert deprecations.judge_deprecations(Answer(200, empty)).status == "ok"


def test_only_a_node_counts_as_reachable() -> None:
    root = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"cluster_name": "c"}'
    assert discovery.looks_like_node(root, "c") is None
    assert "another cluster" in str(discovery.looks_like_node(root, "d"))
    secured = b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="security"\r\n\r\n'
    assert discovery.looks_like_node(secured, "c") is None
    product = b"HTTP/1.1 405 Method Not Allowed\r\nX-elastic-product: Elasticsearch\r\n\r\n{}"
    assert discovery.looks_like_node(product, "c") is None
    other = b"HTTP/1.1 404 Not Found\r\nserver: some-proxy\r\ncontent-length: 0\r\n\r\n"
    assert "some-proxy" in str(discovery.looks_like_node(other, "c"))
    assert "no HTTP answer" in str(discovery.looks_like_node(b"", "c"))
