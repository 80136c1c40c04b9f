"""A Kubernetes-API stand-in for Secrets, ConfigMaps, Leases and ControllerRevisions
over a real etcd.

It stores objects exactly as kube-apiserver does (``k8s\\x00`` protobuf envelope,
EncryptionConfiguration prefix chain, KMS v2 seed life cycle, the apiserver's own
plaintext keys) and answers discovery, health and metrics in the shapes captured from a
real kube-apiserver, so that every secretkit operation can be rehearsed on one
machine. It is a stand-in for the parts of the API that matter to encryption at
rest, never a Kubernetes replacement (docs/sandbox.md).
"""

from secretkit.sandbox.apiserver.encryption import EncryptionOptions, EncryptionState
from secretkit.sandbox.apiserver.server import (
    ApiServer,
    ApiServerConfig,
    parse_bind,
    read_token_file,
)

__all__ = [
    "ApiServer",
    "ApiServerConfig",
    "EncryptionOptions",
    "EncryptionState",
    "parse_bind",
    "read_token_file",
]
