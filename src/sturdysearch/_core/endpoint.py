"""Endpoints as data, and the one function that turns a generated method's arguments into a
:class:`RequestSpec`.

The generated API (``scripts/generate_api.py``, from the servers' own specifications) describes
every endpoint with an :class:`Endpoint`: its URL forms per flavor, the versions that have it,
whether a resend is safe, and how its body is framed. Generated methods only collect their
arguments; everything that decides (which URL form fits the path parts given, whether the
connected server has the endpoint at all, how parts are encoded) happens here, once, for both
clients.

Theory of operation:

* URL choice is by the set of path parts given, exactly, as the specifications list them
  (``/{index}/_settings`` when ``index`` is given, ``/_settings`` when not). A set no form takes
  is a ``ValueError`` naming the forms that exist, before anything is sent.
* Flavor and version: an endpoint that both flavors serve with the same URL forms in every
  supported version is *plain* and needs no knowledge of the server (the hot path). Otherwise
  the generated method passes the detected :class:`~sturdysearch._core.dialect.Dialect`, and a
  server without the endpoint is refused with :class:`~sturdysearch.errors.UnsupportedApiError`
  naming the flavor, the version and the nearest equivalent.
* Idempotency comes from the reviewed table in ``scripts/api/idempotency.json`` (GET, HEAD, PUT
  and DELETE are idempotent; every POST is listed there with its verdict), baked into the
  generated :class:`Endpoint`; nothing here guesses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sturdysearch._core.api import _merge_body
from sturdysearch._core.request import RequestSpec, id_segment, index_segment
from sturdysearch._core.serialize import dumps, dumps_ndjson
from sturdysearch.errors import SerializationError, UnsupportedApiError

Version = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Route:
    """One URL form: ``/{index}/_doc/{id}`` with its method and the versions that serve it."""

    method: str
    template: str
    """The path with ``{part}`` placeholders."""
    parts: frozenset[str]
    added: Version | None = None
    removed: Version | None = None
    """First version without this form (``None``: still served)."""

    def serves(self, version: Version | None) -> bool:
        if version is None:
            return self.removed is None
        if self.added is not None and version < self.added:
            return False
        return self.removed is None or version < self.removed


@dataclass(frozen=True, slots=True)
class FlavorApi:
    """What one flavor has of an endpoint."""

    routes: tuple[Route, ...]
    added: Version | None = None
    removed: Version | None = None
    doc_url: str | None = None

    def serves(self, version: Version | None) -> bool:
        if version is None:
            return True
        if self.added is not None and version < self.added:
            return False
        return self.removed is None or version < self.removed


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An API endpoint, as the generated methods see it."""

    name: str
    """The id the specifications use, e.g. ``indices.put_settings``."""
    elasticsearch: FlavorApi | None
    opensearch: FlavorApi | None
    idempotent_post: bool = False
    """Whether a POST to this endpoint may be resent (from the reviewed table)."""
    body_format: str = "json"
    """``json``, ``ndjson`` or ``text``."""
    plain: bool = False
    """Same routes on both flavors in every supported version: no server detection needed."""
    long_running: bool = False
    equivalent: str | None = None
    """The other flavor's name for the same capability, for error messages."""
    list_parts: frozenset[str] = frozenset({"index"})
    """Path parts that take comma-separated names (indices, aliases, nodes, metrics)."""

    def flavor(self, flavor: str) -> FlavorApi | None:
        return self.opensearch if flavor == "opensearch" else self.elasticsearch

    def routes_for(self, flavor: str | None, version: Version | None) -> tuple[Route, ...]:
        """The URL forms the server in front of us serves; raises ``UnsupportedApiError`` when it
        has no such endpoint. ``flavor=None`` (not detected): Elasticsearch's forms, else
        OpenSearch's."""
        if flavor is None or flavor == "unknown":
            api = self.elasticsearch or self.opensearch
            assert api is not None
            return api.routes
        api = self.flavor(flavor)
        if api is None or not api.serves(version):
            raise UnsupportedApiError(self._unsupported(flavor, version, api))
        routes = tuple(r for r in api.routes if r.serves(version))
        return routes or api.routes

    def _unsupported(self, flavor: str, version: Version | None, api: FlavorApi | None) -> str:
        shown = ".".join(map(str, version)) if version else "of unknown version"
        name = "OpenSearch" if flavor == "opensearch" else "Elasticsearch"
        if api is None:
            why = f"{name} has no {self.name} API"
        elif api.added is not None and version is not None and version < api.added:
            why = f"{self.name} needs {name} {_show(api.added)} or later; the server is {shown}"
        else:
            removed = _show(api.removed) if api.removed else "?"
            why = f"{name} removed {self.name} in {removed}; the server is {shown}"
        if self.equivalent:
            why += f"; the nearest equivalent is {self.equivalent}"
        else:
            other = self.elasticsearch if flavor == "opensearch" else self.opensearch
            if other is not None:
                why += " (the other flavor has it)"
        return why


def _show(version: Version | None) -> str:
    return ".".join(map(str, version)) if version else "?"


def _segment(value: Any, names_list: bool) -> str:
    """One path part, percent-encoded. Parts that name indices, aliases, nodes or metrics
    (lists in the specifications) keep their commas and wildcards; ids and other names are
    encoded whole (a ``/`` or ``,`` in a document id is data, not syntax)."""
    if isinstance(value, bool):
        raise ValueError(f"a path part must be a string, got {value!r}")
    if names_list:
        if isinstance(value, (list, tuple)):
            return index_segment([str(v) for v in value])
        return index_segment(str(value))
    if isinstance(value, (list, tuple)):
        raise ValueError(f"this path part takes one value, not a list: {value!r}")
    return id_segment(value)


def choose_route(
    endpoint: Endpoint, routes: Sequence[Route], given: frozenset[str]
) -> tuple[Route, dict[str, str]]:
    """The form whose parts are exactly those given, and which placeholder each fills. A
    placeholder named ``{a_or_b}`` (OpenSearch's ``/_nodes/{node_id_or_metric}``) takes ``a`` or
    ``b``, so one call works against both flavors."""
    for route in routes:
        if route.parts == given:
            return route, {name: name for name in given}
    for route in routes:
        if len(route.parts) != len(given):
            continue
        fills: dict[str, str] = {}
        for name in given:
            slot = next(
                (p for p in route.parts if p not in fills.values() and name in p.split("_or_")),
                None,
            )
            if slot is None:
                break
            fills[name] = slot
        else:
            return route, fills
    forms = ", ".join(sorted({_form(r) for r in routes}))
    shown = ", ".join(sorted(given)) or "none"
    raise ValueError(
        f"{endpoint.name}: no URL form takes the path parts given ({shown}); the forms are {forms}"
    )


def _form(route: Route) -> str:
    return f"{route.method} {route.template}"


def _ignore(ignore: int | Collection[int]) -> frozenset[int]:
    if not ignore:
        return frozenset()
    if isinstance(ignore, int):
        return frozenset({ignore})
    return frozenset(ignore)


def cat_params(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``params=`` of a ``_cat`` method, which answers rows (``format=json``, set by the method):
    another format is refused, saying where the text table is."""
    if not params or "format" not in params:
        return params
    if params["format"] not in (None, "json"):
        raise ValueError(
            "_cat methods answer rows (format=json); for the text table use "
            "client.request('GET', '/_cat/...', headers={'accept': 'text/plain'})"
        )
    return {k: v for k, v in params.items() if k != "format"}


def head_ignore(ignore: int | Collection[int]) -> frozenset[int]:
    """A HEAD endpoint answers 404 for "no": that is its result, not an error."""
    return _ignore(ignore) | {404}


def encode_body(endpoint: Endpoint, body: Any) -> tuple[bytes | None, str]:
    """The body's bytes and content type. JSON bodies are mappings (or lists where the API takes
    an array); NDJSON bodies a sequence of mappings or pre-encoded lines, or bytes."""
    if body is None:
        return None, "application/json"
    if endpoint.body_format == "ndjson":
        if isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
            return (data if data.endswith(b"\n") else data + b"\n"), "application/x-ndjson"
        if isinstance(body, str) or not isinstance(body, Sequence):
            raise SerializationError(
                f"{endpoint.name} takes an NDJSON body: a list of objects (or bytes you built)",
                path="body",
                type_name=type(body).__name__,
            )
        return dumps_ndjson(list(body)), "application/x-ndjson"
    if endpoint.body_format == "text":
        if isinstance(body, str):
            return body.encode(), "text/plain"
        if isinstance(body, (bytes, bytearray, memoryview)):
            return bytes(body), "text/plain"
    return dumps(body), "application/json"


def build(
    endpoint: Endpoint,
    flavor: str | None,
    version: Version | None,
    parts: Mapping[str, Any],
    query: Mapping[str, Any] | None,
    body: Any,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
    ignore: int | Collection[int],
) -> RequestSpec:
    """The request for one call of a generated method.

    ``parts`` maps every path part of the method to its value (``None`` when not given);
    ``query`` holds the named query parameters that were given. ``params=`` adds more; a
    parameter given both ways is an error, never a silent override.
    """
    given = frozenset(k for k, v in parts.items() if v is not None)
    route, fills = choose_route(endpoint, endpoint.routes_for(flavor, version), given)
    path = route.template
    for name, slot in fills.items():
        listed = name in endpoint.list_parts or slot in endpoint.list_parts
        path = path.replace("{" + slot + "}", _segment(parts[name], listed))
    merged: dict[str, Any] | None = dict(query) if query else None
    if params:
        merged = merged or {}
        clash = sorted(k for k, v in params.items() if v is not None and k in merged)
        if clash:
            raise ValueError(f"{', '.join(clash)} given both as keyword and inside params=")
        merged.update({k: v for k, v in params.items() if v is not None})
    data, content_type = encode_body(endpoint, body)
    method = route.method
    idempotent = method != "POST" or endpoint.idempotent_post
    return RequestSpec(
        method,
        path,
        params=merged or None,
        body=data,
        headers=headers,
        idempotent=idempotent,
        ignore=_ignore(ignore),
        timeout=timeout,
        long_running=endpoint.long_running,
        content_type=content_type,
    )


def body_of(body: Any, fields: Mapping[str, Any]) -> Any:
    """``body=`` combined with the body fields given by name (wire names: ``from``,
    ``_source``); the rules are ``_core.api``'s: a field given both ways is an error, and an
    object-valued field given as a string (JSON built by hand) is refused."""
    return _merge_body(body, **fields)


def adjust(
    spec: RequestSpec,
    headers: Mapping[str, str] | None,
    ignore: int | Collection[int],
    query: Mapping[str, Any] | None = None,
) -> RequestSpec:
    """``spec`` with the caller's ``headers=``, ``ignore=`` and extra query parameters (for
    methods whose hand-written builder predates them); the same object when none was given."""
    if headers is None and not ignore and not query:
        return spec
    return spec._replace(
        headers={**(spec.headers or {}), **headers} if headers else spec.headers,
        ignore=spec.ignore | _ignore(ignore),
        params=merge_query(spec.params, query) if query else spec.params,
    )


def merge_query(
    params: Mapping[str, Any] | None, query: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """``params=`` plus named query parameters the hand-written builder does not know."""
    if not query:
        return params
    if not params:
        return query
    clash = sorted(k for k, v in params.items() if v is not None and k in query)
    if clash:
        raise ValueError(f"{', '.join(clash)} given both as keyword and inside params=")
    return {**params, **query}
