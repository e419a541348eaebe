"""Extract the API facts table from the servers' specification repositories.

Writes ``scripts/api/endpoints.json`` (the format is described in ``scripts/api/ORIGIN.md``):
for every endpoint and flavor, its URL forms, path parts, query parameters and body fields with
their types, the versions that have it and the documentation link. Facts only: no description
text is carried over.

Sources (git directories, read with ``git show``; no work tree is needed):

* Elasticsearch, ``elastic/elasticsearch-specification``: the REST JSON specs
  (``specification/_json_spec/*.json``) of the ``7.17`` and ``8.19`` branches, and the
  TypeScript request definitions (``specification/**/*Request.ts``) of the newest 9.x branch,
  which has no JSON specs any more.
* OpenSearch, ``opensearch-project/opensearch-api-specification``: the OpenAPI files
  ``spec/namespaces/*.yaml`` (operations carry ``x-operation-group`` and
  ``x-version-added``/``-removed``/``-deprecated``) with their ``$ref``s into ``spec/schemas``.

    python scripts/api_extract.py --elasticsearch DIR --opensearch DIR
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scripts" / "api" / "endpoints.json"
ES_DEFAULT = Path("/work/.mirror/elastic+elasticsearch-specification/repo")
OS_DEFAULT = Path("/work/.mirror/opensearch-project+opensearch-api-specification/repo")
ES_JSON_REFS = {7: "7.17", 8: "8.19"}
ES_TS_REF = "9.5"

JSON_TYPES = {
    "string": "string",
    "list": "list",
    "boolean": "boolean",
    "number": "number",
    "int": "integer",
    "integer": "integer",
    "long": "integer",
    "double": "number",
    "float": "number",
    "time": "time",
    "enum": "enum",
    "date": "string",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def norm_version(text: Any) -> str | None:
    """``'2.4'`` -> ``'2.4.0'``; ``None`` stays ``None``."""
    if text is None or text == "":
        return None
    numbers = re.findall(r"\d+", str(text))[:3]
    while len(numbers) < 3:
        numbers.append("0")
    return ".".join(str(int(n)) for n in numbers)


# -- Elasticsearch: REST JSON specs ------------------------------------------------------


def es_json_entries(repo: Path, ref: str) -> dict[str, dict[str, Any]]:
    names = git(repo, "ls-tree", "--name-only", ref, "specification/_json_spec/").split()
    found: dict[str, dict[str, Any]] = {}
    for path in names:
        if not path.endswith(".json") or path.endswith("_common.json"):
            continue
        data = json.loads(git(repo, "show", f"{ref}:{path}"))
        for endpoint_id, spec in data.items():
            found[endpoint_id] = es_json_entry(spec)
    return found


def es_json_entry(spec: dict[str, Any]) -> dict[str, Any]:
    urls, parts = [], {}
    for form in spec["url"]["paths"]:
        form_parts = form.get("parts") or {}
        urls.append(
            {
                "path": form["path"],
                "methods": sorted(m.upper() for m in form["methods"]),
                "parts": list(form_parts),
                "added": None,
                "removed": None,
                "deprecated": norm_version((form.get("deprecated") or {}).get("version")),
            }
        )
        for name, part in form_parts.items():
            parts[name] = {"type": JSON_TYPES.get(part.get("type"), "string"), "required": False}
    for name in parts:
        parts[name]["required"] = all(name in u["parts"] for u in urls)
    params = {}
    for name, param in (spec.get("params") or {}).items():
        kind = JSON_TYPES.get(param.get("type"), "any")
        options = param.get("options")
        params[name] = {
            "type": kind,
            "options": [str(o) for o in options] if options else None,
            "deprecated": bool(param.get("deprecated")),
        }
    body = spec.get("body")
    content_types = (spec.get("headers") or {}).get("content_type") or []
    ndjson = any("ndjson" in c for c in content_types)
    return {
        "urls": urls,
        "parts": parts,
        "params": params,
        "body": "none" if not body else ("required" if body.get("required") else "optional"),
        "body_format": "ndjson" if ndjson else "json",
        "body_fields": None,
        "added": None,
        "removed": None,
        "stability": spec.get("stability"),
        "visibility": spec.get("visibility"),
        "doc_url": (spec.get("documentation") or {}).get("url"),
    }


# -- Elasticsearch: TypeScript request definitions -------------------------------------------

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_TAG = re.compile(r"@(rest_spec_name|availability)\s+([^\n]*)")


def ts_type(text: str) -> str:
    """Map a TypeScript type of the specification to the table's vocabulary."""
    t = text.strip().rstrip(";").strip()
    if "|" in t and "<" not in t and "{" not in t:
        kinds = {ts_type(x) for x in t.split("|")}
        if "list" in kinds or ("string" in kinds and "array" in kinds):
            return "list"
        return kinds.pop() if len(kinds) == 1 else "any"
    if t.endswith("[]") or t.startswith("Array<"):
        return "array"
    if t.startswith("{"):
        return "object"
    if t in ("boolean",):
        return "boolean"
    if t in (
        "integer",
        "long",
        "int",
        "short",
        "byte",
        "uint",
        "ulong",
        "DurationValue<UnitMillis>",
    ):
        return "integer"
    if t in ("float", "double", "number"):
        return "number"
    if t in ("Duration", "DateMath", "Time"):
        return "time" if t == "Duration" else "string"
    if t in ("Indices", "Names", "Fields", "NodeIds", "Metrics", "Routing", "IndexAlias", "Ids"):
        return "list"
    if t.startswith("Dictionary<") or t.startswith("Record<") or t in ("UserDefinedValue",):
        return "object"
    if t in (
        "string",
        "Id",
        "Name",
        "IndexName",
        "Field",
        "NodeId",
        "ScrollId",
        "Username",
        "Password",
        "DataStreamName",
        "TaskId",
        "VersionString",
        "Uuid",
        "Namespace",
        "MediaType",
        "ScriptLanguage",
        "ExpandWildcards",
        "WaitForActiveShards",
        "VersionNumber",
        "SequenceNumber",
        "Refresh",
        "Level",
        "Bytes",
        "TimeUnit",
        "SearchType",
        "SuggestMode",
        "Operator",
        "VersionType",
        "Conflicts",
        "OpType",
        "HealthStatus",
        "WaitForEvents",
        "Slices",
        "ByteSize",
        "Percentage",
    ):
        return "string"
    if t[:1].isupper():
        return "object"
    return "any"


def _block(text: str, key: str) -> str | None:
    """The ``{...}`` that follows ``key:`` at the request's top level, brace-matched."""
    match = re.search(rf"\n  {key}\??:\s*\{{", text)
    if not match:
        return None
    start = match.end() - 1
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def _fields(block: str | None) -> dict[str, tuple[str, bool]]:
    """Top-level ``name?: Type`` entries of a block: name -> (type, optional)."""
    if not block:
        return {}
    found: dict[str, tuple[str, bool]] = {}
    depth = 0
    for line in block.splitlines():
        stripped = line.strip()
        if depth == 0:
            m = re.match(r"^(['\w]+)(\?)?:\s*(.*)$", stripped)
            if m:
                found[m.group(1).strip("'")] = (m.group(3), m.group(2) == "?")
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return found


def es_ts_entries(repo: Path, ref: str) -> dict[str, dict[str, Any]]:
    names = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", ref, "specification/").split()
        if p.endswith("Request.ts")
    ]
    # one `git cat-file --batch` instead of a process per file
    blobs = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="".join(f"{ref}:{p}\n" for p in names),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, dict[str, Any]] = {}
    for raw in re.split(r"(?m)^[0-9a-f]{40} blob \d+\n", blobs)[1:]:
        # the endpoint's own tags are in the comment above the interface; fields have theirs
        head = raw.split("export interface Request", 1)[0]
        tags = dict(_TAG.findall(head))
        endpoint_id = tags.get("rest_spec_name", "").strip()
        if not endpoint_id:
            continue
        since = re.search(r"@availability stack[^\n]*since=([\d.]+)", head)
        visibility = re.search(r"@availability stack[^\n]*visibility=(\w+)", head)
        stability = re.search(r"@availability stack[^\n]*stability=(\w+)", head)
        text = _COMMENT.sub("", raw)
        urls = []
        for path, methods in re.findall(r"path:\s*'([^']+)'\s*\n\s*methods:\s*\[([^\]]*)\]", text):
            urls.append(
                {
                    "path": path,
                    "methods": sorted(re.findall(r"'(\w+)'", methods)),
                    "parts": re.findall(r"\{(\w+)\}", path),
                    "added": None,
                    "removed": None,
                    "deprecated": None,
                }
            )
        if not urls:
            continue
        parts = {
            n: {"type": ts_type(t), "required": all(n in u["parts"] for u in urls)}
            for n, (t, _) in _fields(_block(text, "path_parts")).items()
        }
        params = {
            n: {"type": ts_type(t), "options": None, "deprecated": False}
            for n, (t, _) in _fields(_block(text, "query_parameters")).items()
        }
        body_block = _block(text, "body")
        body_fields = (
            {n: {"type": ts_type(t)} for n, (t, _) in _fields(body_block).items()}
            if body_block is not None
            else None
        )
        has_body = body_block is not None or re.search(r"\n  body\??:", text) is not None
        required = re.search(r"\n  body:", text) is not None and body_block is None
        ndjson = "MediaType.Ndjson" in text.split("request_media_type", 1)[-1][:80]
        found[endpoint_id] = {
            "urls": urls,
            "parts": parts,
            "params": params,
            "body": ("required" if required else "optional") if has_body else "none",
            "body_format": "ndjson" if ndjson else "json",
            "body_fields": body_fields or None,
            "added": norm_version(since.group(1)) if since else None,
            "removed": None,
            "stability": stability.group(1) if stability else None,
            "visibility": visibility.group(1) if visibility else None,
            "doc_url": None,
        }
    return found


def es_merge(by_major: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One entry per endpoint over the majors: the newest major's facts, version range from
    which majors have it, URL forms kept with the majors that serve them, parameters united."""
    majors = sorted(by_major)
    merged: dict[str, dict[str, Any]] = {}
    for endpoint_id in sorted(set().union(*by_major.values())):
        having = [m for m in majors if endpoint_id in by_major[m]]
        newest = by_major[having[-1]][endpoint_id]
        entry = json.loads(json.dumps(newest))
        first, last = having[0], having[-1]
        since = entry.get("added")
        if first > majors[0]:
            entry["added"] = since if since and since.startswith(f"{first}.") else f"{first}.0.0"
        else:
            entry["added"] = None
        entry["removed"] = f"{last + 1}.0.0" if last < majors[-1] else None
        # URL forms: each with the majors that list it
        forms: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        seen_in: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for m in having:
            for url in by_major[m][endpoint_id]["urls"]:
                key = (url["path"], tuple(url["methods"]))
                forms.setdefault(key, dict(url))
                seen_in.setdefault(key, []).append(m)
        urls = []
        for key, url in forms.items():
            ms = seen_in[key]
            url["added"] = f"{ms[0]}.0.0" if ms[0] > first else None
            url["removed"] = f"{ms[-1] + 1}.0.0" if ms[-1] < last else None
            urls.append(url)
        entry["urls"] = sorted(urls, key=lambda u: (-len(u["parts"]), u["path"]))
        for m in having[:-1]:
            older = by_major[m][endpoint_id]
            for name, part in older["parts"].items():
                entry["parts"].setdefault(name, {**part, "required": False})
            for name, param in older["params"].items():
                entry["params"].setdefault(name, param)
                # the JSON specs know enum options and deprecation; the TypeScript does not
                if entry["params"][name].get("options") is None and param.get("options"):
                    entry["params"][name]["options"] = param["options"]
                    entry["params"][name]["type"] = param["type"]
            if not entry.get("doc_url"):
                entry["doc_url"] = older.get("doc_url")
            if entry["body"] == "none" and older["body"] != "none":
                entry["body"] = older["body"]
            if older["body_format"] == "ndjson":
                entry["body_format"] = "ndjson"
        for name in entry["parts"]:
            entry["parts"][name]["required"] = all(name in u["parts"] for u in entry["urls"])
        merged[endpoint_id] = entry
    return merged


# -- OpenSearch: OpenAPI ------------------------------------------------------------------


class OpenApi:
    """The OpenSearch OpenAPI files, with ``$ref`` resolution across them."""

    def __init__(self, repo: Path, ref: str) -> None:
        self.repo, self.ref = repo, ref
        self.docs: dict[str, Any] = {}

    def doc(self, path: str) -> Any:
        if path not in self.docs:
            self.docs[path] = yaml.safe_load(git(self.repo, "show", f"{self.ref}:{path}")) or {}
        return self.docs[path]

    def resolve(self, base: str, node: Any, depth: int = 0) -> tuple[str, Any]:
        while isinstance(node, dict) and "$ref" in node and depth < 20:
            target = node["$ref"]
            file_part, _, pointer = target.partition("#")
            path = base
            if file_part:
                path = str(Path(base).parent / file_part)
                path = (
                    str(Path(path).resolve().relative_to(Path("/").resolve()))
                    if path.startswith("/")
                    else _normpath(path)
                )
            node = self.doc(path)
            for key in pointer.strip("/").split("/") if pointer else []:
                node = (
                    node.get(key.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(node, dict)
                    else {}
                )
            base = path
            depth += 1
        return base, node

    def schema_type(self, base: str, schema: Any, depth: int = 0) -> tuple[str, list[str] | None]:
        base, schema = self.resolve(base, schema)
        if not isinstance(schema, dict) or depth > 8:
            return "any", None
        if "enum" in schema:
            return "enum", [str(v) for v in schema["enum"]]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                kinds = [self.schema_type(base, s, depth + 1) for s in schema[key]]
                names = {k for k, _ in kinds}
                if names <= {"string", "array", "list"} and "array" in names:
                    return "list", None
                if len(names) == 1:
                    return kinds[0]
                if names <= {"boolean", "enum", "string"}:
                    options = [o for _, opts in kinds for o in (opts or [])]
                    return "enum", options or None
                return "any", None
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.schema_type(base, schema["allOf"][0], depth + 1)
        kind = schema.get("type")
        if kind == "string":
            return ("time" if "Duration" in json.dumps(schema) else "string"), None
        if kind == "integer":
            return "integer", None
        if kind == "number":
            return "number", None
        if kind == "boolean":
            return "boolean", None
        if kind == "array":
            return "array", None
        if kind == "object":
            return "object", None
        return "any", None


def _normpath(path: str) -> str:
    parts: list[str] = []
    for piece in path.split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)


def os_entries(repo: Path, ref: str) -> dict[str, dict[str, Any]]:
    api = OpenApi(repo, ref)
    files = [
        p
        for p in git(repo, "ls-tree", "--name-only", ref, "spec/namespaces/").split()
        if p.endswith(".yaml")
    ]
    found: dict[str, dict[str, Any]] = {}
    for path in files:
        spec = api.doc(path)
        for url, ops in (spec.get("paths") or {}).items():
            for method, op in ops.items():
                if method not in ("get", "put", "post", "delete", "head") or not isinstance(
                    op, dict
                ):
                    continue
                group = op.get("x-operation-group")
                if not group:
                    continue
                entry = found.setdefault(
                    group,
                    {
                        "urls": [],
                        "parts": {},
                        "params": {},
                        "body": "none",
                        "body_format": "json",
                        "body_fields": None,
                        "added": None,
                        "removed": None,
                        "stability": None,
                        "visibility": None,
                        "doc_url": None,
                        "_added": [],
                        "_removed": [],
                    },
                )
                added = norm_version(op.get("x-version-added"))
                removed = norm_version(op.get("x-version-removed"))
                entry["_added"].append(added)
                entry["_removed"].append(removed)
                form = next((u for u in entry["urls"] if u["path"] == url), None)
                if form is None:
                    form = {
                        "path": url,
                        "methods": [],
                        "parts": re.findall(r"\{(\w+)\}", url),
                        "added": added,
                        "removed": removed,
                        "deprecated": norm_version(op.get("x-version-deprecated")),
                    }
                    entry["urls"].append(form)
                form["methods"] = sorted(set(form["methods"]) | {method.upper()})
                if not entry["doc_url"]:
                    entry["doc_url"] = (op.get("externalDocs") or {}).get("url")
                for param in op.get("parameters") or []:
                    base, p = api.resolve(path, param)
                    if not isinstance(p, dict) or p.get("x-global"):
                        continue
                    name = p.get("name")
                    kind, options = api.schema_type(base, p.get("schema") or {})
                    if p.get("in") == "path":
                        entry["parts"][name] = {
                            "type": "list" if kind in ("list", "array") else "string",
                            "required": True,
                        }
                    elif p.get("in") == "query":
                        entry["params"][name] = {
                            "type": kind,
                            "options": options,
                            "deprecated": bool(p.get("deprecated")),
                        }
                body = op.get("requestBody")
                if body:
                    base, b = api.resolve(path, body)
                    content = (b or {}).get("content") or {}
                    if any("ndjson" in c for c in content):
                        entry["body_format"] = "ndjson"
                    required = bool((b or {}).get("required"))
                    entry["body"] = (
                        "required" if required and entry["body"] != "optional" else "optional"
                    )
                    for media in content.values():
                        sbase, schema = api.resolve(base, media.get("schema") or {})
                        props = schema.get("properties") if isinstance(schema, dict) else None
                        if props:
                            fields = entry["body_fields"] or {}
                            for fname, fschema in props.items():
                                fields[fname] = {"type": api.schema_type(sbase, fschema)[0]}
                            entry["body_fields"] = fields
    for entry in found.values():
        adds = entry.pop("_added")
        removes = entry.pop("_removed")
        known = [a for a in adds if a]
        entry["added"] = min(known, key=_vkey) if known else None
        entry["removed"] = max(removes, key=_vkey) if all(removes) else None
        for name in entry["parts"]:
            entry["parts"][name]["required"] = all(name in u["parts"] for u in entry["urls"])
        for url in entry["urls"]:
            if url["added"] == entry["added"]:
                url["added"] = None
            if url["removed"] == entry["removed"]:
                url["removed"] = None
        entry["urls"].sort(key=lambda u: (-len(u["parts"]), u["path"]))
    return found


def _vkey(text: str | None) -> tuple[int, ...]:
    return tuple(int(n) for n in (text or "0.0.0").split("."))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elasticsearch", type=Path, default=ES_DEFAULT, help="git dir")
    ap.add_argument("--opensearch", type=Path, default=OS_DEFAULT, help="git dir")
    ap.add_argument("--opensearch-ref", default="HEAD")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    es_by_major = {m: es_json_entries(args.elasticsearch, ref) for m, ref in ES_JSON_REFS.items()}
    es_by_major[9] = es_ts_entries(args.elasticsearch, ES_TS_REF)
    es = es_merge(es_by_major)
    os_ = os_entries(args.opensearch, args.opensearch_ref)
    endpoints: dict[str, dict[str, Any]] = {}
    for endpoint_id in sorted(set(es) | set(os_)):
        endpoints[endpoint_id] = {
            "elasticsearch": es.get(endpoint_id),
            "opensearch": os_.get(endpoint_id),
        }
    sources = {
        "elasticsearch": [
            {
                "repo": "elastic/elasticsearch-specification",
                "ref": ref,
                "commit": git(args.elasticsearch, "rev-parse", ref).strip(),
                "what": what,
                "license": "Apache-2.0",
            }
            for ref, what in [
                (ES_JSON_REFS[7], "specification/_json_spec"),
                (ES_JSON_REFS[8], "specification/_json_spec"),
                (ES_TS_REF, "specification/**/*Request.ts"),
            ]
        ],
        "opensearch": [
            {
                "repo": "opensearch-project/opensearch-api-specification",
                "ref": args.opensearch_ref,
                "commit": git(args.opensearch, "rev-parse", args.opensearch_ref).strip(),
                "what": "spec/namespaces, spec/schemas",
                "license": "Apache-2.0",
            }
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"sources": sources, "endpoints": endpoints}, indent=1, sort_keys=True) + "\n"
    )
    es_n = sum(1 for e in endpoints.values() if e["elasticsearch"])
    os_n = sum(1 for e in endpoints.values() if e["opensearch"])
    print(f"{len(endpoints)} endpoints: Elasticsearch {es_n}, OpenSearch {os_n} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
