"""Authentication: the scheme the client uses, whether the server accepts it (401 and 403
are different problems), who the server says we are, whether security is on at all, and how
long an API key has left.

``_security/_authenticate`` (Elasticsearch) and ``_plugins/_security/authinfo`` (OpenSearch)
name the user; with security off neither exists, and the raw probe's ``GET /`` without
credentials (``reach``) tells whether the cluster lets anyone in.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sturdysearch._core.config import ClientConfig
from sturdysearch.doctor.context import Answer, Context
from sturdysearch.doctor.findings import Finding, ok, unknown

API_KEY_WARN_DAYS = 7
ES_WHOAMI = "/_security/_authenticate"
OS_WHOAMI = "/_plugins/_security/authinfo"


def scheme_of(config: ClientConfig) -> str | None:
    return config.auth.scheme if config.auth is not None else None


def judge_scheme(config: ClientConfig) -> Finding:
    scheme = scheme_of(config)
    if scheme is None:
        return ok("auth.scheme", "no credentials: requests are anonymous", scheme=None)
    key_id = getattr(config.auth, "id", None)
    shown = f"{scheme} (key id {key_id})" if scheme == "api_key" and key_id else scheme
    return ok("auth.scheme", f"authenticates with {shown}", scheme=scheme)


def check_auth(ctx: Context) -> list[Finding]:
    paths: tuple[str, ...] = (OS_WHOAMI,) if ctx.flavor == "opensearch" else (ES_WHOAMI,)
    if ctx.flavor not in ("opensearch", "elasticsearch"):
        paths = (ES_WHOAMI, OS_WHOAMI)
    answer = ctx.get(paths[0])
    if len(paths) > 1 and not answer.ok and answer.status not in (401, 403):
        answer = ctx.get(paths[1])
    statuses = [p.status for p in ctx.probes.values() if p.status is not None]
    scheme = scheme_of(ctx.config)
    # AWS refuses an unsigned request with 403 (a 401 only with fine-grained access control).
    refusals = (401, 403) if scheme == "sigv4" else (401,)
    anonymous_refused = any(s in refusals for s in statuses) if statuses else None
    return judge_auth(scheme, answer, anonymous_refused)


def judge_auth(scheme: str | None, answer: Answer, anonymous_refused: bool | None) -> list[Finding]:
    """``auth.credentials``, ``auth.whoami`` and ``auth.security`` from the who-am-I answer
    and whether ``GET /`` without credentials was refused."""
    if answer.ok:
        user, roles = whoami(answer.body)
        shown_roles = ", ".join(roles) if roles else "none"
        return [
            ok("auth.credentials", "accepted" if scheme else "anonymous access is allowed"),
            ok("auth.whoami", f"authenticated as {user} (roles: {shown_roles})", user=user),
            ok("auth.security", "security is on: requests need credentials")
            if anonymous_refused is not False
            else _anonymous_allowed(user),
        ]
    if answer.status == 401:
        if scheme is None:
            summary = "security is on and the client sends no credentials (401)"
            fix = "Pass api_key= (preferred: scoped and revocable) or basic_auth=(user, password)."
        else:
            summary = f"the server refused the {scheme} credentials (401)"
            fix = (
                "Check the user name and password (or that the API key is the encoded value, "
                "not its id), that the key is not expired or invalidated, and that the user "
                "exists in a realm of this cluster."
            )
        return [
            Finding(
                "auth.credentials",
                "fail",
                summary,
                "401 means the server does not know who this is: wrong, missing, expired or "
                "invalidated credentials. (403 would mean it knows, and refuses.)",
                fix,
            ),
            ok("auth.security", "security is on: requests need credentials"),
        ]
    if answer.status == 403 and scheme == "sigv4" and _refused_signature(answer):
        return [
            Finding(
                "auth.credentials",
                "fail",
                f"the server refused the signature (403): {answer.error_text()[:120]}",
                "AWS answers 403 when the SigV4 signature does not check out: wrong or expired "
                "keys, a region or service other than the endpoint's, a clock far off, or a "
                "proxy that changed a signed part of the request.",
                "Check the credentials botocore finds (aws sts get-caller-identity), the region "
                "in the endpoint's host name, --aws-service (es or aoss) and the clock (NTP).",
            ),
            ok("auth.security", "requests must be signed"),
        ]
    if answer.status == 403:
        return [
            ok("auth.credentials", "accepted (the server knows who we are)"),
            unknown(
                "auth.whoami",
                "the user may not ask who it is (403)",
                f"The credentials are valid but lack a privilege: {answer.error_text()}",
                "Grant the user the privileges doctor and the application need.",
            ),
            ok("auth.security", "security is on: requests need credentials"),
        ]
    if scheme == "sigv4" and anonymous_refused:
        # The requests are signed and answered (identity.server got through): the signature
        # is the credential, and the unsigned probe was refused.
        return [
            ok(
                "auth.credentials",
                f"signed requests are accepted (the who-am-I API answered HTTP {answer.status}: "
                "no user database to ask)",
            ),
            ok("auth.security", "unsigned requests are refused: every request must be signed"),
        ]
    if anonymous_refused:
        return [
            unknown(
                "auth.security",
                f"security seems on, but the who-am-I API answered HTTP {answer.status}",
                answer.error_text(),
            )
        ]
    findings = []
    if scheme is not None:
        findings.append(
            ok("auth.credentials", f"not checked: security is off, the {scheme} is ignored")
        )
    findings.append(
        Finding(
            "auth.security",
            "warn",
            "security is off: anyone who reaches the port can read and write",
            "The cluster has no authentication: every client that can open a connection to it "
            "can read, change and delete all data, and change the cluster settings. Clusters "
            "reachable from the internet without security are found and wiped by bots within "
            "hours.",
            "Turn security on (Elasticsearch: xpack.security.enabled with TLS, the default "
            "since 8.0; OpenSearch: the security plugin) and give the client an API key.",
        )
    )
    return findings


_SIGNATURE_REFUSED = ("signature", "security token", "authentication token", "credential")
"""Words of AWS's 403 answers about the signature itself, as opposed to a missing privilege
("User: arn:... is not authorized to perform: es:ESHttpGet")."""


def _refused_signature(answer: Answer) -> bool:
    text = answer.error_text().lower()
    return any(marker in text for marker in _SIGNATURE_REFUSED)


def _anonymous_allowed(user: str) -> Finding:
    return Finding(
        "auth.security",
        "warn",
        f"requests without credentials are let in (as {user})",
        "GET / answered without credentials: an anonymous user is configured, so anyone who "
        "reaches the port has that user's rights.",
        "Remove the anonymous user (xpack.security.authc.anonymous) unless it is meant to be.",
    )


def whoami(body: Any) -> tuple[str, list[str]]:
    """User name and roles from either flavor's who-am-I answer."""
    if not isinstance(body, Mapping):
        return "?", []
    user = body.get("username") or body.get("user_name") or "?"
    roles = body.get("roles")
    listed = [str(r) for r in roles] if isinstance(roles, list) else []
    return str(user), listed


def check_api_key(ctx: Context) -> list[Finding]:
    key_id = getattr(ctx.config.auth, "id", None)
    if scheme_of(ctx.config) != "api_key":
        return []
    if not key_id:
        return [unknown("auth.api_key", "the API key's id could not be read from the key")]
    if ctx.flavor == "opensearch":
        return [unknown("auth.api_key", "OpenSearch has no Elasticsearch API keys to look up")]
    answer = ctx.get("/_security/api_key", {"id": key_id})
    return [judge_api_key(answer, time.time() * 1000)]


def judge_api_key(answer: Answer, now_ms: float) -> Finding:
    if not answer.ok:
        return unknown(
            "auth.api_key",
            f"could not read the API key (HTTP {answer.status})",
            answer.error_text(),
            "Grant manage_own_api_key to see the key's expiry, or check it in Kibana.",
        )
    keys = answer.body.get("api_keys") if isinstance(answer.body, Mapping) else None
    if not isinstance(keys, list) or not keys or not isinstance(keys[0], Mapping):
        return unknown("auth.api_key", "the API key was not found")
    key = keys[0]
    name = key.get("name") or key.get("id")
    if key.get("invalidated"):
        return Finding(
            "auth.api_key",
            "fail",
            f"API key {name} is invalidated",
            "An invalidated key is refused with 401 on every request.",
            "Create a new API key and deploy it.",
        )
    expiration = key.get("expiration")
    if not isinstance(expiration, (int, float)):
        return ok("auth.api_key", f"API key {name} never expires")
    days = (expiration - now_ms) / 86_400_000
    if days <= 0:
        return Finding(
            "auth.api_key",
            "fail",
            f"API key {name} expired {-days:.1f} days ago",
            "An expired key is refused with 401 on every request.",
            "Create a new API key and deploy it; automate the rotation before the expiry.",
        )
    if days < API_KEY_WARN_DAYS:
        return Finding(
            "auth.api_key",
            "warn",
            f"API key {name} expires in {days:.1f} days",
            "When it expires every request is refused with 401: an outage on a known date.",
            "Create the next key now, deploy it, then invalidate this one.",
            details={"days_left": round(days, 2)},
        )
    return ok(
        "auth.api_key", f"API key {name} expires in {days:.0f} days", days_left=round(days, 1)
    )
