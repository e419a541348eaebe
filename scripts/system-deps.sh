#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing: a JDK and Maven for the
# local OpenSearch/Elasticsearch nodes, nginx for the benchmarks' canned-response server, squid
# for the proxy integration tests (a real forward proxy: CONNECT tunnels, absolute-form, auth),
# tmux for the test that the bulk-load progress bar fits an 80-column terminal.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v squid >/dev/null 2>&1 || [ -x /usr/sbin/squid ] || need+=(squid)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
