"""The Python checker: the seed's pitfalls in code using elasticsearch-py, opensearch-py,
elastic-transport or sturdysearch, found with the standard library's ``ast``.

A file that imports none of those libraries is not checked at all: the rules speak about search
clients, and names such as ``client.bulk`` or ``timeout=`` mean other things elsewhere. Inside a
file the checker resolves imported names to their canonical dotted names, remembers which
variables hold which kind of client, and folds module-level constants, so that
``verify_certs=VERIFY`` is judged by what ``VERIFY`` holds. What it cannot know (a value read
from settings, a client handed in from another module) it leaves alone: a finding must be worth
reading.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from sturdysearch.lint.findings import Finding

CLIENT_MODULE_ROOTS = frozenset(
    {
        "elasticsearch",
        "elasticsearch7",
        "elasticsearch8",
        "elasticsearch9",
        "elasticsearch_async",
        "opensearchpy",
        "elastic_transport",
        "sturdysearch",
    }
)

# Classes whose instances talk to a cluster: (kind, family) by class name and module root.
_CLIENT_CLASSES = {
    "Elasticsearch": "sync",
    "OpenSearch": "sync",
    "AsyncElasticsearch": "async",
    "AsyncOpenSearch": "async",
}
_STURDY_CLASSES = {"Client": "sync", "AsyncClient": "async"}
# Transports and connection classes: they take TLS and timeout settings too, but are not the
# object users share, so only the TLS and credential rules look at them.
_CONNECTION_CLASSES = frozenset(
    {
        "Transport",
        "AsyncTransport",
        "Urllib3HttpConnection",
        "RequestsHttpConnection",
        "AIOHttpConnection",
        "AsyncHttpConnection",
        "Urllib3HttpNode",
        "RequestsHttpNode",
        "AiohttpHttpNode",
        "HttpxAsyncHttpNode",
        "NodeConfig",
        "TLSConfig",
    }
)

_BULK_GENERATORS = frozenset({"parallel_bulk", "streaming_bulk", "async_streaming_bulk"})
_BULK_HELPERS = frozenset({"bulk", "async_bulk"})
_SYNC_HELPERS = frozenset({"bulk", "streaming_bulk", "parallel_bulk", "scan", "reindex"})

# Methods of the clients' API that a receiver is judged by when its type is unknown.
API_METHODS = frozenset(
    {
        "search",
        "index",
        "create",
        "get",
        "delete",
        "update",
        "bulk",
        "count",
        "msearch",
        "mget",
        "scroll",
        "clear_scroll",
        "delete_by_query",
        "update_by_query",
        "reindex",
        "exists",
        "info",
        "ping",
        "get_source",
        "search_template",
        "msearch_template",
        "explain",
        "termvectors",
        "mtermvectors",
        "open_point_in_time",
        "close_point_in_time",
        "field_caps",
        "knn_search",
        "put_script",
        "perform_request",
        "request",
    }
)
API_NAMESPACES = frozenset(
    {
        "indices",
        "cluster",
        "cat",
        "nodes",
        "snapshot",
        "tasks",
        "ingest",
        "security",
        "ml",
        "transform",
        "ilm",
        "ism",
        "sql",
        "async_search",
        "enrich",
        "license",
        "xpack",
        "watcher",
        "transport",
    }
)
_QUERY_KEYWORDS = frozenset({"body", "query", "q", "operations"})
_RECEIVER_NAME = re.compile(
    r"(^|_)(es|os|opensearch|elastic|elasticsearch|search|client|conn|connection|cluster)"
    r"(_?client|_?conn)?\d*$",
    re.IGNORECASE,
)
_RETRY_DECORATORS = frozenset({"retry", "on_exception", "retry_on_exception", "backoff"})
_HANDLER_DECORATORS = frozenset(
    {
        "route",
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "api_view",
        "websocket",
        "task",
        "shared_task",
        "view_config",
        "endpoint",
        "api_route",
    }
)
_HANDLER_FUNCTIONS = frozenset({"lambda_handler", "handler", "handle_request"})
_CACHE_DECORATORS = frozenset({"cache", "lru_cache", "cached_property", "cached", "fixture"})
_URL_CREDENTIALS = re.compile(
    r"^(https?)://([^/\s:@]+):([^/\s@]+)@(\[[^\]/\s]+\]|[^/\s:]+)", re.IGNORECASE
)
_PLAIN_HTTP_HOST = re.compile(r"^http://(?:[^/@\s]*@)?(\[[^\]/\s]+\]|[^/:\s]+)", re.IGNORECASE)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_UNKNOWN = object()


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _receiver_key(node: ast.expr) -> str | None:
    """``es`` for ``es.indices.create``'s root, ``self.es`` for ``self.es.search``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _last_name(node.func)
    return None


def _kw(call: ast.Call, name: str) -> ast.keyword | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def _has_splat(call: ast.Call) -> bool:
    return any(kw.arg is None for kw in call.keywords)


def _is_stringly(node: ast.expr) -> bool:
    """A string built at run time by an f-string, ``%``, ``.format`` or ``+`` with a literal."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = _concat_parts(node)
        has_literal = any(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts)
        has_dynamic = any(not isinstance(p, ast.Constant) for p in parts)
        return has_literal and has_dynamic
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return bool(node.args or node.keywords)
    return False


def _concat_parts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concat_parts(node.left) + _concat_parts(node.right)
    return [node]


def _literal_text(node: ast.expr) -> str:
    """The literal pieces of a built string, to tell JSON from a plain word."""
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    if isinstance(node, ast.BinOp):
        return "".join(
            p.value
            for p in [*_concat_parts(node), node.left]
            if isinstance(p, ast.Constant) and isinstance(p.value, str)
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        value = node.func.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return ""


class PythonChecker:
    def __init__(self, tree: ast.Module, path: str) -> None:
        self.tree = tree
        self.path = path
        self.findings: list[Finding] = []
        self.imports: dict[str, str] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.constants: dict[str, object] = {}
        self.clients: dict[str, tuple[str, str]] = {}  # receiver key -> (kind, family)
        # (function or module, receiver key) -> (kind, family): the same name may be a blocking
        # client in one function and an async one in another
        self.scoped_clients: dict[tuple[ast.AST, str], tuple[str, str]] = {}
        self.families: set[str] = set()
        self._called_in_loops: set[str] | None = None
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        self.is_test_file = (
            name.startswith("test_")
            or name.endswith("_test.py")
            or name == "conftest.py"
            or "/tests/" in f"/{path}"
            or "/test/" in f"/{path}"
        )

    # -- set-up -----------------------------------------------------------------------------

    def uses_client(self) -> bool:
        return bool(self.families)

    def prepare(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        self.imports[root] = root
                    self._note_family(root)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                root = node.module.split(".")[0]
                self._note_family(root)
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self._fold_constants()
        self._track_clients()

    def _note_family(self, root: str) -> None:
        if root in CLIENT_MODULE_ROOTS:
            self.families.add(self._family_of(root))

    @staticmethod
    def _family_of(root: str) -> str:
        if root.startswith("elasticsearch"):
            return "es"
        if root == "opensearchpy":
            return "os"
        if root == "sturdysearch":
            return "sturdy"
        return "transport"

    def _fold_constants(self) -> None:
        assigned: dict[str, int] = {}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        assigned[target.id] = assigned.get(target.id, 0) + 1
                        if isinstance(stmt.value, ast.Constant):
                            self.constants[target.id] = stmt.value.value
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(stmt.value, ast.Constant)
            ):
                assigned[stmt.target.id] = assigned.get(stmt.target.id, 0) + 1
                self.constants[stmt.target.id] = stmt.value.value
        for name, count in assigned.items():
            if count > 1:
                self.constants.pop(name, None)

    def value(self, node: ast.expr | None) -> object:
        """The constant an expression certainly holds, or ``_UNKNOWN``."""
        if node is None:
            return _UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))
        ):
            return -node.operand.value
        return _UNKNOWN

    def qualname(self, node: ast.expr) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            full = self.imports[head]
            return f"{full}.{rest}" if rest else full
        return None

    def client_class(self, call: ast.Call) -> tuple[str, str] | None:
        """(kind, family) when ``call`` builds a client, kind "connection" for transports."""
        qual = self.qualname(call.func)
        if qual is None:
            return None
        parts = qual.split(".")
        root, name = parts[0], parts[-1]
        if root not in CLIENT_MODULE_ROOTS:
            return None
        family = self._family_of(root)
        if family == "sturdy":
            if name in _STURDY_CLASSES:
                return _STURDY_CLASSES[name], family
            return ("connection", family) if name == "TLSConfig" else None
        if name in _CLIENT_CLASSES:
            return _CLIENT_CLASSES[name], family
        if name in _CONNECTION_CLASSES:
            return "connection", family
        return None

    def _track_clients(self) -> None:
        for node in ast.walk(self.tree):
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, value = [node.target], node.value
                kind = self._annotation_kind(node.annotation)
                key = _receiver_key(node.target)
                if kind and key:
                    self._bind(node, key, kind)
            elif isinstance(node, ast.arg) and node.annotation is not None:
                kind = self._annotation_kind(node.annotation)
                if kind:
                    self._bind(node, node.arg, kind)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                targets, value = [node.optional_vars], node.context_expr
            if isinstance(value, ast.Call):
                built = self.client_class(value)
                if built and built[0] != "connection":
                    for target in targets:
                        key = _receiver_key(target)
                        if key:
                            self._bind(node, key, built)

    def _bind(self, node: ast.AST, key: str, kind: tuple[str, str]) -> None:
        self.clients[key] = kind
        self.scoped_clients[(self.scope_of(node), key)] = kind

    def tracked_client(self, key: str, at: ast.AST) -> tuple[str, str] | None:
        """The client ``key`` names where ``at`` is: bound in its function or an enclosing
        one, else in the module, else anywhere in the file (``self.client`` set in
        ``__init__`` and used in another method)."""
        scope: ast.AST | None = self.function_of(at)
        while scope is not None:
            found = self.scoped_clients.get((scope, key))
            if found is not None:
                return found
            scope = self.function_of(scope)
        found = self.scoped_clients.get((self.tree, key))
        return found if found is not None else self.clients.get(key)

    def _annotation_kind(self, annotation: ast.expr) -> tuple[str, str] | None:
        node = annotation
        if isinstance(node, ast.Subscript):  # Optional[Elasticsearch]
            node = node.slice
        if isinstance(node, ast.BinOp):  # Elasticsearch | None
            node = node.left
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if not isinstance(node, (ast.Name, ast.Attribute)):
            return None
        fake = ast.Call(func=node, args=[], keywords=[])
        built = self.client_class(fake)
        return built if built and built[0] != "connection" else None

    # -- helpers for the rules ---------------------------------------------------------------

    def report(self, node: ast.AST, code: str, message: str) -> None:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        self.findings.append(Finding(self.path, line, col, code, message))

    def enclosing(self, node: ast.AST, kinds: tuple[type, ...]) -> ast.AST | None:
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, kinds):
                return current
            current = self.parents.get(current)
        return None

    def function_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        found = self.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(found, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return found
        return None

    def scope_of(self, node: ast.AST) -> ast.AST:
        return self.function_of(node) or self.tree

    def ancestors_within_scope(self, node: ast.AST) -> Iterator[ast.AST]:
        current = self.parents.get(node)
        while current is not None and not isinstance(
            current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
        ):
            yield current
            current = self.parents.get(current)

    def receiver(self, call: ast.Call) -> tuple[ast.expr, str, list[str]] | None:
        """(root expression, method, namespaces between) of ``root.ns.method(...)``."""
        if not isinstance(call.func, ast.Attribute):
            return None
        method = call.func.attr
        chain: list[str] = []
        node = call.func.value
        while isinstance(node, ast.Attribute) and node.attr in API_NAMESPACES:
            chain.insert(0, node.attr)
            node = node.value
        return node, method, chain

    def client_of_call(self, call: ast.Call) -> tuple[str, str] | bool | None:
        """The tracked client a call is made on; True when untracked but plausibly a client."""
        parts = self.receiver(call)
        if parts is None:
            return None
        root, method, chain = parts
        if isinstance(root, ast.Call):
            built = self.client_class(root)
            if built and built[0] != "connection":
                return built
            if _last_name(root) == "options" and isinstance(root.func, ast.Attribute):
                inner = root.func.value
                key = _receiver_key(inner)
                if key and key in self.clients:
                    return self.tracked_client(key, call)
            return None
        key = _receiver_key(root)
        if key is None:
            return None
        if key in self.clients:
            return self.tracked_client(key, call)
        if self.qualname(root) is not None:
            return None  # a module or imported function, not an instance
        last = key.rsplit(".", 1)[-1]
        if (chain or method in API_METHODS) and _RECEIVER_NAME.search(last):
            return True
        return None

    def is_client_call(self, call: ast.Call) -> bool:
        return self.client_of_call(call) is not None or self.helper_name(call) is not None

    def helper_name(self, call: ast.Call) -> str | None:
        """``parallel_bulk`` etc. when the call is one of the peers' bulk/scan helpers."""
        qual = self.qualname(call.func)
        if qual is None:
            return None
        parts = qual.split(".")
        if parts[0] in CLIENT_MODULE_ROOTS and parts[0] != "sturdysearch" and "helpers" in parts:
            return parts[-1]
        return None

    def name_loaded_after(self, name: str, scope: ast.AST, after: ast.AST) -> list[ast.Name]:
        line = getattr(after, "end_lineno", None) or getattr(after, "lineno", 0)
        return [
            node
            for node in ast.walk(scope)
            if isinstance(node, ast.Name)
            and node.id == name
            and isinstance(node.ctx, ast.Load)
            and (node.lineno, node.col_offset) > (line, -1)
        ]

    def result_target(self, call: ast.Call) -> tuple[str, ast.AST] | None:
        """How a call's result is kept: ("dropped", stmt), ("name:x", stmt) or None (consumed)."""
        parent = self.parents.get(call)
        node: ast.AST = call
        if isinstance(parent, ast.Await):
            node, parent = parent, self.parents.get(parent)
        if isinstance(parent, ast.Expr):
            return "dropped", parent
        if (
            isinstance(parent, (ast.Assign, ast.AnnAssign))
            and getattr(parent, "value", None) is node
        ):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                if targets[0].id == "_":
                    return "dropped", parent
                return f"name:{targets[0].id}", parent
            if len(targets) == 1 and isinstance(targets[0], ast.Tuple):
                names = [e.id if isinstance(e, ast.Name) else "?" for e in targets[0].elts]
                return "tuple:" + ",".join(names), parent
        return None

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        self.prepare()
        if not self.uses_client():
            return []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self.check_call(node)
            elif isinstance(node, ast.Attribute):
                self.check_attribute(node)
            elif isinstance(node, ast.Assign):
                self.check_assign(node)
            elif isinstance(node, ast.ExceptHandler):
                self.check_handler(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.check_string(node)
        self.check_auto_id_with_retries()
        return sorted(set(self.findings))

    def check_call(self, call: ast.Call) -> None:
        built = self.client_class(call)
        if built is not None:
            self.check_constructor(call, built)
        qual = self.qualname(call.func) or ""
        if qual == "ssl._create_unverified_context":
            self.report(
                call,
                "SSP101",
                "ssl._create_unverified_context() verifies no certificate; build the context "
                "with ssl.create_default_context(cafile=...) instead",
            )
        if isinstance(call.func, ast.Attribute) and call.func.attr == "options":
            self.check_timeout_keywords(call, ctor=False)
        helper = self.helper_name(call)
        if helper in _BULK_GENERATORS:
            self.check_bulk_generator(call, helper)
        if helper in _BULK_HELPERS:
            self.check_bulk_helper(call, helper)
        client = self.client_of_call(call)
        if client is not None and built is None:
            self.check_client_call(call, client)
        if helper is not None or client is not None:
            self.check_retry_loop(call)
            self.check_blocking_in_async(call, client, helper)

    # SSP101, SSP102, SSP103, SSP105, SSP113, SSP114
    def check_constructor(self, call: ast.Call, built: tuple[str, str]) -> None:
        kind, family = built
        for kw in call.keywords:
            value = self.value(kw.value)
            if kw.arg == "verify_certs" and value is False and family != "sturdy":
                self.report(
                    kw.value,
                    "SSP101",
                    "verify_certs=False accepts any certificate, a man in the middle's too; "
                    "pass ca_certs='/path/to/ca.pem' or ssl_assert_fingerprint=...",
                )
            elif kw.arg == "ssl_show_warn" and value is False:
                self.report(
                    kw.value,
                    "SSP101",
                    "ssl_show_warn=False hides the warning that certificates are not verified; "
                    "verify them (ca_certs=...) instead of silencing the warning",
                )
            elif kw.arg == "ssl_assert_hostname" and value is False:
                self.report(
                    kw.value,
                    "SSP101",
                    "ssl_assert_hostname=False accepts a certificate issued for any host; "
                    "leave hostname checking on",
                )
            elif kw.arg == "ssl_cert_reqs" and isinstance(value, str) and "none" in value.lower():
                self.report(
                    kw.value,
                    "SSP101",
                    f"ssl_cert_reqs={value!r} verifies no certificate; pass ca_certs=... instead",
                )
            elif kw.arg == "dangerously_skip_tls_verify" and value is True:
                self.report(
                    kw.value,
                    "SSP101",
                    "dangerously_skip_tls_verify=True turns certificate verification off; "
                    "pass ca_certs= or ssl_assert_fingerprint= outside a throwaway test",
                )
            elif kw.arg == "sniff_on_start" and value is True and kind != "connection":
                self.report(
                    kw.value,
                    "SSP114",
                    "sniff_on_start=True replaces the address you gave by the nodes' publish "
                    "addresses, unreachable behind a load balancer, proxy or in a container; "
                    "list the nodes, or sniff only where clients can reach the nodes directly",
                )
        if kind == "connection":
            self.check_credentials(call)
            return
        if family != "sturdy":  # sturdysearch refuses timeout=None at construction
            self.check_timeout_keywords(call, ctor=True)
        if family in ("es", "os") and not _has_splat(call) and not self.is_test_file:
            has_timeout = _kw(call, "request_timeout") or _kw(call, "timeout")
            parent = self.parents.get(call)
            chained = isinstance(parent, ast.Attribute) and parent.attr == "options"
            if not has_timeout and not chained:
                spelling = "request_timeout" if family == "es" else "timeout"
                self.report(
                    call,
                    "SSP103",
                    f"client built without an explicit timeout: the default (10 s per attempt, "
                    f"times each retry) was never chosen; pass {spelling}=<seconds> sized to "
                    f"what the caller can wait",
                )
        self.check_credentials(call)
        self.check_client_per_call(call)

    def check_timeout_keywords(self, call: ast.Call, ctor: bool) -> None:
        names = ("request_timeout", "timeout") if ctor else ("request_timeout",)
        for name in names:
            kw = _kw(call, name)
            if kw is not None and isinstance(kw.value, ast.Constant) and kw.value.value is None:
                self.report(
                    kw.value,
                    "SSP102",
                    f"{name}=None waits forever on a stalled node or a dripping response; "
                    f"give it a number of seconds",
                )

    def check_client_per_call(self, call: ast.Call) -> None:
        func = self.function_of(call)
        parent = self.parents.get(call)
        # Kept beyond the call: stored on an object, in a container, or returned to a caller.
        if isinstance(parent, (ast.Return, ast.Yield, ast.List, ast.Tuple, ast.Dict, ast.keyword)):
            return
        if isinstance(parent, ast.Call) and call in parent.args:
            return
        stored_name: str | None = None
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if any(not isinstance(t, ast.Name) for t in targets):
                return  # self.es = ..., clients[host] = ...
            stored_name = targets[0].id if isinstance(targets[0], ast.Name) else None
        if func is not None and stored_name and self._is_global_in(func, stored_name):
            return
        in_loop = any(
            isinstance(a, (ast.For, ast.AsyncFor, ast.While))
            for a in self.ancestors_within_scope(call)
        )
        if in_loop:
            self.report(
                call,
                "SSP105",
                "a client is built on every pass of this loop: each one opens its own pool and "
                "connections; build it once outside the loop and reuse it",
            )
            return
        if func is None or self._is_exempt_function(func):
            return
        if self._is_handler(func):
            self.report(
                call,
                "SSP105",
                f"a client is built on every call of the handler {func.name}(): each request "
                f"pays new connections (and TLS handshakes); build one at start-up and share it",
            )
            return
        if func.name not in self.called_in_loops():
            return
        if stored_name is None:
            withitem = self.parents.get(call)
            if isinstance(withitem, ast.withitem) and isinstance(withitem.optional_vars, ast.Name):
                stored_name = withitem.optional_vars.id
            else:
                return
        if self._returned_or_escapes(func, stored_name):
            return
        self.report(
            call,
            "SSP105",
            f"{func.name}() builds a client, uses it and drops it, and is called in a loop: "
            f"every call pays new connections; share one client (module level, or a cached "
            f"factory)",
        )

    def called_in_loops(self) -> set[str]:
        """Names of functions this module calls from inside a loop body."""
        if self._called_in_loops is None:
            names: set[str] = set()
            for loop in ast.walk(self.tree):
                if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
                    for stmt in loop.body:
                        for node in ast.walk(stmt):
                            if isinstance(node, ast.Call):
                                last = _last_name(node.func)
                                if last:
                                    names.add(last)
            self._called_in_loops = names
        return self._called_in_loops

    @staticmethod
    def _is_global_in(func: ast.AST, name: str) -> bool:
        return any(isinstance(n, ast.Global) and name in n.names for n in ast.walk(func))

    def _decorator_names(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
        names = set()
        for deco in func.decorator_list:
            last = _last_name(deco)
            if last:
                names.add(last)
        return names

    def _is_exempt_function(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        name = func.name
        if name in ("main", "__init__", "__enter__", "__aenter__", "setUp", "setUpClass", "run"):
            return True
        if name.startswith(("test", "setup", "set_up", "_setup", "asyncSetUp")):
            return True
        return bool(self._decorator_names(func) & _CACHE_DECORATORS)

    def _is_handler(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        if func.name in _HANDLER_FUNCTIONS:
            return True
        return bool(self._decorator_names(func) & _HANDLER_DECORATORS)

    def _returned_or_escapes(self, func: ast.AST, name: str) -> bool:
        """True unless the name is only ever used as ``name.method(...)`` or closed."""
        for node in ast.walk(func):
            if not (
                isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
            ):
                continue
            parent = self.parents.get(node)
            if isinstance(parent, ast.Attribute):
                continue
            return True  # returned, yielded, passed on, stored: the client outlives the call
        uses = [
            n
            for n in ast.walk(func)
            if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        ]
        return not uses

    # SSP113
    def check_credentials(self, call: ast.Call) -> None:
        auth_kw = None
        for kw in call.keywords:
            if kw.arg in ("http_auth", "basic_auth", "auth"):
                auth_kw = kw
                value = kw.value
                if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                    secret = self.value(value.elts[1])
                    if isinstance(secret, str) and secret:
                        self.report(
                            value.elts[1],
                            "SSP113",
                            f"{kw.arg}= holds a literal password: it lands in the repository "
                            f"and in every copy of it; read it from the environment or a "
                            f"secret store",
                        )
                elif isinstance(self.value(value), str) and ":" in str(self.value(value)):
                    self.report(
                        value,
                        "SSP113",
                        f"{kw.arg}= holds a literal 'user:password'; read it from the "
                        f"environment or a secret store",
                    )
            elif kw.arg in ("api_key", "password", "bearer_auth"):
                auth_kw = kw
                secret = self.value(kw.value)
                literal = (isinstance(secret, str) and secret) or (
                    isinstance(kw.value, ast.Tuple)
                    and all(isinstance(self.value(e), str) for e in kw.value.elts)
                )
                if literal:
                    self.report(
                        kw.value,
                        "SSP113",
                        f"{kw.arg}= is a literal secret; read it from the environment or a "
                        f"secret store",
                    )
        if auth_kw is None:
            return
        for host in self._literal_hosts(call):
            match = _PLAIN_HTTP_HOST.match(str(host.value))
            if match and match.group(1).lower() not in _LOOPBACK:
                self.report(
                    host,
                    "SSP113",
                    f"credentials ({auth_kw.arg}=) sent to http://{match.group(1)} over plain "
                    f"HTTP: anyone on the path reads them; use https://",
                )

    def _literal_hosts(self, call: ast.Call) -> list[ast.Constant]:
        candidates: list[ast.expr] = list(call.args[:1])
        for name in ("hosts", "host"):
            kw = _kw(call, name)
            if kw is not None:
                candidates.append(kw.value)
        found: list[ast.Constant] = []
        for cand in candidates:
            elts = cand.elts if isinstance(cand, (ast.List, ast.Tuple)) else [cand]
            for elt in elts:
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                    found.append(elt)
        return found

    def check_string(self, node: ast.Constant) -> None:
        assert isinstance(node.value, str)
        match = _URL_CREDENTIALS.match(node.value.strip())
        if not match:
            return
        scheme, _user, password, host = match.groups()
        if "{" in password or "%" in password or password.startswith("$"):
            return  # a template: the secret comes from elsewhere
        if scheme.lower() == "http" and host.lower() not in _LOOPBACK:
            self.report(
                node,
                "SSP113",
                "a URL with credentials over plain HTTP: the password travels in clear and "
                "lands in logs and reprs; use https:// and pass basic_auth= from a secret store",
            )
        else:
            self.report(
                node,
                "SSP113",
                "a literal password in a URL: it lands in the repository, logs and reprs; "
                "pass basic_auth=(user, password) read from the environment",
            )

    # SSP101 (contexts)
    def check_attribute(self, node: ast.Attribute) -> None:
        if isinstance(self.parents.get(node), ast.Compare):
            return  # assert ctx.verify_mode == ssl.CERT_NONE reads the setting, it sets nothing
        if node.attr == "CERT_NONE" and self.qualname(node) == "ssl.CERT_NONE":
            self.report(
                node,
                "SSP101",
                "ssl.CERT_NONE accepts any certificate; keep ssl.CERT_REQUIRED and load the "
                "cluster's CA (cafile=...)",
            )

    def check_assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "check_hostname"
                and self.value(node.value) is False
            ):
                self.report(
                    node,
                    "SSP101",
                    "check_hostname = False accepts a certificate issued for any host; leave "
                    "it on and verify against the cluster's CA",
                )

    # SSP106
    def check_bulk_generator(self, call: ast.Call, helper: str) -> None:
        if self._result_unread(call, element=None):
            self.report(
                call,
                "SSP106",
                f"{helper}() returns a lazy generator: until it is iterated nothing is sent. "
                f"Consume it (for ok, item in {helper}(...): ..., or "
                f"collections.deque({helper}(...), maxlen=0)) and check each item",
            )

    # SSP107 (helpers)
    def check_bulk_helper(self, call: ast.Call, helper: str) -> None:
        raise_on_error = self.value(getattr(_kw(call, "raise_on_error"), "value", None))
        if raise_on_error is not False:
            return  # failures raise BulkIndexError: they cannot go unnoticed
        if self._result_unread(call, element=1):  # (success_count, errors)
            self.report(
                call,
                "SSP107",
                f"{helper}(..., raise_on_error=False) reports failed documents only in its "
                f"result, which is dropped here: read the errors it returns, or let it raise",
            )

    def _result_unread(self, call: ast.Call, element: int | None) -> bool:
        """True when the call's result is dropped, or kept in names never read afterwards.
        ``element`` picks the part that matters when the result is unpacked (``ok, errors``);
        ``None`` means any part read will do."""
        kept = self.result_target(call)
        if kept is None:
            return False  # consumed in place: iterated, passed on, returned
        how, stmt = kept
        if how == "dropped":
            return True
        names = how.split(":", 1)[1].split(",")
        if how.startswith("tuple:") and element is not None:
            names = names[element : element + 1]
        scope = self.scope_of(call)
        return not any(self.name_loaded_after(n, scope, stmt) for n in names if n not in ("_", "?"))

    def check_client_call(self, call: ast.Call, client: tuple[str, str] | bool | None) -> None:
        parts = self.receiver(call)
        assert parts is not None
        _, method, _chain = parts
        family = client[1] if isinstance(client, tuple) else None
        sturdy = family == "sturdy" or (family is None and self.families == {"sturdy"})
        if method == "bulk" and not sturdy:
            self.check_bulk_answer(call)
        if not sturdy:
            self.check_api_timeout(call)
        self.check_query_strings(call, method)
        if method == "index" and _kw(call, "id") is None and not _has_splat(call):
            self.check_auto_id_retry(call)

    # SSP107 (raw bulk answers)
    def check_bulk_answer(self, call: ast.Call) -> None:
        kept = self.result_target(call)
        if kept is None:
            return
        how, stmt = kept
        message = (
            "the bulk answer is dropped: a 200 answer can still hold failed documents "
            "(errors: true); read resp['errors'] and the failed items"
        )
        if how == "dropped":
            self.report(call, "SSP107", message)
            return
        if not how.startswith("name:"):
            return
        name = how.split(":", 1)[1]
        uses = self.name_loaded_after(name, self.scope_of(call), stmt)
        if any(self._reads_bulk_outcome(use) for use in uses):
            return
        self.report(call, "SSP107", message)

    def _reads_bulk_outcome(self, use: ast.Name) -> bool:
        """``resp["errors"]``, ``resp.get("items")``, ``resp.body[...]``, or the answer handed
        to someone else (returned, passed on, stored): then someone can read the failures.
        Logging it or reading ``took`` is not reading them."""
        parent = self.parents.get(use)
        outcome = ("errors", "items")
        if isinstance(parent, ast.Subscript):
            return self.value(parent.slice) in outcome
        if isinstance(parent, ast.Attribute):
            if parent.attr in ("body", "raw", "errors", "items"):
                return True
            call = self.parents.get(parent)
            if parent.attr == "get" and isinstance(call, ast.Call) and call.args:
                return self.value(call.args[0]) in outcome
            return False
        if isinstance(parent, ast.Call):
            callee = _last_name(parent.func) or ""
            logging_names = {"print", "debug", "info", "warning", "warn", "error", "log", "dumps"}
            return callee not in logging_names
        return isinstance(parent, (ast.Return, ast.Yield, ast.Assign, ast.keyword, ast.Dict))

    # SSP104
    def check_api_timeout(self, call: ast.Call) -> None:
        kw = _kw(call, "timeout")
        if kw is None:
            return
        value = self.value(kw.value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value in (0, -1):
            return
        self.report(
            kw.value,
            "SSP104",
            f"timeout={value!r} on an API call is the server-side operation timeout (a time "
            f"string such as '30s'), not how long the client waits; for that pass "
            f"request_timeout={value!r}",
        )

    # SSP108
    def check_query_strings(self, call: ast.Call, method: str) -> None:
        for kw in call.keywords:
            if kw.arg not in _QUERY_KEYWORDS:
                continue
            built = self._built_string(kw.value, call)
            if built is None:
                continue
            if kw.arg == "q" or "{" in _literal_text(built):
                what = "q=" if kw.arg == "q" else f"{kw.arg}="
                self.report(
                    kw.value,
                    "SSP108",
                    f"{what} is assembled from strings: a quote or Lucene operator in the input "
                    f"changes the query (injection) or breaks it; pass a dict (a term/match "
                    f"query) with the value as data",
                )

    def _built_string(self, value: ast.expr, call: ast.Call) -> ast.expr | None:
        if isinstance(value, ast.Call) and _last_name(value.func) == "loads" and value.args:
            value = value.args[0]
        if _is_stringly(value):
            return value
        if isinstance(value, ast.Name):
            func = self.function_of(call)
            if func is None:
                return None
            last: ast.expr | None = None
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Assign)
                    and node.lineno < call.lineno
                    and any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets)
                ):
                    last = node.value
            if last is not None and isinstance(last, ast.Call) and _last_name(last.func) == "loads":
                last = last.args[0] if last.args else None
            if last is not None and _is_stringly(last):
                return last
        return None

    # SSP109
    def check_auto_id_retry(self, call: ast.Call) -> None:
        func = self.function_of(call)
        if func is not None and self._decorator_names(func) & _RETRY_DECORATORS:
            self.report(
                call,
                "SSP109",
                f"index() without id= under @{sorted(self._decorator_names(func) & _RETRY_DECORATORS)[0]}: "
                f"an attempt that timed out may have been written, and each retry adds a copy; "
                f"give the document a deterministic id=",
            )
            return
        if self._retry_loop_of(call) is not None:
            self.report(
                call,
                "SSP109",
                "index() without id= inside a retry loop: an attempt that timed out may have "
                "been written, and each retry adds a copy; give the document a deterministic id=",
            )

    def _retry_loop_of(self, call: ast.Call) -> ast.AST | None:
        """The loop that retries ``call``: a while/range loop whose try exits on success."""
        try_node: ast.Try | None = None
        for anc in self.ancestors_within_scope(call):
            if (
                isinstance(anc, ast.Try)
                and try_node is None
                and any(self._contains(stmt, call) for stmt in anc.body)
            ):
                try_node = anc
            if isinstance(anc, (ast.While, ast.For, ast.AsyncFor)) and try_node is not None:
                if not self._loop_repeats(anc):
                    return None
                exits = [
                    n
                    for stmt in try_node.body + try_node.orelse
                    for n in ast.walk(stmt)
                    if isinstance(n, (ast.Break, ast.Return))
                ]
                sleeps = [
                    n
                    for h in try_node.handlers
                    for n in ast.walk(h)
                    if isinstance(n, ast.Call) and _last_name(n.func) == "sleep"
                ]
                return anc if exits or sleeps else None
        return None

    @staticmethod
    def _contains(tree: ast.AST, node: ast.AST) -> bool:
        return any(n is node for n in ast.walk(tree))

    def _loop_repeats(self, loop: ast.AST) -> bool:
        if isinstance(loop, ast.While):
            return True
        if isinstance(loop, (ast.For, ast.AsyncFor)) and isinstance(loop.iter, ast.Call):
            return _last_name(loop.iter.func) in ("range", "count", "repeat")
        return False

    # SSP111
    def check_retry_loop(self, call: ast.Call) -> None:
        loop = self._retry_loop_of(call)
        if loop is None:
            return
        handlers = [
            h
            for anc in self.ancestors_within_scope(call)
            if isinstance(anc, ast.Try) and any(self._contains(s, call) for s in anc.body)
            for h in anc.handlers
        ]
        for node in (n for h in handlers for n in ast.walk(h)):
            if not (isinstance(node, ast.Call) and _last_name(node.func) == "sleep" and node.args):
                continue
            qual = self.qualname(node.func) or ""
            if qual not in (
                "time.sleep",
                "asyncio.sleep",
                "trio.sleep",
                "anyio.sleep",
                "gevent.sleep",
            ):
                continue
            if self._is_fixed(node.args[0], loop):
                self.report(
                    node,
                    "SSP111",
                    "this retry loop waits the same interval every time: clients that failed "
                    "together retry together and keep an overloaded cluster down; back off "
                    "exponentially with jitter, under a budget (sturdysearch.RetryPolicy)",
                )
                return

    def _is_fixed(self, arg: ast.expr, loop: ast.AST) -> bool:
        if isinstance(self.value(arg), (int, float)):
            return True
        if isinstance(arg, ast.Name):
            for node in ast.walk(loop):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
                    targets = [node.target]
                if any(isinstance(t, ast.Name) and t.id == arg.id for t in targets):
                    return False
            return True
        return False

    # SSP112
    def check_handler(self, handler: ast.ExceptHandler) -> None:
        if not all(
            isinstance(stmt, (ast.Pass, ast.Continue))
            or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
            for stmt in handler.body
        ):
            return
        if handler.type is not None:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            if not any(_last_name(t) in ("Exception", "BaseException") for t in types):
                return
        try_node = self.parents.get(handler)
        if not isinstance(try_node, ast.Try):
            return
        for stmt in try_node.body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call) and self.is_client_call(node):
                    caught = "except:" if handler.type is None else "except Exception:"
                    self.report(
                        handler,
                        "SSP112",
                        f"{caught} with nothing but pass/continue around a client call: a "
                        f"rejected write, a wrong mapping or an outage all vanish; catch the "
                        f"specific error and log or re-raise it",
                    )
                    return

    # SSP115
    def check_blocking_in_async(
        self, call: ast.Call, client: tuple[str, str] | bool | None, helper: str | None
    ) -> None:
        func = self.function_of(call)
        if not isinstance(func, ast.AsyncFunctionDef):
            return
        if isinstance(self.parents.get(call), ast.Await):
            return
        blocking = isinstance(client, tuple) and client[0] == "sync"
        what = "a blocking client"
        if helper in _SYNC_HELPERS and not (self.qualname(call.func) or "").split(".")[
            -1
        ].startswith("async_"):
            blocking, what = True, f"the blocking helper {helper}()"
        if blocking:
            self.report(
                call,
                "SSP115",
                f"{what} called inside async def {func.name}(): the event loop stops for the "
                f"whole round trip; use AsyncElasticsearch/AsyncOpenSearch/sturdysearch."
                f"AsyncClient (and async_bulk), or asyncio.to_thread",
            )

    # SSP110
    def check_auto_id_with_retries(self) -> None:
        retry_kw: ast.keyword | None = None
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                built = self.client_class(node)
                if built is None or built[0] == "connection":
                    continue
                for kw in node.keywords:
                    value = self.value(kw.value)
                    if kw.arg == "retry_on_timeout" and value is True:
                        retry_kw = kw
                    elif (
                        kw.arg == "max_retries"
                        and isinstance(value, int)
                        and not isinstance(value, bool)
                        and value > 0
                        and _kw(node, "retry_on_timeout") is not None
                    ):
                        retry_kw = retry_kw or kw
        if retry_kw is None:
            return
        uses_bulk = any(
            isinstance(n, ast.Call)
            and (
                self.helper_name(n) in _BULK_GENERATORS | _BULK_HELPERS
                or _last_name(n.func) == "bulk"
            )
            for n in ast.walk(self.tree)
        )
        if not uses_bulk:
            return
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Dict) and self._is_auto_id_action(node):
                self.report(
                    node,
                    "SSP110",
                    f"a bulk index action without _id while the client retries "
                    f"({retry_kw.arg}= on line {retry_kw.value.lineno}): a timed-out bulk that "
                    f"was applied is sent again and every document in it is indexed twice; "
                    f"give each action a deterministic _id",
                )

    def _is_auto_id_action(self, node: ast.Dict) -> bool:
        keys = {self.value(k) for k in node.keys if k is not None}
        if None in node.keys:
            return False  # {**doc, ...}: the id may come in with it
        if "_index" in keys and "_id" not in keys:
            op = None
            for k, v in zip(node.keys, node.values, strict=False):
                if k is not None and self.value(k) == "_op_type":
                    op = self.value(v)
            return op in (None, "index")
        if keys == {"index"} and len(node.values) == 1 and isinstance(node.values[0], ast.Dict):
            inner = {self.value(k) for k in node.values[0].keys if k is not None}
            return "_id" not in inner and None not in node.values[0].keys
        return False


def check_python(source: str, path: str) -> list[Finding]:
    """Findings for one file; raises SyntaxError when the file does not parse."""
    tree = ast.parse(source, filename=path)
    return PythonChecker(tree, path).run()
