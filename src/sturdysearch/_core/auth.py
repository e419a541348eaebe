"""Credentials, kept out of every ``repr``, log record and error message.

The only place a secret exists in clear is the ``Authorization`` header bytes handed to the
socket. :class:`Secret` wraps the header value so that printing a config, a client or a
traceback's locals shows ``<redacted>``.

:class:`Auth` is what the transport knows of a credential: a fixed ``Authorization`` value
(basic, API key, bearer and service tokens), or a signer that computes headers from each
attempt's exact bytes (AWS SigV4). The user-facing types live in :mod:`sturdysearch.auth`.
"""

from __future__ import annotations

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

    @property
    def serverless(self) -> bool:
        """Whether these credentials only work against OpenSearch Serverless (SigV4 for
        ``aoss``). A client whose credentials say so fixes its dialect instead of detecting
        it (Serverless has no ``GET /``), counts any HTTP answer to a health probe as alive,
        and refuses before sending the calls Serverless lacks."""
        return False


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
