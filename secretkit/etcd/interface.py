"""The one etcd interface: what the operations read and write, whoever serves it.

One record and three roles. Every method of a role is required: code calls what its
role offers and never probes for more. A test double implements a whole role,
usually as :class:`~secretkit.etcd.memory.MemoryEtcd` (an in-memory etcd) or as a
:class:`~secretkit.etcd.memory.ForwardingEtcd` subclass that wraps a real client or
an in-memory one and interleaves something with the calls it overrides.

* :class:`KeyValue`, the record (``key value create_revision mod_revision
  version``): :class:`~secretkit.etcd.model.KeyValueRecord`, and etcd's own
  ``mvccpb.KeyValue`` messages, which ``EtcdClient.scan`` yields uncopied.
* :class:`EtcdReader` (``current_revision get get_many scan``): ``EtcdClient``,
  ``MemoryEtcd``, ``EtcdSnapshot`` (a snapshot file).
* :class:`WatchableReader`, a reader plus ``endpoint`` and ``watch``: ``EtcdClient``,
  ``MemoryEtcd``.
* :class:`EtcdStore`, a reader plus ``put put_if compare_and_swap
  compare_and_swap_many delete``: ``EtcdClient``, ``MemoryEtcd``.

Who needs which: the audit, ``count_key_ids``, re-encryption's stale scan and
``--verify`` read an :class:`EtcdReader`; the prune gate (every retained value, via
a watch replay) and the monitor need a :class:`WatchableReader`; ``--via etcd``
writes through an :class:`EtcdStore`.

Semantics every implementation keeps (``tests/integration/etcd/test_interface_contract.py``
runs the same checks against a real etcd, the in-memory store and a snapshot):

* Every write that changes something makes one new store revision (a transaction
  writes all its keys at one revision); one that changes nothing (a lost compare,
  the delete of a missing key) makes none. A key's ``create_revision`` is the
  revision of its first write since it last did not exist, ``version`` counts the
  writes since then.
* Reads take a ``revision`` (default: the current one). Below the compaction point
  they raise :class:`~secretkit.etcd.errors.EtcdCompactedError`; above the current
  revision, :class:`~secretkit.errors.EtcdError`.
* :meth:`EtcdReader.scan` is the one whole-range read: every key under ``prefix`` in
  key order, at ONE revision, page by page; pages hold at most ``page_size`` items
  and may hold fewer for no visible reason: only the sequence of keys is defined.
  An empty prefix means the whole keyspace.
* Failures are :class:`~secretkit.errors.EtcdError` (subclasses in
  :mod:`secretkit.etcd.errors`) and never quote a value.

This module imports no gRPC: the operations type against it without loading the
client.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from secretkit.etcd.model import WatchBatch, WatchRange

#: etcd's default ``--max-txn-ops``: operations one transaction may hold
#: (``get_many`` requests, ``compare_and_swap_many`` items)
MAX_TXN_OPS = 128


class KeyValue(Protocol):
    """One stored key at one revision: the one record type of a key/value.

    Satisfied by :class:`~secretkit.etcd.model.KeyValueRecord` and by etcd's
    ``mvccpb.KeyValue`` messages (which ``EtcdClient.scan`` yields without copying).
    Never format one: a message's repr shows the value.
    """

    @property
    def key(self) -> bytes:
        """The etcd key."""
        ...

    @property
    def value(self) -> bytes:
        """The stored bytes (``b""`` in a keys-only read)."""
        ...

    @property
    def create_revision(self) -> int:
        """Revision of the key's first write since it last did not exist."""
        ...

    @property
    def mod_revision(self) -> int:
        """Revision of the key's last write."""
        ...

    @property
    def version(self) -> int:
        """Writes of the key since ``create_revision`` (1: only the first)."""
        ...


class WatchEvent(Protocol):
    """One change seen by a watch: etcd's ``mvccpb.Event`` message.

    ``type`` is 0 for a put and 1 for a delete (``kv`` then holds only the key and
    the deletion's ``mod_revision``); ``prev_kv`` is set when the watch asked for it
    and the key existed before (``HasField("prev_kv")``).
    """

    @property
    def type(self) -> int:
        """0: put, 1: delete."""
        ...

    @property
    def kv(self) -> KeyValue:
        """The key after the change."""
        ...

    @property
    def prev_kv(self) -> KeyValue:
        """The key before the change (empty unless ``HasField("prev_kv")``)."""
        ...

    def HasField(self, field_name: str) -> bool:
        """True when the message field ``field_name`` is set."""
        ...


class Watch(Protocol):
    """An open watch: iterate it for :class:`~secretkit.etcd.model.WatchBatch` es.

    :meth:`close` may be called from any thread and ends the iteration quietly;
    any other end raises an :class:`~secretkit.errors.EtcdError`.
    """

    def __iter__(self) -> Iterator[WatchBatch]:
        """Batches of events (and notices) in revision order."""
        ...

    def request_progress(self) -> None:
        """Ask for a progress notice (unordered: it may overtake queued events)."""
        ...

    def close(self) -> None:
        """End the watch. Idempotent."""
        ...


class EtcdReader(Protocol):
    """Reads of an etcd keyspace at a revision (a live cluster, a snapshot, memory)."""

    def current_revision(self) -> int:
        """The store's current (newest) revision."""
        ...

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
        """The key as of ``revision`` (default: now), or None when it did not exist then."""
        ...

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
        """Each ``(key, revision)``'s value as of that revision, in one round trip.

        At most :data:`MAX_TXN_OPS` requests (more: ``ValueError``). Raises
        :class:`~secretkit.etcd.errors.EtcdCompactedError` when any revision was
        compacted: etcd refuses the whole transaction then.
        """
        ...

    def scan(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
    ) -> Iterator[Sequence[KeyValue]]:
        """Every key under ``prefix`` at one revision, in key order, page by page.

        The revision is ``revision`` or the current one when the scan starts, so the
        scan is a consistent snapshot. See the module docstring for what pages hold.
        """
        ...


class WatchableReader(EtcdReader, Protocol):
    """A reader whose store changes, with a watch to follow the changes."""

    @property
    def endpoint(self) -> str:
        """Where requests go now (for messages)."""
        ...

    def watch(
        self,
        ranges: Sequence[WatchRange],
        *,
        prev_kv: bool = False,
        progress_notify: bool = True,
    ) -> Watch:
        """One watch per range, each from its ``start_revision`` (replayed when older).

        A compacted start revision raises ``WatchCompactedError`` from the iteration.
        """
        ...


class EtcdStore(EtcdReader, Protocol):
    """A reader that also writes, with compare-and-swap on ``mod_revision``."""

    def put(self, key: bytes, value: bytes) -> int:
        """Write ``value`` unconditionally; return the new revision."""
        ...

    def put_if(self, key: bytes, value: bytes, *, mod_revision: int) -> int:
        """Write only if the key's mod_revision is ``mod_revision`` (0: must not exist).

        Returns the write's revision, or 0 when the key changed and nothing was written.
        """
        ...

    def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
        """:meth:`put_if` as a yes/no: True when written."""
        ...

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        """Write every ``(key, value, mod_revision)`` at one revision, or none of them.

        False (nothing written) when any key changed. At most :data:`MAX_TXN_OPS`
        items (more: ``ValueError``); no items: True.
        """
        ...

    def delete(self, key: bytes, *, mod_revision: int | None = None) -> bool:
        """Delete one key (only at ``mod_revision`` when given); True when deleted."""
        ...


if TYPE_CHECKING:  # never run: mypy proves that each implementation serves its roles
    from secretkit.etcd.client import EtcdClient
    from secretkit.etcd.memory import ForwardingEtcd, MemoryEtcd
    from secretkit.etcd.snapshot import EtcdSnapshot

    def _roles(
        client: EtcdClient, memory: MemoryEtcd, forwarding: ForwardingEtcd, snapshot: EtcdSnapshot
    ) -> tuple[
        EtcdStore,
        WatchableReader,
        EtcdStore,
        WatchableReader,
        EtcdStore,
        WatchableReader,
        EtcdReader,
    ]:
        return client, client, memory, memory, forwarding, forwarding, snapshot
