"""``--only-stale``: find the objects whose stored value is stale by scanning etcd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource
from secretkit.kube.metadata import ObjectRef
from secretkit.reencrypt.etcd_keys import list_order, stored_objects
from secretkit.reencrypt.stale import is_stale


@dataclass(frozen=True)
class StaleScan:
    """What one scan found, per resource (qualified name)."""

    #: the stale objects in list order, each with the resourceVersion it was judged at
    #: (the key's mod_revision), so a patch answered with the same one counts unchanged
    stale: dict[str, list[ObjectRef]] = field(default_factory=dict)
    #: the fresh objects' list-order keys (``ns/name``), sorted: never sent to the API
    #: server, counted by the engine as its progress passes them (so a resumed run
    #: counts exactly those after the checkpoint's ``last_key``)
    fresh: dict[str, list[str]] = field(default_factory=dict)
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
        fresh={res.qualified: [] for res in resources},
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
        keys.sort()
    return scan
