"""Fixtures of the audit integration tests: etcd filled with upstream vectors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from secretkit.etcd import EtcdClient
from tests.fixtures.servers import EtcdServer
from tests.unit.audit.helpers import all_providers_config, stored, vector

#: one upstream vector per etcd key (AAD binds aesgcm and kms v2 values to their key)
UNIQUE_KEY_VECTORS = (
    "identity-01",  # configmaps/kube-system/empty-cm: plaintext configmap
    "aescbc-05",  # secrets/default/block16
    "aesgcm-13",  # secrets/default/short (gcm-key-2: stale under the all-providers reader)
    "aesgcm-11",  # secrets/default/db-password
    "kms-v2-23",  # configmaps/default/big-config
    "secretbox-19",  # configmaps/kube-system/cfg
    "aescbc-08",  # configmaps/default/one-byte
    "neg-aesgcm-31",  # secrets/kube-system/db-password: wrong etcd key -> undecryptable
    "neg-aescbc-35",  # secrets/kube-system/stolen: aescbc ignores AAD -> readable
    "neg-kms-v2-41",  # secrets/default/db-password-copy: wrong key -> undecryptable
)


def load_vectors(client: EtcdClient, ids: Sequence[str]) -> None:
    """Put each vector's exact stored bytes at its etcd key."""
    for vector_id in ids:
        v = vector(vector_id)
        client.put(v["etcd_key"].encode(), stored(v))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The vectors' all-providers reader as a 0600 config file."""
    path = tmp_path / "encryption-config.yaml"
    path.write_bytes(all_providers_config())
    path.chmod(0o600)
    return path


def run_cli(
    args: Sequence[str], server: EtcdServer | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``secretkit`` in a child process (real exit codes, real stdout/stderr)."""
    argv = [sys.executable, "-m", "secretkit.cli.main", *args]
    if server is not None:
        argv += ["--endpoints", server.endpoint]
        for flag, value in (
            ("--cacert", server.ca_cert),
            ("--cert", server.client_cert),
            ("--key", server.client_key),
        ):
            if value is not None:
                argv += [flag, str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
