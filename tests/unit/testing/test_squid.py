"""The squid test helper's pure parts: the htpasswd hash squid's ``basic_ncsa_auth`` checks,
and the access-log lines the proxy tests read. (Squid itself runs in
``tests/integration/test_http_proxies.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sturdysearch.testing.squid import AccessEntry, apr1_hash, find_squid


@pytest.mark.parametrize(
    ("password", "salt", "expected"),
    [
        # from `openssl passwd -apr1 -salt SALT PASSWORD`
        ("s3cret", "abcdefgh", "$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0"),
        ("", "12345678", "$apr1$12345678$sHuPAw7VA9xjRbJz7zKV7/"),
        ("a" * 40, "xY./zz09", "$apr1$xY./zz09$PoMhCVhkWexEr24kSfzS./"),
        ("pässwörd", "saltsalt", "$apr1$saltsalt$i5XfNxJNeh2E8ljXycZFm0"),
    ],
)
def test_apr1_matches_openssl(password: str, salt: str, expected: str) -> None:
    assert apr1_hash(password, salt) == expected


def test_access_log_lines() -> None:
    tunnel = AccessEntry.parse(
        "1796321477.072   1503 127.0.0.1 TCP_TUNNEL/200 6061 CONNECT 127.0.0.1:41233 alice "
        "HIER_DIRECT/127.0.0.1 -"
    )
    assert tunnel is not None
    assert (tunnel.result, tunnel.status, tunnel.method) == ("TCP_TUNNEL", 200, "CONNECT")
    assert (tunnel.url, tunnel.user) == ("127.0.0.1:41233", "alice")
    denied = AccessEntry.parse(
        "1796321477.072      1 127.0.0.1 TCP_DENIED/407 3571 GET http://127.0.0.1:1/ - "
        "HIER_NONE/- text/html"
    )
    assert denied is not None and denied.status == 407 and denied.user == "-"
    assert AccessEntry.parse("garbage") is None


def test_find_squid_honours_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "squid"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("STURDY_SQUID", str(fake))
    assert find_squid() is None  # not executable
    fake.chmod(0o755)
    assert find_squid() == fake
