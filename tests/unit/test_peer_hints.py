"""Keywords of elasticsearch-py and opensearch-py are answered with their sturdysearch spelling,
and the wrapping that does it keeps the methods' real signatures."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._core.config import build_config
from sturdysearch._core.hints import hint_peer_keywords
from sturdysearch.errors import ConfigError, SerializationError
from sturdysearch.tls import TLSConfig


@pytest.fixture
def client() -> Any:
    c = Client("http://127.0.0.1:9")
    yield c
    c.close()


@pytest.mark.parametrize(
    ("options", "replacement"),
    [
        ({"http_auth": ("u", "p")}, "basic_auth="),
        ({"max_retries": 5}, "retry=RetryPolicy("),
        ({"retry_on_timeout": True}, "retry=RetryPolicy("),
        ({"verify_certs": False}, "dangerously_skip_tls_verify=True"),
        ({"request_timeout": 5}, "timeout="),
        ({"maxsize": 3}, "connections_per_node="),
    ],
)
def test_constructor_names_the_replacement(options: dict[str, Any], replacement: str) -> None:
    for cls in (Client, AsyncClient):
        with pytest.raises(ConfigError) as caught:
            cls("http://127.0.0.1:9", **options)
        assert replacement in str(caught.value)
        assert f"{next(iter(options))}= is not a sturdysearch keyword" in str(caught.value)


@pytest.mark.parametrize(
    ("call", "replacement"),
    [
        (lambda c: c.search(index="i", request_timeout=5), "use timeout="),
        (lambda c: c.index(index="i", body={"a": 1}), "use document="),
        (lambda c: c.indices.put_settings(index="i", settings={}, request_timeout=3), "timeout="),
        (lambda c: c.bulk(body=[]), "use operations="),
        (lambda c: c.get(index="i", id="1", doc_type="_doc"), "mapping types are gone"),
    ],
)
def test_methods_name_the_replacement(client: Any, call: Any, replacement: str) -> None:
    with pytest.raises(TypeError) as caught:
        call(client)
    assert replacement in str(caught.value)


def test_an_unknown_keyword_without_a_hint_keeps_pythons_message(client: Any) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        client.search(index="i", colour="blue")


def test_a_type_error_from_inside_a_method_is_not_rewritten(client: Any) -> None:
    with pytest.raises(SerializationError, match="invites injection"):  # a TypeError subclass
        client.search(index="i", query='{"match_all": {}}')


def test_signatures_and_coroutine_functions_survive_the_wrapping() -> None:
    assert "request_timeout" not in inspect.signature(Client.search).parameters
    assert "index" in inspect.signature(Client.search).parameters
    assert inspect.iscoroutinefunction(AsyncClient.search)
    assert inspect.isasyncgenfunction(AsyncClient.scan)
    assert "basic_auth" in inspect.signature(Client.__init__).parameters


def test_decorator_on_a_plain_class() -> None:
    @hint_peer_keywords
    class Thing:
        def index(self, *, document: Any) -> Any:
            return document

    assert Thing().index(document=1) == 1
    with pytest.raises(TypeError, match=r"Thing\.index\(\): body= is not a sturdysearch keyword"):
        Thing().index(body=1)  # type: ignore[call-arg]


def test_the_constructor_takes_a_timeouts_object() -> None:
    from sturdysearch import Timeouts

    with Client("http://127.0.0.1:9", timeouts=Timeouts(connect=1, read=4, total=9)) as c:
        assert c.config.timeouts == Timeouts(connect=1, read=4, total=9)
    with pytest.raises(ConfigError, match="timeouts=Timeouts"):
        Client("http://127.0.0.1:9", timeouts=Timeouts(), read_timeout=3)
    with pytest.raises(ConfigError):
        Client("http://127.0.0.1:9", timeout=None)  # type: ignore[arg-type]


def test_tls_settings_are_an_object_or_keywords() -> None:
    pin = "ab" * 32
    with Client("https://127.0.0.1:9", tls=TLSConfig(ssl_assert_fingerprint=pin)) as c:
        assert c.config.tls.ssl_assert_fingerprint == pin
    assert "tls" in inspect.signature(AsyncClient.__init__).parameters
    with pytest.raises(ConfigError, match=r"give tls=TLSConfig\(\.\.\.\) or ca_certs=, not both"):
        Client("https://127.0.0.1:9", tls=TLSConfig(), ca_certs="-----BEGIN CERTIFICATE-----")
    with pytest.raises(ConfigError, match="dangerously_skip_tls_verify=, not both"):
        Client("https://127.0.0.1:9", tls=TLSConfig(), dangerously_skip_tls_verify=True)  # noqa: SSP101 (refused)
    with pytest.raises(ConfigError, match="verify_certs=False is not accepted"):
        build_config("https://127.0.0.1:9", tls=TLSConfig(), verify_certs=False)
