"""AWS Signature Version 4 for Amazon OpenSearch Service and OpenSearch Serverless.

Public as :class:`sturdysearch.auth.AwsSigV4` (loaded on first use: most programs never sign).
The signing itself is the sans-IO :mod:`sturdysearch._core.sigv4`; this module adds what the
core may not do: read the clock, and ask a credentials provider for keys.

Credentials are fetched for every signature, never cached here. botocore's
``RefreshableCredentials`` (what its default chain returns for SSO, assumed roles, IRSA, ECS
and EC2 roles) renew themselves inside ``get_frozen_credentials()`` shortly before they
expire, so a bulk load that runs for hours keeps signing with valid keys; a copy taken once
at start would turn into 403s when the session token expires, an hour in.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable
from typing import Any, Literal

from sturdysearch._core.auth import Auth, Secret, check_secret_text
from sturdysearch._core.sigv4 import sigv4_headers
from sturdysearch.errors import ConfigError

__all__ = ["AwsSigV4"]

_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SERVICES = ("es", "aoss")
_INSTALL = "pip install 'sturdysearch[aws]'"


class AwsSigV4(Auth):
    """Sign every request with AWS Signature Version 4.

    ``AwsSigV4("eu-west-1")`` signs for an Amazon OpenSearch Service domain with the
    credentials of botocore's default chain (environment, ``~/.aws`` profiles, SSO, container
    and instance roles, IRSA; needs ``sturdysearch[aws]``). ``service="aoss"`` signs for
    OpenSearch Serverless, and makes the client speak the Serverless dialect (no ``GET /``,
    calls Serverless lacks refused before sending). ``credentials=`` takes a botocore or boto3
    credentials object (anything with ``get_frozen_credentials()``, or a boto3 ``Session``);
    ``access_key=``/``secret_key=``/``session_token=`` take static keys. ``clock`` (seconds
    since the epoch, default ``time.time``) dates each signature.

    Each attempt is signed when it is written: retries and health probes get a fresh date
    and signature, over the exact bytes sent (the body after compression). The secret key
    and the session token never appear in ``repr``, logs or errors, and the object refuses to
    be pickled or copied.
    """

    __slots__ = ("_clock", "_provider", "_source", "_static", "region", "service")

    signs = True

    def __init__(
        self,
        region: str,
        service: Literal["es", "aoss"] = "es",
        credentials: Any = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise ConfigError(
                f"AwsSigV4: region must be an AWS region name such as 'us-east-1' (the one in "
                f"the endpoint's host name), not {region!r}"
            )
        if service not in _SERVICES:
            raise ConfigError(
                f"AwsSigV4: service must be 'es' (Amazon OpenSearch Service domains) or 'aoss' "
                f"(OpenSearch Serverless collections), not {service!r}"
            )
        if clock is not None and not callable(clock):
            raise ConfigError("AwsSigV4: clock must be a callable returning epoch seconds")
        self.region: str = region
        self.service: str = service
        self._clock: Callable[[], float] = clock or time.time
        self._static: tuple[str, Secret, Secret | None] | None = None
        self._provider: Any = None
        static_given = any(v is not None for v in (access_key, secret_key, session_token))
        if credentials is not None and static_given:
            raise ConfigError(
                "AwsSigV4: give credentials= (a botocore/boto3 credentials object) or "
                "access_key=/secret_key=, not both"
            )
        if static_given:
            if not access_key or not secret_key:
                raise ConfigError(
                    "AwsSigV4: static credentials need both access_key= and secret_key= (plus "
                    "session_token= for temporary ones); for refreshing credentials pass "
                    "credentials= instead"
                )
            for name, value in (
                ("access_key", access_key),
                ("secret_key", secret_key),
                ("session_token", session_token),
            ):
                if value is not None and not isinstance(value, str):
                    raise ConfigError(f"AwsSigV4: {name} must be a string")
                if value is not None:
                    check_secret_text(f"AwsSigV4 {name}", value)
            self._static = (
                access_key,
                Secret(secret_key),
                Secret(session_token) if session_token else None,
            )
            self._source = "static keys"
            return
        if credentials is None:
            credentials = _default_chain()
            self._source = "botocore default chain"
        else:
            self._source = type(credentials).__name__
        if not callable(getattr(credentials, "get_frozen_credentials", None)):
            get = getattr(credentials, "get_credentials", None)
            resolved = get() if callable(get) else None  # a boto3 or botocore Session
            if resolved is None or not callable(getattr(resolved, "get_frozen_credentials", None)):
                raise ConfigError(
                    f"AwsSigV4: credentials= takes a botocore/boto3 credentials object (with "
                    f"get_frozen_credentials()) or a boto3 Session that has credentials, not "
                    f"{type(credentials).__name__}"
                )
            credentials = resolved
        self._provider = credentials

    # -- signing -----------------------------------------------------------------------------

    def sign(
        self, method: str, host: str, target: str, body: bytes | None
    ) -> list[tuple[str, str]]:
        access_key, secret_key, token = self._credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        return sigv4_headers(
            method,
            host,
            target,
            body,
            access_key=access_key,
            secret_key=secret_key,
            session_token=token,
            region=self.region,
            service=self.service,
            amz_date=amz_date,
        )

    def _credentials(self) -> tuple[str, str, str | None]:
        """The keys to sign with now: the static ones, or what the provider hands out (it
        refreshes them itself when they are about to expire)."""
        if self._static is not None:
            static_key, secret, static_token = self._static
            return static_key, secret.reveal(), static_token.reveal() if static_token else None
        try:
            frozen = self._provider.get_frozen_credentials()
        except Exception as exc:
            # The provider's own error is chained (an expired SSO session, an unreachable
            # instance metadata service...); its message carries no key.
            raise ConfigError(
                f"AwsSigV4: the AWS credentials provider ({self._source}) could not supply "
                f"credentials: {type(exc).__name__}; fix the AWS credential configuration "
                "(aws sso login, the profile, the instance or task role)"
            ) from exc
        access_key = getattr(frozen, "access_key", None)
        secret_key = getattr(frozen, "secret_key", None)
        token = getattr(frozen, "token", None)
        if not isinstance(access_key, str) or not access_key:
            raise ConfigError(f"AwsSigV4: the credentials ({self._source}) have no access key")
        if not isinstance(secret_key, str) or not secret_key:
            raise ConfigError(f"AwsSigV4: the credentials ({self._source}) have no secret key")
        if token is not None and not isinstance(token, str):
            raise ConfigError(f"AwsSigV4: the credentials' ({self._source}) token is no string")
        for name, value in (("access key", access_key), ("secret key", secret_key)):
            check_secret_text(f"AwsSigV4 {name}", value)
        if token:
            check_secret_text("AwsSigV4 session token", token)
        return access_key, secret_key, token or None

    # -- what the client learns from it --------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "sigv4"

    @property
    def serverless(self) -> bool:
        """Signing for OpenSearch Serverless (``aoss``): the client then fixes its dialect."""
        return self.service == "aoss"

    # -- never shown, never copied ---------------------------------------------------------------

    def __repr__(self) -> str:
        if self._static is not None:
            shown = f"access_key='{self._static[0][:4]}...'"
        else:
            shown = f"credentials=<{self._source}>"
        return f"AwsSigV4(region={self.region!r}, service={self.service!r}, {shown})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("credentials are not picklable, so they cannot leak through pickles")


def _default_chain() -> Any:
    """botocore's default credentials, or a ``ConfigError`` saying how to provide some."""
    try:
        session = importlib.import_module("botocore.session")
    except ImportError:
        raise ConfigError(
            "AwsSigV4 needs AWS credentials: pass access_key= and secret_key= (and "
            "session_token=), or credentials= (a botocore/boto3 credentials object), or "
            f"install botocore ({_INSTALL}) to use the AWS default credential chain"
        ) from None
    found = session.get_session().get_credentials()
    if found is None:
        raise ConfigError(
            "AwsSigV4 found no AWS credentials in botocore's default chain (environment "
            "variables, ~/.aws profiles, SSO, container and instance roles, web identity); "
            "configure one of them, or pass access_key=/secret_key= or credentials="
        )
    return found
