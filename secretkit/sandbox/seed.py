"""Fill a sandbox with Secrets and ConfigMaps through the API stand-in (concurrently)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from secretkit.errors import KubeError


@dataclass(frozen=True)
class SeedResult:
    """How many objects were created (and how many already existed)."""

    secrets: int
    configmaps: int
    existed: int


def _secret(name: str, namespace: str) -> dict[str, object]:
    # dummy credentials: random so every stored value differs
    password = base64.b64encode(os.urandom(12).hex().encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/created-by": "secretkit-sandbox-seed"}},
            "type": "Opaque",
            "data": {"username": base64.b64encode(b"app").decode(), "password": password}}


def _configmap(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/created-by": "secretkit-sandbox-seed"}},
            "data": {"settings.ini": f"[app]\nname={name}\n", "mode": "rehearsal"}}


class _Poster:
    """One keep-alive connection per worker thread."""

    def __init__(self, url: str, token: str, ca_file: str | None) -> None:
        parts = urlsplit(url)
        self._tls = (
            ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        )
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._token = token
        self._local = threading.local()

    def post(self, path: str, doc: dict[str, object]) -> int:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._tls is not None:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=30,
                                                   context=self._tls)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
            self._local.conn = conn
        body = json.dumps(doc).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        if resp.status not in (201, 409):
            reason = ""
            with contextlib.suppress(ValueError):
                reason = str(json.loads(payload).get("message", ""))[:200]
            raise KubeError(f"create failed with HTTP {resp.status}: {reason}", where=path)
        return resp.status


def seed(
    api_url: str,
    token: str,
    *,
    secrets: int,
    configmaps: int,
    namespace: str = "default",
    prefix: str = "seed",
    workers: int = 16,
    progress: Callable[[int], None] | None = None,
    ca_file: str | None = None,
) -> SeedResult:
    """Create ``secrets`` Secrets and ``configmaps`` ConfigMaps named ``<prefix>-…-NNNNN``.

    Existing names are counted in ``existed`` and left alone, so seeding twice is
    harmless. ``progress`` is called with 1 after each object.
    """
    poster = _Poster(api_url, token, ca_file)
    jobs: list[tuple[str, dict[str, object]]] = []
    for i in range(secrets):
        jobs.append((f"/api/v1/namespaces/{namespace}/secrets",
                     _secret(f"{prefix}-secret-{i:05d}", namespace)))
    for i in range(configmaps):
        jobs.append((f"/api/v1/namespaces/{namespace}/configmaps",
                     _configmap(f"{prefix}-config-{i:05d}", namespace)))
    existed = 0
    lock = threading.Lock()

    def run(job: tuple[str, dict[str, object]]) -> None:
        nonlocal existed
        code = poster.post(*job)
        with lock:
            if code == 409:
                existed += 1
        if progress is not None:
            progress(1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
    return SeedResult(secrets=secrets, configmaps=configmaps, existed=existed)
