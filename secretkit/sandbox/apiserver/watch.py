"""Watch by polling etcd: enough for ``kubectl get -w`` and client watch loops.

The stand-in has no watch cache. A watch compares successive etcd revisions of
the resource's key range (every ``interval`` seconds, only when the revision
moved) and emits ``ADDED``/``MODIFIED``/``DELETED`` events. Without a
``resourceVersion`` (or with ``"0"``) every existing object is first sent as
``ADDED``, like the apiserver. Intermediate states between two polls are
collapsed, which a real watch would not do; that is fine for a rehearsal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from secretkit.sandbox.apiserver.resources import ResourceType
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.sandbox.apiserver.store import ObjectStore

#: how long one watch request lasts at most (the apiserver picks 30-60 min)
MAX_TIMEOUT = 1800.0


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ``type`` and the object (or a ``Status`` for ``ERROR``)."""

    type: str
    object: dict[str, Any]


def watch_events(
    store: ObjectStore,
    rtype: ResourceType,
    namespace: str | None,
    *,
    resource_version: str | None,
    timeout: float,
    accept: Callable[[dict[str, Any]], bool] | None = None,
    interval: float = 0.25,
    initial_events_bookmark: bool = False,
) -> Iterator[WatchEvent | None]:
    """Yield events until ``timeout`` seconds passed.

    With ``initial_events_bookmark`` (``sendInitialEvents=true``, client-go's
    WatchList) the initial ``ADDED`` events are followed by a ``BOOKMARK`` carrying
    the ``k8s.io/initial-events-end`` annotation, which informers wait for.
    ``None`` is yielded once per idle poll so the caller can notice a client that
    went away (and stop iterating) without waiting for the next event.
    """
    deadline = time.monotonic() + min(max(timeout, 1.0), MAX_TIMEOUT)
    known: dict[str, dict[str, Any]] = {}
    revision = 0
    if resource_version not in (None, "", "0"):
        try:
            revision = int(str(resource_version))
        except ValueError as exc:
            raise ApiError(400, "BadRequest", "resourceVersion must be an integer") from exc
        try:
            known = _snapshot(store, rtype, namespace, revision, accept)
        except ApiError as err:
            if err.code == 410:
                yield WatchEvent("ERROR", {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "code": 410, "reason": "Expired",
                    "message": f"too old resource version: {revision}"})
                return
            raise
    while time.monotonic() < deadline:
        current = store.current_revision()
        if current != revision:
            latest = _snapshot(store, rtype, namespace, current, accept)
            for key, obj in latest.items():
                old = known.get(key)
                if old is None:
                    yield WatchEvent("ADDED", obj)
                elif old["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                    yield WatchEvent("MODIFIED", obj)
            for key, obj in known.items():
                if key not in latest:
                    gone = dict(obj)
                    gone["metadata"] = dict(obj["metadata"], resourceVersion=str(current))
                    yield WatchEvent("DELETED", gone)
            known, revision = latest, current
        if initial_events_bookmark:
            initial_events_bookmark = False
            yield WatchEvent("BOOKMARK", {
                "kind": rtype.kind, "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(revision),
                             "annotations": {"k8s.io/initial-events-end": "true"}}})
        yield None
        time.sleep(interval)


def _snapshot(
    store: ObjectStore,
    rtype: ResourceType,
    namespace: str | None,
    revision: int,
    accept: Callable[[dict[str, Any]], bool] | None,
) -> dict[str, dict[str, Any]]:
    objs = [stored.object() for stored in store.list_at(rtype, namespace, revision)]
    return {
        f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o
        for o in objs
        if accept is None or accept(o)
    }
