"""A local nginx that answers every request with a fixed, realistic search response.

The benchmarks measure client-side cost, so the server must be as cheap and as steady as
possible: nginx serves a canned body straight from its configuration (`return 200 '...'`),
for any method and any path, over HTTP/1.1 keep-alive. `GET /` (any method on `/`, in fact)
answers a realistic Elasticsearch root document instead.

Every response carries `X-Elastic-Product: Elasticsearch`: elasticsearch-py 8+/9 raises
`UnsupportedProductError` on the first 2xx answer that lacks it (it does not call `GET /`).

Everything nginx needs (config, pid file, error log, temp dirs) lives in a fresh temp dir;
nothing is written under /etc, /var or /run.

Use it as a context manager::

    with CannedServer() as url:   # "http://127.0.0.1:PORT"
        ...

or run it in the foreground for manual testing::

    python bench/canned_server.py [--port N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx")

# Versions match the integration-test servers named in the Makefile.
ES_VERSION = "9.5.4"
OS_VERSION = "2.19.6"

SEARCH_INDEX = "logs-web-2026.11.27"


def _log_doc(i: int) -> dict[str, Any]:
    """One web-access log document, roughly 300-350 bytes of JSON."""
    methods = ("GET", "GET", "POST", "GET", "PUT")
    paths = ("/api/v2/orders", "/api/v2/cart", "/api/v2/checkout", "/healthz", "/api/v2/users")
    statuses = (200, 200, 201, 200, 404, 500, 200, 304, 200, 200)
    status = statuses[i % len(statuses)]
    return {
        "@timestamp": f"2026-11-27T02:{10 + i:02d}:{(i * 7) % 60:02d}.{(i * 137) % 1000:03d}Z",
        "host": {"name": f"web-{i % 4 + 1:02d}"},
        "service": {"name": "storefront"},
        "log": {"level": "error" if status >= 500 else "info"},
        "http": {
            "request": {"method": methods[i % len(methods)]},
            "response": {"status_code": status},
        },
        "url": {"path": paths[i % len(paths)]},
        "event": {"duration": 1_250_000 + 31_337 * i},
        "trace": {"id": f"{0x5F3A9C21E4B7D8F0 + i * 0x1F1F:016x}a1b2c3d4e5f60718"},
        "message": f"request completed in {1.25 + 0.031 * i:.3f}ms",
    }


def search_response(hits: int = 10) -> dict[str, Any]:
    """The canned answer to every search: `hits` log documents, like a real `_search`."""
    return {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": 1342, "relation": "eq"},
            "max_score": 2.7183,
            "hits": [
                {
                    "_index": SEARCH_INDEX,
                    "_id": f"Xk3b{i:02d}ZQBm7pWcT0sd9L",
                    "_score": round(2.7183 - 0.05 * i, 4),
                    "_source": _log_doc(i),
                }
                for i in range(hits)
            ],
        },
    }


def root_response(flavor: str = "elasticsearch") -> dict[str, Any]:
    """The answer to `GET /`, shaped like the real thing for the given flavor."""
    if flavor == "opensearch":
        return {
            "name": "bench-node-1",
            "cluster_name": "bench",
            "cluster_uuid": "q1VtSQMbQ5yY1m0rG3cV4w",
            "version": {
                "distribution": "opensearch",
                "number": OS_VERSION,
                "build_type": "tar",
                "build_hash": "0000000000000000000000000000000000000000",
                "build_date": "2026-01-01T00:00:00.000000Z",
                "build_snapshot": False,
                "lucene_version": "9.12.2",
                "minimum_wire_compatibility_version": "7.10.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "The OpenSearch Project: https://opensearch.org/",
        }
    return {
        "name": "bench-node-1",
        "cluster_name": "bench",
        "cluster_uuid": "q1VtSQMbQ5yY1m0rG3cV4w",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2026-01-01T00:00:00.000000000Z",
            "build_snapshot": False,
            "lucene_version": "10.3.2",
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }


def _nginx_return(doc: dict[str, Any], var: str, indent: str) -> str:
    """nginx directives that answer 200 with `doc` as compact JSON.

    nginx refuses a config token longer than ~4 KB, so the JSON is cut into `set $varN '...'`
    chunks (evaluated per request by the rewrite module: a few memcpy's) and returned as
    `$var0$var1...`. nginx interpolates `$name` in these strings and treats backslash and
    quote specially; the canned documents contain none of them, and we refuse rather than
    escape badly.
    """
    text = orjson.dumps(doc).decode()
    bad = set(text) & {"'", "\\", "$"}
    if bad:
        raise ValueError(f"canned JSON contains characters nginx would mangle: {sorted(bad)}")
    chunk = 3000
    parts = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    lines = [f"{indent}set ${var}{n} '{part}';" for n, part in enumerate(parts)]
    lines.append(f"{indent}return 200 " + "".join(f"${var}{n}" for n in range(len(parts))) + ";")
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the nginx child before exec: get SIGTERM if the Python parent dies (Linux only),
    so a crashed or killed benchmark leaves no nginx behind. Linux sends it when the *thread*
    that started nginx exits: start the server from a thread that outlives its use."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


def find_nginx() -> str:
    for cand in (shutil.which("nginx"), *NGINX_CANDIDATES):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("nginx not found; install it with `make system-deps` (Debian nginx-light)")


# nginx's own counters (stub_status), so a benchmark can check how many requests and new
# connections a client really made. Any other path gets the canned search answer.
STATUS_PATH = "/__canned/status"


def render_config(
    tmp: Path, port: int, flavor: str = "elasticsearch", hits: int = 10, cpu: int | None = None
) -> str:
    is_root = os.geteuid() == 0
    affinity = f"worker_cpu_affinity {1 << cpu:b};" if cpu is not None else ""
    product_header = (
        "        add_header X-Elastic-Product Elasticsearch always;\n"
        if flavor == "elasticsearch"
        else ""
    )
    return f"""# generated by bench/canned_server.py
daemon off;
master_process on;
worker_processes 1;
{affinity}
{"user root;" if is_root else ""}
pid {tmp}/nginx.pid;
lock_file {tmp}/nginx.lock;
error_log {tmp}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    keepalive_requests 100000000;
    keepalive_timeout 600s;
    tcp_nodelay on;
    client_body_buffer_size 64k;
    client_max_body_size 10m;

    server {{
        listen 127.0.0.1:{port} reuseport;
        default_type application/json;
{product_header}
        location = {STATUS_PATH} {{
            stub_status;
        }}
        location = / {{
{_nginx_return(root_response(flavor), "root", " " * 12)}
        }}
        location / {{
{_nginx_return(search_response(hits), "search", " " * 12)}
        }}
    }}
}}
"""


class CannedServer:
    """nginx on a free 127.0.0.1 port; entering the context starts it and yields its URL."""

    def __init__(
        self,
        port: int | None = None,
        *,
        flavor: str = "elasticsearch",
        hits: int = 10,
        cpu: int | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if flavor not in ("elasticsearch", "opensearch"):
            raise ValueError(f"unknown flavor {flavor!r}")
        self._want_port = port
        self.flavor = flavor
        self.hits = hits
        self.cpu = cpu
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.url: str | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        nginx = find_nginx()
        self._tmp = Path(tempfile.mkdtemp(prefix="sturdy-canned-"))
        attempts = 1 if self._want_port else 5
        last_error = ""
        for _ in range(attempts):
            port = self._want_port or _free_port()
            conf = self._tmp / "nginx.conf"
            conf.write_text(render_config(self._tmp, port, self.flavor, self.hits, self.cpu))
            # -e: startup errors go to our log, not the compiled-in path; -p: our prefix.
            self._proc = subprocess.Popen(
                [nginx, "-p", f"{self._tmp}/", "-e", f"{self._tmp}/error.log", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not nginx
                preexec_fn=_die_with_parent,
            )
            if self._wait_ready(port):
                self.port = port
                self.pid = self._proc.pid
                self.url = f"http://127.0.0.1:{port}"
                return self.url
            last_error = self._collect_failure()
        self._cleanup_tmp()
        raise RuntimeError(f"nginx did not start: {last_error}")

    def _wait_ready(self, port: int) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200 and b"cluster_name" in body:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def status(self) -> dict[str, int]:
        """nginx's counters: `accepts` (connections ever accepted), `requests`, `active`.

        The status request itself counts: it is one more request and, being made on a fresh
        connection, one more accept.
        """
        assert self.port is not None, "server not started"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", STATUS_PATH)
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        # Active connections: 2 \nserver accepts handled requests\n 5 5 9 \nReading: ...
        lines = text.splitlines()
        accepts, handled, requests = (int(x) for x in lines[2].split())
        return {
            "active": int(lines[0].split(":")[1]),
            "accepts": accepts,
            "handled": handled,
            "requests": requests,
        }

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by nginx: master and workers."""
        assert self.pid is not None, "server not started"
        return sum(_proc_cpu_seconds(p) for p in (self.pid, *_children(self.pid)))

    def _collect_failure(self) -> str:
        assert self._proc is not None and self._tmp is not None
        self._terminate()
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        log = self._tmp / "error.log"
        if log.exists():
            err += log.read_text(errors="replace")
        return err.strip()[-2000:] or f"exit code {self._proc.returncode}"

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        # SIGQUIT is nginx's graceful shutdown (idle keep-alive connections are closed);
        # fall back to SIGTERM (fast shutdown) and finally SIGKILL.
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def stop(self) -> None:
        self._terminate()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        self._cleanup_tmp()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, default=None, help="port to listen on (default: free)")
    ap.add_argument("--flavor", choices=("elasticsearch", "opensearch"), default="elasticsearch")
    ap.add_argument("--hits", type=int, default=10, help="hits in the canned search answer")
    ap.add_argument("--cpu", type=int, default=None, help="pin the nginx worker to this CPU")
    ap.add_argument("--print-config", action="store_true", help="print nginx.conf and exit")
    args = ap.parse_args(argv)
    if args.print_config:
        print(
            render_config(Path("/tmp/EXAMPLE"), args.port or 9200, args.flavor, args.hits, args.cpu)
        )
        return 0
    server = CannedServer(args.port, flavor=args.flavor, hits=args.hits, cpu=args.cpu)
    url = server.start()
    body_len = len(orjson.dumps(search_response(args.hits)))
    print(f"canned {args.flavor} server at {url} (nginx pid {server.pid}); search answer is")
    print(f"{body_len} bytes with {args.hits} hits. Try: curl -s -XPOST {url}/bench/_search")
    print("Ctrl-C to stop.", flush=True)

    def _on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
