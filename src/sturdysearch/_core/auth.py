"""Credentials, kept out of every ``repr``, log record and error message.

The only place a secret exists in clear is the ``Authorization`` header bytes handed to the
socket. :class:`Secret` wraps the header value so that printing a config, a client or a
traceback's locals shows ``<redacted>``.

:class:`Auth` is what the transport knows of a credential: a fixed ``Authorization`` value
(basic, API key, bearer and service tokens), or a signer that computes headers from each
attempt's exact bytes (AWS SigV4). The user-facing types live in :mod:`sturdysearch.auth`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from sturdysearch.errors import ConfigError


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("credentials are not picklable, so they cannot leak through pickles")


class Auth:
    """One way of authenticating: the base of the types in :mod:`sturdysearch.auth`.

    A scheme with a fixed header returns it from :meth:`authorization`; a signing scheme sets
    ``signs`` and computes its headers per attempt in :meth:`sign`, which the transport calls
    once it holds a connection, right before the request is written (so a retry is signed
    anew, and what is signed is what goes on the wire: the encoded target, the body after
    compression)."""

    __slots__ = ()

    signs: bool = False
    """Whether :meth:`sign` must be called for every attempt."""

    def authorization(self) -> Secret | None:
        """The fixed ``Authorization`` header value, if the scheme has one."""
        return None

    def sign(
        self, method: str, host: str, target: str, body: bytes | None
    ) -> list[tuple[str, str]]:
        """Headers (lower-case names) that authenticate this exact request."""
        return []

    @property
    def scheme(self) -> str:
        """A short name for logs and ``doctor``: ``basic``, ``api_key``, ``sigv4``..."""
        return type(self).__name__


def check_secret_text(name: str, value: str) -> None:
    """Refuse a credential with a line break (it would inject a header), never echoing it."""
    _check_secret_text(name, value)


def _check_secret_text(name: str, value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        # Never echo the value: it is a credential.
        raise ConfigError(
            f"{name} contains a line break or NUL character (a trailing newline from a file?); "
            "strip it"
        )


def authorization_header(
    *,
    basic_auth: str | Sequence[str] | None = None,
    api_key: str | Sequence[str] | None = None,
    bearer_auth: str | None = None,
) -> Secret | None:
    """Build the ``Authorization`` header value from at most one kind of credential.

    ``basic_auth`` is ``(user, password)`` or ``"user:password"``; ``api_key`` is the encoded key
    Elasticsearch returns, or ``(id, api_key)``; ``bearer_auth`` is a token.
    """
    given = [
        name
        for name, value in (
            ("basic_auth", basic_auth),
            ("api_key", api_key),
            ("bearer_auth", bearer_auth),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ConfigError(f"give one kind of credentials, not {' and '.join(given)}")
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
        if not user:
            raise ConfigError("basic_auth has an empty user name")
        _check_secret_text("basic_auth", f"{user}:{password}")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return Secret(f"Basic {token}")
    if api_key is not None:
        if isinstance(api_key, str):
            if not api_key:
                raise ConfigError("api_key is empty")
            _check_secret_text("api_key", api_key)
            return Secret(f"ApiKey {api_key}")
        pair = list(api_key)
        if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ConfigError("api_key must be the encoded key string or an (id, key) pair")
        _check_secret_text("api_key", f"{pair[0]}:{pair[1]}")
        token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
        return Secret(f"ApiKey {token}")
    if bearer_auth is not None:
        if not isinstance(bearer_auth, str) or not bearer_auth:
            raise ConfigError("bearer_auth must be a non-empty token string")
        _check_secret_text("bearer_auth", bearer_auth)
        return Secret(f"Bearer {bearer_auth}")
    return None
