"""A Kubernetes Lease as a lock, so two scheduled runs never overlap across nodes.

The protocol is the one client-go's leader election uses on ``coordination.k8s.io/v1``
Leases: a holder writes ``holderIdentity``, ``acquireTime``, ``renewTime`` and
``leaseDurationSeconds``; anyone may take the Lease over once ``renewTime +
leaseDurationSeconds`` has passed; every write carries the ``resourceVersion`` it
read, so of two runs racing for an expired Lease exactly one wins (the other gets a
409 and backs off). While held, a thread renews it every third of the duration; a
renewal that fails twice in a row stops the holder, which must then stop its work:
someone else may take the Lease.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from secretkit.errors import KubeError, SafetyError
from secretkit.kube.client import ApiResponse, object_path, raise_for_status


class Requester(Protocol):
    """What the lock needs from a client (:class:`~secretkit.kube.client.KubeClient`)."""

    def request(
        self, method: str, path: str, *, query: Any = (), body: Any = None
    ) -> ApiResponse:
        """Send one request and return the answer for any HTTP status."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a Lease and until when (for messages and ``-o json``)."""

    identity: str
    acquired: datetime | None
    expires: datetime | None


@dataclass
class LeaseLock:
    """``namespace/name`` as a lock held by ``identity`` (see the module docstring)."""

    client: Requester
    namespace: str
    name: str
    identity: str
    duration_seconds: int = 60
    clock: Callable[[], datetime] = _now
    _resource_version: str | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    _acquired: datetime = field(default_factory=_now, repr=False)

    @property
    def path(self) -> str:
        """The Lease's URL path."""
        return object_path("coordination.k8s.io", "v1", "leases", self.name, self.namespace)

    @property
    def where(self) -> str:
        return f"lease {self.namespace}/{self.name}"

    def holder(self) -> LeaseHolder | None:
        """The current holder, or None when the Lease is free (absent, released, expired)."""
        resp = self.client.request("GET", self.path)
        if resp.status == 404:
            return None
        if not resp.ok:
            raise_for_status(resp, where=self.where)
        return self._holder_of(resp.body)

    def _holder_of(self, body: Any) -> LeaseHolder | None:
        spec = (body or {}).get("spec") or {}
        identity = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or 0)
        if not identity or renewed is None:
            return None
        expires = renewed + timedelta(seconds=duration)
        if expires <= self.clock():
            return None
        return LeaseHolder(identity, _parse(spec.get("acquireTime")), expires)

    def acquire(self) -> None:
        """Take the Lease, or raise SafetyError naming who holds it; then keep renewing."""
        resp = self.client.request("GET", self.path)
        now = self.clock()
        if resp.status == 404:
            created = self.client.request(
                "POST",
                self.path.rsplit("/", 1)[0],
                body=self._body(now, now, None),
            )
            if created.status == 409:
                raise self._busy(None)
            if not created.ok:
                raise_for_status(created, where=self.where)
            self._resource_version = _rv(created.body)
        elif resp.ok:
            current = self._holder_of(resp.body)
            if current is not None and current.identity != self.identity:
                raise self._busy(current)
            updated = self.client.request(
                "PUT", self.path, body=self._body(now, now, _rv(resp.body))
            )
            if updated.status == 409:
                raise self._busy(None)
            if not updated.ok:
                raise_for_status(updated, where=self.where)
            self._resource_version = _rv(updated.body)
        else:
            raise_for_status(resp, where=self.where)
        self._acquired = now
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
        self._thread.start()

    def _busy(self, current: LeaseHolder | None) -> SafetyError:
        who = (
            f"{current.identity} (until {current.expires:%Y-%m-%dT%H:%M:%SZ} unless renewed)"
            if current is not None and current.expires is not None
            else "another run that took it at the same moment"
        )
        return SafetyError(
            f"another rotation holds the {self.where}: {who}",
            hint="wait for it to finish (`kubectl get lease -n "
            f"{self.namespace} {self.name}` shows the holder); a holder that died "
            f"frees it after {self.duration_seconds}s",
        )

    def _body(self, acquired: datetime, renewed: datetime, rv: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if rv is not None:
            metadata["resourceVersion"] = rv
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration_seconds,
                "acquireTime": _micro(acquired),
                "renewTime": _micro(renewed),
            },
        }

    def renew(self) -> None:
        """Write a new renewTime (compare-and-swap on the resourceVersion held)."""
        now = self.clock()
        resp = self.client.request(
            "PUT", self.path, body=self._body(self._acquired, now, self._resource_version)
        )
        if not resp.ok:
            raise KubeError(f"could not renew the {self.where} ({resp.status})", where=self.where)
        self._resource_version = _rv(resp.body)

    def _renew_loop(self) -> None:
        failures = 0
        while not self._stop.wait(self.duration_seconds / 3):
            try:
                self.renew()
                failures = 0
            except KubeError:
                failures += 1
                if failures >= 2:
                    self.lost.set()
                    return

    def check(self) -> None:
        """Raise when the Lease was lost (its renewals failed): stop the work now."""
        if self.lost.is_set():
            raise SafetyError(
                f"the {self.where} could not be renewed: another run may have taken it",
                hint="the work stopped where it was; every step is safe to run again",
            )

    def release(self) -> None:
        """Stop renewing and free the Lease (an empty holder), if still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._resource_version is None or self.lost.is_set():
            return
        body = self._body(self._acquired, self.clock(), self._resource_version)
        body["spec"]["holderIdentity"] = ""
        body["spec"]["leaseDurationSeconds"] = 1
        self.client.request("PUT", self.path, body=body)
        self._resource_version = None

    def __enter__(self) -> LeaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _rv(body: Any) -> str | None:
    value = ((body or {}).get("metadata") or {}).get("resourceVersion")
    return str(value) if value else None
