"""The keys kube-apiserver writes for itself, on its schedule (captured in
``tests/data/real-apiserver/etcd-layout.json``, ``non_resource_keys`` and ``watch_60s``).

Every 10 s, a real apiserver (endpoint reconciler ``lease``, peer endpoints, identity
lease controller) writes:

* ``/registry/masterleases/<ip>``: a v1 ``Endpoints`` with its IP, ``generation``
  bumped so that the write happens, attached to a fresh 15 s etcd lease;
* ``/registry/peerserverleases/<apiserver id>``: a v1 ``Endpoints`` with label
  ``apiserverIdentity`` and its IP and port, same lease and schedule;
* ``/registry/leases/kube-system/<apiserver id>``: its identity ``Lease`` (an API
  object, so written through the EncryptionConfiguration like any Lease).

The first two are stored **in plaintext whatever the EncryptionConfiguration says**:
no API resource owns them and no provider ever sees them; they hold addresses, not
secrets. When the stand-in stops, they expire with their leases after 15 s.
(``/registry/ranges/servicenodeports`` needs Services, which the stand-in does not
serve.)
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from secretkit.core.formats import decode_unknown, encode_unknown
from secretkit.core.layout import INTERNAL_KEYS, Layout
from secretkit.errors import SecretkitError
from secretkit.etcd import EtcdClient
from secretkit.sandbox.apiserver.kinds import ENDPOINTS, LEASES
from secretkit.sandbox.apiserver.resources import now_micro, prepare_object
from secretkit.sandbox.apiserver.schema import decode_message, encode_message
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.sandbox.apiserver.store import ObjectStore

log = logging.getLogger(__name__)

#: kube-apiserver's --endpoint-reconciler lease: 15 s TTL, refreshed every 10 s
LEASE_TTL = 15
INTERVAL = 10.0
#: the identity lease: kube-system/<apiserver id>, renewed every 10 s, 1 h duration
IDENTITY_NAMESPACE = "kube-system"
IDENTITY_DURATION = 3600


def _internal_path(path: str) -> str:
    """``path`` as listed in :data:`secretkit.core.layout.INTERNAL_KEYS` (checked)."""
    if not any(key.path == path for key in INTERNAL_KEYS):
        raise AssertionError(f"{path} is not an apiserver-internal key of the layout table")
    return path


def master_lease(address: str, generation: int) -> dict[str, Any]:
    """The Endpoints object of ``masterleases/<ip>`` (the lease endpoint reconciler's)."""
    return {"metadata": {"generation": generation},
            "subsets": [{"addresses": [{"ip": address}]}]}


def peer_lease(apiserver_id: str, address: str, port: int, generation: int
               ) -> dict[str, Any]:
    """The Endpoints object of ``peerserverleases/<apiserver id>``."""
    return {"metadata": {"generation": generation,
                         "labels": {"apiserverIdentity": apiserver_id}},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def endpoints_value(obj: dict[str, Any]) -> bytes:
    """The plaintext stored value of an Endpoints object: ``k8s\x00`` + runtime.Unknown."""
    return encode_unknown("v1", "Endpoints", encode_message(ENDPOINTS, obj))


class InternalKeys:
    """Writes the apiserver's own keys now and every ``interval`` seconds until stopped."""

    def __init__(
        self,
        etcd: EtcdClient,
        store: ObjectStore,
        *,
        apiserver_id: str,
        address: str,
        port: int,
        prefix: str = "/registry",
        interval: float = INTERVAL,
        hostname: str | None = None,
    ) -> None:
        self._etcd = etcd
        self._store = store
        self._id = apiserver_id
        self._address = address
        self._port = port
        self._root = Layout(prefix).root
        self._interval = interval
        self._hostname = hostname or socket.gethostname()
        self._holder = f"{apiserver_id}_{uuid.uuid4()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def master_lease_key(self) -> str:
        """``<prefix>/masterleases/<ip>`` (an entry of the layout's internal keys)."""
        return f"{self._root}{_internal_path('masterleases/')}{self._address}"

    @property
    def peer_lease_key(self) -> str:
        """``<prefix>/peerserverleases/<apiserver id>``."""
        return f"{self._root}{_internal_path('peerserverleases/')}{self._id}"

    def start(self) -> None:
        """Write once now, then every interval in a background thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="sandbox-internal-keys",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop writing (the etcd leases then expire the plaintext keys)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def refresh(self) -> None:
        """One round of writes; failures are logged, the next round tries again."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("master lease", self._master_lease),
            ("peer lease", self._peer_lease),
            ("identity lease", self._identity_lease),
        ]
        for what, step in steps:
            try:
                step()
            except (SecretkitError, ApiError, OSError) as exc:
                log.warning("could not write the %s: %s", what, exc)

    # -- plaintext Endpoints with an etcd lease ------------------------------------------
    def _endpoints(self, key: str, build: Callable[[int], dict[str, Any]]) -> None:
        """GuaranteedUpdate of an Endpoints value, in plaintext, with a new TTL lease.

        Upstream bumps ``generation`` on every refresh: an unchanged object would not
        be written, and the write is what renews the lease.
        """
        for _attempt in range(5):
            kv = self._etcd.get(key.encode())
            generation = 0
            if kv is not None:
                stored = decode_message(ENDPOINTS, decode_unknown(kv.value).raw)
                generation = int(stored.get("metadata", {}).get("generation", 0))
            value = endpoints_value(build(generation + 1))
            lease = self._etcd.grant_lease(LEASE_TTL)
            if self._etcd.put_if(key.encode(), value, mod_revision=kv.mod_revision if kv else 0,
                                 lease=lease):
                return

    def _master_lease(self) -> None:
        self._endpoints(self.master_lease_key,
                        lambda generation: master_lease(self._address, generation))

    def _peer_lease(self) -> None:
        self._endpoints(self.peer_lease_key,
                        lambda generation: peer_lease(self._id, self._address, self._port,
                                                      generation))

    # -- the identity Lease (an API object) ----------------------------------------------
    def _identity_lease(self) -> None:
        body = {
            "metadata": {
                "name": self._id,
                "labels": {"apiserver.kubernetes.io/identity": "kube-apiserver",
                           "kubernetes.io/hostname": self._hostname},
                "annotations": {"kubernetes.io/peer-advertise-address":
                                f"{self._address}:{self._port}"},
            },
            "spec": {"holderIdentity": self._holder,
                     "leaseDurationSeconds": IDENTITY_DURATION, "renewTime": now_micro()},
        }
        obj = prepare_object(LEASES, IDENTITY_NAMESPACE, body)
        try:
            self._store.update(LEASES, IDENTITY_NAMESPACE, self._id, lambda _current: obj)
        except ApiError as err:
            if err.code != 404:
                raise
            self._store.create(LEASES, obj)
