"""The ``--verify`` pass: read every value from etcd and prove none is stale or unreadable.

Three outcomes per value, judged from its bytes against the resource's provider chain:
*fresh* (the write provider and key wrote it), *stale* (another provider or key
wrote it; a rewrite fixes that) and *undecryptable* (no provider of the config can
read it; a rewrite cannot fix that, the data is lost unless the missing key comes
back). The last is a different problem with a different remedy, so it is counted
and listed on its own and wins the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.etcd_keys import list_order, stored_objects
from secretkit.reencrypt.stale import is_stale, is_unreadable

#: how many stale object names the verdict lists
_EXAMPLES = 10

#: at most this many undecryptable etcd keys are listed (the count stays exact);
#: every one is a data-loss risk the operator has to look at, so list them all
#: unless something is badly wrong (a whole key missing from the config)
MAX_UNDECRYPTABLE_KEYS = 1000


def verify_no_stale(
    store: EtcdReader,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Classify every stored value of ``resources``; the ``-o json`` ``verify`` section.

    The verdict is ``undecryptable`` when any value cannot be read by any provider of
    ``config`` (``undecryptable`` counts them, ``undecryptable_keys`` names their etcd
    keys), else ``stale`` when any value was not written by the write provider and
    key, else ``ok``. Only prefixes and kms v2 headers are read: no plaintext is
    touched.
    """
    checked = 0
    stale: dict[str, list[tuple[str | None, str]]] = {}
    n_undecryptable = 0
    undecryptable_keys: list[str] = []
    for stored in stored_objects(
        store, resources, config, prefix=prefix, page_size=page_size, namespace=namespace
    ):
        checked += 1
        # checked first: an unreadable value is "stale" to is_stale too
        if is_unreadable(stored.value, stored.chain):
            n_undecryptable += 1
            if len(undecryptable_keys) < MAX_UNDECRYPTABLE_KEYS:
                undecryptable_keys.append(stored.key)
        elif is_stale(stored.value, stored.chain, kms_key_ids=kms_key_ids):
            stale.setdefault(stored.resource.qualified, []).append(stored.name)
    n_stale = sum(len(v) for v in stale.values())
    examples = [
        f"{res}:{ns + '/' if ns else ''}{name}"
        for res, objs in sorted(stale.items())
        for ns, name in sorted(objs, key=list_order)[:_EXAMPLES]
    ][:_EXAMPLES]
    if n_undecryptable:
        verdict = "undecryptable"
    elif n_stale:
        verdict = "stale"
    elif checked == 0:
        verdict = "empty"  # a proof over nothing (a namespace or prefix with no values)
    else:
        verdict = "ok"
    return {
        "checked": checked,
        "stale": n_stale,
        "stale_examples": examples,
        "undecryptable": n_undecryptable,
        "undecryptable_keys": sorted(undecryptable_keys),
        "undecryptable_keys_dropped": n_undecryptable - len(undecryptable_keys),
        "kms_key_ids_checked": sorted((kms_key_ids or {}).keys()),
        "verdict": verdict,
    }

