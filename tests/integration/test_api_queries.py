"""Safe queries, search templates and the by-query calls, the same test against every server of
the run. Templates and by-query need server modules the minimal harness builds lack; those tests
skip there with the module named, and check the client says the same."""

from __future__ import annotations

import time

import pytest
from api_support import fill, modules, require

from sturdysearch import ByQueryResult, Client
from sturdysearch.errors import BadRequestError, DeadlineExceeded
from sturdysearch.query import escape_query_string, query_string, simple_query_string

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured

TEXTS = {
    "1": "C++ (the language) for beginners",
    "2": "title:secret and other notes",
    "3": 'she said "hello',
    "4": "AND OR NOT",
    "5": "path/to/file*.txt?",
    "6": "1+1=2 && x || !y",
    "7": "a<b> {c} [d] ~e ^f \\g",
    "8": "nothing special",
}


@pytest.fixture
def texts(client: Client, index_name: str) -> str:
    client.indices.create(
        index=index_name,
        mappings={"properties": {"text": {"type": "text"}, "secret": {"type": "keyword"}}},
    )
    for doc_id, text in TEXTS.items():
        client.index(index=index_name, id=doc_id, document={"text": text, "secret": "s3cr3t"})
    client.indices.refresh(index=index_name)
    return index_name


@pytest.mark.parametrize("build", [query_string, simple_query_string])
def test_user_text_is_searched_for_literally(client: Client, texts: str, build: object) -> None:
    for doc_id, text in TEXTS.items():
        result = client.search(index=texts, query=build(text, fields=["text"]))  # type: ignore[operator]
        assert doc_id in [h["_id"] for h in result.hits], text


@pytest.mark.parametrize("build", [query_string, simple_query_string])
@pytest.mark.parametrize(
    "hostile", ["*", "*:*", "secret:s3cr3t", "/.*/", "nothing OR special", "(", '"', "text:*"]
)
def test_user_text_cannot_become_syntax(
    client: Client, texts: str, build: object, hostile: str
) -> None:
    result = client.search(index=texts, query=build(hostile))  # type: ignore[operator]
    assert result.hits == [], hostile


def test_unescaped_text_would_have_failed(client: Client, texts: str) -> None:
    with pytest.raises(BadRequestError):
        client.search(index=texts, query={"query_string": {"query": 'she said "hello'}})
    fixed = {"query_string": {"query": escape_query_string('she said "hello')}}
    assert [h["_id"] for h in client.search(index=texts, query=fixed).hits] == ["3"]


def test_search_templates(client: Client, texts: str) -> None:
    if "lang-mustache" not in modules(client):
        with pytest.raises(BadRequestError, match="lacks the lang-mustache module"):
            client.search_template(index=texts, source={"query": {"match_all": {}}})
    require(client, "lang-mustache")
    template = {"query": {"match": {"text": "{{words}}"}}, "size": "{{size}}"}
    hostile = '"}}, "query": {"match_all": {}'
    result = client.search_template(
        index=texts, source=template, params={"words": "beginners", "size": 5}
    )
    assert [h["_id"] for h in result.hits] == ["1"]
    assert result.total == 1
    injected = client.search_template(
        index=texts, source=template, params={"words": hostile, "size": 5}
    )
    assert injected.hits == []
    rendered = client.render_search_template(source=template, params={"words": hostile, "size": 5})
    assert rendered["template_output"]["query"]["match"]["text"] == hostile


def test_delete_by_query_as_a_polled_task(client: Client, index_name: str) -> None:
    if "reindex" not in modules(client):
        with pytest.raises(BadRequestError, match="lacks the reindex module"):
            client.delete_by_query(index=index_name, query={"match_all": {}})
    require(client, "reindex")
    fill(client, index_name, 3_000)
    result = client.delete_by_query(
        index=index_name, query={"term": {"tag": "even"}}, conflicts="proceed", refresh=True
    )
    assert isinstance(result, ByQueryResult)
    assert (result.deleted, result.failures) == (1_500, [])
    assert result.task is not None
    assert client.count(index=index_name)["count"] == 1_500
    started = client.delete_by_query(
        index=index_name, query={"match_all": {}}, wait_for_completion=False
    )
    assert started.task is not None and started.deleted is None
    for _ in range(100):
        if client.tasks.get(task_id=started.task)["completed"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"task {started.task} did not complete in 10 s")


def test_update_by_query_as_a_polled_task(client: Client, index_name: str) -> None:
    require(client, "reindex")
    fill(client, index_name, 1_000)
    client.indices.put_mapping(index=index_name, properties={"tag2": {"type": "keyword"}})
    result = client.update_by_query(index=index_name, conflicts="proceed", refresh=True)
    assert (result.updated, result.total) == (1_000, 1_000)
    if "lang-painless" in modules(client):
        scripted = client.update_by_query(
            index=index_name,
            query={"term": {"tag": "odd"}},
            script={"source": "ctx._source.n = -ctx._source.n"},
            refresh=True,
        )
        assert scripted.updated == 500
        assert client.count(index=index_name, query={"range": {"n": {"lt": 0}}})["count"] == 500


def test_by_query_deadline_names_the_task(client: Client, index_name: str) -> None:
    require(client, "reindex")
    fill(client, index_name, 2_000)
    with pytest.raises(DeadlineExceeded, match="keeps running on the server") as caught:
        client.update_by_query(
            index=index_name, conflicts="proceed", requests_per_second=50, timeout=0.5
        )
    task = str(caught.value).split("task ")[1].split(" ")[0]
    client.tasks.cancel(task_id=task)
