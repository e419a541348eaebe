"""Generate the client API from the servers' specifications.

Input (committed, reviewed):

* ``scripts/api/endpoints.json``: the facts table (endpoints, URL forms, parameters and their
  types, version ranges) that ``scripts/api_extract.py`` takes from the Elasticsearch and
  OpenSearch specification repositories; ``scripts/api/ORIGIN.md`` says which commits.
* ``scripts/api/idempotency.json``: for every endpoint reached with POST, whether a resend is
  safe, grouped by the reason. The generator refuses to run when a POST endpoint is missing.
* ``HANDWRITTEN`` and ``SPECIAL`` below: methods with richer semantics than one request.

Output (do not edit; regenerate):

* ``src/sturdysearch/_core/apis/<namespace>.py``: one :class:`Endpoint` per endpoint (sans-IO).
* ``src/sturdysearch/_async/api/<namespace>.py`` and the blocking twins in ``_sync/api/``: the
  methods, keyword-only and typed, one request builder call each.

    python scripts/generate_api.py            # rewrite the generated files
    python scripts/generate_api.py --check    # exit 1 if they are out of date (a unit test does)
"""

from __future__ import annotations

import argparse
import ast
import json
import keyword
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "sturdysearch"
TABLE = ROOT / "scripts" / "api" / "endpoints.json"
IDEMPOTENCY = ROOT / "scripts" / "api" / "idempotency.json"

#: The versions the client supports; an endpoint removed before the oldest is not generated.
OLDEST = {"elasticsearch": (7, 0, 0), "opensearch": (1, 0, 0)}

#: Methods written by hand in the client (flows, typed results, helpers of our own); the
#: generator leaves their names alone and counts them as covered.
HANDWRITTEN = {
    "": {
        "info",
        "ping",
        "scan",
        "update_with_retry",
        "get_or_none",
        "request",
        "perform",
        # speak the server's dialect: create_pit/delete_pit on OpenSearch
        "open_point_in_time",
        "close_point_in_time",
    },
}

#: Call parameters every generated method takes, after the endpoint's own.
COMMON = [
    ("params", "Mapping[str, Any] | None", "None"),
    ("headers", "Mapping[str, str] | None", "None"),
    ("timeout", "float | None", "None"),
    ("ignore", "int | Collection[int]", "()"),
]
COMMON_NAMES = {name for name, _, _ in COMMON}

#: The spec's server-side ``timeout`` query parameter would clash with the call deadline
#: ``timeout=`` every sturdysearch method takes; it is offered as ``server_timeout=``.
RENAMED_PARAMS = {"timeout": "server_timeout"}

#: Where the two flavors name one capability differently: the name on the other side.
EQUIVALENTS = {
    "open_point_in_time": "create_pit (OpenSearch 2.4+)",
    "close_point_in_time": "delete_pit (OpenSearch 2.4+)",
    "create_pit": "open_point_in_time (Elasticsearch 7.10+)",
    "delete_pit": "close_point_in_time (Elasticsearch 7.10+)",
    "security.authenticate": "security.authinfo (OpenSearch security plugin)",
    "security.authinfo": "security.authenticate (Elasticsearch)",
}


@dataclass
class Special:
    """A method over a hand-written builder in ``_core.api`` (richer semantics than one
    request): its own keywords come from the builder's signature, the spec's other query
    parameters are added as typed keywords and passed in ``params=``."""

    builder: str
    returns: str
    wrap: str = "{r}"
    """How the answer ``{r}`` becomes the result."""
    call: str = "perform"
    """``perform`` (one request), ``flow`` (``flows.single``) or ``by_query`` (a task flow)."""
    extra: list[tuple[str, str, str]] = field(default_factory=list)
    """Keywords of the method that the builder does not take: (name, annotation, default)."""
    builder_args: str = ""
    """Extra arguments to the builder, as source."""
    fixed: dict[str, str] = field(default_factory=dict)
    """Builder arguments given by the method, not the caller (name -> source)."""

    def given(self) -> set[str]:
        """The builder keywords ``builder_args`` sets."""
        return set(re.findall(r"(\w+)=", self.builder_args))


SPECIAL: dict[str, Special] = {
    "search": Special("search", "results.SearchResult", "results.SearchResult.of({r})"),
    "count": Special("count", "Response"),
    "index": Special("index", "results.WriteResult", "results.WriteResult.of({r})"),
    "create": Special("create", "results.WriteResult", "results.WriteResult.of({r})"),
    "update": Special("update", "results.WriteResult", "results.WriteResult.of({r})"),
    "delete": Special("delete", "results.WriteResult", "results.WriteResult.of({r})"),
    "get": Special("get", "results.GetResult", "results.GetResult.of({r})"),
    "mget": Special("mget", "results.MultiGetResult", "results.MultiGetResult.of({r})"),
    "exists": Special("exists", "bool", "bool({r}.body)"),
    "msearch": Special("msearch", "results.MultiSearchResult", "results.MultiSearchResult.of({r})"),
    "bulk": Special("bulk", "Response"),
    "clear_scroll": Special("clear_scroll", "Response"),
    "search_template": Special(
        "search_template", "results.SearchResult", "results.SearchResult.of({r})", call="flow"
    ),
    "render_search_template": Special("render_search_template", "Response", call="flow"),
    "delete_by_query": Special("delete_by_query", "results.ByQueryResult", call="by_query"),
    "update_by_query": Special("update_by_query", "results.ByQueryResult", call="by_query"),
    "indices.create": Special("indices_create", "Response"),
    "indices.delete": Special("indices_delete", "Response"),
    "indices.exists": Special("indices_exists", "bool", "bool({r}.body)"),
    "indices.refresh": Special("refresh", "Response"),
    "indices.get_mapping": Special("indices_get_mapping", "Response"),
    "indices.put_mapping": Special("indices_put_mapping", "Response"),
    "indices.get_settings": Special("indices_get_settings", "Response"),
    "indices.put_settings": Special("indices_put_settings", "Response"),
    "indices.put_alias": Special("indices_put_alias", "Response"),
    "indices.delete_alias": Special("indices_delete_alias", "Response"),
    "indices.get_alias": Special("indices_get_alias", "Response"),
    "indices.update_aliases": Special("indices_update_aliases", "Response"),
    "cluster.health": Special(
        "cluster_health",
        "results.ClusterHealth",
        "results.cluster_health({r}, raise_on_timeout)",
        extra=[("raise_on_timeout", "bool", "True")],
        builder_args="default_timeout=self._client.config.timeouts.total",
    ),
    "tasks.get": Special("tasks_get", "Response"),
    "tasks.cancel": Special("tasks_cancel", "Response"),
}

#: Python annotations of the table's parameter types (every parameter is optional).
ANNOTATIONS = {
    "string": "str",
    "list": "str | Sequence[str]",
    "boolean": "bool",
    "integer": "int",
    "number": "float",
    "time": "str | int",
    "enum": "str",
    "object": "Mapping[str, Any]",
    "array": "Sequence[Any]",
    "any": "Any",
}
#: A looser type when the flavors disagree on one parameter.
ORDER = ["any", "object", "array", "list", "time", "number", "integer", "enum", "string", "boolean"]

HEADER = "# Generated by scripts/generate_api.py from scripts/api/endpoints.json; do not edit.\n"


# -- reading the table ---------------------------------------------------------------------


def version(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    while len(numbers) < 3:
        numbers.append(0)
    return (numbers[0], numbers[1], numbers[2])


def supported(entry: dict[str, Any] | None, flavor: str) -> bool:
    if not entry:
        return False
    if entry.get("visibility") in ("private", "feature_flag"):
        return False
    removed = version(entry.get("removed"))
    return removed is None or removed > OLDEST[flavor]


def python_name(name: str) -> str:
    text = re.sub(r"\W", "_", name.lstrip("_")) or name
    if keyword.iskeyword(text) or text in ("self",):
        text += "_"
    return text


def load_idempotency(path: Path = IDEMPOTENCY) -> dict[str, bool]:
    table = json.loads(path.read_text())
    verdicts: dict[str, bool] = {}
    for group in table["groups"]:
        for name in group["endpoints"]:
            if name in verdicts:
                raise SystemExit(f"idempotency.json: {name} listed twice")
            verdicts[name] = bool(group["idempotent"])
    return verdicts


# -- one endpoint --------------------------------------------------------------------------


@dataclass
class Param:
    wire: str
    """The name on the wire (query parameter, path part or body field)."""
    py: str
    annotation: str
    required: bool = False
    where: str = "query"
    """``path``, ``query`` or ``body``."""


@dataclass
class Model:
    id: str
    namespace: str
    method: str
    flavors: dict[str, dict[str, Any]]
    params: list[Param]
    body: str
    """``none``, ``optional`` or ``required``."""
    body_format: str
    head: bool
    posts: bool
    plain: bool
    list_parts: set[str]

    @property
    def const(self) -> str:
        return self.method.upper()


def loosest(types: Iterable[str]) -> str:
    ranked = [t for t in ORDER if t in set(types)]
    return ranked[0] if ranked else "any"


def build_model(endpoint_id: str, entry: dict[str, Any]) -> Model | None:
    flavors = {f: entry[f] for f in ("elasticsearch", "opensearch") if supported(entry.get(f), f)}
    if not flavors:
        return None
    namespace, _, method = endpoint_id.rpartition(".")
    method = python_name(method)
    part_types: dict[str, list[str]] = {}
    part_required: dict[str, bool] = {}
    query_types: dict[str, list[str]] = {}
    body_types: dict[str, list[str]] = {}
    bodies, formats, methods = [], [], set()
    list_parts: set[str] = set()
    for data in flavors.values():
        urls = data["urls"]
        for url in urls:
            methods.update(m.upper() for m in url["methods"])
        for name, spec in (data.get("parts") or {}).items():
            part_types.setdefault(name, []).append(spec.get("type") or "string")
            always = all(name in url["parts"] for url in urls)
            part_required[name] = part_required.get(name, True) and always
            if spec.get("type") == "list":
                list_parts.add(name)
        for name, spec in (data.get("params") or {}).items():
            query_types.setdefault(name, []).append(spec.get("type") or "any")
        for name, spec in (data.get("body_fields") or {}).items():
            body_types.setdefault(name, []).append(spec.get("type") or "any")
        bodies.append(data.get("body") or "none")
        formats.append(data.get("body_format") or "json")
    for name in part_types:
        if any(name not in (d.get("parts") or {}) for d in flavors.values()):
            part_required[name] = False
    params: list[Param] = []
    taken = set(COMMON_NAMES) | {"body"}
    for name, types in part_types.items():
        py = python_name(name)
        annotation = ANNOTATIONS[loosest(types)] if loosest(types) == "list" else "str"
        params.append(Param(name, py, annotation, part_required[name], "path"))
        taken.add(py)
    body_format = "ndjson" if "ndjson" in formats else ("text" if "text" in formats else "json")
    for name, types in sorted(query_types.items()):
        py = python_name(RENAMED_PARAMS.get(name, name))
        if py in taken:
            continue
        # a name both flavors' bodies take as an object stays a body field (``query=``)
        if body_types.get(name) and loosest(body_types[name]) == "object":
            continue
        annotation = ANNOTATIONS[loosest(types)]
        if name == "refresh":
            annotation = "bool | str"
        params.append(Param(name, py, annotation, False, "query"))
        taken.add(py)
    for name, types in sorted(body_types.items()):
        py = python_name(name)
        # a dotted name is a flattened setting of a settings body, not a field of its own
        if py in taken or body_format != "json" or "." in name or not name.isidentifier():
            continue
        params.append(Param(name, py, ANNOTATIONS[loosest(types)], False, "body"))
        taken.add(py)
    body = "none"
    if any(b != "none" for b in bodies):
        body = "required" if all(b == "required" for b in bodies) else "optional"
    if any(p.where == "body" for p in params) and body == "required":
        body = "optional"  # the named fields can make the body
    head = methods == {"HEAD"}
    plain = is_plain(flavors)
    return Model(
        endpoint_id,
        namespace,
        method,
        flavors,
        params,
        body,
        body_format,
        head,
        "POST" in methods,
        plain,
        list_parts,
    )


def is_plain(flavors: dict[str, dict[str, Any]]) -> bool:
    """Both flavors, the same URL forms, and no version limits within the supported range: such
    an endpoint is called without knowing the server."""
    if set(flavors) != {"elasticsearch", "opensearch"}:
        return False
    forms = []
    for flavor, data in flavors.items():
        added = version(data.get("added"))
        if (added is not None and added > OLDEST[flavor]) or data.get("removed"):
            return False
        urls = set()
        for url in data["urls"]:
            if url.get("removed") or (version(url.get("added")) or (0, 0, 0)) > OLDEST[flavor]:
                return False
            for method in url["methods"]:
                urls.add((method.upper(), url["path"]))
        forms.append(urls)
    return forms[0] == forms[1]


# -- rendering: the core table -------------------------------------------------------------


def vtuple(text: str | None) -> str:
    v = version(text)
    return "None" if v is None else repr(v)


def route_method(methods: list[str], has_body: bool) -> str:
    """The one method a form is called with: the body-less read uses GET, a body POST, as the
    peers do; PUT/DELETE/HEAD as listed."""
    ms = [m.upper() for m in methods]
    if len(ms) == 1:
        return ms[0]
    if "PUT" in ms and "POST" in ms:
        return "PUT"
    if "GET" in ms and "POST" in ms:
        return "POST" if has_body else "GET"
    return ms[0]


def render_flavor(data: dict[str, Any], has_body: bool) -> str:
    routes = []
    urls = sorted(data["urls"], key=lambda u: -len(u["parts"]))
    for url in urls:
        method = route_method(url["methods"], has_body)
        parts = "frozenset(" + (repr(sorted(url["parts"])) if url["parts"] else "") + ")"
        routes.append(
            f"        Route({method!r}, {url['path']!r}, {parts}, "
            f"{vtuple(url.get('added'))}, {vtuple(url.get('removed'))}),"
        )
    doc = data.get("doc_url")
    return (
        "FlavorApi(\n        (\n"
        + "\n".join("    " + r for r in routes)
        + f"\n        ),\n        {vtuple(data.get('added'))},\n        {vtuple(data.get('removed'))},"
        f"\n        {doc!r},\n    )"
    )


def render_core(namespace: str, models: list[Model], verdicts: dict[str, bool]) -> str:
    lines = [
        HEADER,
        f'"""Endpoints of the ``{namespace or "top-level"}`` API, as data (see '
        '``sturdysearch._core.endpoint``)."""',
        "",
        "from __future__ import annotations",
        "",
        "from sturdysearch._core.endpoint import Endpoint, FlavorApi, Route",
        "",
    ]
    for m in models:
        has_body = m.body != "none"
        es = m.flavors.get("elasticsearch")
        os_ = m.flavors.get("opensearch")
        lines.append(f"{m.const} = Endpoint(")
        lines.append(f"    {m.id!r},")
        lines.append("    " + (render_flavor(es, has_body) if es else "None") + ",")
        lines.append("    " + (render_flavor(os_, has_body) if os_ else "None") + ",")
        lines.append(f"    idempotent_post={verdicts.get(m.id, False)!r},")
        if m.body_format != "json":
            lines.append(f"    body_format={m.body_format!r},")
        if m.plain:
            lines.append("    plain=True,")
        if m.id in EQUIVALENTS:
            lines.append(f"    equivalent={EQUIVALENTS[m.id]!r},")
        if m.list_parts != {"index"}:
            lines.append(f"    list_parts=frozenset({sorted(m.list_parts)!r}),")
        lines.append(")")
    return "\n".join(lines) + "\n"


# -- rendering: the methods ----------------------------------------------------------------


def class_name(namespace: str) -> str:
    if not namespace:
        return "AsyncRootApi"
    return "Async" + "".join(p.capitalize() for p in re.split(r"[._]", namespace)) + "Client"


def module_name(namespace: str) -> str:
    return python_name(namespace.replace(".", "_")) if namespace else "root"


def summary(m: Model) -> str:
    forms = []
    seen = set()
    for data in m.flavors.values():
        for url in data["urls"]:
            method = route_method(url["methods"], m.body != "none")
            if (method, url["path"]) not in seen:
                seen.add((method, url["path"]))
                forms.append(f"``{method} {url['path']}``")
    names = {"elasticsearch": "Elasticsearch", "opensearch": "OpenSearch"}
    where = []
    for flavor, data in m.flavors.items():
        added = version(data.get("added"))
        removed = version(data.get("removed"))
        text = names[flavor]
        if added and added > OLDEST[flavor]:
            text += f" {added[0]}.{added[1]}+"
        if removed:
            text += f" (removed in {removed[0]}.{removed[1]})"
        where.append(text)
    first = f"``{m.id}``: " + ", ".join(forms[:3]) + (", ..." if len(forms) > 3 else "") + "."
    return first + "\n\n        Served by " + ", ".join(where) + "."


def references(m: Model) -> list[str]:
    out = []
    for data in m.flavors.values():
        if data.get("doc_url") and data["doc_url"] not in out:
            out.append(data["doc_url"])
    return out


def signature_lines(items: list[tuple[str, str, str | None]]) -> list[str]:
    out = ["        self,", "        *,"]
    for name, annotation, default in items:
        if default is None:
            out.append(f"        {name}: {annotation},")
        else:
            out.append(f"        {name}: {annotation} = {default},")
    return out


@dataclass
class BuilderParam:
    name: str
    annotation: str
    default: str | None
    """Source of the default, ``None`` when the keyword is required."""


def _builders() -> dict[str, tuple[list[BuilderParam], str | None]]:
    """The keyword-only parameters and docstring of every builder in ``_core/api.py``, read
    from its source (importing the package would import the files being generated)."""
    tree = ast.parse((SRC / "_core" / "api.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            params = []
            for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                annotation = ast.unparse(arg.annotation) if arg.annotation else "Any"
                params.append(
                    BuilderParam(
                        arg.arg, annotation, None if default is None else ast.unparse(default)
                    )
                )
            found[node.name] = (params, ast.get_docstring(node))
    return found


BUILDERS: dict[str, tuple[list[BuilderParam], str | None]] = {}


def builder(name: str) -> tuple[list[BuilderParam], str | None]:
    if not BUILDERS:
        BUILDERS.update(_builders())
    if name not in BUILDERS:
        raise SystemExit(f"_core/api.py has no builder {name}()")
    return BUILDERS[name]


def render_method(m: Model, owner: str) -> list[str]:
    """``owner`` is ``self`` (top level) or ``self._client`` (a namespace)."""
    special = SPECIAL.get(m.id)
    if special is not None:
        return render_special(m, special, owner)
    items: list[tuple[str, str, str | None]] = []
    for p in m.params:
        if p.required:
            items.append((p.py, p.annotation, None))
    if m.body == "required":
        items.append(("body", body_annotation(m), None))
    for p in m.params:
        if not p.required:
            items.append((p.py, f"{p.annotation} | None", "None"))
    if m.body == "optional":
        items.append(("body", f"{body_annotation(m)} | None", "None"))
    items.extend(COMMON)
    # every _cat API answers JSON rows when asked (some specs inherit `format` from a base
    # they do not list), except _cat itself, the help text
    cat_text = m.id == "cat.help"
    cat_rows = m.namespace == "cat" and not cat_text
    returns = "bool" if m.head else ("list[dict[str, Any]]" if cat_rows else "Response")
    if cat_text:
        returns = "str"
    lines = ["", f"    async def {m.method}("]
    lines += signature_lines(items)
    lines.append(f"    ) -> {returns}:")
    lines.append(f'        """{summary(m)}')
    for url in references(m):
        lines.append(f"\n        Reference: {url}")
    lines.append('        """')
    query = [p for p in m.params if p.where == "query"]
    lines.append("        _q: dict[str, Any] = {}")
    if cat_rows:
        lines.append('        _q["format"] = "json"')
        lines.append("        params = cat_params(params)")
        unit = [p for p in query if p.wire == "bytes"]
        if unit:
            lines.append('        _q["bytes"] = "b"')
    for p in query:
        if cat_rows and p.wire == "format":
            continue
        lines.append(f"        if {p.py} is not None:")
        lines.append(f"            _q[{p.wire!r}] = {p.py}")
    parts = ", ".join(f"{p.wire!r}: {p.py}" for p in m.params if p.where == "path")
    fields = [p for p in m.params if p.where == "body"]
    if fields:
        named = ", ".join(f"{p.wire!r}: {p.py}" for p in fields)
        body = f"body_of({'body' if m.body != 'none' else 'None'}, {{{named}}})"
    else:
        body = "body" if m.body != "none" else "None"
    ignore = "head_ignore(ignore)" if m.head else "ignore"
    call = (
        f"await {owner}._call(\n            _t.{m.const},\n            {{{parts}}},\n            _q,\n"
        f"            {body},\n            params,\n            headers,\n            timeout,\n"
        f"            {ignore},\n        )"
    )
    if m.head:
        lines.append(f"        return bool(({call}).body)")
    elif cat_rows:
        lines.append(f"        return results.cat_rows(({call}).body)")
    elif cat_text:
        lines.append(f"        return str(({call}).body)")
    else:
        lines.append(f"        return {call}")
    return lines


def none_chain(params: list[Param]) -> list[str]:
    """``if not (a is None and b is None ...):``, one test per line."""
    tests = [f"{p.py} is None" for p in params]
    if len(tests) == 1:
        return [f"        if {tests[0].replace(' is None', ' is not None')}:"]
    return ["        if not (", "            " + "\n            and ".join(tests), "        ):"]


def body_annotation(m: Model) -> str:
    if m.body_format == "ndjson":
        return "Sequence[Mapping[str, Any] | str | bytes] | bytes"
    if m.body_format == "text":
        return "str | bytes"
    return "Mapping[str, Any]"


def render_special(m: Model, special: Special, owner: str) -> list[str]:
    params, doc = builder(special.builder)
    known = {p.name for p in params}
    items: list[tuple[str, str, str | None]] = []
    passed: list[str] = []
    for p in params:
        if p.name in special.given() or p.name in special.fixed:
            continue
        items.append((p.name, p.annotation, p.default))
        passed.append(p.name)
    # what the spec has beyond the builder: typed keywords, sent as query parameters
    extra_query = [
        p for p in m.params if p.where == "query" and p.py not in known and p.py not in COMMON_NAMES
    ]
    taken = {i[0] for i in items} | {n for n, _, _ in special.extra} | COMMON_NAMES
    if special.call == "by_query":
        taken |= {"wait_for_completion", "long_running"}
    extra_query = [p for p in extra_query if p.py not in taken]
    for p in extra_query:
        items.append((p.py, f"{p.annotation} | None", "None"))
    taken |= {p.py for p in extra_query}
    extra_body = []
    if "body" in known:
        extra_body = [p for p in m.params if p.where == "body" and p.py not in taken]
        for p in extra_body:
            items.append((p.py, f"{p.annotation} | None", "None"))
    for name, annotation, default in special.extra:
        items.append((name, annotation, default))
    if special.call == "by_query":
        items += [("wait_for_completion", "bool", "True"), ("long_running", "bool", "False")]
    # required first; the call parameters every method shares last, in their usual order
    common = dict((n, (n, a, d)) for n, a, d in COMMON)
    for item in items:
        if item[0] in common:
            common[item[0]] = item
    items = [i for i in items if i[0] not in common]
    items = [i for i in items if i[2] is None] + [i for i in items if i[2] is not None]
    items += [common[n] for n, _, _ in COMMON if n in known or n not in special.given()]
    lines = ["", f"    async def {m.method}("]
    lines += signature_lines(items)
    lines.append(f"    ) -> {special.returns}:")
    lines.append(f'        """{summary(m)}')
    if doc:
        lines.append("")
        for text in doc.splitlines():
            lines.append(f"        {text}".rstrip())
    for url in references(m):
        lines.append(f"\n        Reference: {url}")
    lines.append('        """')
    # The keywords beyond the builder's are rarely given: one chain of tests skips them all
    # (a dict of them built on every call cost a microsecond on ``search``).
    if extra_query:
        lines.append("        _q: dict[str, Any] | None = None")
        lines += none_chain(extra_query)
        lines.append("            _q = {}")
        for p in extra_query:
            lines.append(f"            if {p.py} is not None:")
            lines.append(f"                _q[{p.wire!r}] = {p.py}")
    if extra_body:
        named = ", ".join(f"{p.wire!r}: {p.py}" for p in extra_body)
        lines += none_chain(extra_body)
        lines.append(f"            body = body_of(body, {{{named}}})")
    args = []
    for name in passed:
        if name == "params" and extra_query:
            args.append("params=merge_query(params, _q)")
        elif name == "timeout" and special.call == "by_query":
            continue
        else:
            args.append(f"{name}={name}")
    if special.builder_args:
        args.append(special.builder_args)
    args += [f"{k}={v}" for k, v in special.fixed.items()]
    spec = f"api.{special.builder}({', '.join(args)})"
    lines.append(f"        spec = {spec}")
    late = [
        "headers" if "headers" not in known else "None",
        "ignore" if "ignore" not in known else "()",
    ]
    if extra_query and "params" not in known:
        late.append("_q")
    if late != ["None", "()"]:
        lines.append(f"        spec = adjust(spec, {', '.join(late)})")
    if special.call == "perform":
        answer = f"await {owner}._transport.perform(spec)"
    elif special.call == "flow":
        answer = f"await {owner}._run_flow(flows.single(spec))"
    else:
        lines.append(f"        return await {owner}._run_flow(")
        lines.append("            flows.by_query(spec, wait_for_completion=wait_for_completion),")
        lines.append("            timeout=timeout,")
        lines.append("            long_running=long_running,")
        lines.append("        )")
        return lines
    inner = f"({answer})" if "{r}." in special.wrap else answer
    lines.append(f"        return {special.wrap.format(r=inner)}")
    return lines


def render_properties(namespaces: list[str]) -> list[str]:
    """The namespace attributes of the client: each module is imported on first use, so a
    program that never calls ``client.ml`` never loads it."""
    out = []
    for namespace in namespaces:
        attr = python_name(namespace.replace(".", "_"))
        cls = class_name(namespace)
        out += [
            "",
            "    @cached_property",
            f"    def {attr}(self) -> {cls}:",
            f'        """``{namespace}`` API methods."""',
            f"        from sturdysearch._async.api.{module_name(namespace)} import {cls}",
            "",
            f"        return {cls}(self._client)",
        ]
    return out


def render_namespace(namespace: str, models: list[Model], children: list[str] = ()) -> str:
    root = namespace == ""
    owner = "self._client"
    cls = class_name(namespace)
    uses = "\n".join(line for m in models for line in render_method(m, owner))
    if root:
        uses = "\n".join(render_properties(list(children))) + "\n" + uses
    typing = [
        n
        for n in ("Callable", "Collection", "Iterable", "Mapping", "Sequence")
        if re.search(rf"\b{n}\[", uses)
    ]
    imports = [
        HEADER,
        f'"""The ``{namespace or "top-level"}`` API methods (see ``scripts/generate_api.py``)."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if typing:
        imports.append(f"from collections.abc import {', '.join(typing)}")
    imports.append(
        "from typing import TYPE_CHECKING, Any"
        if "Any" in uses
        else "from typing import TYPE_CHECKING"
    )
    imports.append("")
    core_names = [
        n
        for n in ("adjust", "body_of", "cat_params", "head_ignore", "merge_query")
        if n + "(" in uses
    ]
    mods = [
        n for n in ("api", "flows", "results") if re.search(rf"(?<![\w./-]){n}\.[A-Za-z_]", uses)
    ]
    if mods:
        imports.append(f"from sturdysearch._core import {', '.join(mods)}")
    if "_t." in uses:
        imports.append(f"from sturdysearch._core.apis import {module_name(namespace)} as _t")
    if core_names:
        imports.append(f"from sturdysearch._core.endpoint import {', '.join(core_names)}")
    imports.append("from sturdysearch._core.hints import hint_peer_keywords")
    if re.search(r"\bResponse\b", uses):
        imports.append("from sturdysearch._core.responses import Response")
    imports.append("")
    if root and children:
        at = imports.index(
            "from typing import TYPE_CHECKING, Any"
            if "Any" in uses
            else "from typing import TYPE_CHECKING"
        )
        imports.insert(at, "from functools import cached_property")
    imports.append("if TYPE_CHECKING:")
    for child in children:
        imports.append(
            f"    from sturdysearch._async.api.{module_name(child)} import {class_name(child)}"
        )
    imports.append("    from sturdysearch._async.client import AsyncClient")
    imports.append("")
    body = ["", "@hint_peer_keywords", f"class {cls}:"]
    if root:
        body.append('    """The top-level API methods, inherited by ``AsyncClient``."""')
        body.append("")
        body.append("    if TYPE_CHECKING:")
        body.append("        _client: AsyncClient")
    else:
        body.append(f'    """``client.{namespace}``: the ``{namespace}`` API."""')
        body.append("")
        body.append('    __slots__ = ("_client",)')
        body.append("")
        body.append("    def __init__(self, client: AsyncClient) -> None:")
        body.append("        self._client = client")
    text = "\n".join(imports + body) + "\n" + uses + "\n"
    return text


# -- the driver ----------------------------------------------------------------------------

SYNC_RULES = [
    (r"\basync def\b", "def"),
    (r"\bawait ", ""),
    (r"\bsturdysearch\._async\b", "sturdysearch._sync"),
    (r"\bAsync(\w*Client|RootApi)\b", r"\1"),
]


def to_sync(text: str) -> str:
    for pattern, replacement in SYNC_RULES:
        text = re.sub(pattern, replacement, text)
    return text.replace("AsyncClient", "Client")


def formatted(path: Path, text: str) -> str:
    """The text as ``ruff format`` leaves it (the project's formatter, pinned in
    constraints.txt), so generated files pass the format check and diff like hand-written ones."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff format failed on {path}: {done.stderr}")
    return done.stdout


def generate(table: dict[str, Any], verdicts: dict[str, bool]) -> dict[Path, str]:
    namespaces: dict[str, list[Model]] = {}
    missing = []
    every: list[Model] = []
    for endpoint_id in sorted(table["endpoints"]):
        model = build_model(endpoint_id, table["endpoints"][endpoint_id])
        if model is None:
            continue
        every.append(model)
        if model.method in HANDWRITTEN.get(model.namespace, set()):
            continue
        if model.posts and model.id not in verdicts and model.id not in SPECIAL:
            missing.append(model.id)
        namespaces.setdefault(model.namespace, []).append(model)
    if missing:
        raise SystemExit(
            "scripts/api/idempotency.json has no verdict for these POST endpoints: "
            + ", ".join(missing)
        )
    files: dict[Path, str] = {}
    core_init = [HEADER, '"""Generated endpoint tables, one module per namespace."""', ""]
    files[SRC / "_core" / "apis" / "__init__.py"] = "\n".join(core_init)
    files[SRC / "_core" / "apis" / "_routes.py"] = render_routes(every)
    namespaces.setdefault("", [])
    children = sorted(n for n in namespaces if n)
    for namespace, models in sorted(namespaces.items()):
        mod = module_name(namespace)
        files[SRC / "_core" / "apis" / f"{mod}.py"] = render_core(namespace, models, verdicts)
        text = render_namespace(namespace, models, children if namespace == "" else [])
        files[SRC / "_async" / "api" / f"{mod}.py"] = text
        files[SRC / "_sync" / "api" / f"{mod}.py"] = to_sync(text)
    files[SRC / "_async" / "api" / "__init__.py"] = render_registry(namespaces)
    files[SRC / "_sync" / "api" / "__init__.py"] = to_sync(render_registry(namespaces))
    return {path: formatted(path, text) for path, text in files.items()}


def render_routes(models: list[Model]) -> str:
    """Every URL form of every endpoint, hand-written methods' included, as one flat table:
    ``sturdysearch._core.operation`` names a request by it (traces and logs) without importing
    the endpoint modules."""
    lines = [
        HEADER,
        '"""Every URL form of every endpoint: (endpoint id, flavor, methods, path template).',
        "",
        "Read by ``sturdysearch._core.operation`` to name a request by its endpoint id.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "ROUTES: tuple[tuple[str, str, str, str], ...] = (",
    ]
    for m in models:
        for flavor in ("elasticsearch", "opensearch"):
            data = m.flavors.get(flavor)
            if not data:
                continue
            for url in data["urls"]:
                methods = ",".join(sorted({x.upper() for x in url["methods"]}))
                lines.append(f"    ({m.id!r}, {flavor!r}, {methods!r}, {url['path']!r}),")
    lines.append(")")
    return "\n".join(lines) + "\n"


def render_registry(namespaces: dict[str, list[Model]]) -> str:
    lines = [
        HEADER,
        '"""The namespaces of the generated API: ``NAMESPACES`` maps the attribute name on the',
        'client to (module, class); the client imports a namespace on first use."""',
        "",
        "from __future__ import annotations",
        "",
        "NAMESPACES: dict[str, tuple[str, str]] = {",
    ]
    for namespace in sorted(n for n in namespaces if n):
        attr = python_name(namespace.replace(".", "_"))
        lines.append(f"    {attr!r}: ({module_name(namespace)!r}, {class_name(namespace)!r}),")
    lines.append("}")
    return "\n".join(lines) + "\n"


#: The newest release of each major the project runs against (docs/compatibility.md).
RELEASES = {
    "elasticsearch": ["7.17.29", "8.19.21", "9.5.4"],
    "opensearch": ["1.3.20", "2.19.6", "3.8.0"],
}


def counts(table: dict[str, Any]) -> str:
    """A markdown table: how many endpoints of the table each release serves (every one has a
    method: ``tests/unit/test_generated_api.py`` checks it)."""
    rows = ["| server | endpoints with a method |", "|---|---|"]
    for flavor, releases in RELEASES.items():
        for release in releases:
            v = version(release)
            assert v is not None
            served = 0
            for entry in table["endpoints"].values():
                data = entry.get(flavor)
                if not supported(data, flavor):
                    continue
                added, removed = version(data.get("added")), version(data.get("removed"))
                if (added is None or added <= v) and (removed is None or v < removed):
                    served += 1
            name = "Elasticsearch" if flavor == "elasticsearch" else "OpenSearch"
            rows.append(f"| {name} {release} | {served} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the files are out of date")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--idempotency", type=Path, default=IDEMPOTENCY)
    ap.add_argument("--counts", action="store_true", help="print endpoint counts per release")
    args = ap.parse_args(argv)
    table = json.loads(args.table.read_text())
    if args.counts:
        print(counts(table))
        return 0
    files = generate(table, load_idempotency(args.idempotency))
    stale = []
    for path, text in files.items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for folder in (SRC / "_core" / "apis", SRC / "_async" / "api", SRC / "_sync" / "api"):
        for path in folder.glob("*.py") if folder.exists() else []:
            if path not in files:
                stale.append(str(path.relative_to(ROOT)))
                if not args.check:
                    path.unlink()
    if args.check and stale:
        print(f"generate_api: out of date, run `python scripts/generate_api.py`: {stale}")
        return 1
    if stale and not args.check:
        print(f"generate_api: rewrote {len(stale)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
