"""The Go checker: the seed's pitfalls in code using go-elasticsearch, opensearch-go or
olivere/elastic, found on the syntax tree tree-sitter's Go grammar builds.

Go code is judged per package (one directory): a TLS config or a transport often lives in a
file that never imports the client itself, so a file is checked when any file of its package
imports a search client. Without type information the checker knows a client variable by how it
was made (``elasticsearch.NewClient``, a ``*elasticsearch.Client`` parameter or field) and an
``esapi.Response`` by the call that returned it; what it cannot see it leaves alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sturdysearch.lint.findings import Finding

# Import path prefix -> (package's default name, family).
_CLIENT_IMPORTS: tuple[tuple[str, str, str], ...] = (
    ("github.com/elastic/go-elasticsearch/v", "elasticsearch", "es"),
    ("github.com/elastic/go-elasticsearch", "elasticsearch", "es"),
    ("github.com/opensearch-project/opensearch-go", "opensearch", "os"),
    ("github.com/olivere/elastic", "elastic", "olivere"),
    ("gopkg.in/olivere/elastic", "elastic", "olivere"),
)
_SUBPACKAGES = frozenset(
    {
        "esapi",
        "esutil",
        "opensearchapi",
        "opensearchutil",
        "opensearchtransport",
        "elastictransport",
    }
)
# Methods of the client that answer no esapi.Response.
_NOT_API_METHODS = frozenset(
    {"Close", "GetConfig", "Metrics", "DiscoverNodes", "InstrumentationEnabled", "ToTyped"}
)
_CONSTRUCTORS = frozenset({"NewClient", "NewDefaultClient", "NewSimpleClient", "NewTypedClient"})
_HANDLER_PARAM_TYPES = (
    "http.ResponseWriter",
    "gin.Context",
    "echo.Context",
    "fiber.Ctx",
    "fasthttp.RequestCtx",
)
# Query DSL keys: JSON that has one of them is a query (fake server answers in tests are not).
_JSONISH = re.compile(
    r'\\?"(?:query|match|match_phrase|multi_match|term|terms|bool|must|must_not|should|filter|'
    r"range|wildcard|prefix|regexp|query_string|simple_query_string|aggs|aggregations|sort)"
    r'\\?"\s*:'
)
_TYPED_PATH = re.compile(
    r"^/[A-Za-z0-9%{][^/\s]*/(?!_)[A-Za-z0-9%{][^/\s]*/"
    r"(?:_search|_mapping|_update|_count|_bulk|_mget|(?!_)[A-Za-z0-9%{][^/\s]*)$"
)
_NOLINT = re.compile(r"//\s*nolint(?::(?P<codes>[\w,\s-]+))?", re.IGNORECASE)


def _text(node: Any) -> str:
    raw: bytes = node.text or b""
    return raw.decode("utf-8", "replace")


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _string_value(node: Any) -> str | None:
    if node.type in ("interpreted_string_literal", "raw_string_literal"):
        inner = _text(node)
        return inner[1:-1]
    return None


@dataclass
class PackageFacts:
    """What the files of one directory tell about each other."""

    uses_client: bool = False
    has_context_deadline: bool = False
    client_fields: set[str] = field(default_factory=set)


class GoFile:
    def __init__(self, tree: Any, path: str, source: bytes) -> None:
        self.tree = tree
        self.path = path
        self.source = source
        self.imports: dict[str, str] = {}  # local package name -> import path
        self.client_pkgs: dict[str, str] = {}  # local name -> family (root client packages)
        self.sub_pkgs: set[str] = set()  # esapi, esutil, ... by local name
        self.http_name: str | None = None
        self.olivere_major = 0  # 7 for github.com/olivere/elastic/v7: types deprecated there
        self.findings: list[Finding] = []
        self._read_imports()

    def _read_imports(self) -> None:
        for node in _walk(self.tree.root_node):
            if node.type != "import_spec":
                continue
            path_node = node.child_by_field_name("path")
            name_node = node.child_by_field_name("name")
            path = (_string_value(path_node) or "") if path_node is not None else ""
            last = path.rsplit("/", 1)[-1]
            default = last
            if re.fullmatch(r"v\d+", last):
                default = path.rsplit("/", 2)[-2]
            if "." in default:  # gopkg.in/olivere/elastic.v5
                default = default.split(".")[0]
            for prefix, pkg, family in _CLIENT_IMPORTS:
                if path.startswith(prefix):
                    version = re.search(r"(?:/v|\.v)(\d+)$", path)
                    if family == "olivere":
                        self.olivere_major = int(version.group(1)) if version else 6
                    local = _text(name_node) if name_node is not None else default
                    if last in _SUBPACKAGES:
                        self.sub_pkgs.add(local)
                    elif (
                        re.fullmatch(r"v\d+", last)
                        or last in (pkg, "elastic", "opensearch-go", "go-elasticsearch")
                        or "elastic." in last
                    ):
                        self.client_pkgs[local if name_node is not None else pkg] = family
                    break
            local = _text(name_node) if name_node is not None else default
            self.imports[local] = path
            if path == "net/http":
                self.http_name = local

    @property
    def imports_client(self) -> bool:
        return bool(self.client_pkgs or self.sub_pkgs)

    def report(self, node: Any, code: str, message: str) -> None:
        row, col = node.start_point
        self.findings.append(Finding(self.path, row + 1, col + 1, code, message))


def _selector_parts(node: Any) -> tuple[str, str] | None:
    """("pkg", "Name") for ``pkg.Name`` (a selector or a qualified type)."""
    if node.type == "selector_expression":
        operand = node.child_by_field_name("operand")
        fld = node.child_by_field_name("field")
        if operand is not None and fld is not None and operand.type == "identifier":
            return _text(operand), _text(fld)
    if node.type == "qualified_type":
        pkg = node.child_by_field_name("package")
        name = node.child_by_field_name("name")
        if pkg is not None and name is not None:
            return _text(pkg), _text(name)
    return None


def _literal_keys(literal: Any) -> dict[str, Any]:
    """Keys of a composite literal's body -> their value nodes."""
    body = literal.child_by_field_name("body")
    keys: dict[str, Any] = {}
    if body is None:
        return keys
    for child in body.named_children:
        if child.type != "keyed_element":
            continue
        key = child.child_by_field_name("key")
        value = child.child_by_field_name("value")
        if key is None:
            continue
        keys[_text(key).strip()] = value
    return keys


def _unwrap(node: Any) -> Any:
    while node is not None and node.type == "literal_element" and node.named_children:
        node = node.named_children[0]
    return node


def _enclosing(node: Any, types: tuple[str, ...]) -> Any | None:
    current = node.parent
    while current is not None:
        if current.type in types:
            return current
        current = current.parent
    return None


_FUNCS = ("function_declaration", "method_declaration", "func_literal")


class GoChecker:
    def __init__(self, file: GoFile, facts: PackageFacts) -> None:
        self.f = file
        self.facts = facts
        self.client_vars: set[str] = set()

    def run(self) -> list[Finding]:
        """Findings of this file; ``collect_clients`` has run on every file of the package."""
        if not self.facts.uses_client:
            return []
        for node in _walk(self.f.tree.root_node):
            kind = node.type
            if kind == "keyed_element":
                self.check_keyed(node)
            elif kind == "assignment_statement":
                self.check_assignment(node)
            elif kind == "composite_literal":
                self.check_literal(node)
            elif kind == "selector_expression":
                self.check_selector(node)
            elif kind == "call_expression":
                self.check_call(node)
            elif kind == "binary_expression":
                self.check_concat(node)
            elif kind in ("interpreted_string_literal", "raw_string_literal"):
                self.check_path_literal(node)
        return sorted(set(self.f.findings))

    # -- client variables ----------------------------------------------------------------------

    def _is_client_type(self, node: Any | None) -> bool:
        """``*elasticsearch.Client``/``*opensearch.Client``: the clients whose calls answer raw
        ``esapi.Response``s (olivere/elastic and the typed clients answer decoded results)."""
        if node is None:
            return False
        if node.type == "pointer_type" and node.named_children:
            node = node.named_children[0]
        parts = _selector_parts(node)
        return bool(
            parts and self.f.client_pkgs.get(parts[0]) in ("es", "os") and parts[1] == "Client"
        )

    def _raw_client_call(self, call: Any) -> bool:
        func = call.child_by_field_name("function")
        parts = _selector_parts(func) if func is not None else None
        return bool(parts and self.f.client_pkgs.get(parts[0]) in ("es", "os"))

    def _is_constructor(self, call: Any) -> str | None:
        func = call.child_by_field_name("function")
        parts = _selector_parts(func) if func is not None else None
        if parts and parts[0] in self.f.client_pkgs and parts[1] in _CONSTRUCTORS:
            return parts[1]
        return None

    def collect_clients(self) -> None:
        for node in _walk(self.f.tree.root_node):
            if node.type in (
                "parameter_declaration",
                "field_declaration",
                "var_spec",
            ) and self._is_client_type(node.child_by_field_name("type")):
                for name in node.children_by_field_name("name"):
                    if node.type == "field_declaration":
                        self.facts.client_fields.add(_text(name))
                    else:
                        self.client_vars.add(_text(name))
            if node.type in ("short_var_declaration", "assignment_statement", "var_spec"):
                right = node.child_by_field_name("right") or node.child_by_field_name("value")
                left = node.child_by_field_name("left")
                names = node.children_by_field_name("name") if left is None else left.named_children
                if right is None or not right.named_children or not names:
                    continue
                first = right.named_children[0]
                if first.type == "call_expression":
                    ctor = self._is_constructor(first)
                    if ctor and ctor != "NewTypedClient" and self._raw_client_call(first):
                        target = names[0]
                        if target.type == "identifier":
                            self.client_vars.add(_text(target))
                        elif target.type == "selector_expression":
                            fld = target.child_by_field_name("field")
                            if fld is not None:
                                self.facts.client_fields.add(_text(fld))

    def _is_client_expr(self, node: Any) -> bool:
        if node.type == "identifier":
            return _text(node) in self.client_vars
        if node.type == "selector_expression":
            fld = node.child_by_field_name("field")
            return fld is not None and _text(fld) in self.facts.client_fields
        return False

    # -- rules ----------------------------------------------------------------------------------

    # SSG201
    def check_keyed(self, node: Any) -> None:
        key = node.child_by_field_name("key")
        value = _unwrap(node.child_by_field_name("value"))
        if key is None or value is None:
            return
        if _text(key).strip() == "InsecureSkipVerify" and value.type == "true":
            self.f.report(
                node,
                "SSG201",
                "InsecureSkipVerify: true accepts any certificate, a man in the middle's too; "
                "load the cluster's CA into tls.Config.RootCAs (or set CACert in the client "
                "config)",
            )

    def check_assignment(self, node: Any) -> None:
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if left is None or right is None:
            return
        for target, value in zip(left.named_children, right.named_children, strict=False):
            if target.type != "selector_expression" or value.type != "true":
                continue
            fld = target.child_by_field_name("field")
            if fld is not None and _text(fld) == "InsecureSkipVerify":
                self.f.report(
                    node,
                    "SSG201",
                    "InsecureSkipVerify = true accepts any certificate; load the cluster's CA "
                    "into tls.Config.RootCAs instead",
                )

    def check_literal(self, node: Any) -> None:
        type_node = node.child_by_field_name("type")
        parts = _selector_parts(type_node) if type_node is not None else None
        if parts is None:
            return
        pkg, name = parts
        keys = _literal_keys(node)
        keys.update(dict.fromkeys(self._fields_set_later(node)))
        http = self.f.http_name
        in_test = self.f.path.endswith("_test.go")  # test servers on loopback: no timeouts due
        if (
            pkg == http
            and name == "Client"
            and "Timeout" not in keys
            and self.f.imports_client
            and not in_test
        ):
            self.f.report(
                node,
                "SSG202",
                "an http.Client without Timeout: a stalled node holds the call forever unless "
                "every request carries a context deadline; set Timeout",
            )
        if pkg == http and name == "Transport" and self.f.imports_client:
            if "ResponseHeaderTimeout" not in keys and not in_test:
                self.f.report(
                    node,
                    "SSG202",
                    "an http.Transport without ResponseHeaderTimeout: a node that accepts the "
                    "connection and never answers holds the call forever; set "
                    "ResponseHeaderTimeout (and a DialContext with a timeout)",
                )
            self.check_per_request(node, "an http.Transport")
        if (
            pkg in self.f.client_pkgs
            and name == "Config"
            and not self._zero_value_beside_error(node, keys)
            and "Transport" not in keys
            and not self.facts.has_context_deadline
        ):
            self.f.report(
                node,
                "SSG202",
                "this client config leaves Transport unset, so it runs on "
                "http.DefaultTransport, which has no timeouts, and the package never sets a "
                "context deadline; give it a Transport with ResponseHeaderTimeout, or a "
                "context.WithTimeout per request",
            )
        if (
            pkg in self.f.sub_pkgs
            and name == "BulkIndexerItem"
            and "OnFailure" not in keys
            and self._submitted(node)
        ):
            self.f.report(
                node,
                "SSG206",
                "a BulkIndexerItem without OnFailure: a rejected document is counted in "
                "Stats().NumFailed and otherwise lost; set OnFailure to log or dead-letter it",
            )
        if pkg in self.f.sub_pkgs and name == "BulkIndexerConfig" and "OnError" not in keys:
            self.f.report(
                node,
                "SSG206",
                "a BulkIndexerConfig without OnError: errors that belong to no item's answer "
                "(a body that cannot be read, a context cancelled while flushing, and on older "
                "releases a failed flush) reach no callback; set OnError",
            )
        doc_type = _unwrap(keys.get("DocumentType"))
        if (
            pkg in self.f.sub_pkgs
            and "DocumentType" in keys
            and not (doc_type is not None and _string_value(doc_type) == "_doc")
        ):
            self.f.report(
                keys["DocumentType"].parent or node,
                "SSG208",
                "DocumentType sends a mapping type, which Elasticsearch 8 and OpenSearch 2 "
                "reject; drop it (the typeless endpoints use _doc)",
            )

    @staticmethod
    def _zero_value_beside_error(literal: Any, keys: dict[str, Any]) -> bool:
        """``return elasticsearch.Config{}, err``: a zero value nobody uses, not a config."""
        holder = literal.parent
        return bool(
            not keys
            and holder is not None
            and holder.type == "expression_list"
            and len(holder.named_children) > 1
            and holder.parent is not None
            and holder.parent.type == "return_statement"
        )

    def _submitted(self, literal: Any) -> bool:
        """The item reaches an indexer's Add: directly, or through the variable holding it (an
        item built as a test's expected value is not a submission)."""
        holder = literal.parent
        if holder is not None and holder.type == "unary_expression":
            holder = holder.parent
        if holder is not None and holder.type == "argument_list":
            call = holder.parent
            func = call.child_by_field_name("function") if call is not None else None
            fld = func.child_by_field_name("field") if func is not None else None
            return fld is not None and _text(fld) == "Add"
        var = self._variable_of(literal)
        if var is None:
            return False
        scope = _enclosing(literal, _FUNCS) or self.f.tree.root_node
        for node in _walk(scope):
            if node.type != "call_expression":
                continue
            func = node.child_by_field_name("function")
            fld = func.child_by_field_name("field") if func is not None else None
            args = node.child_by_field_name("arguments")
            if (
                fld is not None
                and _text(fld) == "Add"
                and args is not None
                and any(_text(a).lstrip("&*") == var for a in args.named_children)
            ):
                return True
        return False

    def _variable_of(self, literal: Any) -> str | None:
        holder = literal.parent
        if holder is not None and holder.type == "unary_expression":
            holder = holder.parent
        if holder is None or holder.type != "expression_list" or holder.parent is None:
            return None
        decl = holder.parent
        if decl.type not in ("short_var_declaration", "assignment_statement", "var_spec"):
            return None
        left = decl.child_by_field_name("left")
        names = left.named_children if left is not None else decl.children_by_field_name("name")
        if not names or names[0].type != "identifier":
            return None
        return _text(names[0])

    def _fields_set_later(self, literal: Any) -> set[str]:
        """Fields assigned after the literal (``cfg := T{}; cfg.Transport = t``): set too."""
        var = self._variable_of(literal)
        if var is None:
            return set()
        scope = _enclosing(literal, _FUNCS) or self.f.tree.root_node
        found: set[str] = set()
        for node in _walk(scope):
            if node.type != "assignment_statement" or node.start_byte < literal.end_byte:
                continue
            target_list = node.child_by_field_name("left")
            for target in target_list.named_children if target_list is not None else []:
                if target.type != "selector_expression":
                    continue
                operand = target.child_by_field_name("operand")
                fld = target.child_by_field_name("field")
                if operand is not None and fld is not None and _text(operand) == var:
                    found.add(_text(fld))
        return found

    def check_selector(self, node: Any) -> None:
        parts = _selector_parts(node)
        if parts is None or parts[0] != self.f.http_name or not self.f.imports_client:
            return
        if parts[1] == "DefaultClient":
            self.f.report(
                node,
                "SSG202",
                "http.DefaultClient has no timeout: a stalled node holds the call forever; use "
                "an http.Client with Timeout set",
            )
        elif parts[1] == "DefaultTransport":
            parent = node.parent
            if parent is not None and parent.type == "type_assertion_expression":
                return  # http.DefaultTransport.(*http.Transport).Clone(): tuned after
            if parent is not None and parent.type in ("literal_element", "argument_list"):
                self.f.report(
                    node,
                    "SSG202",
                    "http.DefaultTransport has no response timeout: clone it and set "
                    "ResponseHeaderTimeout before giving it to the client",
                )

    def check_call(self, node: Any) -> None:
        ctor = self._is_constructor(node)
        if ctor is not None:
            self.check_per_request(node, f"a client ({ctor})")
            if ctor == "NewDefaultClient" and not self.facts.has_context_deadline:
                self.f.report(
                    node,
                    "SSG202",
                    "NewDefaultClient runs on http.DefaultTransport, which has no timeouts, and "
                    "the package never sets a context deadline; build the client with a "
                    "Transport that has ResponseHeaderTimeout, or use context.WithTimeout",
                )
            return
        func = node.child_by_field_name("function")
        if func is None:
            return
        parts = _selector_parts(func)
        if parts and parts[0] == "fmt" and parts[1] == "Sprintf":
            args = node.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            text = _string_value(first) if first is not None else None
            if text is not None and _JSONISH.search(text) and "%" in text:
                self.f.report(
                    node,
                    "SSG207",
                    "query JSON built with fmt.Sprintf: a quote in the value breaks the query "
                    "or changes it (injection); build a map or struct and json.Marshal it",
                )
        if func.type == "selector_expression" and self.f.olivere_major >= 7:
            fld = func.child_by_field_name("field")
            operand = func.child_by_field_name("operand")
            args = node.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if (
                fld is not None
                and _text(fld) == "Type"
                and operand is not None
                and operand.type == "call_expression"
                and not (first is not None and _string_value(first) == "_doc")
            ):
                self.f.report(
                    node,
                    "SSG208",
                    ".Type(...) sends a mapping type, which Elasticsearch 8 and OpenSearch 2 "
                    "reject; drop it",
                )
        if self._is_response_call(node):
            self.check_response(node)

    def check_per_request(self, node: Any, what: str) -> None:
        func = _enclosing(node, _FUNCS)
        loop = _enclosing(node, ("for_statement",))
        if loop is not None and (func is None or self._inside(loop, func)):
            self.f.report(
                node,
                "SSG203",
                f"{what} is built on every pass of this loop: each one opens its own "
                f"connections; build it once and reuse it",
            )
            return
        if func is None:
            return
        params = func.child_by_field_name("parameters")
        if params is None:
            return
        text = _text(params)
        if any(t in text for t in _HANDLER_PARAM_TYPES):
            self.f.report(
                node,
                "SSG203",
                f"{what} is built inside a request handler: every request pays new "
                f"connections and TLS handshakes; build one at start-up and share it",
            )

    @staticmethod
    def _inside(inner: Any, outer: Any) -> bool:
        return bool(outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte)

    def _is_response_call(self, node: Any) -> bool:
        func = node.child_by_field_name("function")
        if func is None or func.type != "selector_expression":
            return False
        fld = func.child_by_field_name("field")
        operand = func.child_by_field_name("operand")
        if fld is None or operand is None:
            return False
        name = _text(fld)
        if name == "Do":
            args = node.child_by_field_name("arguments")
            if args is None or len(args.named_children) != 2 or not self.f.sub_pkgs:
                return False
            base = operand
            if base.type == "unary_expression" and base.named_children:
                base = base.named_children[-1]
            if base.type == "parenthesized_expression" and base.named_children:
                base = base.named_children[0]
                if base.type == "unary_expression" and base.named_children:
                    base = base.named_children[-1]
            if base.type == "composite_literal":
                t = base.child_by_field_name("type")
                parts = _selector_parts(t) if t is not None else None
                return bool(parts and parts[0] in self.f.sub_pkgs)
            return self._is_client_expr(args.named_children[1])
        if name.startswith("With") or not name[:1].isupper() or name in _NOT_API_METHODS:
            return False
        root = operand
        if root.type == "selector_expression" and not self._is_client_expr(root):
            inner = root.child_by_field_name("operand")
            if inner is None:
                return False
            root = inner  # es.Indices.Create
        return self._is_client_expr(root)

    # SSG204, SSG205
    def check_response(self, call: Any) -> None:
        parent = call.parent
        holder = parent.parent if parent is not None and parent.type == "expression_list" else None
        name: str | None = None
        if holder is not None and holder.type in ("short_var_declaration", "assignment_statement"):
            left = holder.child_by_field_name("left")
            if left is not None and left.named_children:
                first = left.named_children[0]
                name = _text(first) if first.type == "identifier" else "?"
        elif parent is not None and parent.type in ("return_statement", "argument_list"):
            return  # handed to someone else
        elif (
            parent is not None
            and parent.type == "expression_list"
            and parent.parent is not None
            and parent.parent.type == "return_statement"
        ):
            return
        func = _enclosing(call, _FUNCS)
        if name is None or name == "_":
            if (parent is not None and parent.type in ("expression_statement",)) or name == "_":
                self.f.report(
                    call,
                    "SSG205",
                    "the response is dropped, so its Body is never closed: the connection "
                    "cannot be reused and leaks; keep it and defer res.Body.Close()",
                )
            return
        if name == "?" or func is None:
            return
        body = func.child_by_field_name("body")
        if body is None:
            return
        checked = closed = escaped = used = False
        for node in _walk(body):
            if node.start_byte < call.end_byte or node.type != "identifier" or _text(node) != name:
                continue
            up = node.parent
            if up is None:
                continue
            if up.type == "selector_expression":
                fld = up.child_by_field_name("field")
                fname = _text(fld) if fld is not None else ""
                if fname in ("IsError", "StatusCode", "Status", "HasWarnings"):
                    checked = True
                is_close = False
                if fname == "Body":
                    outer = up.parent
                    if outer is not None and outer.type == "selector_expression":
                        f2 = outer.child_by_field_name("field")
                        if f2 is not None and _text(f2) == "Close":
                            closed = is_close = True
                if not is_close:
                    used = True  # res.Body read, res.String(), ...
            elif up.type in (
                "argument_list",
                "expression_list",
                "return_statement",
                "literal_element",
                "keyed_element",
            ):
                escaped = True
        if escaped:
            return
        if used and not checked:
            self.f.report(
                call,
                "SSG204",
                f"{name} is used without {name}.IsError() or a status check: a 4xx/5xx answer "
                f"comes back with err == nil and its error body is read as a result",
            )
        if not closed:
            self.f.report(
                call,
                "SSG205",
                f"{name}.Body is never closed: the connection cannot be reused and leaks; "
                f"defer {name}.Body.Close() right after the error check",
            )

    # SSG207 (concatenation)
    def check_concat(self, node: Any) -> None:
        operator = node.child_by_field_name("operator")
        if operator is None or _text(operator) != "+":
            return
        parent = node.parent
        if parent is not None and parent.type == "binary_expression":
            return  # report the whole chain once
        pieces = [
            n for n in _walk(node) if n.type in ("interpreted_string_literal", "raw_string_literal")
        ]
        dynamic = [
            n
            for n in node.named_children
            if n.type
            not in ("interpreted_string_literal", "raw_string_literal", "binary_expression")
        ]
        if not pieces or not (dynamic or self._has_dynamic(node)):
            return
        text = "".join(_string_value(p) or "" for p in pieces)
        if _JSONISH.search(text):
            self.f.report(
                node,
                "SSG207",
                "query JSON built by string concatenation: a quote in the value breaks the "
                "query or changes it (injection); build a map or struct and json.Marshal it",
            )

    def _has_dynamic(self, node: Any) -> bool:
        for child in node.named_children:
            if child.type == "binary_expression":
                if self._has_dynamic(child):
                    return True
            elif child.type not in ("interpreted_string_literal", "raw_string_literal"):
                return True
        return False

    def _is_request_path(self, node: Any) -> bool:
        """The literal is a request's path: a ``Path:`` field, or the URL argument of
        http.NewRequest / NewRequestWithContext (possibly inside a fmt.Sprintf)."""
        up = node.parent
        if up is not None and up.type == "literal_element":
            keyed = up.parent
            if keyed is not None and keyed.type == "keyed_element":
                key = keyed.child_by_field_name("key")
                return (
                    key is not None
                    and _text(key).strip() == "Path"
                    and keyed.child_by_field_name("value") == up
                )
        while up is not None and up.type in (
            "argument_list",
            "call_expression",
            "binary_expression",
        ):
            if up.type == "call_expression":
                func = up.child_by_field_name("function")
                parts = _selector_parts(func) if func is not None else None
                if parts and parts[1] in ("NewRequest", "NewRequestWithContext", "Sprintf"):
                    if parts[1] != "Sprintf":
                        return True
                elif parts is None or parts[1] not in ("Sprintf",):
                    return False
            up = up.parent
        return False

    # SSG208 (paths)
    def check_path_literal(self, node: Any) -> None:
        text = _string_value(node)
        if text is None or not _TYPED_PATH.match(text) or not self._is_request_path(node):
            return
        if "/_doc/" in text or text.startswith(("/_", "/api/", "/v1/", "/v2/")):
            return
        self.f.report(
            node,
            "SSG208",
            f"{text!r} looks like a typed path (/index/type/...), which Elasticsearch 8 and "
            f"OpenSearch 2 reject; use /index/_doc/id or /index/_search",
        )


def load_parser() -> Any:
    """The tree-sitter parser for Go; ImportError when the ``lint`` extra is not installed."""
    import tree_sitter
    import tree_sitter_go

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_go.language()))


def check_go_package(files: list[tuple[str, bytes]], parser: Any) -> list[Finding]:
    """Findings for the Go files of one directory, judged together."""
    parsed = [GoFile(parser.parse(source), path, source) for path, source in files]
    facts = PackageFacts()
    for f in parsed:
        if f.imports_client:
            facts.uses_client = True
        text = f.source
        if b"context.WithTimeout" in text or b"context.WithDeadline" in text:
            facts.has_context_deadline = True
    findings: list[Finding] = []
    checkers = [GoChecker(f, facts) for f in parsed]
    for checker in checkers:  # fields typed *elasticsearch.Client may be declared in any file
        checker.collect_clients()
    for checker in checkers:
        findings.extend(checker.run())
    return findings


def nolint_lines(source: bytes) -> dict[int, set[str] | None]:
    """Line -> codes suppressed there (None: all), from ``//nolint`` comments."""
    found: dict[int, set[str] | None] = {}
    for number, line in enumerate(source.decode("utf-8", "replace").splitlines(), start=1):
        if "nolint" not in line:
            continue
        match = _NOLINT.search(line)
        if match is None:
            continue
        codes = match.group("codes")
        if not codes:
            found[number] = None
            continue
        names = {c.strip().upper() for c in codes.split(",") if c.strip()}
        if "STURDYSEARCH" in names:
            found[number] = None
        else:
            found[number] = names
    return found
