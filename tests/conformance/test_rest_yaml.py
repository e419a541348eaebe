"""The servers' own REST API YAML tests, replayed through sturdysearch against real nodes.

* The OpenSearch kit in ``../shared/conformance/opensearch/test`` (see its README), against the
  OpenSearch servers of the run. A fast subset (``FAST``) runs in ``make test``; every other
  section is marked ``slow`` (``make test-all``).
* Elasticsearch's ``elastic/elasticsearch-clients-tests`` suite, against the Elasticsearch
  servers, from a checkout named by ``$STURDY_ES_CLIENT_TESTS`` (its ``tests`` folder) or from
  ``../shared/conformance/elasticsearch-clients-tests``; it is not part of this repository, so
  without it those tests are skipped, saying so.

``skips.yaml`` lists the sections that cannot pass against a given server, each with the
reason (found by running them, not guessed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.conftest import record
from conformance.runner import Failed, Runner, Section, Skipped, load, missing_module, sections
from sturdysearch.errors import ApiError

ROOT = Path(__file__).resolve().parents[2]
OPENSEARCH_KIT = ROOT.parent / "shared" / "conformance" / "opensearch" / "test"
#: Where the CEO's shared/ folder would hold the suite, if it is placed there one day.
ES_SHARED = ROOT.parent / "shared" / "conformance" / "elasticsearch-clients-tests"
ES_SUITE = os.environ.get("STURDY_ES_CLIENT_TESTS") or (
    str(ES_SHARED) if ES_SHARED.is_dir() else None
)
SKIPS: dict[str, dict[str, str]] = yaml.safe_load(
    (Path(__file__).parent / "skips.yaml").read_text()
)

#: Files of the OpenSearch kit whose sections run in ``make test`` (every step type, catch and
#: skip kind among them); the rest run in ``make test-all``.
FAST = {
    "index/10_with_id.yml",
    "index/12_result.yml",
    "index/15_without_id.yml",
    "index/20_optype.yml",
    "create/40_routing.yml",
    "delete/12_result.yml",
    "delete/20_cas.yml",
    "exists/10_basic.yml",
    "get/15_default_values.yml",
    "get/80_missing.yml",
    "get_source/85_source_missing.yml",
    "update/10_doc.yml",
    "update/22_doc_as_upsert.yml",
    "mget/10_basic.yml",
    "bulk/10_basic.yml",
    "bulk/20_list_of_strings.yml",
    "search/20_default_values.yml",
    "scroll/10_basic.yml",
    "cluster.health/10_basic.yml",
    "indices.create/10_basic.yml",
    "indices.get_mapping/30_missing_index.yml",
    "info/10_info.yml",
    "ping/10_ping.yml",
}


def _params(root: Path | None, flavor: str, fast: set[str] | None) -> list[Any]:
    if root is None or not root.is_dir():
        return []
    out = []
    for section in sections(root):
        marks = [pytest.mark.sturdysearch_integration]
        if fast is not None and section.path.as_posix() not in fast:
            marks.append(pytest.mark.slow)
        out.append(
            pytest.param(flavor, root, section.path, section.name, id=section.id, marks=marks)
        )
    return out


OPENSEARCH = _params(OPENSEARCH_KIT, "opensearch", FAST)
ELASTICSEARCH = _params(Path(ES_SUITE) / "tests" if ES_SUITE else None, "elasticsearch", None)


def run_section(
    client: Any, search_cluster: Any, flavor: str, root: Path, path: Path, name: str
) -> None:
    server = f"{search_cluster.flavor.value}-{search_cluster.version}"
    if search_cluster.flavor.value != flavor:
        pytest.skip(f"a {flavor} test; this server is {server}")
    (section,) = [s for s in load(root, path) if s.name == name]
    reason = SKIPS.get(server, {}).get(section.id) or SKIPS.get(flavor, {}).get(section.id)
    if reason:
        record(server, "skipped", 0, 0)
        pytest.skip(f"skips.yaml: {reason}")
    info = client.info()
    runner = Runner(client, info.flavor, info.version_tuple)
    outcome = "failed"
    try:
        runner.run(section)
        outcome = "passed"
    except Skipped as exc:
        outcome = "skipped"
        pytest.skip(str(exc))
    except (Failed, ApiError) as exc:
        lacking = missing_module(exc)
        if lacking is None:
            raise
        outcome = "skipped"
        pytest.skip(f"the server build lacks the module for this API: {lacking}")
    finally:
        record(server, outcome, runner.counts.through_methods, runner.counts.through_request)


@pytest.mark.skipif(not OPENSEARCH, reason=f"the OpenSearch REST kit is not at {OPENSEARCH_KIT}")
@pytest.mark.parametrize(("flavor", "root", "path", "name"), OPENSEARCH or [None])
def test_opensearch_rest_kit(
    conformance_client: Any, search_cluster: Any, flavor: str, root: Path, path: Path, name: str
) -> None:
    run_section(conformance_client, search_cluster, flavor, root, path, name)


@pytest.mark.sturdysearch_integration
@pytest.mark.skipif(
    not ELASTICSEARCH,
    reason="elastic/elasticsearch-clients-tests is not here: set STURDY_ES_CLIENT_TESTS to a "
    f"checkout of it (or place its tests/ under {ES_SHARED})",
)
@pytest.mark.parametrize(
    ("flavor", "root", "path", "name"), ELASTICSEARCH or [("", None, None, "")]
)
def test_elasticsearch_clients_tests(
    conformance_client: Any, search_cluster: Any, flavor: str, root: Path, path: Path, name: str
) -> None:
    run_section(conformance_client, search_cluster, flavor, root, path, name)


def test_the_skip_list_gives_a_reason_for_every_entry() -> None:
    for server, entries in SKIPS.items():
        for section_id, reason in entries.items():
            assert isinstance(reason, str) and len(reason) > 20, (server, section_id)
            assert "reasons unknown" not in reason.lower(), (server, section_id)


def test_version_ranges_follow_the_legacy_ordering() -> None:
    from conformance.runner import in_ranges

    os2 = (2, 19, 6)
    assert not in_ranges(" - 6.99.99", os2, "opensearch")  # legacy ES bound: never skips
    assert in_ranges("7.2.0 - ", os2, "opensearch")  # always skips on OpenSearch
    assert in_ranges(" - 2.15.99, 2.19.0 - ", os2, "opensearch")
    assert not in_ranges("- 3.0.99, 3.7.0 - ", (3, 3, 0), "opensearch")
    assert in_ranges("- 3.0.99, 3.7.0 - ", os2, "opensearch")
    assert in_ranges(" - 8.99.99", (8, 19, 0), "elasticsearch")
    assert not in_ranges(" - 8.99.99", (9, 5, 4), "elasticsearch")


def test_sections_are_found() -> None:
    if not OPENSEARCH_KIT.is_dir():
        pytest.skip(f"the OpenSearch REST kit is not at {OPENSEARCH_KIT}")
    found = list(sections(OPENSEARCH_KIT))
    assert len(found) == 153  # the kit's README counts 153 test sections
    assert all(isinstance(s, Section) and s.steps for s in found)
