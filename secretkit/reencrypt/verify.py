"""The ``--verify`` pass: read every value from etcd and prove none is stale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from secretkit.encryption_config import EncryptionConfig
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.ports import EtcdStore
from secretkit.reencrypt.stale_scan import scan_stale
from secretkit.reencrypt.summary import Summary

#: how many stale object names the verdict lists
_EXAMPLES = 10


def verify_no_stale(
    store: EtcdStore,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
) -> dict[str, Any]:
    """Classify every stored value of ``resources``; the verdict is ``ok`` or ``stale``.

    Only prefixes and kms v2 headers are read: no plaintext is touched.
    """
    scratch = Summary(mode="verify")
    stale = scan_stale(store, resources, config, scratch, kms_key_ids=kms_key_ids, prefix=prefix)
    fresh = scratch.totals()["skipped_fresh"]
    n_stale = sum(len(v) for v in stale.values())
    examples = [
        f"{res}:{ns + '/' if ns else ''}{name}"
        for res, objs in sorted(stale.items())
        for ns, name in objs[:_EXAMPLES]
    ][:_EXAMPLES]
    return {
        "checked": fresh + n_stale,
        "stale": n_stale,
        "stale_examples": examples,
        "kms_key_ids_checked": sorted((kms_key_ids or {}).keys()),
        "verdict": "ok" if n_stale == 0 else "stale",
    }
