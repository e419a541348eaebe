"""Which server to run: a flavor and a version, parsed from strings like ``opensearch:2.19.6``.

Kept free of heavy imports because the pytest plugin parses specs at collection time in every
test run.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from sturdysearch.testing.errors import InvalidSpecError

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z][0-9A-Za-z.]*))?$")
_ALIASES = {
    "opensearch": "opensearch",
    "os": "opensearch",
    "elasticsearch": "elasticsearch",
    "es": "elasticsearch",
}


class Flavor(str, enum.Enum):
    """The two server families; values match their Maven artifact ids."""

    OPENSEARCH = "opensearch"
    ELASTICSEARCH = "elasticsearch"

    @property
    def display_name(self) -> str:
        return "OpenSearch" if self is Flavor.OPENSEARCH else "Elasticsearch"

    def __str__(self) -> str:
        # Plain value in messages and f-strings on every Python (3.10's default differs).
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


SECURITY_SUFFIX = "+security"
SIGV4_SUFFIX = "+sigv4"
PROXY_SUFFIX = "+proxy"


@dataclass(frozen=True)
class ServerSpec:
    """A server flavor plus an exact release version (no ranges: tests must be reproducible),
    with security on or off (``elasticsearch:9.5.4+security``: TLS and passwords, see
    ``sturdysearch.testing.security``), or reached through the SigV4 verifier
    (``opensearch:2.19.6+sigv4``: every request signed as for Amazon OpenSearch Service and
    checked by botocore's signer, see ``sturdysearch.testing.sigv4``), or through a real HTTP
    proxy (``+proxy``: squid; with ``+security`` the client tunnels TLS through CONNECT)."""

    flavor: Flavor
    version: str
    security: bool = False
    sigv4: bool = False
    proxy: bool = False

    def __post_init__(self) -> None:
        if not _VERSION_RE.match(self.version):
            raise InvalidSpecError(
                f"invalid version {self.version!r}: expected MAJOR.MINOR.PATCH such as 2.19.6"
            )

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        """Accepts ``flavor:version`` and the test-id form ``flavor-version``.

        Flavors may be abbreviated ``os``/``es`` because that is what people type on a command
        line; the canonical rendering (``str(spec)``) always uses the full name.
        """
        raw = text.strip()
        found: set[str] = set()
        stripped = True
        while stripped:
            stripped = False
            for suffix in ("security", "sigv4", "proxy"):
                if raw.lower().endswith((f"+{suffix}", f"-{suffix}")):
                    raw = raw[: -len(suffix) - 1]
                    found.add(suffix)
                    stripped = True
        security, sigv4, proxy = ("security" in found, "sigv4" in found, "proxy" in found)
        if sigv4 and (security or proxy):
            raise InvalidSpecError(
                f"{text!r}: +sigv4 puts the verifier in front of a plain node; it cannot be "
                "combined with +security or +proxy"
            )
        match = re.match(r"^([A-Za-z]+)[:\-=](.+)$", raw)
        if not match:
            raise InvalidSpecError(
                f"invalid server spec {text!r}: expected FLAVOR:VERSION, "
                "e.g. opensearch:2.19.6 or elasticsearch:9.5.4"
            )
        name, version = match.group(1).lower(), match.group(2).strip()
        if name not in _ALIASES:
            raise InvalidSpecError(
                f"unknown server flavor {match.group(1)!r} in {text!r}: "
                "use opensearch (os) or elasticsearch (es)"
            )
        return cls(Flavor(_ALIASES[name]), version, security, sigv4, proxy)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        match = _VERSION_RE.match(self.version)
        assert match is not None  # validated in __post_init__
        return int(match.group(1)), int(match.group(2)), int(match.group(3))

    @property
    def major(self) -> int:
        return self.version_tuple[0]

    @property
    def id(self) -> str:
        """A filesystem- and pytest-id-safe name, e.g. ``opensearch-2.19.6`` (or
        ``elasticsearch-9.5.4-security``)."""
        return f"{self.flavor.value}-{self.version}" + self._suffix.replace("+", "-")

    @property
    def release(self) -> ServerSpec:
        """The same release, plain: what is downloaded and unpacked."""
        return ServerSpec(self.flavor, self.version) if self._suffix else self

    @property
    def is_plain(self) -> bool:
        """Security off and no route in front: what tests written for a bare node can use."""
        return not (self.security or self.sigv4 or self.proxy)

    @property
    def cluster_spec(self) -> ServerSpec:
        """The cluster a route (``+sigv4``, ``+proxy``) is in front of."""
        return ServerSpec(self.flavor, self.version, security=self.security)

    @property
    def _suffix(self) -> str:
        return (
            (SECURITY_SUFFIX if self.security else "")
            + (SIGV4_SUFFIX if self.sigv4 else "")
            + (PROXY_SUFFIX if self.proxy else "")
        )

    def __str__(self) -> str:
        return f"{self.flavor.value}:{self.version}{self._suffix}"


def parse_server_specs(text: str | None) -> tuple[ServerSpec, ...]:
    """Parses a comma-separated list (the ``STURDY_TEST_SERVERS`` format); blanks are ignored.

    Duplicates are dropped, keeping the first occurrence, so a spec listed twice does not start
    two identical clusters.
    """
    specs: list[ServerSpec] = []
    for part in (text or "").split(","):
        if part.strip():
            spec = ServerSpec.parse(part)
            if spec not in specs:
                specs.append(spec)
    return tuple(specs)
