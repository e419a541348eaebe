# The README's Quickstart is `make demo` and `make test`; both work from a fresh clone.
# Everything the project needs is installed from here (Debian packages, PyPI, Maven Central).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := dev,async,cli,bench,otel,lint,spark
# Server set for the integration tests: the newest OpenSearch 2.x and the newest Elasticsearch,
# and both with security on (TLS, passwords; the newest OpenSearch 2.x that has a security
# plugin on Maven Central is 2.19.4). Tests marked sturdysearch_secured (the API and bulk
# suites, tests/integration/test_security.py) run against the +security ones too, and through
# the SigV4 verifier (+sigv4: the plain node behind a proxy checking every signature with
# botocore's signer) and through squid (+proxy: absolute-form; `make test-all` adds the
# secured Elasticsearch through squid, i.e. CONNECT tunnels).
STURDY_TEST_SERVERS ?= opensearch:2.19.6,elasticsearch:9.5.4,elasticsearch:9.5.4+security,opensearch:2.19.4+security,opensearch:2.19.6+sigv4,opensearch:2.19.6+proxy
TEST_ALL_SERVERS ?= $(STURDY_TEST_SERVERS),elasticsearch:9.5.4+security+proxy
export STURDY_TEST_SERVERS

.PHONY: demo test test-all test-unit lint typecheck system-deps toxiproxy venv bench clean

system-deps:
	@bash scripts/system-deps.sh

# Toxiproxy, built from the Go module proxy, for the outage tests behind a third-party injector.
toxiproxy:
	@bash scripts/toxiproxy.sh

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: system-deps $(STAMP)

demo: venv
	$(BIN)/sturdysearch demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/sturdysearch lint src tests bench scripts

typecheck: venv
	$(BIN)/mypy

test-unit: venv
	$(BIN)/pytest tests/unit -q

# The full suite (unit + integration against real nodes), kept under 30 minutes here.
test: lint
	$(BIN)/pytest -m "not slow" --durations=40

# Everything, including the long scenarios marked `slow`.
test-all: lint toxiproxy
	STURDY_TEST_SERVERS=$(TEST_ALL_SERVERS) $(BIN)/pytest --durations=40

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
