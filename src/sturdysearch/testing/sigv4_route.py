"""A plain cluster seen through the SigV4 verifier, as the test suites use it (``+sigv4`` specs).

``opensearch:2.19.6+sigv4`` in ``STURDY_TEST_SERVERS`` runs the suites marked
``sturdysearch_secured`` once more, with every request signed by ``AwsSigV4`` (static test
credentials with a session token, as Amazon OpenSearch Service sees them from an assumed role)
and checked, request by request, by :class:`~sturdysearch.testing.sigv4.SigV4VerifyingProxy`,
which recomputes each signature with botocore's own signer before forwarding it to the node.
No new node is started: the route wraps the plain cluster of the same release.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from sturdysearch.testing.specs import ServerSpec

ACCESS_KEY = "AKIDSTURDYSEARCHTEST"
SECRET_KEY = "sturdysearch/test+secret/KEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//sturdysearch+session/token=="
REGION = "us-east-1"
SERVICE: Final[Literal["es"]] = "es"


class SigV4Route:
    """The cluster's nodes, each behind a verifier; anything else is the cluster's."""

    def __init__(self, cluster: Any, spec: ServerSpec) -> None:
        from sturdysearch.testing.sigv4 import SigV4VerifyingProxy

        self._cluster = cluster
        self.spec = spec
        self.verifiers = [
            SigV4VerifyingProxy(
                url,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                session_token=SESSION_TOKEN,
                region=REGION,
                service=SERVICE,
            ).start()
            for url in cluster.urls
        ]

    @property
    def urls(self) -> list[str]:
        return [verifier.url for verifier in self.verifiers]

    @property
    def url(self) -> str:
        return self.verifiers[0].url

    @property
    def security(self) -> None:
        return None

    def client_options(self) -> dict[str, Any]:
        """Sign every request with the test credentials the verifiers expect."""
        from sturdysearch.auth import AwsSigV4

        return {
            "auth": AwsSigV4(
                region=REGION,
                service=SERVICE,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                session_token=SESSION_TOKEN,
            )
        }

    @property
    def verified(self) -> int:
        return sum(v.verified for v in self.verifiers)

    @property
    def rejected(self) -> int:
        return sum(v.rejected for v in self.verifiers)

    @property
    def failures(self) -> list[str]:
        return [failure for v in self.verifiers for failure in v.failures]

    def close(self) -> None:
        for verifier in self.verifiers:
            verifier.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def __repr__(self) -> str:
        return f"SigV4Route({self._cluster!r})"
