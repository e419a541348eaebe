"""Finding an installed JDK that a given server version can run on.

The integ-test-zip distributions bundle no JDK, so the harness has to pick one from the machine.
It reads each JDK's ``release`` file instead of running ``java -version``: that is instant and
works the same for every vendor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sturdysearch.testing.errors import JavaNotFoundError

DEFAULT_JDK_DIRS: tuple[Path, ...] = (Path("/usr/lib/jvm"), Path("/usr/lib64/jvm"))
JAVA_HOME_ENV_VARS: tuple[str, ...] = ("STURDY_JAVA_HOME", "JAVA_HOME")


@dataclass(frozen=True)
class JavaRequirement:
    """The Java majors a server release supports, and the one it was mostly tested with.

    ``maximum`` is None for lines that have no known upper bound yet.
    """

    minimum: int
    maximum: int | None
    preferred: int

    def accepts(self, major: int) -> bool:
        return major >= self.minimum and (self.maximum is None or major <= self.maximum)

    def describe(self) -> str:
        if self.maximum is None:
            return f"Java {self.minimum} or newer"
        if self.maximum == self.minimum:
            return f"Java {self.minimum}"
        return f"Java {self.minimum} to {self.maximum}"


@dataclass(frozen=True)
class JdkInstall:
    """One JDK on disk, as described by its ``release`` file."""

    home: Path
    major: int
    version: str
    implementor: str = ""
    # From the release file's MODULES; a full JDK lists ~70, a jlink-ed runtime fewer.
    modules: frozenset[str] = frozenset()

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"

    def __str__(self) -> str:
        vendor = f" ({self.implementor})" if self.implementor else ""
        return f"Java {self.version}{vendor} at {self.home}"


def parse_release_file(text: str) -> dict[str, str]:
    """Parses the ``KEY="value"`` lines of a JDK ``release`` file."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r'^\s*([A-Z_][A-Z0-9_]*)\s*=\s*"?(.*?)"?\s*$', line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def java_major(version: str) -> int:
    """Maps a ``JAVA_VERSION`` to its feature release: ``1.8.0_392`` is 8, ``17.0.15`` is 17."""
    match = re.match(r"^(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        raise ValueError(f"unrecognised Java version {version!r}")
    first = int(match.group(1))
    if first == 1 and match.group(2) is not None:
        return int(match.group(2))
    return first


def read_jdk(home: Path) -> JdkInstall | None:
    """Describes the JDK at ``home``, or returns None if it is not a usable JDK.

    A directory counts only with both an executable ``bin/java`` and a parseable ``release``
    file; Debian's ``/usr/lib/jvm/openjdk-17`` (docs only) and broken symlinks are skipped.
    """
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not os.access(home / "bin" / "java", os.X_OK):
        return None
    values = parse_release_file(text)
    version = values.get("JAVA_VERSION", "")
    try:
        major = java_major(version)
    except ValueError:
        return None
    return JdkInstall(
        home=home,
        major=major,
        version=version,
        implementor=values.get("IMPLEMENTOR", ""),
        modules=frozenset(values.get("MODULES", "").split()),
    )


def discover_jdks(
    search_dirs: Iterable[Path] = DEFAULT_JDK_DIRS,
    env: Mapping[str, str] | None = None,
) -> list[JdkInstall]:
    """Lists the JDKs on this machine: those named by the environment first, then by directory.

    Symlinked aliases (``java-1.17.0-openjdk-amd64`` -> ``java-17-openjdk-amd64``) are reported
    once, preferably under the real directory's name.
    """
    environ = os.environ if env is None else env
    homes: list[Path] = [Path(environ[v]) for v in JAVA_HOME_ENV_VARS if environ.get(v)]
    for directory in search_dirs:
        try:
            # Real directories before symlinked aliases, so a JDK is reported by its own name.
            entries = [p for p in directory.iterdir() if p.is_dir()]
            homes.extend(sorted(entries, key=lambda p: (p.is_symlink(), p.name)))
        except OSError:
            continue
    found: list[JdkInstall] = []
    seen: set[Path] = set()
    for home in homes:
        try:
            real = home.resolve()
        except OSError:
            continue
        if real in seen:
            continue
        jdk = read_jdk(home)
        if jdk is not None:
            seen.add(real)
            found.append(jdk)
    return found


def select_jdk(
    requirement: JavaRequirement, candidates: Iterable[JdkInstall], *, server: str
) -> JdkInstall:
    """Picks the candidate closest to the preferred major, preferring newer over older.

    Closest-to-preferred (rather than newest) because the preferred major is the one the server
    line is tested with upstream; a much newer JDK tends to surface deprecation noise or removed
    APIs (e.g. the SecurityManager, gone in Java 24, which OpenSearch 2.x needs). The order of
    ``candidates`` breaks ties, so a JDK named by JAVA_HOME wins over an equal one found by scan.
    """
    pool = list(candidates)
    fitting = [jdk for jdk in pool if requirement.accepts(jdk.major)]
    if fitting:
        return min(
            fitting,
            key=lambda jdk: (
                jdk.major < requirement.preferred,
                abs(jdk.major - requirement.preferred),
            ),
        )
    raise JavaNotFoundError(missing_java_message(requirement, pool, server=server))


def missing_java_message(
    requirement: JavaRequirement, found: Iterable[JdkInstall], *, server: str
) -> str:
    seen = "; ".join(str(jdk) for jdk in found) or "none"
    want = requirement.preferred
    return (
        f"{server} needs {requirement.describe()}, but no such JDK is installed "
        f"(found: {seen}). Install Java {want} - e.g. `apt-get install "
        f"openjdk-{want}-jdk-headless` where your distribution has it, or an Eclipse Temurin "
        f"{want} package - under /usr/lib/jvm, or point STURDY_JAVA_HOME (or JAVA_HOME) at "
        "its home directory."
    )
