#!/usr/bin/env bash
# Builds Toxiproxy (Shopify's TCP fault injector, a Go program) from the Go module proxy into the
# harness cache, for the outage tests that put a third-party fault injector in front of a node
# (tests/integration/test_outage.py). Without Go it says so and the tests that need it skip.
set -euo pipefail
version=v2.5.0
cache="${STURDY_CACHE_DIR:-}"
if [ -z "$cache" ]; then
  xdg="${XDG_CACHE_HOME:-}"
  case "$xdg" in /*) ;; *) xdg="$HOME/.cache" ;; esac
  cache="$xdg/sturdysearch"
fi
dest="$cache/toxiproxy/$version"
if [ -x "$dest/toxiproxy-server" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "toxiproxy: no Go toolchain, skipping (the toxiproxy outage tests will skip)" >&2
  exit 0
fi
go_bin="$(command -v go || echo /usr/local/go/bin/go)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
echo "toxiproxy: building github.com/Shopify/toxiproxy/v2/cmd/server@$version"
GOPATH="$work/gopath" GOBIN="$work/bin" GOFLAGS=-mod=mod GOTOOLCHAIN=local \
  "$go_bin" install "github.com/Shopify/toxiproxy/v2/cmd/server@$version"
install -m 0755 "$work/bin/server" "$dest/toxiproxy-server"
chmod -R u+w "$work"
