"""Replays the servers' own REST API YAML tests through sturdysearch.

The YAML DSL is the one the OpenSearch and Elasticsearch repositories describe in their
``rest-api-spec/test/README.asciidoc`` (``../shared/conformance/README.md`` lists what this kit
uses and its quirks). Each ``do`` step goes through the client's generated method of that name
(``indices.create`` -> ``client.indices.create(...)``), its arguments split by the method's own
signature: a keyword the method takes is passed as such, anything else as ``params=``. Only a
step the methods cannot express (a bulk body of pre-encoded lines, an API without a method) goes
through ``client.request()``; the runner counts both, and the session summary prints them.
"""

from __future__ import annotations

import inspect
import json
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sturdysearch import Client
from sturdysearch.errors import ApiError

#: ``catch:`` names and the statuses they mean.
CATCHES = {
    "missing": (404,),
    "conflict": (409,),
    "bad_request": (400,),
    "forbidden": (403,),
    "unauthorized": (401,),
    "request_timeout": (408,),
    "unavailable": (503,),
}
#: ``skip.features`` this runner implements.
FEATURES = {
    "headers",
    "warnings",
    "allowed_warnings",
    "yaml",
    "contains",
    "arbitrary_key",
    "default_shards",
    "stash_in_path",
    "stash_in_key",
    "allowed_warnings_regex",
    "warnings_regex",
}

#: Methods whose request body keyword has another name than ``body``.
BODY_NAMES = {
    "index": "document",
    "create": "document",
    "bulk": "operations",
    "msearch": "searches",
}


class Skipped(Exception):
    """This section cannot run here; the message says why."""


#: What a server says when its build lacks the module an API lives in (the harness runs the
#: integ-test distributions: no x-pack, no scripting languages, no reindex; see
#: docs/compatibility.md). A section that meets one of these is skipped with the server's words.
MISSING_MODULE = re.compile(
    r"no handler found for uri \[[^\]]*\]|failed to find action \[[^\]]*\]"
    r"|unsupported lang \[\w+\]|script_lang not supported \[\w+\]"
    r"|doesn't match any of the locations specified by path.repo"
    r"|unknown setting \[index\.lifecycle\.[\w.]+\]"
    # without the module, /_sql, /_reindex, /_query, /_enrich read as an index name
    r"|Incorrect HTTP method for uri \[/_\w+[^\]]*\]|Invalid index name \[_\w+\], must not start"
)


def missing_module(exc: BaseException) -> str | None:
    """The server's words when ``exc`` says the build lacks the API's module, else None."""
    while exc is not None:
        if isinstance(exc, ApiError):
            found = MISSING_MODULE.search(str(exc))
            if found:
                return found.group(0)
        exc = exc.__cause__  # type: ignore[assignment]
    return None


class Failed(AssertionError):
    """The section ran and an assertion failed."""


@dataclass
class Section:
    path: Path
    """The YAML file, relative to the kit root."""
    name: str
    setup: list[dict[str, Any]]
    teardown: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    requires: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.as_posix()}::{self.name}"


def load(root: Path, path: Path) -> list[Section]:
    """The test sections of one YAML file."""
    documents = [d for d in yaml.safe_load_all((root / path).read_text()) if d]
    setup: list[dict[str, Any]] = []
    teardown: list[dict[str, Any]] = []
    requires: dict[str, Any] = {}
    tests: list[tuple[str, list[dict[str, Any]]]] = []
    for document in documents:
        for key, value in document.items():
            name = str(key).strip()
            if name == "setup":
                setup = value or []
            elif name == "teardown":
                teardown = value or []
            elif name == "requires":
                requires = value or {}
            else:
                tests.append((name, value or []))
    return [Section(path, name, setup, teardown, steps, requires) for name, steps in tests]


def sections(root: Path) -> Iterator[Section]:
    for path in sorted(root.rglob("*.yml")):
        yield from load(root, path.relative_to(root))


# -- versions ------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    while len(numbers) < 3:
        numbers.append(0)
    return (numbers[0], numbers[1], numbers[2])


def _rank(version: tuple[int, int, int], flavor: str) -> tuple[int, int, int, int]:
    """A sortable version. On OpenSearch, legacy Elasticsearch versions (major 6 or more, as
    the kit's ranges write them) sort below 1.0.0: OpenSearch flips a bit in its version id."""
    if flavor == "opensearch":
        return (0, *version) if version[0] >= 6 else (1, *version)
    return (1, *version)


def in_ranges(spec: str, version: tuple[int, int, int], flavor: str) -> bool:
    """Whether ``version`` is in ``" - 6.99.99"``, ``"2.0.0 - "``, ``"- 3.0.99, 3.7.0 - "``
    or ``"all"``."""
    spec = str(spec).strip()
    if spec == "all":
        return True
    me = _rank(version, flavor)
    for part in spec.split(","):
        low, _, high = part.partition("-")
        low, high = low.strip(), high.strip()
        lo = _rank(parse_version(low), flavor) if low else (-1, 0, 0, 0)
        hi = _rank(parse_version(high), flavor) if high else (9, 0, 0, 0)
        if lo <= me <= hi:
            return True
    return False


# -- values --------------------------------------------------------------------------------


class Stash(dict[str, Any]):
    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("$") and value[1:] in self:
                return self[value[1:]]
            if value.startswith("${") and value.endswith("}") and value[2:-1] in self:
                return self[value[2:-1]]
            return re.sub(r"\$\{(\w+)\}", lambda m: str(self.get(m.group(1), m.group(0))), value)
        if isinstance(value, dict):
            return {self.resolve(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def lookup(body: Any, path: str, stash: Stash) -> Any:
    """The value at a dotted path (``hits.hits.0._id``; ``\\.`` escapes a dot); ``''`` or
    ``$body`` is the whole body."""
    if path in ("", "$body"):
        return body
    value = body
    for raw in re.split(r"(?<!\\)\.", path):
        key = stash.resolve(raw.replace("\\.", "."))
        if isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError) as exc:
                raise Failed(f"{path}: no element {key!r} in a list of {len(value)}") from exc
        elif isinstance(value, dict):
            if key == "_arbitrary_key_":
                if not value:
                    raise Failed(f"{path}: no key to pick in an empty object")
                return next(iter(value))
            if key not in value:
                raise Failed(f"{path}: no key {key!r} in {sorted(value)[:20]}")
            value = value[key]
        else:
            raise Failed(f"{path}: cannot look up {key!r} in {type(value).__name__}")
    return value


def same(expected: Any, actual: Any) -> bool:
    """YAML-vs-JSON equality: numbers by value, a number and its string form alike (ids are
    strings in answers, often numbers in the YAML), containers deeply."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or (isinstance(actual, str) and str(expected).lower() == actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, str):
        return str(expected) == actual
    if isinstance(expected, str) and isinstance(actual, (int, float)):
        return expected == str(actual)
    return bool(expected == actual)


def is_regex(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) > 1
        and value.strip().startswith("/")
        and value.strip().endswith("/")
    )


def regex_match(pattern: str, actual: Any, *, verbose: bool = True) -> bool:
    """Search semantics. ``match`` values are read with the COMMENTS flag (white space in the
    pattern is ignored, as the upstream runner does); ``catch`` patterns literally."""
    text = actual if isinstance(actual, str) else json.dumps(actual)
    flags = re.VERBOSE if verbose else 0
    return re.search(pattern.strip()[1:-1], text, flags) is not None


def falsy(value: Any) -> bool:
    """``is_false`` holds for a missing key, null, false, 0 and the empty string (an empty
    object or list is "true": it is there, as the upstream runner reads it)."""
    if isinstance(value, (dict, list)):
        return False
    return value is None or value is False or value == 0 or value in ("", "false")


# -- calling the client --------------------------------------------------------------------


@dataclass
class Counts:
    through_methods: int = 0
    through_request: int = 0
    adapted: dict[str, int] = field(default_factory=dict)

    def note(self, what: str) -> None:
        self.adapted[what] = self.adapted.get(what, 0) + 1


def python_name(name: str) -> str:
    text = re.sub(r"\W", "_", name.lstrip("_")) or name
    return text + "_" if keyword.iskeyword(text) else text


@dataclass
class Answer:
    body: Any
    status: int
    headers: dict[str, str]


class Runner:
    """Runs sections against one server through one client."""

    def __init__(self, client: Client, flavor: str, version: tuple[int, int, int]) -> None:
        self.client = client
        self.flavor = flavor
        self.version = version
        self.counts = Counts()
        self.wire: dict[str, str] = {}
        """Python keyword -> the name the YAML gave (``source`` -> ``_source``)."""

    # the skip rules ---------------------------------------------------------------------

    def check_skip(self, section: Section) -> None:
        requires = section.requires
        if requires and requires.get("stack") is False:
            raise Skipped("the test is for serverless only (requires.stack: false)")
        if requires.get("feature_flag"):
            raise Skipped(f"needs the server feature flag {requires['feature_flag']!r}")
        for step in section.setup + section.steps:
            for kind in ("skip", "requires"):
                if kind in step and isinstance(step[kind], dict):
                    self._skip_rule(step[kind], kind)

    def _skip_rule(self, rule: dict[str, Any], kind: str) -> None:
        features = rule.get("features") or rule.get("test_runner_features") or []
        if isinstance(features, str):
            features = [features]
        missing = [f for f in features if f not in FEATURES]
        if missing:
            raise Skipped(f"needs runner feature(s) this runner lacks: {', '.join(missing)}")
        version = rule.get("version") or (rule.get("cluster_features") and None)
        if kind == "skip" and version and in_ranges(str(version), self.version, self.flavor):
            raise Skipped(f"skipped on this version ({version}): {rule.get('reason', '')}".strip())
        if kind == "requires" and rule.get("cluster_features"):
            raise Skipped(f"needs cluster features {rule['cluster_features']}")

    # one section --------------------------------------------------------------------------

    def run(self, section: Section) -> None:
        self.check_skip(section)
        stash = Stash()
        try:
            for step in section.setup:
                self.step(step, stash, section)
            stash = Stash()
            for step in section.steps:
                self.step(step, stash, section)
        finally:
            try:
                for step in section.teardown:
                    self.step(step, Stash(), section, teardown=True)
            finally:
                self.clean()

    def step(
        self, step: dict[str, Any], stash: Stash, section: Section, teardown: bool = False
    ) -> None:
        ((kind, arg),) = step.items()
        if kind == "skip" or kind == "requires":
            return
        if kind == "do":
            self.do(arg, stash, teardown=teardown)
            return
        current = stash.get("$response")
        body = current.body if isinstance(current, Answer) else None
        if kind == "set":
            for path, name in arg.items():
                stash[name] = lookup(body, path, stash)
            return
        if kind == "transform_and_set":
            raise Skipped("transform_and_set is not implemented")
        if kind in ("is_true", "is_false"):
            path = arg if isinstance(arg, str) else ""
            try:
                value = lookup(body, path, stash)
            except Failed:
                value = None
            if kind == "is_true" and falsy(value):
                raise Failed(f"is_true {path!r}: got {value!r}")
            if kind == "is_false" and not falsy(value):
                raise Failed(f"is_false {path!r}: got {value!r}")
            return
        if kind == "exists":
            try:
                value = lookup(body, str(arg), stash)
            except Failed as exc:
                raise Failed(f"exists {arg!r}: {exc}") from exc
            if value is None:
                raise Failed(f"exists {arg!r}: null")
            return
        if not isinstance(arg, dict) or len(arg) != 1:
            raise Skipped(f"step {kind!r} with this argument form is not implemented")
        ((path, expected),) = arg.items()
        actual = lookup(body, stash.resolve(path) if "$" in path else path, stash)
        expected = stash.resolve(expected)
        if kind == "match":
            if is_regex(expected):
                if not regex_match(expected, actual):
                    raise Failed(f"match {path}: {actual!r} does not match {expected}")
            elif not same(expected, actual):
                raise Failed(f"match {path}: expected {expected!r}, got {actual!r}")
        elif kind == "length":
            if not hasattr(actual, "__len__") or len(actual) != int(expected):
                raise Failed(f"length {path}: expected {expected}, got {actual!r}")
        elif kind in ("gt", "gte", "lt", "lte"):
            a, e = float(actual), float(expected)
            ok = {"gt": a > e, "gte": a >= e, "lt": a < e, "lte": a <= e}[kind]
            if not ok:
                raise Failed(f"{kind} {path}: {actual!r} vs {expected!r}")
        elif kind == "contains":
            if isinstance(actual, list):
                if not any(
                    same(expected, a)
                    or (
                        isinstance(expected, dict)
                        and isinstance(a, dict)
                        and all(same(v, a.get(k)) for k, v in expected.items())
                    )
                    for a in actual
                ):
                    raise Failed(f"contains {path}: {expected!r} not in {actual!r}")
            elif expected not in actual:
                raise Failed(f"contains {path}: {expected!r} not in {actual!r}")
        else:
            raise Skipped(f"step {kind!r} is not implemented")

    def do(self, spec: dict[str, Any], stash: Stash, *, teardown: bool = False) -> None:
        spec = dict(spec)
        catch = spec.pop("catch", None)
        headers = spec.pop("headers", None)
        warnings = spec.pop("warnings", None)
        spec.pop("allowed_warnings", None)  # allowed, not required: nothing to check
        spec.pop("warnings_regex", None)
        spec.pop("allowed_warnings_regex", None)
        spec.pop("node_selector", None)
        ((api, raw_args),) = spec.items()
        args = stash.resolve(dict(raw_args or {}))
        try:
            answer = self.call(api, args, headers)
        except ApiError as exc:
            answer = Answer(exc.body, exc.status, exc.headers)
            stash["$response"] = answer
            if catch is None:
                if teardown:
                    return
                raise Failed(f"{api}: {exc}") from exc
            self._check_catch(api, catch, exc)
            return
        stash["$response"] = answer
        if catch is not None and catch != "param":
            raise Failed(f"{api}: expected an error ({catch}), got {answer.status}")
        seen = [w for w in _warnings(answer.headers)]
        if warnings is not None:
            missing = [w for w in warnings if w not in seen]
            if missing:
                raise Failed(f"{api}: expected warnings {missing}, got {seen}")

    def _check_catch(self, api: str, catch: str, exc: ApiError) -> None:
        if catch in CATCHES:
            if exc.status not in CATCHES[catch]:
                raise Failed(f"{api}: expected {catch}, got {exc.status} {exc}") from exc
        elif is_regex(catch):
            found = regex_match(catch, exc.body, verbose=False)
            if not (found or regex_match(catch, str(exc), verbose=False)):
                raise Failed(f"{api}: error does not match {catch}: {exc}") from exc
        elif catch == "request" and exc.status < 400:
            raise Failed(f"{api}: expected a 4xx/5xx, got {exc.status}") from exc

    # the call itself ------------------------------------------------------------------------

    def call(self, api: str, args: dict[str, Any], headers: dict[str, str] | None) -> Answer:
        owner: Any = self.client
        namespace, _, name = api.rpartition(".")
        if namespace:
            owner = getattr(self.client, namespace.replace(".", "_"), None)
        method = getattr(owner, python_name(name), None) if owner is not None else None
        if method is None:
            raise Skipped(f"no method for {api}")
        kwargs, raw = self.arguments(api, method, args)
        if raw is not None:
            return self.raw_call(api, method, kwargs, raw, headers)
        if headers:
            kwargs["headers"] = {k: str(v) for k, v in headers.items()}
        self.counts.through_methods += 1
        result = method(**kwargs)
        return self.answer_of(result)

    def arguments(
        self, api: str, method: Any, args: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes | None]:
        """The method's keywords for the step's arguments; bytes when the body can only be
        sent as written (NDJSON lines given as strings)."""
        accepted = inspect.signature(method).parameters
        kwargs: dict[str, Any] = {}
        params: dict[str, Any] = {}
        raw: bytes | None = None
        name = api.rpartition(".")[2]
        for key, value in args.items():
            if key == "body":
                body_name = BODY_NAMES.get(name, "body")
                if body_name not in accepted and "body" in accepted:
                    body_name = "body"
                if isinstance(value, str) or (
                    isinstance(value, list) and any(isinstance(v, str) for v in value)
                ):
                    if isinstance(value, list):
                        value = "\n".join(v if isinstance(v, str) else json.dumps(v) for v in value)
                    if body_name in ("operations", "searches") or api in ("bulk", "msearch"):
                        raw = value.encode() + (b"" if value.endswith("\n") else b"\n")
                        continue
                    value = json.loads(value)
                if name == "update" and isinstance(value, dict) and "body" not in accepted:
                    for field_name, field_value in value.items():
                        kwargs[python_name(field_name)] = field_value
                    self.counts.note("update body split into doc=/script=/...")
                    continue
                kwargs[body_name] = value
                continue
            if key == "ignore":
                kwargs["ignore"] = value
                continue
            if value == [] and key in ("index", "name"):  # `index: []`: no index in the path
                continue
            py = "server_timeout" if key == "timeout" else python_name(key)
            if py in accepted and py not in ("params", "headers", "timeout", "ignore"):
                kwargs[py] = value
                self.wire[py] = key
            else:
                params[key] = value
        if params:
            kwargs["params"] = params
        return kwargs, raw

    def raw_call(
        self,
        api: str,
        method: Any,
        kwargs: dict[str, Any],
        raw: bytes,
        headers: dict[str, str] | None,
    ) -> Answer:
        """NDJSON given as pre-encoded lines: sent as written, through ``request()``."""
        self.counts.through_request += 1
        params = dict(kwargs.pop("params", {}) or {})
        index = kwargs.pop("index", None)
        for key, value in kwargs.items():
            if key not in ("ignore",):
                params[self.wire.get(key, key)] = value
        path = (f"/{index}" if index else "") + ("/_bulk" if api == "bulk" else "/_msearch")
        response = self.client.request(
            "POST",
            path,
            params=params or None,
            raw_body=raw,
            content_type="application/x-ndjson",
            headers={k: str(v) for k, v in (headers or {}).items()} or None,
            idempotent=False,
        )
        return self.answer_of(response)

    @staticmethod
    def answer_of(result: Any) -> Answer:
        if isinstance(result, bool):
            return Answer(result, 200 if result else 404, {})
        if isinstance(result, list):  # _cat rows
            return Answer(result, 200, {})
        raw = getattr(result, "raw", None)
        if isinstance(raw, dict):  # info() answers a typed ServerInfo; the YAML reads the JSON
            return Answer(raw, 200, {})
        meta = getattr(result, "meta", None)
        body = getattr(result, "body", result)
        headers = dict(meta.headers) if meta is not None else {}
        if isinstance(body, str) and "yaml" in headers.get("content-type", ""):
            body = yaml.safe_load(body)
        return Answer(body, meta.status if meta is not None else 200, headers)

    # between sections -----------------------------------------------------------------------

    def clean(self) -> None:
        """Delete what the section left: indices, data streams, templates, transient and
        persistent cluster settings (the upstream runner does the same)."""
        c = self.client
        rows = c.request(
            "GET",
            "/_cat/indices",
            params={"format": "json", "h": "index", "expand_wildcards": "all"},
        ).body
        names = [r["index"] for r in rows if not r["index"].startswith(".")]
        for start in range(0, len(names), 50):
            c.indices.delete(
                index=names[start : start + 50], ignore=404, params={"expand_wildcards": "all"}
            )
        for kind in ("_index_template", "_component_template"):
            answer = c.request("GET", f"/{kind}", ignore=404).body or {}
            key = "index_templates" if kind == "_index_template" else "component_templates"
            for item in answer.get(key, []):
                name = item["name"]
                if not name.startswith(".") and not item.get(kind.strip("_"), {}).get(
                    "_meta", {}
                ).get("managed"):
                    c.request("DELETE", f"/{kind}/{name}", ignore=(400, 404))
        legacy = c.request("GET", "/_template", ignore=404).body or {}
        for name in legacy:
            if not name.startswith("."):
                c.request("DELETE", f"/_template/{name}", ignore=404)
        c.request(
            "PUT",
            "/_cluster/settings",
            body={"transient": {"*": None}, "persistent": {"*": None}},
            ignore=400,
        )


def _warnings(headers: dict[str, str]) -> list[str]:
    value = headers.get("warning")
    if not value:
        return []
    return [m.group(1) for m in re.finditer(r'\d{3} \S+ "((?:[^"\\]|\\.)*)"', value)]
