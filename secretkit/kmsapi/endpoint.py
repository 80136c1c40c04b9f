"""KMS plugin endpoints, as the gRPC clients see them.

The parser itself is core code (:mod:`secretkit.core.encryption_config.endpoint`), so the
EncryptionConfiguration validator can use it too; it is re-exported here for the
adapters and the plugin, which therefore accept exactly the same endpoints.
"""

from __future__ import annotations

from secretkit.core.encryption_config.endpoint import (
    UNIX_PATH_MAX,
    UnixEndpoint,
    grpc_target,
    parse_endpoint,
)

__all__ = ["UNIX_PATH_MAX", "UnixEndpoint", "grpc_target", "parse_endpoint"]
