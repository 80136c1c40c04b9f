"""The files a sandbox writes: EncryptionConfigurations, kubeconfig, backends file.

Every config covers ``secrets`` and ``configmaps`` and keeps ``identity`` last so
data written before encryption was switched on stays readable (the usual first
step of enabling encryption on a real cluster).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from secretkit.core.encryption_config.endpoint import UnixEndpoint
from secretkit.errors import UsageError

#: the kms v2 provider name the sandbox configures (also the backends-file entry)
KMS_PROVIDER_NAME = "sandbox-kms"
#: ``--encryption`` choices of ``secretkit sandbox up``
ENCRYPTION_MODES = ("none", "kms", "aesgcm", "aescbc", "secretbox")
RESOURCES = ("secrets", "configmaps")


def plugin_endpoint(socket_path: str | Path) -> str:
    """The ``unix://`` endpoint of the sandbox plugin's socket at ``socket_path``.

    Built by the one endpoint module rather than ``f"unix://{path}"``: kube-apiserver
    (and our parser) percent-decode the path and cut it at ``?`` or ``#``, so a
    directory holding one of ``%?#`` must be escaped to name the same socket.
    """
    return UnixEndpoint(path=Path(socket_path)).endpoint


def encryption_config(mode: str, *, kms_endpoint: str | None = None,
                      key: bytes | None = None) -> bytes:
    """Build an EncryptionConfiguration (YAML bytes) for one ``--encryption`` mode.

    ``kms`` needs ``kms_endpoint`` (see :func:`plugin_endpoint`); local-key modes draw a fresh
    32-byte key unless ``key`` is given.
    """
    providers: list[dict[str, Any]]
    if mode == "none":
        providers = [{"identity": {}}]
    elif mode == "kms":
        if not kms_endpoint:
            raise UsageError("the kms mode needs the plugin socket endpoint")
        providers = [
            {"kms": {"apiVersion": "v2", "name": KMS_PROVIDER_NAME, "endpoint": kms_endpoint,
                     "timeout": "3s"}},
            {"identity": {}},
        ]
    elif mode in ("aesgcm", "aescbc", "secretbox"):
        secret = base64.b64encode(key or os.urandom(32)).decode()
        providers = [{mode: {"keys": [{"name": "key1", "secret": secret}]}}, {"identity": {}}]
    else:
        raise UsageError(f"unknown encryption mode {mode!r}",
                         hint="choose one of: " + ", ".join(ENCRYPTION_MODES))
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": list(RESOURCES), "providers": providers}],
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def kubeconfig(server: str, token: str, ca_file: Path, *, name: str = "secretkit-sandbox"
               ) -> bytes:
    """A kubeconfig with one cluster (HTTPS, our CA), one token user and a context."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server,
                                                 "certificate-authority": str(ca_file)}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def backends_file(*, vault_address: str, token_file: Path, mount: str, key: str) -> bytes:
    """The backends file that lets offline tools (audit, recover) reach the sandbox KMS."""
    doc = {
        KMS_PROVIDER_NAME: {
            "type": "vault",
            "address": vault_address,
            "mount": mount,
            "key": key,
            "auth": {"method": "token", "token_file": str(token_file)},
        }
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()
