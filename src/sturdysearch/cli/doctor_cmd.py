"""``sturdysearch doctor``: check a cluster and a client configuration for the classic
connection mistakes, and say how to fix each.

The connection options are ``bulk-load``'s (``--url`` or ``$STURDYSEARCH_URL``, ``--api-key``
or ``$STURDYSEARCH_API_KEY``, ``--user``/``$STURDYSEARCH_USER``), parsed by its own helper;
``--factory module:function`` checks the application's real client instead. ``--aws-region``
signs with AWS SigV4 (botocore's credential chain), ``--proxy`` / ``--proxy-from-env`` reach
the nodes through an HTTP proxy as the client does, so that the connection checked is the
user's real one. The exit codes are those of monitoring plugins, so the command can run as a
Nagios/Icinga/Sensu check.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from sturdysearch.cli.bulk_cmd import API_KEY_ENV, URL_ENV, USER_ENV, settings_from
from sturdysearch.cli.errors import CliError

EXIT_CODES = """\
exit codes (as monitoring plugins use them):
  0  every finding is ok
  1  at least one warning
  2  at least one failure
  3  could not check: no node answered, or the options or --factory are unusable

Each finding has a stable id (reach.tcp, tls.expiry, ...) explained in docs/doctor.md.
"""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "doctor",
        help="check a cluster and a client configuration for the classic connection mistakes",
        description=(
            "Run the connection checklist against a live cluster and a client configuration: "
            "reach (DNS, TCP, TLS, first byte, latency), identity, TLS, authentication, "
            "discovery, client settings, cluster health, capacity and load, an index's bulk "
            "readiness, deprecations. Says what is wrong and how to fix it."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", action="append", default=[], help=f"node URL, repeatable (env {URL_ENV})"
    )
    parser.add_argument("--api-key", help=f"API key, encoded (env {API_KEY_ENV})")
    parser.add_argument("--user", help=f"basic auth as name:password (env {USER_ENV})")
    parser.add_argument(
        "--aws-region",
        metavar="REGION",
        help="sign every request with AWS SigV4 for this region (Amazon OpenSearch Service / "
        "Serverless), with the credentials of botocore's default chain (AWS_* variables, "
        "AWS_PROFILE, SSO, roles); needs sturdysearch[aws]",
    )
    parser.add_argument(
        "--aws-service",
        choices=("es", "aoss"),
        default=None,
        help="the SigV4 service: es (a domain, the default) or aoss (a Serverless collection)",
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="reach the nodes through this HTTP proxy, http://[user:password@]host:port (the "
        "client's proxy=; --proxy-from-env keeps a password out of the process list)",
    )
    parser.add_argument(
        "--no-proxy",
        metavar="LIST",
        help="comma-separated hosts reached directly (the client's no_proxy=; with --proxy)",
    )
    parser.add_argument(
        "--proxy-from-env",
        action="store_true",
        help="read the proxy from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY, as the "
        "client's proxy_from_env=True does",
    )
    parser.add_argument("--ca-certs", help="CA certificate file (PEM) to trust")
    parser.add_argument("--fingerprint", help="SHA-256 pin of the server certificate")
    parser.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="check the client this callable returns (a sturdysearch.Client), instead of "
        "one built from the options above",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="concurrent requests the application runs (judges the pool size)",
    )
    parser.add_argument("--index", metavar="NAME", help="also check NAME's bulk readiness")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="bound of each check and of each request in it (default 5)",
    )
    parser.add_argument(
        "--heap-warn",
        type=float,
        default=85.0,
        metavar="PERCENT",
        help="capacity.heap warns at this heap_used_percent (default 85)",
    )
    parser.add_argument(
        "--heap-fail",
        type=float,
        default=95.0,
        metavar="PERCENT",
        help="capacity.heap fails at this heap_used_percent (default 95)",
    )
    parser.add_argument(
        "--gc-warn",
        type=float,
        default=5.0,
        metavar="PERCENT",
        help="capacity.gc warns at this share of uptime spent in old-generation GC (default 5)",
    )
    parser.set_defaults(func=run)


def load_factory(spec: str) -> Any:
    """Call ``module:function`` (the module found from the current directory too)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"--factory {spec!r}: expected module:function, e.g. myapp.search:client")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--factory: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise CliError(f"--factory: {module_name} has no callable {attribute}")
    from sturdysearch import Client

    try:
        client = factory()
    except Exception as exc:
        raise CliError(f"--factory: {spec}() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(client, Client):
        raise CliError(
            f"--factory: {spec}() returned {type(client).__name__}, not a sturdysearch.Client"
        )
    return client


class _ConnectionFlags(argparse.Namespace):
    """The connection flags, for ``bulk-load``'s own parser helper; any other flag it reads
    (its batch and worker options, whatever it grows) is unset here."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def build_client(args: argparse.Namespace) -> Any:
    """The client from the flags; credentials over plain http to another host are let through
    here (with ``allow_credentials_over_http``) so that doctor can report them as a finding
    rather than stop."""
    from sturdysearch import Client
    from sturdysearch.errors import ConfigError

    connection = _ConnectionFlags(
        url=args.url,
        api_key=args.api_key,
        user=args.user,
        ca_certs=args.ca_certs,
        no_progress=True,
    )
    settings = settings_from(connection)
    options: dict[str, Any] = {}
    if settings.api_key:
        options["api_key"] = settings.api_key
    if settings.basic_auth:
        options["basic_auth"] = settings.basic_auth
    options.update(_signing(args, bool(options)))
    options.update(_proxying(args))
    if args.ca_certs:
        options["ca_certs"] = args.ca_certs
    if args.fingerprint:
        options["ssl_assert_fingerprint"] = args.fingerprint
    try:
        return Client(settings.urls, **options)
    except ConfigError as exc:
        if "in clear" not in str(exc):
            raise CliError(str(exc)) from None
    try:
        return Client(settings.urls, allow_credentials_over_http=True, **options)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _signing(args: argparse.Namespace, has_credentials: bool) -> dict[str, Any]:
    """``auth=AwsSigV4(...)`` for ``--aws-region`` (botocore's default credential chain)."""
    if args.aws_region is None:
        if args.aws_service is not None:
            raise CliError("--aws-service needs --aws-region")
        return {}
    if has_credentials:
        raise CliError(
            "--aws-region signs the requests: give it without --api-key / --user (or unset "
            f"{API_KEY_ENV} / {USER_ENV})"
        )
    from sturdysearch.auth import AwsSigV4
    from sturdysearch.errors import ConfigError

    try:
        return {"auth": AwsSigV4(args.aws_region, service=args.aws_service or "es")}
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _proxying(args: argparse.Namespace) -> dict[str, Any]:
    """``proxy=`` / ``no_proxy=`` / ``proxy_from_env=`` from the flags (checked by the
    client when it is built: a bad value is its ``ConfigError``)."""
    options: dict[str, Any] = {}
    if args.proxy is not None:
        options["proxy"] = args.proxy
    if args.no_proxy is not None:
        options["no_proxy"] = [e.strip() for e in args.no_proxy.split(",") if e.strip()]
    if args.proxy_from_env:
        options["proxy_from_env"] = True
    return options


def run(args: argparse.Namespace) -> int:
    from sturdysearch.doctor import Options, diagnose
    from sturdysearch.doctor.findings import EXIT_UNKNOWN
    from sturdysearch.doctor.output import as_json, as_text

    if args.timeout <= 0:
        print("sturdysearch doctor: --timeout must be above 0", file=sys.stderr)
        return EXIT_UNKNOWN
    if args.concurrency is not None and args.concurrency < 1:
        print("sturdysearch doctor: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_UNKNOWN
    for flag, value in (
        ("--heap-warn", args.heap_warn),
        ("--heap-fail", args.heap_fail),
        ("--gc-warn", args.gc_warn),
    ):
        if not 0 < value <= 100:
            print(f"sturdysearch doctor: {flag} must be a percentage in (0, 100]", file=sys.stderr)
            return EXIT_UNKNOWN
    try:
        client = load_factory(args.factory) if args.factory else build_client(args)
    except CliError as exc:
        print(f"sturdysearch doctor: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    options = Options(
        timeout=args.timeout,
        concurrency=args.concurrency,
        index=args.index,
        environ=dict(os.environ),
        heap_warn=args.heap_warn,
        heap_fail=args.heap_fail,
        gc_warn=args.gc_warn,
    )
    try:
        report = diagnose(client, options)
    finally:
        client.close()
    if args.json:
        sys.stdout.write(as_json(report))
    else:
        sys.stdout.write(as_text(report, color=sys.stdout.isatty()))
    return report.exit_code
