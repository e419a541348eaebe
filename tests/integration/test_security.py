"""Clusters with security on, as users run them: TLS with the cluster's own CA, passwords, API
keys, service and bearer tokens, client certificates, per-call credentials, and 401 vs 403.

Every test runs against each configured ``+security`` server (``secured_cluster``), with the
blocking and the asyncio client in turn where the client is what is tested.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import MakeClient

from sturdysearch import Client
from sturdysearch.auth import ApiKey, BasicAuth, BearerToken, ServiceToken
from sturdysearch.errors import AuthenticationError, AuthorizationError, TLSError
from sturdysearch.testing.cluster import LocalCluster
from sturdysearch.testing.security import SecurityInfo

pytestmark = pytest.mark.sturdysearch_integration


def _info(cluster: LocalCluster) -> SecurityInfo:
    info = cluster.security
    assert info is not None, "secured_cluster gave a cluster without security"
    return info


def _is_es(cluster: LocalCluster) -> bool:
    return cluster.flavor.value == "elasticsearch"


@pytest.fixture
def admin(secured_cluster: LocalCluster) -> Iterator[Client]:
    with Client(secured_cluster.urls, **secured_cluster.client_options()) as c:
        yield c


@pytest.fixture
def secured_index(admin: Client) -> Iterator[str]:
    name = f"sec-{uuid.uuid4().hex[:10]}"
    admin.indices.create(index=name)
    yield name
    admin.indices.delete(index=name, ignore=404)


def api_key_id(me: dict[str, Any]) -> str | None:
    """The API key ``_security/_authenticate`` says the call used (8.x: ``api_key.id``); 7.17
    only says that one was used, and ``None`` stands for "some API key" then."""
    assert me["authentication_type"] == "api_key"
    if "api_key" in me:
        return str(me["api_key"]["id"])
    return None


def whoami(client: Any, cluster: LocalCluster) -> dict[str, Any]:
    """Who the server says the client is."""
    if _is_es(cluster):
        body: dict[str, Any] = client.security.authenticate().body
    else:
        body = client.security.authinfo().body
    return body


# -- TLS ------------------------------------------------------------------------------------


def test_nodes_speak_https_with_the_harness_ca(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    info = _info(secured_cluster)
    assert all(url.startswith("https://") for url in secured_cluster.urls)
    with make_client(
        secured_cluster.urls, ca_certs=info.ca_certs, auth=BasicAuth(info.user, info.password)
    ) as c:
        assert c.info().flavor == secured_cluster.flavor.value
        assert c.info().version == secured_cluster.version


def test_without_the_ca_verification_refuses_the_node(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    info = _info(secured_cluster)
    with make_client(secured_cluster.urls, auth=BasicAuth(info.user, info.password)) as c:
        with pytest.raises(TLSError) as caught:
            c.info(timeout=10)
    assert "ca_certs=" in str(caught.value)
    assert info.password not in str(caught.value)


def test_the_reported_ca_fingerprint_is_the_ca_file(secured_cluster: LocalCluster) -> None:
    """``cluster status --json`` reports the fingerprint Elasticsearch-style; it must be the
    CA file's, so users can compare what they were given."""
    from sturdysearch.testing.tls import sha256_fingerprint

    info = _info(secured_cluster)
    with open(info.ca_certs, encoding="ascii") as handle:
        expected = sha256_fingerprint(handle.read()).format(colons=True, upper=True)
    assert info.ca_fingerprint == expected


def test_pinning_the_node_certificate(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    info = _info(secured_cluster)
    auth = BasicAuth(info.user, info.password)
    with make_client(
        secured_cluster.urls, ssl_assert_fingerprint=info.node_fingerprint, auth=auth
    ) as c:
        assert c.info().version == secured_cluster.version


def test_pinning_the_ca_fingerprint_is_refused_with_its_own_reason(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    """What Elasticsearch prints at set-up is the CA's fingerprint; as a pin it would accept
    any certificate sent beside the public CA certificate, so it is refused, saying so."""
    info = _info(secured_cluster)
    auth = BasicAuth(info.user, info.password)
    with make_client(
        secured_cluster.urls, ssl_assert_fingerprint=info.ca_fingerprint, auth=auth
    ) as c:
        with pytest.raises(TLSError) as caught:
            c.info(timeout=10)
    assert "fingerprint of the CA certificate" in str(caught.value)
    assert "ca_certs=" in str(caught.value)


# -- passwords, 401 and 403 -----------------------------------------------------------------


def test_wrong_password_is_an_authentication_error_naming_the_user(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    info = _info(secured_cluster)
    wrong = "not-" + info.password
    with make_client(
        secured_cluster.urls, ca_certs=info.ca_certs, auth=BasicAuth(info.user, wrong)
    ) as c:
        with pytest.raises(AuthenticationError) as caught:
            c.count(index="*")
    error = caught.value
    assert error.status == 401
    assert f"username={info.user!r}" in str(error)
    for text in (str(error), repr(error), repr(error.body)):
        assert wrong not in text and info.password not in text


def test_no_credentials_is_an_authentication_error_saying_how_to_fix(
    secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    with make_client(secured_cluster.urls, ca_certs=_info(secured_cluster).ca_certs) as c:
        with pytest.raises(AuthenticationError) as caught:
            c.count(index="*")
    assert caught.value.status == 401
    assert "no credentials" in str(caught.value)


def test_a_role_without_index_rights_is_an_authorization_error(
    secured_cluster: LocalCluster, make_client: MakeClient, secured_index: str
) -> None:
    info = _info(secured_cluster)
    limited = BasicAuth(info.limited_user, info.limited_password)
    with make_client(secured_cluster.urls, ca_certs=info.ca_certs, auth=limited) as c:
        me = whoami(c, secured_cluster)
        assert info.limited_user in str(me)  # authenticated: 401 and 403 are told apart
        with pytest.raises(AuthorizationError) as caught:
            c.index(index=secured_index, id="1", document={"a": 1})
    error = caught.value
    assert error.status == 403
    assert error.reason  # the server's words (which privilege is missing)
    assert f"username={info.limited_user!r}" in str(error)
    assert info.limited_password not in str(error)


def test_per_call_credentials_with_options(
    secured_cluster: LocalCluster, make_client: MakeClient, secured_index: str
) -> None:
    info = _info(secured_cluster)
    with make_client(secured_cluster.urls, **secured_cluster.client_options()) as c:
        limited = c.options(auth=BasicAuth(info.limited_user, info.limited_password))
        with pytest.raises(AuthorizationError):
            limited.index(index=secured_index, id="1", document={"a": 1})
        assert info.limited_user in str(whoami(limited, secured_cluster))
        # the client itself keeps its own credentials, and the view shares its connections
        c.index(index=secured_index, id="1", document={"a": 1}, refresh=True)
        assert c.count(index=secured_index)["count"] == 1
        assert info.user in str(whoami(c, secured_cluster))
        # a namespace of the view is the view's, not the client's
        with pytest.raises(AuthorizationError):
            limited.indices.refresh(index=secured_index)
        c.indices.refresh(index=secured_index)
        limited.close()  # a view closes nothing
        assert c.count(index=secured_index)["count"] == 1


def test_node_url_credentials_work_over_https(secured_cluster: LocalCluster) -> None:
    info = _info(secured_cluster)
    url = secured_cluster.urls[0].replace("https://", f"https://{info.user}:{info.password}@")
    with Client([url], ca_certs=info.ca_certs) as c:
        assert info.user in str(whoami(c, secured_cluster))
        assert info.password not in repr(c) and info.password not in repr(c.config)


# -- client certificates ----------------------------------------------------------------------


def test_opensearch_admin_certificate_authenticates_without_a_password(
    secured_cluster: LocalCluster, make_client: MakeClient, secured_index: str
) -> None:
    if _is_es(secured_cluster):
        pytest.skip("the admin certificate is an OpenSearch security plugin notion")
    info = _info(secured_cluster)
    with make_client(
        secured_cluster.urls,
        ca_certs=info.ca_certs,
        client_cert=info.admin_cert,
        client_key=info.admin_key,
    ) as c:
        c.index(index=secured_index, id="1", document={"by": "admin cert"}, refresh=True)
        assert c.get(index=secured_index, id="1")["_source"] == {"by": "admin cert"}


# -- Elasticsearch: API keys, service tokens, bearer tokens -----------------------------------


@pytest.fixture
def es_admin(admin: Client, secured_cluster: LocalCluster) -> Client:
    if not _is_es(secured_cluster):
        pytest.skip("API keys, service tokens and OAuth2 tokens are Elasticsearch's security API")
    return admin


def test_api_key_in_both_spellings(
    es_admin: Client, secured_cluster: LocalCluster, make_client: MakeClient, secured_index: str
) -> None:
    created = es_admin.security.create_api_key(name=f"k-{uuid.uuid4().hex[:6]}").body
    ca = _info(secured_cluster).ca_certs
    for auth in (ApiKey(created["encoded"]), ApiKey(id=created["id"], api_key=created["api_key"])):
        assert repr(auth) == f"ApiKey(id={created['id']!r}, api_key=<redacted>)"
        with make_client(secured_cluster.urls, ca_certs=ca, auth=auth) as c:
            me = c.security.authenticate().body
            assert me["authentication_type"] == "api_key"
            assert api_key_id(me) in (created["id"], None)
            c.index(index=secured_index, id="k", document={"via": "api key"})
    # the peers' spelling builds the same credential
    with Client(secured_cluster.urls, ca_certs=ca, api_key=created["encoded"]) as c:
        assert api_key_id(c.security.authenticate().body) in (created["id"], None)


def test_expired_api_key_is_named_in_the_authentication_error(
    es_admin: Client, secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    created = es_admin.security.create_api_key(
        name=f"short-{uuid.uuid4().hex[:6]}", expiration="1ms"
    ).body
    auth = ApiKey(created["encoded"])
    with make_client(
        secured_cluster.urls, ca_certs=_info(secured_cluster).ca_certs, auth=auth
    ) as c:
        with pytest.raises(AuthenticationError) as caught:
            c.security.authenticate()
    error = caught.value
    assert created["id"] in str(error)  # which key: the user has many
    assert created["api_key"] not in str(error) and created["encoded"] not in str(error)
    body_text = str(error.body).lower()
    assert "expired" in body_text or "expired" in str(error).lower()


def test_invalidated_api_key_is_refused(
    es_admin: Client, secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    created = es_admin.security.create_api_key(name=f"gone-{uuid.uuid4().hex[:6]}").body
    auth = ApiKey(created["encoded"])
    with make_client(
        secured_cluster.urls, ca_certs=_info(secured_cluster).ca_certs, auth=auth
    ) as c:
        assert api_key_id(c.security.authenticate().body) in (created["id"], None)
        es_admin.security.invalidate_api_key(body={"ids": [created["id"]]})
        # the server caches authentication for a moment: poll until it says no
        deadline = time.monotonic() + 30
        while True:
            try:
                c.security.authenticate()
            except AuthenticationError as exc:
                assert created["id"] in str(exc)
                break
            assert time.monotonic() < deadline, "the invalidated key still authenticates"
            time.sleep(0.2)  # polling the server's state, not standing in for a signal


def test_service_account_token(
    es_admin: Client, secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    made = es_admin.security.create_service_token(
        namespace="elastic", service="fleet-server", name=name
    ).body
    token = ServiceToken(made["token"]["value"])
    assert made["token"]["value"] not in repr(token)
    ca = _info(secured_cluster).ca_certs
    with make_client(secured_cluster.urls, ca_certs=ca, auth=token) as c:
        me = c.security.authenticate().body
        assert me["username"] == "elastic/fleet-server"
        assert me["authentication_type"] == "token"


def test_oauth2_bearer_token(
    es_admin: Client, secured_cluster: LocalCluster, make_client: MakeClient
) -> None:
    info = _info(secured_cluster)
    # OAuth2 tokens are a paid feature; the trial license (30 days, no network) unlocks them.
    license_type = es_admin.request("GET", "/_license").body["license"]["type"]
    if license_type == "basic":
        es_admin.request("POST", "/_license/start_trial", params={"acknowledge": "true"})
    granted = es_admin.security.get_token(
        body={"grant_type": "password", "username": info.user, "password": info.password}
    ).body
    bearer = BearerToken(granted["access_token"])
    with make_client(secured_cluster.urls, ca_certs=info.ca_certs, auth=bearer) as c:
        me = c.security.authenticate().body
        assert me["username"] == info.user
        assert me["authentication_type"] == "token"
