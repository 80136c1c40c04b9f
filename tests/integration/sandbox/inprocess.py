"""An API stand-in served in the test process (plain HTTP) over the session's etcd."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from secretkit.sandbox import configs
from secretkit.sandbox.apiserver.server import ApiServer, ApiServerConfig
from tests.fixtures.servers import EtcdServer


@contextmanager
def inprocess_apiserver(etcd: EtcdServer, directory: Path, *, token: str, mode: str = "none",
                        etcd_prefix: str = "/registry") -> Iterator[ApiServer]:
    """Serve the stand-in with ``mode``'s EncryptionConfiguration until the block ends
    (no apiserver-internal keys: tests count what they write)."""
    config = directory / "enc.yaml"
    config.write_bytes(configs.encryption_config(mode))
    api = ApiServer(ApiServerConfig(etcd=etcd.client_config(), encryption_config=config,
                                    tokens=frozenset({token}), etcd_prefix=etcd_prefix,
                                    internal_keys_interval=None))
    with api.start():
        yield api
