"""The record of KMS rotations, in a ConfigMap an operator reads with kubectl.

One ConfigMap (default ``kube-system/secretkit-kms-rotations``) holds the last
:data:`KEEP` rotations as JSON under ``rotations.json`` and a one-line summary of the
newest under ``last``::

    kubectl get configmap -n kube-system secretkit-kms-rotations -o jsonpath='{.data.last}'

Every write is a compare-and-swap on the ConfigMap's resourceVersion (a 409 re-reads
and retries), and an entry never holds anything secret: key_ids, counts, times, the
proof's wording and the host that ran it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from secretkit.errors import KubeError
from secretkit.kube.client import object_path, raise_for_status
from secretkit.kube.lease import Requester

#: rotations kept in the record (older ones drop off)
KEEP = 50
_ATTEMPTS = 5


def utc_text(moment: float) -> str:
    """``2026-12-04T21:00:00Z`` for a unix time."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RotationEntry:
    """One rotation run, as recorded (also its JSON shape)."""

    provider: str
    started: str
    host: str
    status: str = "running"  # running, done, skipped, refused, failed
    finished: str | None = None
    old_key_id: str | None = None
    new_key_id: str | None = None
    rewritten: int = 0
    counts_after: dict[str, int] = field(default_factory=dict)
    retired_old: bool = False
    proof: list[str] = field(default_factory=list)
    reason: str | None = None

    def summary(self) -> str:
        """The one line kept under ``data.last``."""
        moment = self.finished or self.started
        if self.status == "done":
            return (
                f"{moment} {self.provider}: {self.old_key_id} -> {self.new_key_id}, "
                f"{self.rewritten} rewritten, proven by etcd"
                + (", old versions retired" if self.retired_old else "")
            )
        return f"{moment} {self.provider}: {self.status}" + (
            f" ({self.reason})" if self.reason else ""
        )


class RotationRecord:
    """Appends and updates :class:`RotationEntry` items in the ConfigMap."""

    def __init__(self, client: Requester, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name

    @property
    def path(self) -> str:
        """The ConfigMap's URL path."""
        return object_path("", "v1", "configmaps", self.name, self.namespace)

    @property
    def where(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded rotation, oldest first (empty when there is no record yet)."""
        body = self._read()
        return _entries(body) if body is not None else []

    def save(self, entry: RotationEntry) -> None:
        """Add ``entry``, or replace the one with the same provider and start time."""
        for _ in range(_ATTEMPTS):
            body = self._read()
            entries = _entries(body) if body is not None else []
            data = asdict(entry)
            replaced = False
            for index, old in enumerate(entries):
                if old.get("provider") == entry.provider and old.get("started") == entry.started:
                    entries[index] = data
                    replaced = True
            if not replaced:
                entries.append(data)
            entries = entries[-KEEP:]
            metadata: dict[str, str] = {"name": self.name, "namespace": self.namespace}
            doc: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {
                    "rotations.json": json.dumps(entries, indent=1, sort_keys=True),
                    "last": entry.summary(),
                },
            }
            if body is None:
                resp = self.client.request("POST", self.path.rsplit("/", 1)[0], body=doc)
            else:
                metadata["resourceVersion"] = str(body["metadata"]["resourceVersion"])
                resp = self.client.request("PUT", self.path, body=doc)
            if resp.status == 409:
                continue  # someone wrote meanwhile: read again
            if not resp.ok:
                raise_for_status(resp, where=self.where)
            return
        raise KubeError(f"the {self.where} kept changing while it was written", where=self.where)

    def _read(self) -> dict[str, Any] | None:
        resp = self.client.request("GET", self.path)
        if resp.status == 404:
            return None
        if not resp.ok:
            raise_for_status(resp, where=self.where)
        return resp.body if isinstance(resp.body, dict) else None


def _entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = ((body or {}).get("data") or {}).get("rotations.json") or "[]"
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return [e for e in parsed if isinstance(e, dict)] if isinstance(parsed, list) else []
