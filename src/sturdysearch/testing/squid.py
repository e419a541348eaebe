"""A real forward proxy for the proxy tests: Debian's squid, run unmodified as a subprocess.

The client's proxy support (CONNECT tunnels for https:// nodes, absolute-form requests for
http:// ones, Basic proxy credentials) is only worth something if a proxy people really run
accepts it, so the tests talk to squid rather than to a proxy of our own. ``scripts/
system-deps.sh`` installs it; without it :func:`find_squid` returns ``None`` and the tests
skip, saying why.

:class:`SquidProxy` writes its own ``squid.conf`` into a temporary directory: loopback only,
CONNECT allowed to any port (the nodes' ports are not 443), nothing cached (a cached search
answer would hide whether the request went through), logs and pid file in that directory.
Its access log is how a test proves a request really went through the proxy: one line per
request, and one per CONNECT tunnel once the tunnel closes (squid logs a transaction when it
ends).

:class:`SilentProxy` is the other kind of proxy a client must survive: one that accepts the
TCP connection and then never says a word.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from sturdysearch.testing.node_user import NodeUser
from sturdysearch.testing.ports import allocate_ports
from sturdysearch.testing.processes import spawn, terminate_groups

__all__ = ["AccessEntry", "ProxyRoute", "SilentProxy", "SquidProxy", "apr1_hash", "find_squid"]

#: The Basic-auth helper squid ships (``dpkg -L squid | grep basic_``): an htpasswd file.
NCSA_AUTH = Path("/usr/lib/squid/basic_ncsa_auth")
#: The request the readiness check sends: squid answers it itself (400, not a proxy request)
#: and logs it; :meth:`SquidProxy.entries` leaves these lines out.
_READY_PATH = "/sturdysearch-squid-ready"
_READY_PROBE = (
    f"GET {_READY_PATH} HTTP/1.1\r\nHost: squid-ready\r\nConnection: close\r\n\r\n"
).encode("ascii")


def find_squid() -> Path | None:
    """``$STURDY_SQUID``, else ``squid`` on the ``PATH`` or in ``/usr/sbin`` (not on a
    non-root ``PATH`` on Debian)."""
    override = os.environ.get("STURDY_SQUID")
    candidates = [override] if override else [shutil.which("squid"), "/usr/sbin/squid"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


# -- htpasswd ---------------------------------------------------------------------------------

_APR1_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, count: int) -> str:
    out = []
    for _ in range(count):
        out.append(_APR1_ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(out)


def apr1_hash(password: str, salt: str) -> str:
    """Apache's ``$apr1$`` MD5 password hash (what ``openssl passwd -apr1`` and ``htpasswd -m``
    write), which squid's ``basic_ncsa_auth`` accepts. MD5-crypt is weak; it only guards a
    throw-away test proxy on loopback, and it needs neither the ``crypt`` module (gone in
    Python 3.13) nor an ``openssl`` binary."""
    magic = "$apr1$"
    salt = salt[:8]
    pw = password.encode()
    sb = salt.encode()
    alternate = hashlib.md5(pw + sb + pw).digest()
    ctx = pw + magic.encode() + sb
    ctx += (alternate * (len(pw) // 16 + 1))[: len(pw)]
    i = len(pw)
    while i:
        ctx += b"\0" if i & 1 else pw[:1]
        i >>= 1
    digest = hashlib.md5(ctx).digest()
    for r in range(1000):
        step = pw if r & 1 else digest
        if r % 3:
            step += sb
        if r % 7:
            step += pw
        step += digest if r & 1 else pw
        digest = hashlib.md5(step).digest()
    groups = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    text = "".join(_to64((digest[a] << 16) | (digest[b] << 8) | digest[c], 4) for a, b, c in groups)
    text += _to64(digest[11], 2)
    return f"{magic}{salt}${text}"


# -- the access log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessEntry:
    """One line of squid's native access log."""

    result: str
    """Squid's result code: ``TCP_TUNNEL`` (a CONNECT), ``TCP_MISS`` (forwarded),
    ``TCP_DENIED`` (refused, e.g. 407)..."""
    status: int
    method: str
    url: str
    """``host:port`` for CONNECT, the absolute URL for the others."""
    user: str
    """The proxy user that authenticated, ``-`` for none."""
    line: str

    @classmethod
    def parse(cls, line: str) -> AccessEntry | None:
        # time elapsed client result/status bytes method url user hierarchy/peer type
        fields = line.split()
        if len(fields) < 8 or "/" not in fields[3]:
            return None
        result, _, status = fields[3].partition("/")
        return cls(
            result=result,
            status=int(status) if status.isdigit() else 0,
            method=fields[5],
            url=fields[6],
            user=fields[7],
            line=line,
        )


class SquidProxy:
    """squid on ``127.0.0.1:port`` (``port=0``: a free one), optionally requiring Basic
    credentials ``auth=(user, password)``. A context manager: started on entry, stopped on
    exit (SIGTERM to its process group, then SIGKILL), its directory removed."""

    def __init__(
        self,
        port: int = 0,
        auth: tuple[str, str] | None = None,
        *,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
    ) -> None:
        self.port = port or allocate_ports(1)[0]
        self.auth = auth
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: contextlib.ExitStack | None = None

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy URL without credentials."""
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy URL carrying ``user:password`` (percent-encoded)."""
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    @property
    def authenticated_url(self) -> str:
        """The URL with the proxy's own credentials (``auth=`` must be given)."""
        assert self.auth is not None, "this SquidProxy has no auth="
        return self.url_with(*self.auth)

    @property
    def directory(self) -> Path:
        assert self._dir is not None, "not started"
        return self._dir

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SquidProxy:
        binary = find_squid()
        if binary is None:
            raise FileNotFoundError(
                "squid is not installed: run scripts/system-deps.sh as root (apt-get install squid)"
            )
        if self.auth is not None and not NCSA_AUTH.is_file():
            raise FileNotFoundError(f"squid's Basic-auth helper {NCSA_AUTH} is missing")
        self._dir = Path(tempfile.mkdtemp(prefix="sturdy-squid-"))
        conf = self._write_config()
        stack = contextlib.ExitStack()
        output = stack.enter_context((self._dir / "squid.out").open("wb"))
        self._output = stack
        me = pwd.getpwuid(os.geteuid())
        self._process = spawn(
            [str(binary), "-N", "-f", str(conf)],
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin")},
            cwd=self._dir,
            output=output,
            user=NodeUser(me.pw_name, me.pw_uid, me.pw_gid),
            die_with_parent=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self) -> Path:
        directory = self.directory
        lines = [
            f"http_port 127.0.0.1:{self.port}",
            "visible_hostname sturdysearch-test-proxy",
            f"pid_filename {directory / 'squid.pid'}",
            f"cache_log {directory / 'cache.log'}",
            f"access_log stdio:{directory / 'access.log'}",
            f"coredump_dir {directory}",
            "cache deny all",
            "cache_mem 0 MB",
            "shutdown_lifetime 0 seconds",
            "pinger_enable off",
            "buffered_logs off",
            # Only loopback destinations: this proxy must never become an open relay.
            "acl to_loopback dst 127.0.0.0/8 ::1",
        ]
        if self.auth is not None:
            user, password = self.auth
            passwd = directory / "passwd"
            salt = hashlib.sha256(os.urandom(16)).hexdigest()[:8]
            passwd.write_text(f"{user}:{apr1_hash(password, salt)}\n")
            lines += [
                f"auth_param basic program {NCSA_AUTH} {passwd}",
                "auth_param basic realm sturdysearch-test-proxy",
                "auth_param basic children 2",
                "acl authenticated proxy_auth REQUIRED",
                "http_access deny !authenticated",
            ]
        lines += ["http_access allow to_loopback", "http_access deny all"]
        conf = directory / "squid.conf"
        conf.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            # squid drops root for this account; it must be able to write its logs here.
            lines.insert(0, "cache_effective_user proxy")
            conf.write_text("\n".join(lines) + "\n")
            account = pwd.getpwnam("proxy")
            for path in (directory, *directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
            directory.chmod(0o755)
        return conf

    def _wait_ready(self) -> None:
        """Until squid answers a request on its port (its own 400 for an origin-form
        request: no upstream involved), or it exits, or ``start_timeout`` passes."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"squid exited with {process.returncode}: {self._tail()}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    sock.sendall(_READY_PROBE)
                    if sock.recv(16).startswith(b"HTTP/1."):
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"squid did not answer on port {self.port} within "
                    f"{self._start_timeout:g} s: {self._tail()}"
                )
            time.sleep(0.05)  # polling a process that is starting: there is nothing to wait on

    def _tail(self) -> str:
        parts = []
        for name in ("squid.out", "cache.log"):
            path = self.directory / name
            if path.is_file():
                parts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(parts) or "(no output)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate_groups([(process.pid, process)], grace=self._stop_grace)
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> SquidProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what went through ------------------------------------------------------------------

    def access_lines(self) -> list[str]:
        """The access log's lines so far, the readiness checks left out."""
        path = self.directory / "access.log"
        if not path.is_file():
            return []
        return [
            line
            for line in path.read_text(errors="replace").splitlines()
            if line.strip() and f" {_READY_PATH} " not in line
        ]

    def entries(self) -> list[AccessEntry]:
        """The access log, parsed (readiness checks left out)."""
        return [e for e in map(AccessEntry.parse, self.access_lines()) if e is not None]

    def tunnels_to(self, port: int, host: str = "127.0.0.1") -> list[AccessEntry]:
        """The CONNECT tunnels to ``host:port`` logged so far (each once it closed)."""
        return [e for e in self.entries() if e.method == "CONNECT" and e.url == f"{host}:{port}"]

    def wait_for(
        self, predicate: Callable[[list[AccessEntry]], bool], timeout: float = 10.0
    ) -> list[AccessEntry]:
        """The entries once ``predicate`` holds for them. Squid writes a line when a
        transaction *ends*, shortly after the client has its answer (and a tunnel's when it
        closes), so a test polls the log file for it; raises ``AssertionError`` with the log
        after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.entries()
            if predicate(entries):
                return entries
            if time.monotonic() > deadline:
                shown = "\n".join(e.line for e in entries) or "(empty)"
                raise AssertionError(f"squid's access log never matched; it has:\n{shown}")
            time.sleep(0.05)  # polling a file another process appends to


class SilentProxy:
    """A TCP listener on loopback that accepts every connection and never sends a byte, nor
    closes one until it is stopped: a proxy that hangs after the TCP handshake. What the
    client writes is read and dropped, so its writes never block either."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind((host, 0))
        self._server.listen(64)
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-proxy", daemon=True)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._server:
                        with contextlib.suppress(OSError):
                            conn, _ = self._server.accept()
                            conn.setblocking(False)
                            self._connections.append(conn)
                            self.accepted += 1
                            selector.register(conn, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        selector.unregister(sock)

    def __enter__(self) -> SilentProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        for conn in self._connections:
            conn.close()
        self._server.close()


class ProxyRoute:
    """A cluster reached through squid, as the test suites use it (``+proxy`` specs).

    ``opensearch:2.19.6+proxy`` runs the suites marked ``sturdysearch_secured`` with
    ``proxy=`` pointing at a squid started for the session: plain nodes are reached in
    absolute-form, secured ones (``elasticsearch:9.5.4+security+proxy``) through CONNECT
    tunnels, TLS end to end. The node URLs are the cluster's own; anything else is the
    cluster's too."""

    def __init__(self, cluster: Any, spec: Any) -> None:
        self._cluster = cluster
        self.spec = spec
        self.squid = SquidProxy().start()

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = dict(self._cluster.client_options())
        options["proxy"] = self.squid.url
        return options

    def close(self) -> None:
        self.squid.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def __repr__(self) -> str:
        return f"ProxyRoute({self._cluster!r}, via {self.squid.url})"
