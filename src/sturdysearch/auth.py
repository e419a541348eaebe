"""Ways to authenticate, one type per scheme, for ``Client(auth=...)`` and ``client.options(auth=...)``.

* :class:`BasicAuth` - a user name and password (the ``elastic`` user, the security plugin's
  internal users).
* :class:`ApiKey` - an Elasticsearch API key: the ``encoded`` value the create-API-key call
  returns, or its ``id`` and ``api_key``.
* :class:`BearerToken` - an OAuth2 / OpenID Connect / ``_security/oauth2/token`` access token.
* :class:`ServiceToken` - an Elasticsearch service account token (``elastic/fleet-server``...).
* :class:`AwsSigV4` - AWS Signature Version 4 for Amazon OpenSearch Service (``service="es"``)
  and Serverless (``"aoss"``); needs the ``aws`` extra for botocore credentials.

Client certificates (mutual TLS) are TLS settings: ``client_cert=``/``client_key=`` or
``tls=TLSConfig(client_cert=...)``.

Every type keeps its secret out of ``repr``, ``str``, logs and pickles: ``repr(ApiKey(...))``
shows the id, never the key. The peers' keywords still work on the clients (``basic_auth=``,
``api_key=``, ``bearer_auth=``) and build the same objects.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sturdysearch._core.auth import Auth, Secret, check_secret_text
from sturdysearch.errors import ConfigError

if TYPE_CHECKING:
    from sturdysearch._aws import AwsSigV4

__all__ = ["ApiKey", "Auth", "AwsSigV4", "BasicAuth", "BearerToken", "ServiceToken", "from_options"]


class BasicAuth(Auth):
    """HTTP basic authentication: ``BasicAuth("elastic", password)``."""

    __slots__ = ("_header", "username")

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise ConfigError("BasicAuth takes a user name and a password, both strings")
        if not username:
            raise ConfigError("BasicAuth has an empty user name")
        if ":" in username:
            raise ConfigError("a basic-auth user name cannot contain ':' (RFC 7617)")
        check_secret_text("BasicAuth", f"{username}:{password}")
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = Secret(f"Basic {token}")

    def authorization(self) -> Secret:
        return self._header

    @property
    def scheme(self) -> str:
        return "basic"

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=<redacted>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BasicAuth) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)


class ApiKey(Auth):
    """An Elasticsearch API key: ``ApiKey(encoded)`` with the ``encoded`` field that
    ``POST _security/api_key`` returns, or ``ApiKey(id=..., api_key=...)``."""

    __slots__ = ("_header", "id")

    def __init__(
        self, encoded: str | None = None, *, id: str | None = None, api_key: str | None = None
    ) -> None:
        if encoded is not None:
            if id is not None or api_key is not None:
                raise ConfigError("give ApiKey(encoded) or ApiKey(id=..., api_key=...), not both")
            if not isinstance(encoded, str) or not encoded:
                raise ConfigError("ApiKey: the encoded key is empty")
            check_secret_text("ApiKey", encoded)
            self.id = _decoded_id(encoded)
            self._header = Secret(f"ApiKey {encoded}")
            return
        if not id or not api_key or not isinstance(id, str) or not isinstance(api_key, str):
            raise ConfigError("ApiKey needs the encoded key, or both id= and api_key=")
        check_secret_text("ApiKey", f"{id}:{api_key}")
        self.id = id
        token = base64.b64encode(f"{id}:{api_key}".encode()).decode("ascii")
        self._header = Secret(f"ApiKey {token}")

    def authorization(self) -> Secret:
        return self._header

    @property
    def scheme(self) -> str:
        return "api_key"

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, api_key=<redacted>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)


def _decoded_id(encoded: str) -> str | None:
    """The key id inside an encoded key (``base64(id:key)``), shown in ``repr`` and ``doctor``;
    ``None`` when it does not decode (the server judges it then)."""
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except ValueError:
        return None
    key_id, sep, _ = text.partition(":")
    return key_id if sep else None


class BearerToken(Auth):
    """An access token sent as ``Authorization: Bearer ...`` (OAuth2, OIDC, JWT realms)."""

    __slots__ = ("_header",)
    _kind = "bearer"

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ConfigError(f"{type(self).__name__} needs a non-empty token string")
        check_secret_text(type(self).__name__, token)
        self._header = Secret(f"Bearer {token}")

    def authorization(self) -> Secret:
        return self._header

    @property
    def scheme(self) -> str:
        return self._kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)


class ServiceToken(BearerToken):
    """An Elasticsearch service account token (``POST _security/service/elastic/fleet-server/
    credential/token``, or ``elasticsearch-service-tokens create``); sent as a bearer token."""

    __slots__ = ()
    _kind = "service_token"


def from_options(
    *,
    auth: Auth | None = None,
    basic_auth: str | Sequence[str] | None = None,
    api_key: str | Sequence[str] | None = None,
    bearer_auth: str | None = None,
) -> Auth | None:
    """The one ``Auth`` the client options name: ``auth=`` or one of the peers' keywords
    (``basic_auth=(user, password)`` or ``"user:password"``, ``api_key=`` encoded or
    ``(id, key)``, ``bearer_auth=``)."""
    given = [
        name
        for name, value in (
            ("auth", auth),
            ("basic_auth", basic_auth),
            ("api_key", api_key),
            ("bearer_auth", bearer_auth),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ConfigError(f"give one kind of credentials, not {' and '.join(given)}")
    if auth is not None:
        if not isinstance(auth, Auth):
            raise ConfigError(
                f"auth= takes a sturdysearch.auth value (BasicAuth, ApiKey, BearerToken, "
                f"ServiceToken, AwsSigV4), not {type(auth).__name__}; for a (user, password) "
                "pair use basic_auth="
            )
        return auth
    if basic_auth is not None:
        if isinstance(basic_auth, str):
            user, sep, password = basic_auth.partition(":")
            if not sep:
                raise ConfigError("basic_auth must be (user, password) or 'user:password'")
        else:
            pair = list(basic_auth)
            if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                raise ConfigError("basic_auth must be a (user, password) pair of strings")
            user, password = pair
        return BasicAuth(user, password)
    if api_key is not None:
        if isinstance(api_key, str):
            if not api_key:
                raise ConfigError("api_key is empty")
            return ApiKey(api_key)
        pair = list(api_key)
        if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ConfigError("api_key must be the encoded key string or an (id, key) pair")
        return ApiKey(id=pair[0], api_key=pair[1])
    if bearer_auth is not None:
        return BearerToken(bearer_auth)
    return None


def __getattr__(name: str) -> object:
    # AwsSigV4 loads on first use: most programs never sign, and it pulls in datetime/hmac.
    if name == "AwsSigV4":
        from sturdysearch._aws import AwsSigV4

        return AwsSigV4
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
