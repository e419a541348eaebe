"""Getting a server's integ-test-zip from Maven Central, verified, cached and unpacked.

The integ-test-zip is the smallest official build of each server (no plugins, no bundled JDK),
which keeps downloads at 35-130 MB and start-up fast. Two transports:

* ``mvn dependency:copy`` when Maven is installed, so a corporate mirror in ``settings.xml``
  applies and ``~/.m2`` is reused;
* plain HTTPS with urllib otherwise.

Either way the file is checked against a digest before it enters the cache, and it enters by
atomic rename, so an interrupted or corrupt download can never be mistaken for a good one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sturdysearch import __version__
from sturdysearch.testing.errors import ChecksumMismatchError, DistributionError
from sturdysearch.testing.specs import Flavor, ServerSpec

log = logging.getLogger(__name__)

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
ALLOW_UNVERIFIED_ENV = "STURDY_ALLOW_UNVERIFIED_DOWNLOADS"
USE_MAVEN_ENV = "STURDY_USE_MAVEN"
REPOSITORY_ENV = "STURDY_MAVEN_REPOSITORY"
_CHUNK = 1 << 20
_HTTP_TIMEOUT = 60.0

# SHA-512 of the releases tried for docs/compatibility.md. Maven Central publishes no checksum
# at all for some of them (OpenSearch 1.3.20, Elasticsearch 9.5.4); where it does, these were
# checked against the published .sha1/.sha512. A pinned digest always wins over a published one.
PINNED_SHA512: dict[str, str] = {
    "opensearch:1.3.20": "b5a4eb38d6ec52d8b619af2d9f9bc859025eb6c8b8ae3f175b6223868f4d186a"
    "56c18867fbb202893cdabd9e0886582dc6e260289535c75a64d37c02bf0548ce",
    "opensearch:2.19.6": "8adbfaa13162b8d42b388ece6b39bfb7f1a349ab9c128d4eced78ba1dd43b5a1"
    "0850b43b8aac19fa5ab11f4d5c355ddf6f6617514d6112b0936a1903005d1d36",
    "opensearch:3.8.0": "8470fc447309e84216f9359030db53a85b087492e161e5ce1a29276e776d4725"
    "b802f93ba8d218ea88e4a7999addadb863be93b8e1f89e9a292163e636e62de3",
    "elasticsearch:7.17.29": "24abc37b17b5709c41fba542d0cfb052bc41622326fed2183a67707db3cbd46e"
    "8469885ecb48c67265d48427be41f9389efff7db99d367b3b6151c65cd64aa43",
    "elasticsearch:8.19.21": "cf6b0a93860d329937ae7f913ec5073b0c726c77639764b93fc83a304aa1dd9d"
    "4defcfa2849948eea3b0b47c2065f994908603939fc2a4774c9c4d868c5ec1dd",
    "elasticsearch:9.5.4": "a75df614854ace52dd0bce977662b3792873ac077ec0af9026cd0b2a0eb119e4"
    "49910f8eb8ed577d1a83c51c6ee6af71bf5004c3cf5b418c979186de8b5dd9e6",
}

_DIGEST_LENGTHS = {"sha1": 40, "sha256": 64, "sha512": 128}
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class MavenArtifact:
    group_id: str
    artifact_id: str
    version: str
    packaging: str = "zip"

    @property
    def coordinates(self) -> str:
        """``group:artifact:version:packaging``, the form ``mvn -Dartifact=`` takes."""
        return f"{self.group_id}:{self.artifact_id}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.artifact_id}-{self.version}.{self.packaging}"

    def url(self, repository: str = MAVEN_CENTRAL) -> str:
        group_path = self.group_id.replace(".", "/")
        return (
            f"{repository.rstrip('/')}/{group_path}/{self.artifact_id}/{self.version}/"
            f"{self.filename}"
        )


@dataclass(frozen=True)
class ExpectedDigest:
    algorithm: str
    hexdigest: str
    source: str

    def __post_init__(self) -> None:
        length = _DIGEST_LENGTHS.get(self.algorithm)
        if length is None:
            raise ValueError(f"unsupported digest algorithm {self.algorithm!r}")
        if len(self.hexdigest) != length or not _is_hex(self.hexdigest):
            raise ValueError(f"not a {self.algorithm} digest: {self.hexdigest!r}")


def artifact_for(spec: ServerSpec) -> MavenArtifact:
    group = (
        "org.opensearch.distribution.integ-test-zip"
        if spec.flavor is Flavor.OPENSEARCH
        else "org.elasticsearch.distribution.integ-test-zip"
    )
    return MavenArtifact(group, spec.flavor.value, spec.version)


def security_plugin_for(spec: ServerSpec) -> MavenArtifact:
    """The OpenSearch security plugin zip for ``spec``: published per release as
    ``org.opensearch.plugin:opensearch-security:<version>.0``, and only loadable by exactly
    that server version (not every release has one: 2.19.4 and 3.4.0 do, 2.19.6 does not)."""
    if spec.flavor is not Flavor.OPENSEARCH:
        raise DistributionError("only OpenSearch takes the security plugin")
    return MavenArtifact("org.opensearch.plugin", "opensearch-security", f"{spec.version}.0")


def pinned_digest(spec: ServerSpec) -> ExpectedDigest | None:
    value = PINNED_SHA512.get(str(spec))
    return ExpectedDigest("sha512", value, "pinned in sturdysearch") if value else None


def parse_checksum_file(text: str, algorithm: str) -> str:
    """Extracts the digest from a ``.sha1``/``.sha512`` file.

    Publishers disagree on the format: some write the bare digest, others ``digest  filename``
    like ``sha1sum``; a few use upper case.
    """
    tokens = text.split()
    if tokens:
        candidate = tokens[0].lower()
        if len(candidate) == _DIGEST_LENGTHS[algorithm] and _is_hex(candidate):
            return candidate
    raise DistributionError(f"malformed .{algorithm} checksum file: {text[:80]!r}")


def file_digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_file(path: Path, expected: ExpectedDigest) -> None:
    """Raises ChecksumMismatchError unless ``path`` has the expected digest."""
    actual = file_digest(path, expected.algorithm)
    if actual != expected.hexdigest.lower():
        raise ChecksumMismatchError(
            f"{path.name}: {expected.algorithm} is {actual}, expected {expected.hexdigest} "
            f"({expected.source}); the download was discarded. Retry; if it persists, the "
            "repository or a proxy is serving a different file."
        )


def check_zip_integrity(path: Path) -> None:
    """Reads every member's CRC, catching truncated or damaged archives before they are cached."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DistributionError(f"{path.name} is not a valid zip archive: {exc}") from exc
    if bad is not None:
        raise DistributionError(f"{path.name} is damaged: CRC error in {bad}")


@dataclass(frozen=True)
class DownloadConfig:
    """How to download: which repository, whether through Maven, how strict to be."""

    repository: str = MAVEN_CENTRAL
    use_maven: bool = True
    allow_unverified: bool = False
    timeout: float = _HTTP_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DownloadConfig:
        environ = os.environ if env is None else env
        maven_pref = environ.get(USE_MAVEN_ENV, "").strip().lower()
        use_maven = (
            maven_pref not in ("0", "false", "no", "off")
            if maven_pref
            else shutil.which("mvn") is not None
        )
        return cls(
            repository=environ.get(REPOSITORY_ENV) or MAVEN_CENTRAL,
            use_maven=use_maven,
            allow_unverified=environ.get(ALLOW_UNVERIFIED_ENV, "") in ("1", "true", "yes"),
        )


class DistributionCache:
    """The downloaded zips, one per spec, under ``<cache root>/distributions``."""

    def __init__(self, root: Path, config: DownloadConfig | None = None) -> None:
        self.root = root
        self.config = config or DownloadConfig.from_env()

    @property
    def directory(self) -> Path:
        return self.root / "distributions"

    def zip_path(self, spec: ServerSpec) -> Path:
        return self.directory / artifact_for(spec.release).filename

    def fetch(self, spec: ServerSpec) -> Path:
        """Returns the verified zip for ``spec``, downloading it once if needed.

        A file lock serialises concurrent test processes so they share one download.
        """
        release = spec.release
        return self.fetch_artifact(
            artifact_for(release), pinned_digest(release), label=str(release), key=release.id
        )

    def fetch_plugin(self, spec: ServerSpec) -> Path:
        """The OpenSearch security plugin built for exactly ``spec``'s version."""
        artifact = security_plugin_for(spec)
        return self.fetch_artifact(
            artifact,
            None,
            label=artifact.coordinates,
            key=f"{artifact.artifact_id}-{artifact.version}",
        )

    def fetch_artifact(
        self, artifact: MavenArtifact, pinned: ExpectedDigest | None, *, label: str, key: str
    ) -> Path:
        """Returns the verified file of ``artifact``, downloading it once (``key`` names its
        lock; ``label`` is how messages name it)."""
        target = self.directory / artifact.filename
        if target.is_file():
            return target
        with file_lock(self.root / "locks" / f"{key}.download.lock"):
            if target.is_file():
                return target
            self.directory.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.directory))
            try:
                if self.config.use_maven:
                    downloaded = self._download_with_maven(artifact, pinned, label, work)
                else:
                    downloaded = self._download_with_urllib(artifact, pinned, label, work)
                check_zip_integrity(downloaded)
                os.chmod(downloaded, 0o644)
                _fsync(downloaded)
                os.replace(downloaded, target)
                _fsync_dir(self.directory)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        log.info("cached %s at %s", label, target)
        return target

    def _download_with_urllib(
        self, artifact: MavenArtifact, pinned: ExpectedDigest | None, label: str, work: Path
    ) -> Path:
        url = artifact.url(self.config.repository)
        expected = pinned or self._published_digest(artifact)
        if expected is None and not self.config.allow_unverified:
            self._require_exists(url)  # "no such release" beats "no checksum" as an answer
            raise DistributionError(_no_checksum_message(label, url))
        destination = work / artifact.filename
        log.info("downloading %s", url)
        hasher = hashlib.new(expected.algorithm) if expected else None
        try:
            request = urllib.request.Request(url, headers=_HEADERS)
            with (
                urllib.request.urlopen(request, timeout=self.config.timeout) as response,
                destination.open("wb") as out,
            ):
                _copy_stream(response, out, hasher)
        except urllib.error.HTTPError as exc:
            hint = " (no such release?)" if exc.code == 404 else ""
            raise DistributionError(f"download of {url} failed: HTTP {exc.code}{hint}") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise DistributionError(
                f"download of {url} failed: {exc!r}. Check network access to "
                f"{self.config.repository}, or set {REPOSITORY_ENV} to a reachable mirror."
            ) from exc
        if expected is None:
            log.warning("%s has no published checksum; accepted unverified", url)
        elif hasher is not None and hasher.hexdigest() != expected.hexdigest:
            raise ChecksumMismatchError(
                f"{artifact.filename}: {expected.algorithm} is {hasher.hexdigest()}, expected "
                f"{expected.hexdigest} ({expected.source}); the download was discarded."
            )
        return destination

    def _require_exists(self, url: str) -> None:
        try:
            request = urllib.request.Request(url, headers=_HEADERS, method="HEAD")
            with urllib.request.urlopen(request, timeout=self.config.timeout):
                pass
        except urllib.error.HTTPError as exc:
            hint = " (no such release?)" if exc.code == 404 else ""
            raise DistributionError(f"{url}: HTTP {exc.code}{hint}") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise DistributionError(f"could not reach {url}: {exc!r}") from exc

    def _published_digest(self, artifact: MavenArtifact) -> ExpectedDigest | None:
        for algorithm in ("sha512", "sha1"):
            url = f"{artifact.url(self.config.repository)}.{algorithm}"
            try:
                request = urllib.request.Request(url, headers=_HEADERS)
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                    text = response.read(4096).decode("ascii", errors="replace")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    continue
                raise DistributionError(f"could not fetch {url}: HTTP {exc.code}") from exc
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                raise DistributionError(f"could not fetch {url}: {exc!r}") from exc
            return ExpectedDigest(
                algorithm, parse_checksum_file(text, algorithm), f"published .{algorithm}"
            )
        return None

    def _download_with_maven(
        self, artifact: MavenArtifact, pinned: ExpectedDigest | None, label: str, work: Path
    ) -> Path:
        # With a pinned digest we verify ourselves, so Maven may be lenient (some releases have
        # no published checksum at all); without one, Maven's strict mode verifies the
        # published checksum for us.
        lenient = pinned is not None or self.config.allow_unverified
        command = [
            "mvn",
            "--batch-mode",
            "--quiet",
            "--update-snapshots",
            "--lax-checksums" if lenient else "--strict-checksums",
            "-Dstyle.color=never",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={artifact.coordinates}",
            f"-DoutputDirectory={work}",
        ]
        log.info("fetching %s with Maven", artifact.coordinates)
        try:
            result = subprocess.run(
                command,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=30 * 60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DistributionError(f"could not run Maven: {exc}") from exc
        destination = work / artifact.filename
        if result.returncode != 0 or not destination.is_file():
            output = _ANSI_RE.sub("", result.stdout + result.stderr).strip()
            if "no checksums available" in output:
                raise DistributionError(_no_checksum_message(label, artifact.coordinates))
            tail = "\n".join(output.splitlines()[-15:])
            raise DistributionError(
                f"`mvn dependency:copy -Dartifact={artifact.coordinates}` failed "
                f"(exit {result.returncode}); is the version published? To bypass Maven and "
                f"download directly, set {USE_MAVEN_ENV}=0.\n{tail}"
            )
        if pinned is not None:
            verify_file(destination, pinned)
        return destination


def install_distribution(
    zip_path: Path,
    spec: ServerSpec,
    install_root: Path,
    plugin_zip: Path | None = None,
    customize: Callable[[Path], None] | None = None,
) -> Path:
    """Unpacks ``zip_path`` into ``install_root/<spec.id>`` once; returns the server home.

    The tree is made world-readable because the nodes may run as another user, and it is never
    written to afterwards: per-node config, data and logs live elsewhere, so one unpacked copy
    serves every node and every run. ``plugin_zip`` (the OpenSearch security plugin) is
    unpacked into ``plugins/`` of a copy of its own (``opensearch-2.19.4-security``), as
    ``opensearch-plugin install`` would lay it out, so the plain copy stays plain;
    ``customize`` likewise changes a copy of its own before it is put in place (the
    security-on Elasticsearch gets its analysis plugin so).
    """
    if plugin_zip is None and customize is None:
        spec = spec.release
    home = install_root / spec.id
    if home.is_dir():
        return home
    with file_lock(install_root / ".locks" / f"{spec.id}.install.lock"):
        if home.is_dir():
            return home
        install_root.mkdir(parents=True, exist_ok=True)
        os.chmod(install_root, 0o755)
        work = Path(tempfile.mkdtemp(prefix=f".{spec.id}-", dir=install_root))
        try:
            top = extract_zip(zip_path, work)
            if plugin_zip is not None:
                _add_plugin(plugin_zip, top)
            if customize is not None:
                customize(top)
            os.rename(top, home)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return home


def _add_plugin(plugin_zip: Path, home: Path) -> None:
    """Lay a plugin zip out as the plugin installer does: its files under
    ``plugins/<name>/``, its ``config/`` directory as ``config/<name>/``."""
    unpacked = home / ".plugin-unpack"
    unpacked.mkdir()
    with zipfile.ZipFile(plugin_zip) as archive:
        for info in archive.infolist():
            member = PurePosixPath(info.filename)
            if member.is_absolute() or ".." in member.parts or not member.parts:
                raise DistributionError(f"{plugin_zip.name}: unsafe member {info.filename!r}")
            target = unpacked.joinpath(*member.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
            mode = (info.external_attr >> 16) & 0o111
            os.chmod(target, 0o755 if mode else 0o644)
    descriptor = _descriptor(unpacked / "plugin-descriptor.properties", plugin_zip)
    name = descriptor.get("name", "")
    if not re.fullmatch(r"[a-z0-9\-_]+", name):
        raise DistributionError(f"{plugin_zip.name}: its descriptor names no plugin")
    missing = [
        needed
        for needed in _required_plugins(descriptor)
        if not (home / "plugins" / needed).is_dir() and not (home / "modules" / needed).is_dir()
    ]
    if missing:
        # Said here, not by a node that exits at start with "Missing plugin [...]".
        raise DistributionError(
            f"{plugin_zip.name} needs the plugin(s) {', '.join(missing)}, which the "
            f"integ-test distribution {home.name} does not have (its modules: "
            f"{', '.join(sorted(p.name for p in (home / 'modules').glob('*'))) or 'none'}) "
            "and which are not published on Maven Central as plugin zips; run security on "
            "with an OpenSearch whose security plugin needs none (opensearch:2.19.4+security)"
        )
    if (unpacked / "config").is_dir():
        os.rename(unpacked / "config", home / "config" / name)
    plugins = home / "plugins"
    plugins.mkdir(exist_ok=True)
    os.rename(unpacked, plugins / name)
    for directory in (home / "config" / name, plugins / name, plugins):
        if directory.is_dir():
            os.chmod(directory, 0o755)
            for sub in directory.rglob("*"):
                if sub.is_dir():
                    os.chmod(sub, 0o755)


def _descriptor(path: Path, plugin_zip: Path) -> dict[str, str]:
    """``plugin-descriptor.properties`` as keys and values (comments and blanks left out)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DistributionError(f"{plugin_zip.name} has no plugin descriptor: {exc}") from exc
    values: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith(("#", "!")):
            values[key.strip()] = value.strip()
    return values


def _required_plugins(descriptor: dict[str, str]) -> list[str]:
    """The plugins a plugin extends and cannot load without: ``extended.plugins`` entries
    not marked ``;optional=true`` (OpenSearch 3's security plugin needs ``rule-framework``)."""
    required = []
    for entry in descriptor.get("extended.plugins", "").split(","):
        name, *flags = (part.strip() for part in entry.split(";"))
        if name and "optional=true" not in flags:
            required.append(name)
    return required


def extract_zip(zip_path: Path, destination: Path) -> Path:
    """Extracts keeping the executable bits (zipfile drops modes) and refusing path tricks.

    Returns the archive's single top-level directory.
    """
    tops: set[str] = set()
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or not name.parts:
                raise DistributionError(f"{zip_path.name}: unsafe member path {info.filename!r}")
            tops.add(name.parts[0])
            target = destination.joinpath(*name.parts)
            mode = (info.external_attr >> 16) & 0o7777
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o755)
                continue
            if stat.S_ISLNK(mode):
                raise DistributionError(f"{zip_path.name}: unexpected symlink {info.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(target.parent, 0o755)
            with archive.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
            os.chmod(target, 0o755 if mode & 0o111 else 0o644)
    if len(tops) != 1:
        raise DistributionError(
            f"{zip_path.name}: expected one top-level directory, found {sorted(tops)}"
        )
    return destination / tops.pop()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, released even if the holder dies (the kernel drops it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_HEADERS = {"User-Agent": f"sturdysearch/{__version__} (test harness)"}


def _copy_stream(source: BinaryIO, out: BinaryIO, hasher: hashlib._Hash | None) -> None:
    while True:
        chunk = source.read(_CHUNK)
        if not chunk:
            return
        out.write(chunk)
        if hasher is not None:
            hasher.update(chunk)


def _no_checksum_message(spec: ServerSpec | str, where: str) -> str:
    return (
        f"{where} has no published .sha1/.sha512 and sturdysearch has no pinned digest for "
        f"{spec}, so its integrity cannot be verified. Use a pinned release (see "
        f"docs/compatibility.md), or set {ALLOW_UNVERIFIED_ENV}=1 to accept it after a zip "
        "integrity check only."
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Some filesystems refuse fsync on directories; the rename has happened either way.
    with contextlib.suppress(OSError):
        _fsync(path)
