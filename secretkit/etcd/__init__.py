"""etcd v3 adapter: connection settings, a paged/pinned range reader, CAS writes, snapshots.

Built on our own generated stubs (``secretkit._proto.etcd``), not the ``etcd3``
package; see docs/adr/0001-etcd-grpc-stubs.md.
"""

from secretkit.etcd.client import EtcdClient, grpc_target
from secretkit.etcd.config import DEFAULT_ENDPOINT, EtcdConfig, parse_duration
from secretkit.etcd.errors import (
    EtcdCompactedError,
    EtcdResponseTooLargeError,
    EtcdUnavailableError,
)
from secretkit.etcd.keys import prefix_range_end
from secretkit.etcd.model import EtcdStatus, KeyValue

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
