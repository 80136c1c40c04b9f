"""Plain results of etcd requests (no protobuf types leak out of the adapter).

:class:`KeyValueRecord` is the one concrete record of a key/value: what ``get``,
``get_many`` and ``range_pages`` return, what the in-memory store and the snapshot
reader build. Code reads records through the :class:`~secretkit.etcd.interface.KeyValue`
protocol, which etcd's own ``mvccpb.KeyValue`` messages satisfy too: the scan
(``EtcdReader.scan``) yields those as they arrive, for speed. A message's repr shows
the value, so callers must never format a key/value; they only read its fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secretkit.etcd.interface import WatchEvent


@dataclass(frozen=True, slots=True)
class KeyValueRecord:
    """One stored key at one revision. ``value`` (plaintext or ciphertext) is not in the repr."""

    key: bytes
    value: bytes = field(repr=False)
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True)
class EtcdStatus:
    """What ``Maintenance.Status`` says about the member behind one endpoint."""

    endpoint: str
    version: str
    db_size: int
    db_size_in_use: int
    leader: int
    member_id: int
    cluster_id: int
    revision: int
    raft_index: int
    raft_term: int
    is_learner: bool
    errors: tuple[str, ...]


@dataclass(frozen=True)
class WatchRange:
    """One watched range ``[key, range_end)``, from ``start_revision`` (inclusive)."""

    key: bytes
    range_end: bytes
    start_revision: int


@dataclass(slots=True)
class WatchBatch:
    """What one (merged) response said about one watch.

    ``watch`` is the index of the range in the list given to ``watch`` (None for an
    answer to ``request_progress()``, which concerns all of them). ``events`` are raw
    ``mvccpb.Event`` messages (``type``, ``kv``, ``prev_kv``) in revision order.
    ``revision`` is the store's revision when etcd sent the response, which may be
    ahead of the events (a watch catching up): every change up to the last event's
    ``mod_revision`` has been delivered. A batch without events is a notice;
    ``ordered`` says that every change of the watch up to ``revision`` was delivered
    before it (a ``progress_notify`` notice), and is False for the "created" notice
    and answers to progress requests.
    """

    watch: int | None
    revision: int
    events: Sequence[WatchEvent] = field(repr=False)  # they carry stored values
    ordered: bool = False
