"""Start and stop the real servers secretkit talks to (etcd, OpenBao, moto) on 127.0.0.1.

Used by the pytest fixtures and by the sandbox, in four parts:

* :mod:`.processes`: spawn in a new session, readiness polling, stop by PID, free
  ports, the loopback HTTP GET every probe uses;
* :mod:`.binaries`: where the pip-installed server binaries are;
* :mod:`.pki`: a throw-away CA with server and client certificates;
* :mod:`.launchers`: etcd, ``bao server -dev`` and ``moto_server``.

Setting up transit on OpenBao is Vault administration: see
:mod:`secretkit.backends.vault_admin`.
"""

from secretkit.sandbox.servers.binaries import BINARY_PACKAGES, find_binary
from secretkit.sandbox.servers.launchers import EtcdTLS, start_etcd, start_moto, start_openbao_dev
from secretkit.sandbox.servers.pki import TestPKI, generate_test_pki
from secretkit.sandbox.servers.processes import (
    LOCALHOST,
    ManagedProcess,
    ServerStartError,
    child_env,
    free_port,
    loopback_get,
    spawn,
    wait_for_tcp,
    wait_ready,
)

__all__ = [
    "BINARY_PACKAGES",
    "LOCALHOST",
    "EtcdTLS",
    "ManagedProcess",
    "ServerStartError",
    "TestPKI",
    "child_env",
    "find_binary",
    "free_port",
    "generate_test_pki",
    "loopback_get",
    "spawn",
    "start_etcd",
    "start_moto",
    "start_openbao_dev",
    "wait_for_tcp",
    "wait_ready",
]
