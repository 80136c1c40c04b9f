"""``--only-stale``: find the objects whose stored value is stale by scanning etcd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretkit.encryption_config import EncryptionConfig, providers_for
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.etcd_keys import object_of_key, prefixes_for
from secretkit.reencrypt.ports import EtcdStore
from secretkit.reencrypt.stale import is_stale
from secretkit.reencrypt.summary import Summary


def scan_stale(
    store: EtcdStore,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    summary: Summary,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
) -> dict[str, list[tuple[str | None, str]]]:
    """Map each resource to its stale objects, sorted in list order.

    Fresh values are counted as ``seen`` + ``skipped_fresh`` in ``summary``; stale
    ones are counted later by the API engine when it replaces them.
    """
    out: dict[str, list[tuple[str | None, str]]] = {}
    for res in resources:
        chain = providers_for(config, res.resource, res.group)
        stale: list[tuple[str | None, str]] = []
        for key_prefix in prefixes_for(res, prefix):
            for page in store.range_pages(key_prefix.encode(), page_size=page_size):
                for kv in page:
                    key = kv.key.decode("utf-8", "replace")
                    obj = object_of_key(key, key_prefix, res.namespaced)
                    if obj is None:
                        continue
                    if is_stale(kv.value, chain, kms_key_ids=kms_key_ids):
                        stale.append(obj)
                    else:
                        summary.add(res.qualified, "seen")
                        summary.add(res.qualified, "skipped_fresh")
        stale.sort(key=lambda o: f"{o[0]}/{o[1]}" if o[0] else o[1])
        out[res.qualified] = stale
    return out
