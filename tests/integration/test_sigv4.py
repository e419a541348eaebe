"""AWS SigV4 end to end: the whole client (blocking and asyncio) signs through
``SigV4VerifyingProxy``, which recomputes every signature with botocore's signer and forwards
what passes to a real node, unsigned.

The node needs no AWS: the verifier plays Amazon OpenSearch Service's signature check and
strips the signature before forwarding, so the same tests run against every configured
server, OpenSearch and Elasticsearch alike. Every request the verifier saw must have been
verified: health probes and retries are signed too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client, async_bulk_index, bulk_index
from sturdysearch.auth import AwsSigV4
from sturdysearch.errors import AuthorizationError
from sturdysearch.testing.faults import Fault

pytest.importorskip("botocore", reason="the verifier recomputes signatures with botocore")

from sturdysearch.testing.sigv4 import SigV4VerifyingProxy

MakeClient = Callable[..., Any]

KEY_ID = "AKIAINTEGRATIONTEST1"
SECRET = "integration/Secret+Key0123456789abcdefgh"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEintegration//token=="
REGION = "us-east-1"
IDS = ["a:b!c@d e+f", "中文/id", "x y", "plain"]


@pytest.fixture
def verifier(node_url: str) -> Iterator[SigV4VerifyingProxy]:
    with SigV4VerifyingProxy(
        node_url,
        access_key=KEY_ID,
        secret_key=SECRET,
        session_token=TOKEN,
        region=REGION,
        service="es",
    ) as proxy:
        yield proxy


def signer(**options: Any) -> AwsSigV4:
    kwargs: dict[str, Any] = {"access_key": KEY_ID, "secret_key": SECRET, "session_token": TOKEN}
    kwargs.update(options)
    return AwsSigV4(REGION, "es", **kwargs)


def all_verified(verifier: SigV4VerifyingProxy) -> None:
    assert verifier.rejected == 0, verifier.failures
    assert verifier.verified == verifier.stats.requests_seen > 0


def test_documents_queries_and_empty_bodies(
    make_client: MakeClient, verifier: SigV4VerifyingProxy, index_name: str
) -> None:
    with make_client([verifier.url], auth=signer()) as client:
        assert client.ping()
        client.info()  # GET /
        client.indices.create(index=index_name, settings={"number_of_replicas": 0})
        assert client.indices.exists(index=index_name)  # HEAD
        for n, doc_id in enumerate(IDS):
            written = client.index(
                index=index_name, id=doc_id, document={"n": n, "tag": doc_id}, refresh=True
            )
            assert written.id == doc_id
        for n, doc_id in enumerate(IDS):
            assert client.get(index=index_name, id=doc_id).source == {"n": n, "tag": doc_id}
        client.indices.refresh(index=index_name)  # POST without a body
        assert client.count(index=index_name, q="n:2")["count"] == 1
        found = client.search(index=index_name, params={"q": "tag:x*", "sort": "n:asc"})
        assert [hit["_id"] for hit in found["hits"]["hits"]] == ["x y"]
        rows = client.cat.indices(index=index_name, format="json", h=["index", "docs.count"])
        assert [row["index"] for row in rows] == [index_name]
        for doc_id in IDS:
            client.delete(index=index_name, id=doc_id, refresh=True)
            assert client.get_or_none(index=index_name, id=doc_id) is None
    all_verified(verifier)
    targets = [r.target for r in verifier.verified_requests]
    assert any("refresh=true" in t for t in targets)
    assert any("%E4%B8%AD%E6%96%87%2Fid" in t for t in targets)  # 中文/id, encoded once


def test_compressed_bodies_are_signed_as_sent(
    make_client: MakeClient, verifier: SigV4VerifyingProxy, index_name: str
) -> None:
    with make_client([verifier.url], auth=signer(), http_compress=True) as client:
        client.index(index=index_name, id="big", document={"text": "word " * 2000}, refresh=True)
        found = client.search(
            index=index_name, query={"bool": {"should": [{"match": {"text": "word"}}] * 200}}
        )
        assert found["hits"]["total"]["value"] == 1
    all_verified(verifier)
    assert any(r.content_encoding == "gzip" for r in verifier.verified_requests)


def test_bulk_load_sync(verifier: SigV4VerifyingProxy, index_name: str) -> None:
    documents = [{"id": f"{doc_id} #{n}", "n": n} for n in range(300) for doc_id in IDS]
    with Client([verifier.url], auth=signer(), http_compress=True) as client:
        stats = bulk_index(client, documents, index_name, id_field="id", refresh=True)
        assert stats.succeeded == len(documents) and stats.dead_lettered == 0
        assert client.count(index=index_name)["count"] == len(documents)
        assert client.get(index=index_name, id="中文/id #7").source["n"] == 7
    all_verified(verifier)


def test_bulk_load_async(verifier: SigV4VerifyingProxy, index_name: str, loop_thread: Any) -> None:
    documents = [{"id": f"{doc_id} #{n}", "n": n} for n in range(300) for doc_id in IDS]

    async def load() -> tuple[int, int]:
        async with AsyncClient([verifier.url], auth=signer()) as client:
            stats = await async_bulk_index(client, documents, index_name, id_field="id")
            await client.indices.refresh(index=index_name)
            counted = await client.count(index=index_name)
            return stats.succeeded, counted["count"]

    assert loop_thread.run(load()) == (len(documents), len(documents))
    all_verified(verifier)


def test_a_retry_is_signed_again(
    make_client: MakeClient, verifier: SigV4VerifyingProxy, index_name: str
) -> None:
    # Each signature a second after the previous one, so a retry that was signed again shows
    # a date of its own; a resend of the first attempt's bytes would repeat its date.
    ticks = itertools.count()
    start = time.time()
    auth = signer(clock=lambda: start + next(ticks))
    target = f"/{index_name}/_doc/"
    verifier.set_fault(Fault.reset_after_request().times(1).matching(path_prefix=target))
    with make_client([verifier.url], auth=auth) as client:
        client.index(index=index_name, id="a:b!c@d e+f", document={"n": 1})
        assert client.get(index=index_name, id="a:b!c@d e+f").source == {"n": 1}
    writes = [r for r in verifier.verified_requests if r.method == "PUT" and target in r.target]
    assert len(writes) == 2, verifier.verified_requests
    assert writes[0].amz_date != writes[1].amz_date
    assert verifier.stats.faults_applied == 1
    all_verified(verifier)  # the health probe after the reset (GET /) was signed as well


def test_a_wrong_secret_is_refused(make_client: MakeClient, verifier: SigV4VerifyingProxy) -> None:
    with make_client([verifier.url], auth=signer(secret_key="wrong-secret-key")) as client:
        with pytest.raises(AuthorizationError) as info:
            client.search(index="anything", query={"match_all": {}})
    assert info.value.status == 403
    assert "does not match the signature you provided" in (info.value.reason or "")
    assert "wrong-secret-key" not in str(info.value) and SECRET not in str(info.value)
    assert verifier.rejected > 0 and verifier.verified == 0
    assert all("signature does not match botocore's" in f for f in verifier.failures)
