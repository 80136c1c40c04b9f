"""The common kubeconfig, read without the official client: a server, TLS and a token.

Importing the ``kubernetes`` package costs ~0.4 s before the first request, which is
most of the start-up of a short ``secretkit`` run. Most kubeconfigs need none of it:
one file, a cluster with ``server`` and a CA, a user with a static token or a client
certificate. :func:`load_direct` reads exactly those; for anything else (exec or
auth-provider credentials, basic auth, impersonation, ``proxy-url`` or a proxy in the
environment, several files in ``KUBECONFIG``, no kubeconfig at all: in-cluster) it
returns None and the caller loads the configuration with the official client, as
kubectl would. Nothing here is looser than that client: a field this reader does not
know makes it step aside.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from secretkit.errors import UsageError
from secretkit.fileio import write_private
from secretkit.kube.http1 import client_tls_context

#: the cluster and user fields this reader handles; any other makes it step aside
_CLUSTER_FIELDS = frozenset({
    "server", "certificate-authority", "certificate-authority-data",
    "insecure-skip-tls-verify", "tls-server-name", "extensions",
})
_USER_FIELDS = frozenset({
    "token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
    "client-key-data", "extensions",
})


@dataclass(frozen=True)
class DirectConfig:
    """What one request needs: the API URL, TLS material and the bearer token source."""

    host: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    #: never in a repr: a private key and a credential
    key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None

    def tls_context(self, host: str | None = None) -> tuple[ssl.SSLContext | None, str | None]:
        """The TLS context and server name for ``host`` (default: the kubeconfig's
        server; ``--server`` overrides it); (None, None) for plain http."""
        with _cert_files(self) as (cert_file, key_file):
            return client_tls_context(
                host or self.host, ca_file=self.ca_file, ca_data=self.ca_data,
                insecure=self.insecure, cert_file=cert_file, key_file=key_file,
                server_name=self.tls_server_name)

    def bearer(self) -> str | None:
        """``Bearer <token>``, as client-go (kubectl) picks it: the token file when it is
        readable and not empty (read each time: it may be rotated), else the inline
        token; None for a user without either. OSError when the file cannot give a
        token and there is no inline one; ValueError for a token with a line break."""
        token = self.token
        if self.token_file:
            try:
                text = Path(self.token_file).read_text().strip()
            except (OSError, ValueError) as exc:
                if not token:
                    raise OSError(f"cannot read the token file: {exc}") from None
            else:
                if text:
                    token = text
                elif not token:
                    raise OSError("the token file is empty")
        if token and ("\r" in token or "\n" in token):
            raise ValueError("the token holds a line break")
        return f"Bearer {token}" if token else None


def load_direct(path_list: str | None, context: str | None) -> DirectConfig | None:
    """The kubeconfig at ``path_list`` for ``context`` (default: its current context),
    or None when the official client must load it (see the module docstring)."""
    if not path_list or os.pathsep in path_list.strip(os.pathsep):
        return None
    if any(getproxies().get(scheme) for scheme in ("https", "http", "all")):
        return None
    path = Path(path_list.strip(os.pathsep)).expanduser()
    try:
        import yaml

        doc = yaml.safe_load(path.read_text())
    except Exception:  # unreadable or malformed: the official client reports it
        return None
    try:
        return _direct(doc, context, path.parent)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        return None


def _named(entries: Any, name: str, key: str) -> dict[str, Any]:
    for entry in entries:
        if entry["name"] == name:
            value = entry[key]
            if not isinstance(value, dict):
                raise TypeError(key)
            return value
    raise KeyError(name)


def _direct(doc: dict[str, Any], context_name: str | None, base: Path) -> DirectConfig | None:
    name = context_name or doc["current-context"]
    context = _named(doc["contexts"], name, "context")
    if set(context) - {"cluster", "user", "namespace", "extensions"}:
        return None
    cluster = _named(doc["clusters"], context["cluster"], "cluster")
    user = _named(doc.get("users") or [], context["user"], "user") if context.get("user") else {}
    if set(cluster) - _CLUSTER_FIELDS or set(user) - _USER_FIELDS:
        return None
    server = str(cluster["server"]).rstrip("/")
    if urlsplit(server).scheme not in ("https", "http"):
        return None

    def file(value: Any) -> str | None:
        # relative to the kubeconfig's folder; no "~" expansion (client-go has none)
        if not value:
            return None
        candidate = Path(str(value))
        return str(candidate if candidate.is_absolute() else base / candidate)

    def data(value: Any) -> bytes | None:
        return base64.b64decode(str(value), validate=True) if value else None

    insecure = cluster.get("insecure-skip-tls-verify", False)
    ca_data = data(cluster.get("certificate-authority-data"))
    # the data wins over the file, as in client-go and the official client: trusting
    # both would accept a server only the file's CA signed
    ca_file = None if ca_data else file(cluster.get("certificate-authority"))
    if not isinstance(insecure, bool):
        # "false" in quotes would be true to a truthiness test: refuse, as kubectl does
        raise UsageError("insecure-skip-tls-verify must be true or false",
                         where=f"cluster {context['cluster']!r}",
                         hint="write it without quotes")
    if insecure and (ca_data or ca_file):
        raise UsageError("insecure-skip-tls-verify is set together with a CA",
                         where=f"cluster {context['cluster']!r}",
                         hint="remove one of the two (kubectl refuses this kubeconfig too)")
    return DirectConfig(
        host=server,
        ca_file=ca_file,
        ca_data=ca_data,
        insecure=insecure,
        tls_server_name=cluster.get("tls-server-name") or None,
        cert_file=file(user.get("client-certificate")),
        cert_data=data(user.get("client-certificate-data")),
        key_file=file(user.get("client-key")),
        key_data=data(user.get("client-key-data")),
        token=str(user["token"]) if user.get("token") else None,
        token_file=file(user.get("tokenFile")),
    )


@contextmanager
def _cert_files(config: DirectConfig) -> Iterator[tuple[str | None, str | None]]:
    """The client certificate and key as files, for as long as ``ssl`` reads them.

    ``ssl`` reads them from files only: data goes through a private temporary
    directory (0700; files 0600, :func:`secretkit.fileio.write_private`), removed at once.
    """
    if config.cert_data is None and config.key_data is None:
        yield config.cert_file, config.key_file
        return
    with tempfile.TemporaryDirectory(prefix="secretkit-tls-") as tmp:
        def place(name: str, data: bytes | None, given: str | None) -> str | None:
            if data is None:
                return given
            write_private(Path(tmp) / name, data)
            return str(Path(tmp) / name)

        yield (place("client.crt", config.cert_data, config.cert_file),
               place("client.key", config.key_data, config.key_file))
