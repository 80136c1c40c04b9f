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
from secretkit.core.formats import classify_value
from secretkit.core.layout import Layout
from secretkit.core.readability import Judge, Verdict, judge_chain
from secretkit.etcd.interface import EtcdReader
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.etcd_keys import list_order, stored_objects

#: how many stale object names the verdict lists
_EXAMPLES = 10

#: at most this many undecryptable etcd keys are listed (the count stays exact);
#: every one is a data-loss risk the operator has to look at, so list them all
#: unless something is badly wrong (a whole key missing from the config)
MAX_UNDECRYPTABLE_KEYS = 1000

#: how many keys that name no object a warning lists (the count stays exact)
UNPARSED_EXAMPLES = 5


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
    tally = _Tally()
    unparsed: list[str] = []
    n_unparsed = 0
    for stored in stored_objects(
        store,
        resources,
        config,
        prefix=prefix,
        page_size=page_size,
        namespace=namespace,
        unknown_scope=unknown_scope,
    ):
        if stored.name is None:
            n_unparsed += 1
            if len(unparsed) < UNPARSED_EXAMPLES:
                unparsed.append(stored.key)
        verdict = judge_chain(classify_value(stored.value), stored.value, stored.chain,
                              current_key_ids=kms_key_ids).verdict
        # a key that names no object is listed as itself
        where = stored.key if stored.name is None else list_order(stored.name)
        label = f"{stored.resource.qualified}:{where}"
        tally.add(verdict, stored.key, (stored.resource.qualified, label))
    if n_unparsed and warn is not None:
        warn("--verify: " + unnamed_keys_message(n_unparsed, unparsed)
             + ", judged by their values all the same; the API cannot rewrite them, "
             "--via etcd can")
    return tally.result(kms_key_ids, unparsed, n_unparsed)


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
    owner could have (a key of a path the layout table does not know, under every rule
    that could cover it); apiserver-internal keys are plaintext by design and not
    counted. Stale values are listed by etcd key.
    """
    judge = Judge(config, layout=Layout(prefix), current_key_ids=kms_key_ids)
    tally = _Tally()
    for page in store.scan(judge.layout.root.encode(), page_size=page_size):
        for kv in page:
            verdict = judge.judge(kv.key, kv.value).verdict
            if verdict is not Verdict.INTERNAL:
                key = kv.key.decode("utf-8", "replace")
                tally.add(verdict, key, ("", key))
    return tally.result(kms_key_ids, [], 0)


def unnamed_keys_message(count: int, examples: Sequence[str]) -> str:
    """``N key(s) under the resources' etcd prefixes name no object ...: k1, k2 (and M
    more)``: the one wording of the ``--verify`` and ``--only-stale`` warnings."""
    more = count - len(examples)
    return (f"{count} key(s) under the resources' etcd prefixes name no object (a deeper "
            "path or a stray write): " + ", ".join(examples)
            + (f" (and {more} more)" if more > 0 else ""))


class _Tally:
    """The counts and examples of one proof; each value judged once (one judgement,
    :mod:`secretkit.core.readability`: an unreadable value is never counted stale)."""

    def __init__(self) -> None:
        self.checked = self.undecryptable = 0
        self.undecryptable_keys: list[str] = []
        #: (group to sort examples in, label) of every stale value
        self.stale: list[tuple[str, str]] = []

    def add(self, verdict: Verdict, key: str, stale_label: tuple[str, str]) -> None:
        self.checked += 1
        if verdict is Verdict.UNREADABLE:
            self.undecryptable += 1
            if len(self.undecryptable_keys) < MAX_UNDECRYPTABLE_KEYS:
                self.undecryptable_keys.append(key)
        elif verdict is Verdict.STALE:
            self.stale.append(stale_label)

    def result(self, kms_key_ids: Mapping[str, str] | None, unparsed: list[str],
               n_unparsed: int) -> dict[str, Any]:
        examples = [label for _group, label in sorted(self.stale)[:_EXAMPLES]]
        return _result(self.checked, len(self.stale), examples, self.undecryptable_keys,
                       self.undecryptable, unparsed, n_unparsed, kms_key_ids)


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

