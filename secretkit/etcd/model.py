"""Plain results of etcd requests (no protobuf types leak out of the adapter).

One exception, for speed: :func:`secretkit.etcd.pages.linear_pages` yields etcd's
``mvccpb.KeyValue`` messages (the same ``key``/``value``/``mod_revision``/
``create_revision``/``version`` fields, bytes and ints). Their repr shows the
value, so callers must never format them; they only read the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KeyValue:
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
