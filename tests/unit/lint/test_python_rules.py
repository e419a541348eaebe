"""Every Python rule both ways: each snippet marks the lines a rule must fire on with
``# !CODE``; a snippet without marks must produce no finding at all (of any rule), so a rule
that fires on a neighbour's negative case fails here too."""

from __future__ import annotations

import textwrap

import pytest
from lint_marks import expected

from sturdysearch.lint.python import check_python

ES = "from elasticsearch import Elasticsearch, AsyncElasticsearch, helpers\n"
OS = "from opensearchpy import OpenSearch, AsyncOpenSearch\n"


def found(source: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in check_python(source, "snippet.py")}


CASES: dict[str, str] = {
    # ---- SSP101: TLS verification off
    "ssp101-verify-certs": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5, verify_certs=False)  # !SSP101
""",
    "ssp101-verify-from-constant": ES
    + """
VERIFY = False
es = Elasticsearch("https://h:9200", request_timeout=5, verify_certs=VERIFY)  # !SSP101
""",
    "ssp101-show-warn-and-hostname": OS
    + """
c = OpenSearch(["https://h"], timeout=5, ssl_show_warn=False, ssl_assert_hostname=False)  # !SSP101
""",
    "ssp101-context": ES
    + """
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False  # !SSP101
ctx.verify_mode = ssl.CERT_NONE  # !SSP101
other = ssl._create_unverified_context()  # !SSP101
""",
    "ssp101-sturdysearch-skip": """
from sturdysearch import TLSConfig
tls = TLSConfig(dangerously_skip_tls_verify=True)  # !SSP101
""",
    "ssp101-neg-constant-true": ES
    + """
VERIFY = True
es = Elasticsearch("https://h:9200", request_timeout=5, verify_certs=VERIFY, ca_certs="ca.pem")
""",
    "ssp101-neg-from-settings": ES
    + """
import settings
es = Elasticsearch("https://h:9200", request_timeout=5, verify_certs=settings.VERIFY)
""",
    "ssp101-neg-reading-the-setting": ES
    + """
import ssl
assert ctx.verify_mode == ssl.CERT_NONE or ctx.verify_mode != ssl.CERT_NONE
""",
    "ssp101-neg-no-client-import": """
import ssl
ctx = ssl.create_default_context()
ctx.verify_mode = ssl.CERT_NONE
""",
    # ---- SSP102: unbounded timeouts
    "ssp102-none": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=None)  # !SSP102
es.options(request_timeout=None).search(index="a")  # !SSP102
""",
    "ssp102-opensearch": OS
    + """
c = OpenSearch(["https://h"], timeout=None)  # !SSP102
""",
    "ssp102-neg-number": ES
    + """
TIMEOUT = 30
es = Elasticsearch("https://h:9200", request_timeout=TIMEOUT)
es.options(request_timeout=2).search(index="a")
""",
    # ---- SSP103: no explicit timeout
    "ssp103-missing": ES
    + OS
    + """
es = Elasticsearch("https://h:9200")  # !SSP103
c = AsyncOpenSearch(["https://h"])  # !SSP103
""",
    "ssp103-neg-options-chained-or-splat": ES
    + """
es = Elasticsearch("https://h:9200").options(request_timeout=5)
cfg = {"request_timeout": 5}
es2 = Elasticsearch("https://h:9200", **cfg)
""",
    "ssp103-neg-sturdysearch-has-a-deadline": """
import sturdysearch
client = sturdysearch.Client("https://h:9200")
""",
    # ---- SSP104: API timeout= given a number
    "ssp104-number": OS
    + """
client = OpenSearch(["https://h"], timeout=5)
client.search(index="a", body={}, timeout=30)  # !SSP104
client.indices.create(index="a", timeout=10)  # !SSP104
""",
    "ssp104-untracked-receiver": ES
    + """
def run(es):
    return es.search(index="a", timeout=2.5)  # !SSP104
""",
    "ssp104-neg-time-string-and-ctor": OS
    + """
client = OpenSearch(["https://h"], timeout=5)
client.search(index="a", body={}, timeout="30s", request_timeout=30)
client.index(index="a", id="1", body={}, timeout=-1)
""",
    "ssp104-neg-sturdysearch-deadline": """
from sturdysearch import Client
client = Client("https://h:9200")
client.search(index="a", timeout=2.0)
""",
    "ssp104-neg-other-library": ES
    + """
import requests
requests.get("https://x", timeout=5)
""",
    # ---- SSP105: client per call
    "ssp105-loop": ES
    + """
for host in hosts:
    es = Elasticsearch(host, request_timeout=5)  # !SSP105
    es.info()
""",
    "ssp105-handler": ES
    + """
@app.route("/search")
def search_view():
    es = Elasticsearch("https://h:9200", request_timeout=5)  # !SSP105
    return es.search(index="a")
""",
    "ssp105-used-and-dropped-in-a-loop": ES
    + """
def lookup(q):
    with Elasticsearch("https://h:9200", request_timeout=5) as es:  # !SSP105
        return es.search(index="a", q=q)["hits"]

for q in queries:
    lookup(q)
""",
    "ssp105-neg-module-global-and-cache": ES
    + """
import functools
es = Elasticsearch("https://h:9200", request_timeout=5)

@functools.cache
def get_client():
    return Elasticsearch("https://h:9200", request_timeout=5)

_client = None
def client():
    global _client
    if _client is None:
        _client = Elasticsearch("https://h:9200", request_timeout=5)
    return _client

for q in queries:
    get_client().search(index="a")
    client().search(index="a")
""",
    "ssp105-neg-one-client-per-cluster": ES
    + """
clients = {}
for host in hosts:
    clients[host] = Elasticsearch(host, request_timeout=5)
pool = [Elasticsearch(h, request_timeout=5) for h in hosts]
""",
    "ssp105-neg-factory-returns-it": ES
    + """
def make():
    es = Elasticsearch("https://h:9200", request_timeout=5)
    es.info()
    return es

for _ in range(3):
    make()
""",
    "ssp105-neg-script-main": ES
    + """
def main():
    es = Elasticsearch("https://h:9200", request_timeout=5)
    es.info()
""",
    # ---- SSP106: lazy bulk generators
    "ssp106-dropped": """
from elasticsearch.helpers import parallel_bulk, streaming_bulk
parallel_bulk(es, actions)  # !SSP106
gen = streaming_bulk(es, actions)  # !SSP106
""",
    "ssp106-module-helpers": """
from opensearchpy import helpers
helpers.parallel_bulk(client, actions, thread_count=4)  # !SSP106
""",
    "ssp106-neg-consumed": """
import collections
from elasticsearch.helpers import parallel_bulk, streaming_bulk
collections.deque(parallel_bulk(es, actions), maxlen=0)
for ok, item in streaming_bulk(es, actions):
    if not ok:
        print(item)
gen = parallel_bulk(es, actions)
failed = [item for ok, item in gen if not ok]
def stream():
    return streaming_bulk(es, actions)
""",
    # ---- SSP107: bulk results ignored
    "ssp107-helper-raise-off": """
from elasticsearch.helpers import bulk
bulk(es, actions, raise_on_error=False)  # !SSP107
ok, _ = bulk(es, actions, raise_on_error=False, stats_only=True)  # !SSP107
""",
    "ssp107-raw-bulk-dropped": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5)
es.bulk(operations=lines)  # !SSP107
resp = es.bulk(operations=lines)  # !SSP107
print("done")
took = es.bulk(operations=lines)  # !SSP107
print(took["took"], took)
""",
    "ssp107-async-raw-bulk-dropped": ES
    + """
es = AsyncElasticsearch("https://h:9200", request_timeout=5)
async def load(lines):
    await es.bulk(operations=lines)  # !SSP107
""",
    "ssp107-neg-checked": ES
    + """
from elasticsearch.helpers import bulk
es = Elasticsearch("https://h:9200", request_timeout=5)
resp = es.bulk(operations=lines)
if resp["errors"]:
    raise RuntimeError([i for i in resp["items"] if "error" in i["index"]])
def load(lines):
    answer = es.bulk(operations=lines)
    return answer
got = es.bulk(operations=lines)
failures = got.get("items")
ok, errors = bulk(es, actions, raise_on_error=False)
for e in errors:
    print(e)
bulk(es, actions)  # raises BulkIndexError on failures: nothing can go unnoticed
bulk(es, actions, stats_only=True)
""",
    # ---- SSP108: queries from strings
    "ssp108-fstring-and-concat": ES
    + """
import json
es = Elasticsearch("https://h:9200", request_timeout=5)
es.search(index="a", q=f"title:{term}")  # !SSP108
es.search(index="a", q="title:" + term)  # !SSP108
es.search(index="a", body='{"query": {"match": {"t": "%s"}}}' % term)  # !SSP108
es.count(index="a", body=json.loads('{"query": {"term": {"t": "' + term + '"}}}'))  # !SSP108
""",
    "ssp108-through-a-local": ES
    + """
def find(es, term):
    body = '{"query": {"match": {"t": "{}"}}}'.format(term)
    return es.search(index="a", body=body)  # !SSP108
""",
    "ssp108-neg-dict-and-constant": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5)
es.search(index="a", query={"match": {"t": term}})
es.search(index="a", q="title:fixed")
es.search(index=f"logs-{day}", query={"match_all": {}})
""",
    # ---- SSP109: auto-id writes retried
    "ssp109-retry-loop": ES
    + """
import time
es = Elasticsearch("https://h:9200", request_timeout=5)
for attempt in range(3):
    try:
        es.index(index="a", document=doc)  # !SSP109
        break
    except Exception:
        time.sleep(2 ** attempt)
""",
    "ssp109-decorator": ES
    + """
import tenacity
@tenacity.retry
def save(es, doc):
    es.index(index="a", document=doc)  # !SSP109
""",
    "ssp109-neg-with-id-or-not-a-retry": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5)
for attempt in range(3):
    try:
        es.index(index="a", id=doc["id"], document=doc)
        break
    except Exception as exc:
        print(exc)
for doc in docs:
    try:
        es.index(index="a", document=doc)
    except Exception as exc:
        print(exc)
""",
    # ---- SSP110: client retries with auto-id bulk actions
    "ssp110-retry-on-timeout": ES
    + """
from elasticsearch.helpers import bulk
es = Elasticsearch("https://h:9200", request_timeout=5, retry_on_timeout=True)
bulk(es, ({"_index": "a", "_source": d} for d in docs))  # !SSP110
""",
    "ssp110-neg-ids-or-no-retry": ES
    + """
from elasticsearch.helpers import bulk
es = Elasticsearch("https://h:9200", request_timeout=5, retry_on_timeout=True)
bulk(es, ({"_index": "a", "_id": d["id"], "_source": d} for d in docs))
bulk(es, ({"_op_type": "update", "_index": "a", "_id": d["id"], "doc": d} for d in docs))
""",
    "ssp110-neg-default-client": ES
    + """
from elasticsearch.helpers import bulk
es = Elasticsearch("https://h:9200", request_timeout=5)
bulk(es, ({"_index": "a", "_source": d} for d in docs))
""",
    # ---- SSP111: fixed-interval retry loops
    "ssp111-fixed-sleep": ES
    + """
import time
es = Elasticsearch("https://h:9200", request_timeout=5)
DELAY = 5
while True:
    try:
        es.search(index="a")
        break
    except Exception as exc:
        print(exc)
        time.sleep(DELAY)  # !SSP111
""",
    "ssp111-async-fixed": ES
    + """
import asyncio
es = AsyncElasticsearch("https://h:9200", request_timeout=5)
async def ping():
    for _ in range(5):
        try:
            return await es.info()
        except Exception as exc:
            print(exc)
            await asyncio.sleep(1)  # !SSP111
""",
    "ssp111-neg-readiness-poll": ES
    + """
import time
es = Elasticsearch("https://h:9200", request_timeout=5)
for _ in range(100):
    time.sleep(0.1)
    try:
        es.cluster.health(wait_for_status="yellow")
        break
    except Exception as exc:
        print(exc)
""",
    "ssp111-neg-backoff": ES
    + """
import random
import time
es = Elasticsearch("https://h:9200", request_timeout=5)
delay = 0.1
for attempt in range(5):
    try:
        es.search(index="a")
        break
    except Exception as exc:
        print(exc)
        time.sleep(delay * random.random())
        delay *= 2
for attempt in range(5):
    try:
        es.search(index="a")
        break
    except Exception as exc:
        print(exc)
        time.sleep(2 ** attempt)
""",
    # ---- SSP112: swallowed client errors
    "ssp112-pass": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5)
try:
    es.index(index="a", id="1", document=doc)
except Exception:  # !SSP112
    pass
for d in docs:
    try:
        es.delete(index="a", id=d)
    except:  # !SSP112
        continue
""",
    "ssp112-neg-logged-or-specific": ES
    + """
import logging
from elasticsearch import NotFoundError
es = Elasticsearch("https://h:9200", request_timeout=5)
try:
    es.delete(index="a", id="1")
except NotFoundError:
    pass
try:
    es.index(index="a", id="1", document=doc)
except Exception:
    logging.exception("index failed")
try:
    value = int(text)
except Exception:
    pass
""",
    # ---- SSP113: credentials exposed
    "ssp113-literals": ES
    + """
es = Elasticsearch("https://h:9200", request_timeout=5, basic_auth=("elastic", "changeme"))  # !SSP113
es2 = Elasticsearch("https://h:9200", request_timeout=5, api_key="c2VjcmV0")  # !SSP113
URL = "https://elastic:hunter2@search.example.com:9200"  # !SSP113
""",
    "ssp113-plain-http": ES
    + """
import os
es = Elasticsearch(
    "http://search.internal:9200",  # !SSP113
    request_timeout=5,
    basic_auth=("elastic", os.environ["ES_PASSWORD"]),
)
URL = "http://elastic:hunter2@search.example.com:9200"  # !SSP113
""",
    "ssp113-neg-env-and-loopback": ES
    + """
import os
es = Elasticsearch(
    "https://search.internal:9200",
    request_timeout=5,
    basic_auth=(os.environ["ES_USER"], os.environ["ES_PASSWORD"]),
)
local = Elasticsearch("http://localhost:9200", request_timeout=5, api_key=os.environ["K"])
TEMPLATE = "https://{user}:{password}@h:9200"
""",
    # ---- SSP114: sniff on start
    "ssp114-sniff": ES
    + """
es = Elasticsearch(["https://h:9200"], request_timeout=5, sniff_on_start=True)  # !SSP114
""",
    "ssp114-neg-off": ES
    + """
es = Elasticsearch(["https://h:9200"], request_timeout=5, sniff_on_start=False)
""",
    # ---- SSP115: blocking client in async def
    "ssp115-sync-client": ES
    + """
from elasticsearch.helpers import bulk
es = Elasticsearch("https://h:9200", request_timeout=5)
async def handler(request):
    hits = es.search(index="a")  # !SSP115
    bulk(es, actions)  # !SSP115
    return hits
""",
    "ssp115-self-attribute": OS
    + """
class Repo:
    def __init__(self):
        self.client = OpenSearch(["https://h"], timeout=5)

    async def find(self):
        return self.client.search(index="a")  # !SSP115
""",
    "ssp115-neg-async-or-thread": ES
    + """
import asyncio
from elasticsearch.helpers import async_bulk
es = Elasticsearch("https://h:9200", request_timeout=5)
aes = AsyncElasticsearch("https://h:9200", request_timeout=5)
async def handler(request):
    hits = await aes.search(index="a")
    await async_bulk(aes, actions)
    more = await asyncio.to_thread(es.search, index="a")
    return hits, more
def sync_handler():
    return es.search(index="a")
""",
    "ssp115-neg-same-name-other-function": ES
    + """
async def scenario():
    async with AsyncElasticsearch("https://h:9200", request_timeout=5) as client:
        return client.info(), await client.search(index="a")
def later():
    with Elasticsearch("https://h:9200", request_timeout=5) as client:
        return client.search(index="a")
""",
    "ssp115-same-name-blocking-here": ES
    + """
def earlier():
    with AsyncElasticsearch("https://h:9200", request_timeout=5) as client:
        return client
async def handler(client: Elasticsearch):
    return client.search(index="a")  # !SSP115
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_case(name: str) -> None:
    source = textwrap.dedent(CASES[name])
    assert found(source) == expected(source)


def test_every_python_rule_has_a_positive_and_a_negative_case() -> None:
    from sturdysearch.lint.rules import RULES

    for rule in RULES:
        if rule.language != "python":
            continue
        prefix = rule.code.lower()
        names = [n for n in CASES if n.startswith(prefix)]
        assert any("-neg-" in n for n in names), f"{rule.code} lacks a negative case"
        assert any("-neg-" not in n and (n.split("-")[0], rule.code) for n in names), (
            f"{rule.code} lacks a positive case"
        )
        assert any(rule.code in CASES[n] for n in names if "-neg-" not in n), (
            f"no positive case of {rule.code} marks a line"
        )


def test_implicit_timeouts_are_left_alone_in_tests() -> None:
    source = ES + 'es = Elasticsearch("https://h:9200")\n'
    assert {f.code for f in check_python(source, "app/search.py")} == {"SSP103"}
    for path in ("tests/test_search.py", "pkg/search_test.py", "conftest.py", "x/tests/util.py"):
        assert check_python(source, path) == [], path


def test_findings_never_repeat_a_secret() -> None:
    source = ES + textwrap.dedent(
        """
        es = Elasticsearch(
            "http://elastic:Sup3rSecret@search.internal:9200",
            request_timeout=5,
            basic_auth=("elastic", "Sup3rSecret"),
            api_key="Sup3rSecret",
        )
        """
    )
    findings = check_python(source, "app.py")
    assert {f.code for f in findings} == {"SSP113"} and len(findings) >= 3
    for finding in findings:
        assert "Sup3rSecret" not in finding.message, finding


def test_a_file_without_a_search_client_is_not_judged() -> None:
    source = 'import requests\nrequests.get("http://u:p@h/x", verify=False)\n'
    assert found(source) == set()


def test_syntax_error_raises() -> None:
    with pytest.raises(SyntaxError):
        check_python("from elasticsearch import Elasticsearch\ndef (:\n", "bad.py")
