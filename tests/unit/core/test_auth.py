"""Credentials (``sturdysearch.auth`` over ``sturdysearch._core.auth``): header values from the
peers' keywords and from the typed values, and never shown."""

from __future__ import annotations

import base64
import copy
import pickle
from typing import Any

import pytest

from sturdysearch._core.auth import Secret
from sturdysearch.auth import ApiKey, BasicAuth, BearerToken, ServiceToken, from_options
from sturdysearch.errors import ConfigError


def authorization_header(**kwargs: Any) -> Secret | None:
    """The header value the client sends for these keywords."""
    auth = from_options(**kwargs)
    return None if auth is None else auth.authorization()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"basic_auth": ("elastic", "changeme")}, f"Basic {b64('elastic:changeme')}"),
        ({"basic_auth": ["elastic", "changeme"]}, f"Basic {b64('elastic:changeme')}"),
        ({"basic_auth": "elastic:changeme"}, f"Basic {b64('elastic:changeme')}"),
        ({"basic_auth": "elastic:pa:ss"}, f"Basic {b64('elastic:pa:ss')}"),
        ({"basic_auth": "elastic:"}, f"Basic {b64('elastic:')}"),
        ({"basic_auth": ("usér", "pässwörd")}, f"Basic {b64('usér:pässwörd')}"),
        (
            {"api_key": "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
            "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
        ),
        ({"api_key": ("id1", "key1")}, f"ApiKey {b64('id1:key1')}"),
        ({"bearer_auth": "tok.en.value"}, "Bearer tok.en.value"),
    ],
)
def test_header_values(kwargs: dict[str, Any], value: str) -> None:
    secret = authorization_header(**kwargs)
    assert isinstance(secret, Secret)
    assert secret.reveal() == value


def test_no_credentials() -> None:
    assert authorization_header() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"basic_auth": ("u", "p"), "api_key": "k"},
        {"basic_auth": ("u", "p"), "bearer_auth": "t"},
        {"api_key": "k", "bearer_auth": "t"},
        {"basic_auth": "u:p", "api_key": "k", "bearer_auth": "t"},
    ],
)
def test_one_kind_of_credentials_only(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="one kind of credentials") as info:
        authorization_header(**kwargs)
    for name in kwargs:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"basic_auth": "no-colon"}, "basic_auth must be (user, password)"),
        ({"basic_auth": ":password"}, "empty user name"),
        ({"basic_auth": ("", "p")}, "empty user name"),
        ({"basic_auth": ("u",)}, "pair of strings"),
        ({"basic_auth": ("u", "p", "x")}, "pair of strings"),
        ({"basic_auth": ("u", 1)}, "pair of strings"),
        ({"api_key": ""}, "api_key is empty"),
        ({"api_key": ("id", "")}, "encoded key string or an (id, key) pair"),
        ({"api_key": ("id",)}, "encoded key string or an (id, key) pair"),
        ({"api_key": ("id", 5)}, "encoded key string or an (id, key) pair"),
        ({"bearer_auth": ""}, "non-empty token"),
        ({"bearer_auth": 123}, "non-empty token"),
    ],
)
def test_bad_credentials(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        authorization_header(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"basic_auth": ("u", "hunter2hunter2")},
        {"basic_auth": ("", "hunter2hunter2")},
        {"basic_auth": ("u", 1, "hunter2hunter2")},
        {"api_key": ("hunter2hunter2", "")},
        {"api_key": "hunter2hunter2", "bearer_auth": "hunter2hunter2"},
    ],
)
def test_errors_never_show_the_secret(kwargs: dict[str, Any]) -> None:
    try:
        secret = authorization_header(**kwargs)
    except ConfigError as exc:
        assert "hunter2hunter2" not in str(exc)
        assert "hunter2hunter2" not in repr(exc)
    else:
        assert secret is not None
        assert "hunter2hunter2" not in repr(secret)


def test_secret_hides_itself() -> None:
    s = Secret("Bearer topsecret")
    assert repr(s) == "Secret('<redacted>')"
    assert str(s) == "Secret('<redacted>')"
    assert f"{s}" == "Secret('<redacted>')"
    assert "topsecret" not in repr([s, {"k": s}])
    assert s.reveal() == "Bearer topsecret"


def test_secret_equality() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_not_picklable(protocol: int) -> None:
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(Secret("Basic abc"), protocol=protocol)


def test_secret_not_copyable_either() -> None:
    # copy goes through __reduce__ too, so a copy cannot be made by accident
    with pytest.raises(TypeError):
        copy.copy(Secret("x"))


def test_secret_has_no_dict() -> None:
    s = Secret("x")
    assert not hasattr(s, "__dict__")
    with pytest.raises(AttributeError):
        s.other = 1  # type: ignore[attr-defined]


# -- the typed values --------------------------------------------------------------------------


SECRET = "s3cr3t-VALUE-never-shown"


@pytest.mark.parametrize(
    ("auth", "shown"),
    [
        (BasicAuth("elastic", SECRET), "BasicAuth(username='elastic', password=<redacted>)"),
        (ApiKey(id="key-id", api_key=SECRET), "ApiKey(id='key-id', api_key=<redacted>)"),
        (ApiKey(b64(f"key-id:{SECRET}")), "ApiKey(id='key-id', api_key=<redacted>)"),
        (ApiKey(SECRET), "ApiKey(id=None, api_key=<redacted>)"),
        (BearerToken(SECRET), "BearerToken(<redacted>)"),
        (ServiceToken(SECRET), "ServiceToken(<redacted>)"),
    ],
)
def test_typed_values_never_show_the_secret(auth: Any, shown: str) -> None:
    assert repr(auth) == shown
    assert str(auth) == shown
    assert SECRET not in repr([auth]) and SECRET not in f"{auth}"
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(auth)
    assert copy.copy(auth) == auth


def test_typed_values_and_keywords_send_the_same_header() -> None:
    assert BasicAuth("u", "p") == from_options(basic_auth=("u", "p"))
    assert ApiKey(id="i", api_key="k") == from_options(api_key=("i", "k"))
    assert ApiKey("abc") == from_options(api_key="abc")
    assert BearerToken("t") == from_options(bearer_auth="t")
    # a service token is a bearer token on the wire, but not the same kind of credential
    assert ServiceToken("t").authorization() == BearerToken("t").authorization()
    assert ServiceToken("t") != BearerToken("t")
    assert {a.scheme for a in (BasicAuth("u", "p"), ApiKey("k"), ServiceToken("t"))} == {
        "basic",
        "api_key",
        "service_token",
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BasicAuth("", "p"), "empty user name"),
        (lambda: BasicAuth("a:b", "p"), "cannot contain ':'"),
        (lambda: BasicAuth("u", "p\n"), "line break"),
        (lambda: ApiKey(), "encoded key, or both id= and api_key="),
        (lambda: ApiKey("x", id="i", api_key="k"), "not both"),
        (lambda: ApiKey(id="i"), "both id= and api_key="),
        (lambda: BearerToken(""), "non-empty token"),
        (lambda: ServiceToken("a\r\nX-Evil: 1"), "line break"),
        (lambda: from_options(auth=("u", "p")), "basic_auth="),  # type: ignore[arg-type]
        (lambda: from_options(auth=BasicAuth("u", "p"), api_key="k"), "one kind of credentials"),
    ],
)
def test_bad_typed_values(make: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)
