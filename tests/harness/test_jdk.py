"""Choosing a JDK from fake installations (directories with a `release` file and bin/java)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sturdysearch.testing.errors import JavaNotFoundError
from sturdysearch.testing.jdk import (
    JavaRequirement,
    JdkInstall,
    discover_jdks,
    java_major,
    parse_release_file,
    read_jdk,
    select_jdk,
)


def make_jdk(root: Path, name: str, version: str, implementor: str = "Test Vendor") -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    (home / "release").write_text(
        f'IMPLEMENTOR="{implementor}"\nJAVA_VERSION="{version}"\nOS_NAME="Linux"\n'
    )
    return home


def jdk(major: int) -> JdkInstall:
    return JdkInstall(home=Path(f"/jvm/{major}"), major=major, version=f"{major}.0.1")


def test_parse_release_file() -> None:
    text = 'IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="25.0.3"\nMODULES="java.base java.xml"\n'
    values = parse_release_file(text)
    assert values["JAVA_VERSION"] == "25.0.3"
    assert values["MODULES"] == "java.base java.xml"


@pytest.mark.parametrize(
    ("version", "major"), [("17.0.15", 17), ("1.8.0_392", 8), ("25", 25), ("21-ea", 21)]
)
def test_java_major(version: str, major: int) -> None:
    assert java_major(version) == major


def test_read_jdk_requires_release_and_java(tmp_path: Path) -> None:
    home = make_jdk(tmp_path, "jdk-17", "17.0.15")
    found = read_jdk(home)
    assert found is not None and found.major == 17 and found.implementor == "Test Vendor"
    assert found.modules == frozenset()  # no MODULES line: unknown, treated as complete
    docs_only = tmp_path / "openjdk-17"
    docs_only.mkdir()
    assert read_jdk(docs_only) is None
    (home / "bin" / "java").chmod(0o644)
    assert read_jdk(home) is None


def test_discover_prefers_env_and_real_names_over_aliases(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    jvm.mkdir()
    make_jdk(jvm, "java-17-openjdk-amd64", "17.0.15")
    os.symlink(jvm / "java-17-openjdk-amd64", jvm / "java-1.17.0-openjdk-amd64")
    make_jdk(jvm, "temurin-25-jdk-amd64", "25.0.3")
    (jvm / "openjdk-17").mkdir()
    elsewhere = make_jdk(tmp_path / "opt", "jdk-21", "21.0.4")
    found = discover_jdks([jvm], env={"JAVA_HOME": str(elsewhere)})
    assert [(j.home.name, j.major) for j in found] == [
        ("jdk-21", 21),
        ("java-17-openjdk-amd64", 17),
        ("temurin-25-jdk-amd64", 25),
    ]


@pytest.mark.parametrize(
    ("requirement", "available", "chosen"),
    [
        # OpenSearch 2.x on this machine's set (17 and 25): 25 is too new (no SecurityManager).
        (JavaRequirement(11, 21, 17), [25, 17], 17),
        # OpenSearch 3.x / Elasticsearch 9.x: 21+ with 17 and 25 available.
        (JavaRequirement(21, None, 21), [17, 25], 25),
        (JavaRequirement(21, None, 21), [25, 21, 17], 21),
        # Prefer newer over older at equal distance from the preferred major.
        (JavaRequirement(11, 21, 17), [11, 21], 21),
        (JavaRequirement(11, 17, 17), [11], 11),
    ],
)
def test_select(requirement: JavaRequirement, available: list[int], chosen: int) -> None:
    picked = select_jdk(requirement, [jdk(m) for m in available], server="X")
    assert picked.major == chosen


def test_select_ties_go_to_first_candidate() -> None:
    first = JdkInstall(Path("/a"), 17, "17.0.1")
    second = JdkInstall(Path("/b"), 17, "17.0.9")
    assert select_jdk(JavaRequirement(17, 21, 17), [first, second], server="X") is first


def test_missing_java_says_which_major_and_how_to_get_it() -> None:
    with pytest.raises(JavaNotFoundError) as info:
        select_jdk(JavaRequirement(21, None, 21), [jdk(17)], server="Elasticsearch 9.5.4")
    message = str(info.value)
    assert "Elasticsearch 9.5.4 needs Java 21 or newer" in message
    assert "Java 17.0.1 at /jvm/17" in message
    assert "openjdk-21-jdk-headless" in message
    assert "STURDY_JAVA_HOME" in message


def test_requirement_descriptions() -> None:
    assert JavaRequirement(21, None, 21).describe() == "Java 21 or newer"
    assert JavaRequirement(11, 17, 17).describe() == "Java 11 to 17"
    assert JavaRequirement(17, 17, 17).describe() == "Java 17"
