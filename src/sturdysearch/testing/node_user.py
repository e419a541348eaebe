"""The unprivileged account the nodes run as.

OpenSearch and Elasticsearch refuse to start as root, and this project's machines and CI run as
root. So when we are root, nodes run as a dedicated system account (created on first use);
otherwise they simply run as the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sturdysearch.testing.errors import NodeUserError

DEFAULT_NODE_USER = "sturdysearch"
NODE_USER_ENV = "STURDY_NODE_USER"


@dataclass(frozen=True)
class NodeUser:
    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def own(self, path: Path) -> None:
        """Gives this user ``path`` and everything below it (a no-op when it is us)."""
        if self.is_current:
            return
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for entry in (*dirs, *files):
                os.chown(os.path.join(root, entry), self.uid, self.gid, follow_symlinks=False)


def resolve_node_user(env: Mapping[str, str] | None = None) -> NodeUser:
    """Returns the account to run nodes as, creating the system account if needed."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return NodeUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    environ = os.environ if env is None else env
    name = environ.get(NODE_USER_ENV) or DEFAULT_NODE_USER
    entry = _lookup(name) or _create_system_user(name)
    if entry.pw_uid == 0:
        raise NodeUserError(
            f"{NODE_USER_ENV}={name} is a root account; the servers refuse to run as root. "
            "Name an unprivileged account instead."
        )
    return NodeUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _lookup(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _create_system_user(name: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "sturdysearch test nodes",
        name,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        error = result.stderr.strip()
    except OSError as exc:
        error = str(exc)
    # Another process may have created it concurrently; that is success too.
    entry = _lookup(name)
    if entry is None:
        raise NodeUserError(
            f"could not create the system user {name!r} that test nodes run as ({error}). "
            f"Create it yourself (`useradd --system --user-group {name}`) or set "
            f"{NODE_USER_ENV} to an existing unprivileged account."
        )
    return entry
