"""Server specs: the strings people type on command lines and in STURDY_TEST_SERVERS."""

from __future__ import annotations

import pytest

from sturdysearch.testing.errors import InvalidSpecError
from sturdysearch.testing.flavors import profile_for
from sturdysearch.testing.specs import Flavor, ServerSpec, parse_server_specs


@pytest.mark.parametrize(
    ("text", "flavor", "version"),
    [
        ("opensearch:2.19.6", Flavor.OPENSEARCH, "2.19.6"),
        ("elasticsearch:9.5.4", Flavor.ELASTICSEARCH, "9.5.4"),
        (" OpenSearch:1.3.20 ", Flavor.OPENSEARCH, "1.3.20"),
        ("os:3.8.0", Flavor.OPENSEARCH, "3.8.0"),
        ("es:8.19.21", Flavor.ELASTICSEARCH, "8.19.21"),
        ("opensearch-2.19.6", Flavor.OPENSEARCH, "2.19.6"),
        ("opensearch:3.0.0-alpha1", Flavor.OPENSEARCH, "3.0.0-alpha1"),
    ],
)
def test_parse(text: str, flavor: Flavor, version: str) -> None:
    spec = ServerSpec.parse(text)
    assert (spec.flavor, spec.version) == (flavor, version)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("opensearch", "expected FLAVOR:VERSION"),
        ("solr:9.0.0", "unknown server flavor"),
        ("opensearch:2.19", "invalid version"),
        ("opensearch:latest", "invalid version"),
        ("", "expected FLAVOR:VERSION"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        ServerSpec.parse(text)


def test_rendering_round_trips() -> None:
    spec = ServerSpec.parse("es:9.5.4")
    assert str(spec) == "elasticsearch:9.5.4"
    assert spec.id == "elasticsearch-9.5.4"
    assert ServerSpec.parse(spec.id) == spec
    assert spec.version_tuple == (9, 5, 4)
    assert spec.major == 9
    assert f"{spec.flavor}" == "elasticsearch"
    assert spec.flavor == "elasticsearch"


def test_parse_list_skips_blanks_and_duplicates() -> None:
    specs = parse_server_specs(" opensearch:2.19.6, ,elasticsearch:9.5.4,os:2.19.6,")
    assert [str(s) for s in specs] == ["opensearch:2.19.6", "elasticsearch:9.5.4"]
    assert parse_server_specs("") == ()
    assert parse_server_specs(None) == ()


@pytest.mark.parametrize(
    ("text", "setting", "java_min", "java_max"),
    [
        ("opensearch:1.3.20", "cluster.initial_master_nodes", 11, 17),
        ("opensearch:2.19.6", "cluster.initial_cluster_manager_nodes", 11, 21),
        ("opensearch:3.8.0", "cluster.initial_cluster_manager_nodes", 21, None),
        ("elasticsearch:7.17.29", "cluster.initial_master_nodes", 11, 17),
        ("elasticsearch:8.17.10", "cluster.initial_master_nodes", 17, 21),
        ("elasticsearch:8.19.21", "cluster.initial_master_nodes", 17, None),
        ("elasticsearch:9.5.4", "cluster.initial_master_nodes", 21, None),
    ],
)
def test_profiles(text: str, setting: str, java_min: int, java_max: int | None) -> None:
    profile = profile_for(ServerSpec.parse(text))
    assert profile.cluster_manager_setting == setting
    assert (profile.java.minimum, profile.java.maximum) == (java_min, java_max)


def test_unsupported_major_is_refused_with_the_supported_list() -> None:
    with pytest.raises(InvalidSpecError, match=r"supported: 7\.x, 8\.x, 9\.x"):
        profile_for(ServerSpec.parse("elasticsearch:6.8.23"))
