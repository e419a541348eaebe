"""The analysis components a security-on Elasticsearch integ-test-zip lacks, built on the spot.

Elasticsearch's security indices (API keys, service tokens, OAuth2 tokens) are created with an
``email`` analyzer made of the ``uax_url_email`` tokenizer and the ``pattern_capture``,
``lowercase`` and ``unique`` filters, all from the ``analysis-common`` module, which the
integ-test-zip (the only Elasticsearch build on Maven Central) does not ship: every API-key call
then fails with ``Unknown filter type [pattern_capture]``. ``java/SturdyAnalysisPlugin.java``
registers those names over the Lucene classes the build does carry. It is compiled here with a
local JDK against the distribution's own jars (nothing is downloaded) and installed as a plugin
into the security-on copy of the distribution only, so plain test runs use the build untouched.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from sturdysearch.testing.errors import DistributionError
from sturdysearch.testing.jdk import JdkInstall, discover_jdks

PLUGIN_NAME = "sturdy-analysis"
_CLASS = "org.sturdysearch.testing.SturdyAnalysisPlugin"
_SOURCE = "SturdyAnalysisPlugin.java"
# Lucene 8 (Elasticsearch 7) kept the e-mail tokenizer in the standard package.
_LUCENE8_IMPORTS = {
    "org.apache.lucene.analysis.email.UAX29URLEmailTokenizer": (
        "org.apache.lucene.analysis.standard.UAX29URLEmailTokenizer"
    ),
}


def install_analysis_plugin(home: Path, es_version: str) -> None:
    """Compile and install the plugin into the distribution at ``home``."""
    lucene = _lucene_major(home / "lib")
    release = _java_release(home / "lib", es_version)
    javac = _javac_for(release)
    source = resources.files("sturdysearch.testing").joinpath(f"java/{_SOURCE}").read_text("utf-8")
    if lucene < 9:
        for new, old in _LUCENE8_IMPORTS.items():
            source = source.replace(new, old)
    with tempfile.TemporaryDirectory(prefix="sturdy-analysis-") as work:
        src = Path(work) / "src" / _SOURCE
        src.parent.mkdir(parents=True)
        src.write_text(source, encoding="utf-8")
        classes = Path(work) / "classes"
        command = [
            str(javac),
            "--release",
            str(release),
            "-nowarn",
            "-cp",
            f"{home / 'lib'}/*",
            "-d",
            str(classes),
            str(src),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            raise DistributionError(
                f"could not compile the analysis plugin for Elasticsearch {es_version} with "
                f"{javac}:\n{result.stdout}{result.stderr}"
            )
        target = home / "plugins" / PLUGIN_NAME
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target / f"{PLUGIN_NAME}.jar", "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
    (target / "plugin-descriptor.properties").write_text(
        "description=analysis components of the security indices (sturdysearch test harness)\n"
        "version=1.0.0\n"
        f"name={PLUGIN_NAME}\n"
        f"classname={_CLASS}\n"
        f"java.version={release}\n"
        f"elasticsearch.version={es_version}\n",
        encoding="utf-8",
    )
    for path in (target, *target.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _lucene_major(lib: Path) -> int:
    for jar in lib.glob("lucene-core-*.jar"):
        match = re.match(r"lucene-core-(\d+)\.", jar.name)
        if match:
            return int(match.group(1))
    raise DistributionError(f"no lucene-core jar in {lib}")


def _java_release(lib: Path, es_version: str) -> int:
    """The class-file level to compile for: the server jar's own (javac refuses to read jars
    newer than its ``--release``)."""
    jars = list(lib.glob(f"elasticsearch-{es_version}.jar"))
    if not jars:
        raise DistributionError(f"no elasticsearch-{es_version}.jar in {lib}")
    with zipfile.ZipFile(jars[0]) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".class"))
        header = archive.read(name)[:8]
    return max(int.from_bytes(header[6:8], "big") - 44, 11)


def _javac_for(release: int) -> Path:
    candidates: list[JdkInstall] = [
        jdk for jdk in discover_jdks() if jdk.major >= release and (jdk.home / "bin/javac").exists()
    ]
    if not candidates:
        raise DistributionError(
            f"compiling the security-on Elasticsearch analysis plugin needs a JDK {release}+ with "
            "javac (e.g. apt-get install openjdk-17-jdk-headless, or a Temurin JDK in /usr/lib/jvm)"
        )
    best = min(candidates, key=lambda jdk: jdk.major)
    return best.home / "bin" / "javac"
