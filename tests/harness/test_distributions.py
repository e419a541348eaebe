"""Download, verification and caching of distributions, against a local HTTP repository."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sturdysearch.testing.distributions import (
    PINNED_SHA512,
    DistributionCache,
    DownloadConfig,
    ExpectedDigest,
    artifact_for,
    extract_zip,
    install_distribution,
    parse_checksum_file,
    verify_file,
)
from sturdysearch.testing.errors import ChecksumMismatchError, DistributionError
from sturdysearch.testing.specs import ServerSpec

SPEC = ServerSpec.parse("opensearch:9.9.9")  # not pinned: verification uses published files


def make_zip(top: str = "opensearch-9.9.9") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        script = zipfile.ZipInfo(f"{top}/bin/opensearch")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(script, "#!/bin/sh\n")
        config = zipfile.ZipInfo(f"{top}/config/jvm.options")
        config.external_attr = (stat.S_IFREG | 0o600) << 16
        archive.writestr(config, "-Xms1g\n")
    return buffer.getvalue()


@dataclass
class Repository:
    """A tiny Maven-layout HTTP server on 127.0.0.1 that counts requests."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    truncate: bool = False

    def put(self, spec: ServerSpec, data: bytes, checksums: dict[str, str]) -> Path:
        artifact = artifact_for(spec)
        relative = artifact.url("").lstrip("/")
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        for algorithm, digest in checksums.items():
            Path(f"{path}.{algorithm}").write_text(f"{digest}  {artifact.filename}\n")
        return path


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository(tmp_path / "repo")
    repo.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(repo.root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            repo.requests.append(self.path)
            if repo.truncate and self.path.endswith(".zip"):
                data = (repo.root / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.close()
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    repo.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield repo
    server.shutdown()
    server.server_close()


def cache(tmp_path: Path, repo: Repository, allow_unverified: bool = False) -> DistributionCache:
    config = DownloadConfig(
        repository=repo.url, use_maven=False, allow_unverified=allow_unverified, timeout=10
    )
    return DistributionCache(tmp_path / "cache", config)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_downloads_verifies_sha1_and_never_twice(tmp_path: Path, repository: Repository) -> None:
    data = make_zip()
    repository.put(SPEC, data, {"sha1": hashlib.sha1(data).hexdigest()})
    dist = cache(tmp_path, repository)
    path = dist.fetch(SPEC)
    assert path.read_bytes() == data
    assert path == tmp_path / "cache" / "distributions" / "opensearch-9.9.9.zip"
    count = len(repository.requests)
    assert dist.fetch(SPEC) == path
    assert len(repository.requests) == count
    assert leftovers(path.parent) == ["opensearch-9.9.9.zip"]


def test_prefers_sha512_when_published(tmp_path: Path, repository: Repository) -> None:
    data = make_zip()
    repository.put(SPEC, data, {"sha512": hashlib.sha512(data).hexdigest(), "sha1": "0" * 40})
    assert cache(tmp_path, repository).fetch(SPEC).read_bytes() == data


def test_checksum_mismatch_caches_nothing(tmp_path: Path, repository: Repository) -> None:
    repository.put(SPEC, make_zip(), {"sha1": "0" * 40})
    dist = cache(tmp_path, repository)
    with pytest.raises(ChecksumMismatchError, match="expected 0000"):
        dist.fetch(SPEC)
    assert leftovers(dist.directory) == []


def test_interrupted_download_caches_nothing(tmp_path: Path, repository: Repository) -> None:
    data = make_zip()
    repository.put(SPEC, data, {"sha1": hashlib.sha1(data).hexdigest()})
    repository.truncate = True
    dist = cache(tmp_path, repository)
    with pytest.raises(DistributionError):
        dist.fetch(SPEC)
    assert leftovers(dist.directory) == []
    repository.truncate = False
    assert dist.fetch(SPEC).read_bytes() == data


def test_unpublished_checksum_is_refused_unless_allowed(
    tmp_path: Path, repository: Repository
) -> None:
    data = make_zip()
    repository.put(SPEC, data, {})
    with pytest.raises(DistributionError, match="STURDY_ALLOW_UNVERIFIED_DOWNLOADS=1"):
        cache(tmp_path, repository).fetch(SPEC)
    assert not any(r.endswith(".zip") for r in repository.requests)  # refused before download
    assert cache(tmp_path, repository, allow_unverified=True).fetch(SPEC).read_bytes() == data


def test_damaged_zip_with_matching_checksum_is_refused(
    tmp_path: Path, repository: Repository
) -> None:
    data = make_zip()[:-30]
    repository.put(SPEC, data, {"sha1": hashlib.sha1(data).hexdigest()})
    dist = cache(tmp_path, repository)
    with pytest.raises(DistributionError, match="zip"):
        dist.fetch(SPEC)
    assert leftovers(dist.directory) == []


def test_missing_release_says_so(tmp_path: Path, repository: Repository) -> None:
    with pytest.raises(DistributionError, match=r"HTTP 404 \(no such release\?\)"):
        cache(tmp_path, repository).fetch(SPEC)


def test_pinned_digests_are_sha512() -> None:
    for key, digest in PINNED_SHA512.items():
        ServerSpec.parse(key)
        ExpectedDigest("sha512", digest, key)


def test_parse_checksum_file_formats() -> None:
    digest = "a" * 40
    assert parse_checksum_file(digest, "sha1") == digest
    assert parse_checksum_file(f"{digest.upper()}  file.zip\n", "sha1") == digest
    with pytest.raises(DistributionError, match="malformed"):
        parse_checksum_file("<html>not found</html>", "sha1")


def test_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    verify_file(path, ExpectedDigest("sha1", hashlib.sha1(b"hello").hexdigest(), "test"))
    with pytest.raises(ChecksumMismatchError, match="discarded"):
        verify_file(path, ExpectedDigest("sha1", "1" * 40, "test"))


def test_install_keeps_exec_bits_and_is_world_readable(tmp_path: Path) -> None:
    archive = tmp_path / "d.zip"
    archive.write_bytes(make_zip())
    home = install_distribution(archive, SPEC, tmp_path / "installs")
    assert home == tmp_path / "installs" / "opensearch-9.9.9"
    assert stat.S_IMODE((home / "bin" / "opensearch").stat().st_mode) == 0o755
    assert stat.S_IMODE((home / "config" / "jvm.options").stat().st_mode) == 0o644
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    assert install_distribution(archive, SPEC, tmp_path / "installs") == home
    assert sorted(os.listdir(tmp_path / "installs")) == [".locks", "opensearch-9.9.9"]


def test_extract_refuses_path_traversal(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top/../../escaped", "x")
    with pytest.raises(DistributionError, match="unsafe"):
        extract_zip(archive, tmp_path / "out")


def plugin_zip(path: Path, extended: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "plugin-descriptor.properties",
            f"# a comment\nname=opensearch-security\nversion=9.9.9.0\nextended.plugins={extended}\n",
        )
        archive.writestr("opensearch-security.jar", b"jar")
        archive.writestr("config/config.yml", "x: 1\n")
    return path


def test_a_plugin_that_needs_a_missing_plugin_is_refused_at_install(tmp_path: Path) -> None:
    """OpenSearch 3.4's security plugin extends ``rule-framework``, which the integ-test zip
    lacks: the node would exit at start with "Missing plugin [rule-framework]". The install
    says so first, names what is missing and what to run instead, and leaves nothing behind."""
    archive = tmp_path / "d.zip"
    archive.write_bytes(make_zip())
    plugin = plugin_zip(
        tmp_path / "security.zip", "workload-management;optional=true,rule-framework"
    )
    installs = tmp_path / "installs"
    with pytest.raises(DistributionError, match=r"needs the plugin\(s\) rule-framework,") as caught:
        install_distribution(archive, SPEC, installs, plugin_zip=plugin)
    assert "workload-management" not in str(caught.value)  # optional
    assert "opensearch:2.19.4+security" in str(caught.value)
    assert sorted(os.listdir(installs)) == [".locks"]


def test_a_plugin_whose_extensions_are_optional_or_present_installs(tmp_path: Path) -> None:
    archive = tmp_path / "d.zip"
    archive.write_bytes(make_zip())
    plugin = plugin_zip(tmp_path / "security.zip", "workload-management;optional=true")
    home = install_distribution(archive, SPEC, tmp_path / "installs", plugin_zip=plugin)
    assert (home / "plugins" / "opensearch-security" / "opensearch-security.jar").is_file()
    assert (home / "config" / "opensearch-security" / "config.yml").is_file()
