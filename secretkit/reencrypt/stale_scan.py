"""``--only-stale``: find the objects whose stored value is stale by scanning etcd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.etcd_keys import list_order, stored_objects
from secretkit.reencrypt.stale import is_stale
from secretkit.reencrypt.summary import Summary


def scan_stale(
    store: EtcdReader,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    summary: Summary,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
    namespace: str | None = None,
) -> dict[str, list[tuple[str | None, str]]]:
    """Map each resource to its stale objects, sorted in list order.

    Fresh values are counted as ``seen`` + ``skipped_fresh`` in ``summary``; stale
    ones are counted later by the API engine when it replaces them.
    """
    out: dict[str, list[tuple[str | None, str]]] = {res.qualified: [] for res in resources}
    for stored in stored_objects(
        store, resources, config, prefix=prefix, page_size=page_size, namespace=namespace
    ):
        qualified = stored.resource.qualified
        if is_stale(stored.value, stored.chain, kms_key_ids=kms_key_ids):
            out[qualified].append(stored.name)
        else:
            summary.add(qualified, "seen")
            summary.add(qualified, "skipped_fresh")
    for stale in out.values():
        stale.sort(key=list_order)
    return out
