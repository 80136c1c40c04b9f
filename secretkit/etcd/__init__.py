"""etcd v3 adapter: connection settings, a paged/pinned range reader, CAS writes, snapshots.

Built on our own generated stubs (``secretkit._proto.etcd``), not the ``etcd3``
package; see docs/adr/0001-etcd-grpc-stubs.md.

The names below are loaded on first use, so that the pure modules of this package
(:mod:`secretkit.etcd.layout`, the key layout table) can be imported without gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secretkit.etcd.client import EtcdClient, grpc_target
    from secretkit.etcd.config import DEFAULT_ENDPOINT, EtcdConfig, parse_duration
    from secretkit.etcd.errors import (
        EtcdCompactedError,
        EtcdResponseTooLargeError,
        EtcdUnavailableError,
    )
    from secretkit.etcd.keys import prefix_range_end
    from secretkit.etcd.model import EtcdStatus, KeyValue

_WHERE = {
    "EtcdClient": "client",
    "grpc_target": "client",
    "DEFAULT_ENDPOINT": "config",
    "EtcdConfig": "config",
    "parse_duration": "config",
    "EtcdCompactedError": "errors",
    "EtcdResponseTooLargeError": "errors",
    "EtcdUnavailableError": "errors",
    "prefix_range_end": "keys",
    "EtcdStatus": "model",
    "KeyValue": "model",
}

__all__ = [
    "DEFAULT_ENDPOINT",
    "EtcdClient",
    "EtcdCompactedError",
    "EtcdConfig",
    "EtcdResponseTooLargeError",
    "EtcdStatus",
    "EtcdUnavailableError",
    "KeyValue",
    "grpc_target",
    "parse_duration",
    "prefix_range_end",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'secretkit.etcd' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"secretkit.etcd.{module}"), name)
    globals()[name] = value
    return value
