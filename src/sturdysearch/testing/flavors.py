"""How each server line differs: script names, environment variables, settings, Java support.

Everything version-dependent lives here so the launcher itself stays flavor-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

from sturdysearch.testing.errors import InvalidSpecError
from sturdysearch.testing.jdk import JavaRequirement
from sturdysearch.testing.specs import Flavor, ServerSpec


@dataclass(frozen=True)
class ServerProfile:
    """Launch facts for one server line (e.g. OpenSearch 2.x)."""

    spec: ServerSpec
    script: str
    config_file: str
    env_java_home: str
    env_path_conf: str
    env_java_opts: str
    env_tmpdir: str
    main_class: str
    cluster_manager_setting: str
    java: JavaRequirement

    @property
    def display_name(self) -> str:
        return f"{self.spec.flavor.display_name} {self.spec.version}"


# Java ranges follow each line's published support matrix, narrowed to what was tried here
# (docs/compatibility.md). OpenSearch 2.x and Elasticsearch 7.x still rely on the
# SecurityManager, which Java 24 removed, hence their upper bounds.
_OPENSEARCH_JAVA = {
    1: JavaRequirement(minimum=11, maximum=17, preferred=17),
    2: JavaRequirement(minimum=11, maximum=21, preferred=17),
    3: JavaRequirement(minimum=21, maximum=None, preferred=21),
}
_ELASTICSEARCH_JAVA = {
    7: JavaRequirement(minimum=11, maximum=17, preferred=17),
    8: JavaRequirement(minimum=17, maximum=21, preferred=17),
    9: JavaRequirement(minimum=21, maximum=None, preferred=21),
}


def profile_for(spec: ServerSpec) -> ServerProfile:
    """Returns the launch profile, refusing major versions nobody has tried."""
    if spec.flavor is Flavor.OPENSEARCH:
        java = _OPENSEARCH_JAVA.get(spec.major)
        if java is None:
            raise _unsupported(spec, _OPENSEARCH_JAVA)
        return ServerProfile(
            spec=spec,
            script="bin/opensearch",
            config_file="opensearch.yml",
            env_java_home="OPENSEARCH_JAVA_HOME",
            env_path_conf="OPENSEARCH_PATH_CONF",
            env_java_opts="OPENSEARCH_JAVA_OPTS",
            env_tmpdir="OPENSEARCH_TMPDIR",
            main_class="org.opensearch.bootstrap.OpenSearch",
            # 1.x predates the inclusive-language rename; 2.x still accepts the old name but
            # logs a deprecation warning on every start.
            cluster_manager_setting=(
                "cluster.initial_master_nodes"
                if spec.major < 2
                else "cluster.initial_cluster_manager_nodes"
            ),
            java=java,
        )
    java = _ELASTICSEARCH_JAVA.get(spec.major)
    if java is None:
        raise _unsupported(spec, _ELASTICSEARCH_JAVA)
    if spec.version_tuple[:2] >= (8, 18) and spec.major == 8:
        # 8.18 replaced the SecurityManager with entitlements, so newer JDKs work (8.19.21 was
        # tried on Java 25); 17 stays preferred.
        java = JavaRequirement(minimum=17, maximum=None, preferred=17)
    return ServerProfile(
        spec=spec,
        script="bin/elasticsearch",
        config_file="elasticsearch.yml",
        env_java_home="ES_JAVA_HOME",
        env_path_conf="ES_PATH_CONF",
        env_java_opts="ES_JAVA_OPTS",
        env_tmpdir="ES_TMPDIR",
        main_class="org.elasticsearch.bootstrap.Elasticsearch",
        cluster_manager_setting="cluster.initial_master_nodes",
        java=java,
    )


def _unsupported(spec: ServerSpec, table: dict[int, JavaRequirement]) -> InvalidSpecError:
    majors = ", ".join(f"{m}.x" for m in sorted(table))
    return InvalidSpecError(
        f"{spec.flavor.display_name} {spec.version} is not supported by the test harness "
        f"(supported: {majors}); see docs/compatibility.md"
    )
