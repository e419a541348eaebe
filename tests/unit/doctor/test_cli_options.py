"""doctor's connection options build the client the user's application would use: SigV4
signing from botocore's chain, an HTTP proxy given or read from the environment."""

from __future__ import annotations

import argparse

import pytest

from sturdysearch.cli import doctor_cmd
from sturdysearch.cli.errors import CliError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    doctor_cmd.register(parser.add_subparsers())
    return parser.parse_args(["doctor", *argv])


def test_sigv4_from_the_default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore", reason="--aws-region needs botocore (sturdysearch[aws])")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDOCTORTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "doctor-test-secret")
    args = parse("--url", "https://search.example.com", "--aws-region", "eu-west-1")
    client = doctor_cmd.build_client(args)
    try:
        assert client.config.auth.scheme == "sigv4"
        assert "doctor-test-secret" not in repr(client.config)
    finally:
        client.close()


def test_sigv4_is_not_mixed_with_other_credentials() -> None:
    with pytest.raises(CliError, match="without --api-key"):
        doctor_cmd.build_client(
            parse("--url", "https://h:9200", "--aws-region", "eu-west-1", "--user", "a:b")
        )
    with pytest.raises(CliError, match="--aws-service needs --aws-region"):
        doctor_cmd.build_client(parse("--url", "https://h:9200", "--aws-service", "aoss"))


def test_a_proxy_given_or_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    given = doctor_cmd.build_client(
        parse("--url", "http://10.0.0.1:9200", "--proxy", "http://proxy.example:3128")
    )
    monkeypatch.setenv("HTTP_PROXY", "http://env-proxy.example:8080")
    monkeypatch.setenv("NO_PROXY", "10.0.0.2")
    from_env = doctor_cmd.build_client(
        parse("--url", "http://10.0.0.1:9200", "--url", "http://10.0.0.2:9200", "--proxy-from-env")
    )
    try:
        first, second = from_env.config.nodes
        assert given.config.proxy.endpoint_for(given.config.nodes[0]).host == "proxy.example"
        assert from_env.config.proxy.endpoint_for(first).host == "env-proxy.example"
        assert from_env.config.proxy.endpoint_for(second) is None  # NO_PROXY
    finally:
        given.close()
        from_env.close()
    with pytest.raises(CliError, match="not both"):
        doctor_cmd.build_client(
            parse("--url", "http://h:9200", "--proxy", "http://p:3128", "--proxy-from-env")
        )
