"""The ``--verify`` pass: read every value from etcd and prove none is stale or unreadable.

Three outcomes per value, judged from its bytes against the resource's provider chain:
*fresh* (the write provider and key wrote it), *stale* (another provider or key
wrote it; a rewrite fixes that) and *undecryptable* (no provider of the config can
read it; a rewrite cannot fix that, the data is lost unless the missing key comes
back). The last is a different problem with a different remedy, so it is counted
and listed on its own and wins the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
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

#: how many keys that name no object the warning lists (the count stays exact)
_UNPARSED_EXAMPLES = 5


def verify_no_stale(
    store: EtcdReader,
    resources: Sequence[ApiResource],
    config: EncryptionConfig,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
    namespace: str | None = None,
    unknown_scope: Collection[ApiResource] = (),
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Classify every stored value of ``resources``; the ``-o json`` ``verify`` section.

    The verdict is ``undecryptable`` when any value cannot be read by any provider of
    ``config`` (``undecryptable`` counts them, ``undecryptable_keys`` names their etcd
    keys), else ``stale`` when any value was not written by the write provider and
    key, else ``ok``. Only prefixes and kms v2 headers are read: no plaintext is
    touched.

    Every value in the resources' key ranges is judged: one whose key names no object
    (a deeper path, a stray write) is counted like the others, a stale one listed by
    its etcd key, and ``warn`` names them (a proof must not pass over a value it did
    not read). ``unknown_scope``: resources whose keys may have either shape (see
    :func:`secretkit.reencrypt.etcd_keys.stored_objects`).
    """
    checked = 0
    stale: dict[str, list[tuple[str | None, str]]] = {}
    n_undecryptable = 0
    undecryptable_keys: list[str] = []
    n_unparsed = 0
    unparsed_keys: list[str] = []
    for stored in stored_objects(
        store,
        resources,
        config,
        prefix=prefix,
        page_size=page_size,
        namespace=namespace,
        unknown_scope=unknown_scope,
    ):
        checked += 1
        if stored.name is None:
            n_unparsed += 1
            if len(unparsed_keys) < _UNPARSED_EXAMPLES:
                unparsed_keys.append(stored.key)
        # checked first: an unreadable value is "stale" to is_stale too
        if is_unreadable(stored.value, stored.chain):
            n_undecryptable += 1
            if len(undecryptable_keys) < MAX_UNDECRYPTABLE_KEYS:
                undecryptable_keys.append(stored.key)
        elif is_stale(stored.value, stored.chain, kms_key_ids=kms_key_ids):
            # a key that names no object is listed as itself
            name = stored.name if stored.name is not None else (None, stored.key)
            stale.setdefault(stored.resource.qualified, []).append(name)
    if n_unparsed and warn is not None:
        more = n_unparsed - len(unparsed_keys)
        warn(
            f"--verify: {n_unparsed} key(s) under the resources' etcd prefixes name no "
            "object (a deeper path or a stray write), judged by their values all the same: "
            + ", ".join(unparsed_keys)
            + (f" (and {more} more)" if more > 0 else "")
            + "; the API cannot rewrite them, --via etcd can"
        )
    n_stale = sum(len(v) for v in stale.values())
    examples = [
        f"{res}:{ns + '/' if ns else ''}{name}"
        for res, objs in sorted(stale.items())
        for ns, name in sorted(objs, key=list_order)[:_EXAMPLES]
    ][:_EXAMPLES]
    return _result(checked, n_stale, examples, undecryptable_keys, n_undecryptable,
                   unparsed_keys, n_unparsed, kms_key_ids)


def verify_prefix(
    store: EtcdReader,
    config: EncryptionConfig,
    *,
    kms_key_ids: Mapping[str, str] | None = None,
    prefix: str = "/registry",
    page_size: int = 1000,
) -> dict[str, Any]:
    """:func:`verify_no_stale` over every key under ``prefix`` (a wildcard's scope).

    ``--via etcd`` with a wildcard rewrites every value under the prefix, whatever its
    path: this proof reads the same range. Each key is judged under every chain its
    owner could have (the one judgement of :mod:`secretkit.core.readability`: a key of
    a path the layout table does not know, under every rule that could cover it);
    apiserver-internal keys are plaintext by design and not counted.
    """
    from secretkit.core.layout import Layout
    from secretkit.core.readability import Judge, Verdict

    judge = Judge(config, layout=Layout(prefix), current_key_ids=kms_key_ids)
    checked = n_stale = n_undecryptable = 0
    stale_keys: list[str] = []
    undecryptable_keys: list[str] = []
    for page in store.scan(judge.layout.root.encode(), page_size=page_size):
        for kv in page:
            verdict = judge.judge(kv.key, kv.value).verdict
            if verdict is Verdict.INTERNAL:
                continue
            checked += 1
            key = kv.key.decode("utf-8", "replace")
            if verdict is Verdict.UNREADABLE:
                n_undecryptable += 1
                if len(undecryptable_keys) < MAX_UNDECRYPTABLE_KEYS:
                    undecryptable_keys.append(key)
            elif verdict is Verdict.STALE:
                n_stale += 1
                if len(stale_keys) < _EXAMPLES:
                    stale_keys.append(key)
    return _result(checked, n_stale, stale_keys, undecryptable_keys, n_undecryptable,
                   [], 0, kms_key_ids)


def _result(checked: int, n_stale: int, examples: list[str], undecryptable_keys: list[str],
            n_undecryptable: int, unparsed_keys: list[str], n_unparsed: int,
            kms_key_ids: Mapping[str, str] | None) -> dict[str, Any]:
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
        "keys_naming_no_object": n_unparsed,
        "keys_naming_no_object_examples": unparsed_keys,
        "kms_key_ids_checked": sorted((kms_key_ids or {}).keys()),
        "verdict": verdict,
    }

