"""Kubernetes API adapter: kubectl-like configuration over the official client, raw
requests over a lean HTTP/1.1 keep-alive pool (``http1``), and resource discovery.

The ``kubernetes`` package is imported only when a :class:`KubeClient` is created.
"""

from secretkit.kube.client import (
    ApiResponse,
    KubeClient,
    KubeConnectOptions,
    collection_path,
    object_path,
)
from secretkit.kube.discovery import ApiResource, discover, resolve

__all__ = [
    "ApiResource",
    "ApiResponse",
    "KubeClient",
    "KubeConnectOptions",
    "collection_path",
    "discover",
    "object_path",
    "resolve",
]
