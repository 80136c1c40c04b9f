"""``--only-stale``: find the objects whose stored value is stale by scanning etcd."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource
from secretkit.kube.metadata import ObjectRef
from secretkit.reencrypt.etcd_keys import list_order, stored_objects
from secretkit.reencrypt.stale import is_stale


class PackedKeys(Sequence[str]):
    """Sorted list-order keys (``ns/name``), packed in one buffer: ~40 bytes a key
    instead of a Python string's ~110, for the fresh objects of a scan (millions on a
    cluster re-encrypted already). Keys arrive in etcd key order (which is list order
    within one prefix); :meth:`finish` sorts only when they did not."""

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends: array[int] = array("Q")
        self._last = b""
        self._sorted = True

    def append(self, key: str) -> None:
        """Add ``key`` (UTF-8 byte order is code point order, so sortedness carries)."""
        raw = key.encode("utf-8", "surrogateescape")
        if raw < self._last:
            self._sorted = False
        self._blob += raw
        self._ends.append(len(self._blob))
        self._last = raw

    def finish(self) -> PackedKeys:
        """Sort if the keys came out of order (two candidate prefixes); returns self."""
        if not self._sorted:
            keys = sorted(self)
            self._blob, self._ends, self._last = bytearray(), array("Q"), b""
            for key in keys:
                self.append(key)
            self._sorted = True
        return self

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self._ends[index - 1] if index else 0
        return self._blob[start:self._ends[index]].decode("utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable


@dataclass(frozen=True)
class StaleScan:
    """What one scan found, per resource (qualified name)."""

    #: the stale objects in list order, each with the resourceVersion it was judged at
    #: (the key's mod_revision), so a patch answered with the same one counts unchanged
    stale: dict[str, list[ObjectRef]] = field(default_factory=dict)
    #: the fresh objects' list-order keys (``ns/name``), sorted: never sent to the API
    #: server, counted by the engine as its progress passes them (so a resumed run
    #: counts exactly those after the checkpoint's ``last_key``)
    fresh: dict[str, PackedKeys] = field(default_factory=dict)
    #: keys under the resources' prefixes that name no object (a deeper path, a stray
    #: write): the API cannot address them, so they are neither sent nor counted, only
    #: reported (``--verify`` judges their values)
    unparsed: list[str] = field(default_factory=list)


def scan_stale(
    store: EtcdReader,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
    namespace: str | None = None,
) -> StaleScan:
    """Sort every stored object of ``resources`` into stale (to send) and fresh (counted).

    Counts nothing itself: the engine counts each fresh object once, in list order,
    together with the stale ones around it (see ``ApiReencryptor.run``).
    """
    scan = StaleScan(
        stale={res.qualified: [] for res in resources},
        fresh={res.qualified: PackedKeys() for res in resources},
    )
    for stored in stored_objects(
        store, resources, config, prefix=prefix, page_size=page_size, namespace=namespace
    ):
        qualified = stored.resource.qualified
        if stored.name is None:
            scan.unparsed.append(stored.key)
            continue
        if is_stale(stored.value, stored.chain, kms_key_ids=kms_key_ids):
            namespace_of, name = stored.name
            scan.stale[qualified].append(ObjectRef(namespace_of, name, str(stored.mod_revision)))
        else:
            scan.fresh[qualified].append(list_order(stored.name))
    for refs in scan.stale.values():
        refs.sort(key=lambda ref: list_order((ref.namespace, ref.name)))
    for keys in scan.fresh.values():
        keys.finish()
    return scan
