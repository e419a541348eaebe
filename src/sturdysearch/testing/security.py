"""Security on: the certificates, users and settings of a secured local cluster.

A cluster started with ``security=True`` runs as production clusters do: TLS on the HTTP and
transport layers with certificates from a CA made here for the cluster, and passwords.

* Elasticsearch (7.17, 8, 9): x-pack security with the file realm. Users live in the node's
  ``users``/``users_roles`` files (bcrypt hashes), so no keystore or set-up tool has to run
  before the first start, and the same files work on every major.
* OpenSearch: the security plugin (installed into a separate copy of the distribution, see
  ``distributions.install_distribution``), its configuration initialised from the node's
  ``opensearch-security/*.yml`` on the first start (``allow_default_init_securityindex``),
  an admin certificate for the REST API, and the same users.

Every cluster gets fresh random passwords and a fresh CA: nothing here is a well-known demo
secret. :class:`SecurityInfo` is what a client needs to connect (and what ``cluster status
--json`` prints): the CA file, its SHA-256 fingerprint as Elasticsearch prints it at set-up
(colon-separated upper-case hex), the admin user and password, a user without index rights,
and the admin client certificate.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sturdysearch.testing.flavors import ServerProfile
from sturdysearch.testing.specs import Flavor

ADMIN_USER = "admin"
LIMITED_USER = "limited"
"""Authenticates, but has no index privileges: the 403 of a role without rights."""
CERTS_DIR = "certs"
_NODE_DN_CN = "sturdysearch-node"
_ADMIN_DN_CN = "sturdysearch-admin"
_ORG = "sturdysearch"
_UNIT = "test cluster"


@dataclass(frozen=True)
class SecurityInfo:
    """How to connect to a secured local cluster (all paths absolute, readable by anyone)."""

    ca_certs: str
    """The cluster CA's certificate (PEM): pass it as ``ca_certs=``."""
    ca_fingerprint: str
    """SHA-256 of the CA certificate, colon-separated upper-case hex, as Elasticsearch prints
    it at set-up ("CA fingerprint")."""
    node_fingerprint: str
    """SHA-256 of the nodes' own certificate (all nodes share one), for
    ``ssl_assert_fingerprint=``."""
    user: str
    password: str
    limited_user: str
    limited_password: str
    admin_cert: str
    """A client certificate (PEM) the OpenSearch security plugin treats as its admin
    certificate; Elasticsearch ignores it."""
    admin_key: str

    def client_options(self) -> dict[str, Any]:
        """Keyword options for ``Client``/``AsyncClient``: the CA and the admin user."""
        from sturdysearch.auth import BasicAuth

        return {"ca_certs": self.ca_certs, "auth": BasicAuth(self.user, self.password)}

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __repr__(self) -> str:
        return f"SecurityInfo(ca_certs={self.ca_certs!r}, user={self.user!r}, password=<redacted>)"


class ClusterSecurity:
    """The CA, node and admin certificates and the users of one secured cluster.

    Made once per cluster (``prepare`` writes the shared files into the cluster's working
    directory); ``node_files`` copies what a node reads into its config directory, and
    ``settings`` gives the node's security settings.
    """

    def __init__(self, profile: ServerProfile) -> None:
        import trustme

        self.profile = profile
        self._ca = trustme.CA(
            organization_name=_ORG, organization_unit_name=_UNIT, key_type=trustme.KeyType.RSA
        )
        self._node = self._ca.issue_cert(
            "127.0.0.1",
            "localhost",
            common_name=_NODE_DN_CN,
            organization_name=_ORG,
            organization_unit_name=_UNIT,
            key_type=trustme.KeyType.RSA,
        )
        self._admin = self._ca.issue_cert(
            # a SAN is needed: an empty one (trustme's default without identities) is invalid,
            # and Java refuses the whole certificate
            "admin.sturdysearch.test",
            common_name=_ADMIN_DN_CN,
            organization_name=_ORG,
            organization_unit_name=_UNIT,
            key_type=trustme.KeyType.RSA,
        )
        self.password = secrets.token_urlsafe(18)
        self.limited_password = secrets.token_urlsafe(18)
        self._info: SecurityInfo | None = None

    # -- the files a client needs ------------------------------------------------------------

    def prepare(self, directory: Path) -> SecurityInfo:
        """Write the CA and the admin client certificate under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_path = directory / "ca.crt"
        ca_path.write_bytes(self._ca.cert_pem.bytes())
        admin_cert = directory / "admin.crt"
        admin_key = directory / "admin.key"
        admin_cert.write_bytes(self._admin.cert_chain_pems[0].bytes())
        admin_key.write_bytes(_pkcs8(self._admin.private_key_pem.bytes()))
        for path in (ca_path, admin_cert, admin_key):
            path.chmod(0o644)
        self._info = SecurityInfo(
            ca_certs=str(ca_path),
            ca_fingerprint=_colon_fingerprint(self._ca.cert_pem.bytes()),
            node_fingerprint=_colon_fingerprint(self._node.cert_chain_pems[0].bytes()),
            user=ADMIN_USER,
            password=self.password,
            limited_user=LIMITED_USER,
            limited_password=self.limited_password,
            admin_cert=str(admin_cert),
            admin_key=str(admin_key),
        )
        return self._info

    @property
    def info(self) -> SecurityInfo:
        assert self._info is not None, "prepare() first"
        return self._info

    def ssl_context(self) -> Any:
        """A client context trusting the cluster CA, for the harness's own health polling."""
        import ssl

        ctx = ssl.create_default_context(cadata=self._ca.cert_pem.bytes().decode("ascii"))
        return ctx

    def basic_header(self) -> str:
        import base64

        token = base64.b64encode(f"{ADMIN_USER}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"

    # -- one node ----------------------------------------------------------------------------

    def write_node_files(self, config_dir: Path) -> None:
        """Certificates and users in the node's config directory, where the servers look."""
        certs = config_dir / CERTS_DIR
        certs.mkdir(parents=True, exist_ok=True)
        # The node presents its certificate and the CA, so a client pinning the CA's
        # fingerprint (what Elasticsearch prints) finds it in the chain.
        chain = b"".join(p.bytes() for p in self._node.cert_chain_pems) + self._ca.cert_pem.bytes()
        (certs / "node.crt").write_bytes(chain)
        (certs / "node.key").write_bytes(_pkcs8(self._node.private_key_pem.bytes()))
        (certs / "ca.crt").write_bytes(self._ca.cert_pem.bytes())
        if self.profile.spec.flavor is Flavor.ELASTICSEARCH:
            self._write_file_realm(config_dir)
        else:
            self._write_security_plugin_config(config_dir)

    def _write_file_realm(self, config_dir: Path) -> None:
        (config_dir / "users").write_text(
            f"{ADMIN_USER}:{_bcrypt(self.password)}\n"
            f"{LIMITED_USER}:{_bcrypt(self.limited_password)}\n",
            encoding="utf-8",
        )
        (config_dir / "users_roles").write_text(
            f"superuser:{ADMIN_USER}\nsturdy_no_index_rights:{LIMITED_USER}\n", encoding="utf-8"
        )
        (config_dir / "roles.yml").write_text(
            'sturdy_no_index_rights:\n  cluster: ["monitor"]\n  indices: []\n', encoding="utf-8"
        )

    def _write_security_plugin_config(self, config_dir: Path) -> None:
        security = config_dir / "opensearch-security"
        security.mkdir(parents=True, exist_ok=True)
        users = {
            "_meta": {"type": "internalusers", "config_version": 2},
            ADMIN_USER: {
                "hash": _bcrypt(self.password),
                "reserved": True,
                "backend_roles": ["admin"],
                "description": "sturdysearch test cluster admin",
            },
            LIMITED_USER: {
                "hash": _bcrypt(self.limited_password),
                "reserved": False,
                "backend_roles": [],
                "description": "authenticates; no index permissions",
            },
        }
        # JSON is YAML: no YAML writer needed.
        (security / "internal_users.yml").write_text(json.dumps(users, indent=2), encoding="utf-8")

    def settings(self) -> dict[str, object]:
        """The node's security settings (paths relative to its config directory)."""
        cert, key, ca = (f"{CERTS_DIR}/node.crt", f"{CERTS_DIR}/node.key", f"{CERTS_DIR}/ca.crt")
        if self.profile.spec.flavor is Flavor.ELASTICSEARCH:
            settings: dict[str, object] = {
                "xpack.security.enabled": True,
                "xpack.security.http.ssl.enabled": True,
                "xpack.security.http.ssl.key": key,
                "xpack.security.http.ssl.certificate": cert,
                "xpack.security.http.ssl.certificate_authorities": [ca],
                "xpack.security.transport.ssl.enabled": True,
                "xpack.security.transport.ssl.verification_mode": "certificate",
                "xpack.security.transport.ssl.key": key,
                "xpack.security.transport.ssl.certificate": cert,
                "xpack.security.transport.ssl.certificate_authorities": [ca],
                "xpack.security.authc.api_key.enabled": True,
            }
            if self.profile.spec.major >= 8:
                settings["xpack.security.enrollment.enabled"] = False
            return settings
        node_dn = self._node_dn()
        return {
            "plugins.security.ssl.transport.pemcert_filepath": cert,
            "plugins.security.ssl.transport.pemkey_filepath": key,
            "plugins.security.ssl.transport.pemtrustedcas_filepath": ca,
            "plugins.security.ssl.transport.enforce_hostname_verification": False,
            "plugins.security.ssl.http.enabled": True,
            "plugins.security.ssl.http.pemcert_filepath": cert,
            "plugins.security.ssl.http.pemkey_filepath": key,
            "plugins.security.ssl.http.pemtrustedcas_filepath": ca,
            "plugins.security.ssl.http.clientauth_mode": "OPTIONAL",
            "plugins.security.allow_default_init_securityindex": True,
            "plugins.security.authcz.admin_dn": [self._admin_dn()],
            "plugins.security.nodes_dn": [node_dn],
            "plugins.security.audit.type": "noop",
            "plugins.security.restapi.roles_enabled": ["all_access", "security_rest_api_access"],
            "plugins.security.system_indices.enabled": True,
        }

    def _node_dn(self) -> str:
        return _subject_dn(self._node.cert_chain_pems[0].bytes())

    def _admin_dn(self) -> str:
        return _subject_dn(self._admin.cert_chain_pems[0].bytes())


def _subject_dn(pem: bytes) -> str:
    """The certificate's subject as the security plugin compares it (RFC 4514, CN first)."""
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def _pkcs8(key_pem: bytes) -> bytes:
    """The key as PKCS#8 PEM (``BEGIN PRIVATE KEY``): the OpenSearch security plugin reads no
    other form, and Elasticsearch reads it too."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _bcrypt(password: str) -> str:
    """A bcrypt hash in the ``$2a$`` spelling both servers' verifiers accept (``$2b$`` differs
    only for passwords over 255 bytes, which these are not)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode("ascii")
    return "$2a$" + hashed[4:]


def _colon_fingerprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return hashlib.sha256(der).digest().hex(":").upper()
