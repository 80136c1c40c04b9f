"""etcd v3 adapter: one interface, a gRPC client, an in-memory store, a snapshot reader.

:mod:`secretkit.etcd.interface` is the contract (the :class:`KeyValue` record and the
reader, watchable reader and store roles); :class:`EtcdClient` serves it over our own
generated stubs (``secretkit._proto.etcd``, not the ``etcd3`` package; see
docs/adr/0001-etcd-grpc-stubs.md), :class:`MemoryEtcd` in memory (tests), and
:class:`EtcdSnapshot` reads a snapshot file.

The names below are loaded on first use, so that the pure modules of this package
(:mod:`secretkit.core.layout`, the key layout table; the interface) can be imported
without gRPC.
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
    from secretkit.etcd.interface import (
        EtcdReader,
        EtcdStore,
        KeyValue,
        WatchableReader,
    )
    from secretkit.etcd.keys import prefix_range_end
    from secretkit.etcd.memory import ForwardingEtcd, MemoryEtcd
    from secretkit.etcd.model import EtcdStatus, KeyValueRecord
    from secretkit.etcd.snapshot import EtcdSnapshot

_WHERE = {
    "EtcdClient": "client",
    "grpc_target": "client",
    "DEFAULT_ENDPOINT": "config",
    "EtcdConfig": "config",
    "parse_duration": "config",
    "EtcdCompactedError": "errors",
    "EtcdResponseTooLargeError": "errors",
    "EtcdUnavailableError": "errors",
    "EtcdReader": "interface",
    "EtcdStore": "interface",
    "KeyValue": "interface",
    "WatchableReader": "interface",
    "prefix_range_end": "keys",
    "ForwardingEtcd": "memory",
    "MemoryEtcd": "memory",
    "EtcdStatus": "model",
    "KeyValueRecord": "model",
    "EtcdSnapshot": "snapshot",
}

__all__ = [
    "DEFAULT_ENDPOINT",
    "EtcdClient",
    "EtcdCompactedError",
    "EtcdConfig",
    "EtcdReader",
    "EtcdResponseTooLargeError",
    "EtcdSnapshot",
    "EtcdStatus",
    "EtcdStore",
    "EtcdUnavailableError",
    "ForwardingEtcd",
    "KeyValue",
    "KeyValueRecord",
    "MemoryEtcd",
    "WatchableReader",
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
