"""Every Go rule both ways, on tree-sitter's Go grammar (the ``lint`` extra). Lines a rule must
fire on carry ``// !CODE``; a snippet without marks must produce no finding at all."""

from __future__ import annotations

import pytest
from lint_marks import expected

from sturdysearch.lint.golang import check_go_package, load_parser, nolint_lines

ES_IMPORTS = """package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

var _ = tls.Config{}
var _ = strings.NewReader
var _ = fmt.Sprintf
var _ = esapi.Response{}
var _ = esutil.BulkIndexerItem{OnFailure: nil}
var ctxTimeout, _ = context.WithTimeout(context.Background(), 0)
var _ = http.MethodGet
"""

OS_IMPORTS = """package app

import (
	"context"
	"net/http"

	opensearch "github.com/opensearch-project/opensearch-go/v2"
	"github.com/opensearch-project/opensearch-go/v2/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v2/opensearchutil"
)

var _ = opensearchapi.SearchRequest{}
var _ = opensearchutil.BulkIndexerItem{OnFailure: nil}
var _ = http.MethodGet
var ctxTimeout, _ = context.WithTimeout(context.Background(), 0)
"""


@pytest.fixture(scope="module")
def parser() -> object:
    return load_parser()


def found(parser: object, *sources: str) -> set[tuple[str, int, str]]:
    files = [(f"f{i}.go", s.encode()) for i, s in enumerate(sources)]
    return {(f.path, f.line, f.code) for f in check_go_package(files, parser)}


CASES: dict[str, str] = {
    "ssg201-literal-and-assignment": ES_IMPORTS
    + """
func client() *http.Transport {
	t := &http.Transport{ResponseHeaderTimeout: 5, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // !SSG201
	cfg := &tls.Config{}
	cfg.InsecureSkipVerify = true // !SSG201
	return t
}
""",
    "ssg201-neg-false": ES_IMPORTS
    + """
func client() *http.Transport {
	return &http.Transport{ResponseHeaderTimeout: 5, TLSClientConfig: &tls.Config{InsecureSkipVerify: false}}
}
""",
    "ssg202-default-client-and-bare-transport": ES_IMPORTS
    + """
func build() {
	_ = http.DefaultClient // !SSG202
	_ = &http.Client{} // !SSG202
	_ = &http.Transport{MaxIdleConnsPerHost: 4} // !SSG202
	_ = elasticsearch.Config{Transport: http.DefaultTransport} // !SSG202
}
""",
    "ssg202-default-client-without-deadlines": """package app

import "github.com/elastic/go-elasticsearch/v8"

func build() {
	es, _ := elasticsearch.NewDefaultClient() // !SSG202
	_, _ = elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{"https://h:9200"}}) // !SSG202
	_ = es
}
""",
    "ssg202-neg-zero-value-returned-with-an-error": """package app

import (
	"errors"

	"github.com/elastic/go-elasticsearch/v8"
)

func config(address string) (elasticsearch.Config, error) {
	if address == "" {
		return elasticsearch.Config{}, errors.New("no address")
	}
	cfg := elasticsearch.Config{Addresses: []string{address}}
	cfg.Transport = nil
	return cfg, nil
}
""",
    "ssg202-neg-timeouts-set": ES_IMPORTS
    + """
func build() {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 5
	_ = &http.Client{Timeout: 10}
	_ = &http.Transport{ResponseHeaderTimeout: 5}
	es, _ := elasticsearch.NewDefaultClient()
	_ = es
}
""",
    "ssg203-handler-and-loop": ES_IMPORTS
    + """
func handle(w http.ResponseWriter, r *http.Request) {
	es, _ := elasticsearch.NewClient(elasticsearch.Config{}) // !SSG203
	_ = es
}

func each(hosts []string) {
	for _, h := range hosts {
		es, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{h}}) // !SSG203
		_ = es
	}
}
""",
    "ssg203-neg-start-up": ES_IMPORTS
    + """
var shared *elasticsearch.Client

func main() {
	es, err := elasticsearch.NewClient(elasticsearch.Config{})
	if err != nil {
		panic(err)
	}
	shared = es
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
}
""",
    "ssg204-205-unchecked-and-open": ES_IMPORTS
    + """
func search(es *elasticsearch.Client) {
	res, err := es.Search(es.Search.WithIndex("a")) // !SSG204,SSG205
	if err != nil {
		return
	}
	fmt.Println(res.String())
}

func create(es *elasticsearch.Client) {
	es.Indices.Create("a") // !SSG205
}

func index(es *elasticsearch.Client) error {
	res, err := esapi.IndexRequest{Index: "a"}.Do(context.Background(), es) // !SSG204
	if err != nil {
		return err
	}
	defer res.Body.Close()
	fmt.Println(res.String())
	return nil
}
""",
    "ssg204-205-neg-checked-closed-or-handed-on": ES_IMPORTS
    + """
type Store struct{ es *elasticsearch.Client }

func (s *Store) Get(id string) error {
	res, err := s.es.Get("a", id)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("get: %s", res.Status())
	}
	return nil
}

func (s *Store) Raw(id string) (*esapi.Response, error) {
	return s.es.Get("a", id)
}

func (s *Store) Checked(id string) error {
	res, err := s.es.Get("a", id)
	if err != nil {
		return err
	}
	return decode(res)
}

func decode(res *esapi.Response) error { return nil }

func (s *Store) DropIfThere() {
	// Best effort: the answer is not read, only closed, so its status does not matter.
	res, err := s.es.Indices.Delete([]string{"a"})
	if err == nil && res != nil {
		res.Body.Close()
	}
}

func (s *Store) Shutdown(ctx context.Context) {
	_ = s.es.Close(ctx)
}
""",
    "ssg206-bulk-indexer": OS_IMPORTS
    + """
func load(client *opensearch.Client) {
	bi, _ := opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{Client: client}) // !SSG206
	_ = bi.Add(context.Background(), opensearchutil.BulkIndexerItem{Action: "index"}) // !SSG206
}
""",
    "ssg206-neg-callbacks-set": OS_IMPORTS
    + """
func load(client *opensearch.Client) {
	bi, _ := opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{
		Client:  client,
		OnError: func(ctx context.Context, err error) {},
	})
	_ = bi.Add(context.Background(), opensearchutil.BulkIndexerItem{
		Action:    "index",
		OnFailure: func(ctx context.Context, item opensearchutil.BulkIndexerItem, res opensearchutil.BulkIndexerResponseItem, err error) {},
	})
	item := opensearchutil.BulkIndexerItem{Action: "index"}
	item.OnFailure = func(ctx context.Context, item opensearchutil.BulkIndexerItem, res opensearchutil.BulkIndexerResponseItem, err error) {}
	_ = bi.Add(context.Background(), item)
	expected := opensearchutil.BulkIndexerItem{Action: "index"} // a test's expected value, never added
	_ = expected
}
""",
    "ssg207-sprintf-and-concat": ES_IMPORTS
    + """
func query(term string) {
	_ = strings.NewReader(fmt.Sprintf(`{"query": {"match": {"title": "%s"}}}`, term)) // !SSG207
	_ = `{"query": {"term": {"user": "` + term + `"}}}` // !SSG207
}
""",
    "ssg207-neg-marshal-and-plain-strings": ES_IMPORTS
    + """
func query(term string) {
	_ = fmt.Sprintf("index-%s", term)
	_ = "logs-" + term
	_ = strings.NewReader(`{"query": {"match_all": {}}}`)
}
""",
    "ssg208-types": ES_IMPORTS
    + """
func typed(es *elasticsearch.Client) {
	req := esapi.IndexRequest{Index: "a", DocumentType: "tweet"} // !SSG208
	_ = req
	_, _ = http.NewRequest("GET", "/twitter/tweet/1", nil) // !SSG208
	_ = esapi.PerformRequestOptions{Path: "/twitter/tweet/_search"} // !SSG208
	_, _ = http.NewRequest("GET", fmt.Sprintf("/%s/tweet/%s", index, id), nil) // !SSG208
}
""",
    "ssg208-neg-typeless": ES_IMPORTS
    + """
func typeless() {
	_, _ = http.NewRequest("GET", "/twitter/_doc/1", nil)
	_ = esapi.PerformRequestOptions{Path: "/twitter/_search"}
	_, _ = http.NewRequest("GET", "/_cluster/health/twitter", nil)
	_ = "/path/to/cert" // a file path is not a request path
	_ = Options{CertFile: "/etc/ssl/es/cert"}
}
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_case(parser: object, name: str) -> None:
    source = CASES[name]
    assert {(line, code) for _, line, code in found(parser, source)} == expected(source)


def test_every_go_rule_has_both_cases() -> None:
    from sturdysearch.lint.rules import RULES

    for rule in RULES:
        if rule.language != "go":
            continue
        digits = rule.code[3:]
        names = [n for n in CASES if digits in n]
        assert any("-neg-" in n for n in names), f"{rule.code} lacks a negative case"
        assert any(rule.code in CASES[n] for n in names if "-neg-" not in n), rule.code


def test_olivere_type_calls(parser: object) -> None:
    source = """package app

import (
	"context"
	"github.com/olivere/elastic/v7"
)

func put(c *elastic.Client) {
	_, _ = c.Index().Index("twitter").Type("tweet").Id("1").BodyJson(nil).Do(context.Background()) // !SSG208
}
"""
    assert {(line, code) for _, line, code in found(parser, source)} == expected(source)
    typeless = source.replace('Type("tweet")', 'Type("_doc")').replace(" // !SSG208", "")
    assert found(parser, typeless) == set(), "_doc is the typeless name"
    # olivere/elastic v6 and older speak to Elasticsearch 6, where a type is required.
    source = source.replace("olivere/elastic/v7", "olivere/elastic").replace(" // !SSG208", "")
    assert {(line, code) for _, line, code in found(parser, source)} == expected(source)


def test_tls_config_in_a_file_without_the_client_import(parser: object) -> None:
    """A package is judged as a whole: the TLS config often lives beside the client file."""
    client_file = """package app

import "github.com/elastic/go-elasticsearch/v8"

var _ = elasticsearch.Config{Transport: nil}
"""
    tls_file = """package app

import "crypto/tls"

var insecure = &tls.Config{InsecureSkipVerify: true}
"""
    hits = found(parser, client_file, tls_file)
    assert ("f1.go", 5, "SSG201") in hits
    alone = found(parser, tls_file)
    assert alone == set(), "a package without a search client is not judged"


def test_test_servers_need_no_timeouts(parser: object) -> None:
    source = ES_IMPORTS + "\nvar t = &http.Transport{}\nvar c = &http.Client{}\n"
    files = [("server_test.go", source.encode())]
    assert check_go_package(files, parser) == []
    assert len(check_go_package([("server.go", source.encode())], parser)) == 2


def test_nolint_comments() -> None:
    marks = nolint_lines(b"a //nolint:SSG201,ssg205\nb //nolint\nc // nolint:sturdysearch\nd\n")
    assert marks == {1: {"SSG201", "SSG205"}, 2: None, 3: None}
