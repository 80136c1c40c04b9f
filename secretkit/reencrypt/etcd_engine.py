"""Re-encrypt directly in etcd (``--via etcd``): for recovery and offline clusters.

Each value is read with the config's read chain and, when stale, written with the
write provider (kms v2: one fresh seed per run and key_id, like the apiserver), with
a compare-and-swap on the key's mod_revision: a concurrent writer always wins. Swaps are
batched (one all-or-nothing etcd transaction per chunk of keys,
``EtcdStore.compare_and_swap_many``: one raft round trip instead of one per key);
when a batch loses, its keys are swapped one by one. On a lost single swap the key
is read again and, if still stale, swapped once more; a second loss is counted as
``conflicts_skipped`` (the other writer's value stays).

Only safe while no apiserver writes with an *older* config: the CLI gates this mode
behind ``--i-understand-the-apiserver-is-stopped`` or an interactive confirmation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from secretkit.errors import EtcdError, SecretkitError
from secretkit.etcd.interface import MAX_TXN_OPS, EtcdStore, KeyValue
from secretkit.reencrypt.checkpoint import (
    Checkpoint,
    CheckpointFile,
    ProgressSaver,
    ResourceProgress,
)
from secretkit.reencrypt.ports import TransformerChain
from secretkit.reencrypt.summary import ObjectError, Summary


@dataclass(frozen=True)
class EtcdScope:
    """One labelled key range: ``label`` names it in the summary and checkpoint."""

    label: str
    key_prefix: str
    namespaced: bool = True


@dataclass(frozen=True)
class EtcdRunOptions:
    """Knobs of a ``--via etcd`` run."""

    page_size: int = 1000
    concurrency: int = 8
    dry_run: bool = False
    #: rewrite values that are not stale too (a fresh nonce/seed for every value)
    force: bool = False
    #: seconds between kms v2 Status polls during the run (the apiserver polls every 60 s)
    kms_refresh_seconds: float = 60.0
    etcd_prefix: str = "/registry"
    #: keys per etcd transaction (at most etcd's --max-txn-ops, 128 by default)
    batch_size: int = 100


class EtcdReencryptor:
    """Drives one ``--via etcd`` run over labelled key ranges."""

    def __init__(
        self,
        store: EtcdStore,
        transformers: TransformerChain,
        *,
        options: EtcdRunOptions,
        summary: Summary,
        checkpoint: Checkpoint,
        checkpoint_file: CheckpointFile | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._chain = transformers
        self._opts = options
        self._summary = summary
        self._checkpoint = checkpoint
        self._saver = ProgressSaver(checkpoint, checkpoint_file)
        self._clock = clock
        self._last_refresh = clock()

    def run(self, scopes: Sequence[EtcdScope]) -> None:
        """Re-encrypt every stale value in ``scopes``; resumable through the checkpoint."""
        self._chain.refresh_kms()
        self._last_refresh = self._clock()
        workers = max(self._opts.concurrency, 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="reencrypt-etcd") as pool:
            for scope in scopes:
                progress = self._checkpoint.progress(scope.label)
                self._summary.ensure(scope.label)
                if progress.state == "done":
                    continue
                progress.state = "running"
                self._run_scope(pool, scope, progress)
                progress.state = "done"
                self._save(scope, progress)

    def _run_scope(
        self, pool: ThreadPoolExecutor, scope: EtcdScope, progress: ResourceProgress
    ) -> None:
        # the checkpoint holds the key as decoded with surrogateescape: same bytes back
        done_upto = (
            progress.last_key.encode("utf-8", "surrogateescape") if progress.last_key else None
        )
        pages = self._store.scan(scope.key_prefix.encode(), page_size=self._opts.page_size)
        for page in pages:
            batch = [kv for kv in page if done_upto is None or kv.key > done_upto]
            if not batch:
                continue
            self._maybe_refresh()
            # one transaction per chunk; enough chunks to keep every worker busy
            per_worker = -(-len(batch) // max(self._opts.concurrency, 1))
            chunk = max(min(self._opts.batch_size, per_worker, MAX_TXN_OPS), 1)
            futures: list[Future[None]] = [
                pool.submit(self._process_chunk, scope, batch[i : i + chunk])
                for i in range(0, len(batch), chunk)
            ]
            error: BaseException | None = None
            for fut in futures:
                try:
                    fut.result()
                except BaseException as exc:  # re-raised after every chunk finished
                    error = error or exc
            if error is not None:
                raise error
            progress.last_key = batch[-1].key.decode("utf-8", "surrogateescape")
            self._save(scope, progress)

    def _maybe_refresh(self) -> None:
        if self._clock() - self._last_refresh >= self._opts.kms_refresh_seconds:
            self._chain.refresh_kms()
            self._last_refresh = self._clock()

    def _process_chunk(self, scope: EtcdScope, chunk: Sequence[KeyValue]) -> None:
        pending: list[tuple[KeyValue, bytes]] = []
        for kv in chunk:
            self._summary.add(scope.label, "seen")
            new_value = self._prepare(scope, kv)
            if new_value is not None:
                pending.append((kv, new_value))
        if not pending:
            return
        items = [(kv.key, value, kv.mod_revision) for kv, value in pending]
        if self._store.compare_and_swap_many(items):
            self._summary.add(scope.label, "rewritten", len(pending))
            return
        # somebody wrote one of these keys meanwhile: go key by key, they win per key
        for kv, value in pending:
            self._swap_one(scope, kv, value)

    def _prepare(self, scope: EtcdScope, kv: KeyValue) -> bytes | None:
        """The new value of a stale ``kv`` (None when there is nothing to write)."""
        key = kv.key.decode("utf-8", "surrogateescape")
        try:
            transformer = self._chain.for_etcd_key(key, self._opts.etcd_prefix)
            result = transformer.read(kv.value, key)
            if not result.stale and not self._opts.force:
                self._summary.add(scope.label, "unchanged")
                return None
            if self._opts.dry_run:
                self._summary.candidate(scope.label, key)
                return None
            return transformer.write(result.plaintext, key)
        except EtcdError:
            raise
        except SecretkitError as exc:  # undecryptable value, kms backend failure
            self._fail(scope, key, type(exc).__name__)
            return None

    def _swap_one(self, scope: EtcdScope, kv: KeyValue, new_value: bytes) -> None:
        label = scope.label
        if self._store.compare_and_swap(kv.key, new_value, mod_revision=kv.mod_revision):
            self._summary.add(label, "rewritten")
            return
        # lost the race: read the newer value and convert it once more if still stale
        self._summary.add(label, "conflicts_retried")
        current = self._store.get(kv.key)
        if current is None:
            self._summary.add(label, "gone")
            return
        key = kv.key.decode("utf-8", "surrogateescape")
        try:
            transformer = self._chain.for_etcd_key(key, self._opts.etcd_prefix)
            result = transformer.read(current.value, key)
            if not result.stale and not self._opts.force:
                self._summary.add(label, "unchanged")
                return
            value = transformer.write(result.plaintext, key)
        except EtcdError:
            raise
        except SecretkitError as exc:
            self._fail(scope, key, type(exc).__name__)
            return
        if self._store.compare_and_swap(kv.key, value, mod_revision=current.mod_revision):
            self._summary.add(label, "rewritten")
        else:
            self._summary.add(label, "conflicts_skipped")

    def _fail(self, scope: EtcdScope, key: str, reason: str) -> None:
        tail = key[len(scope.key_prefix) :] if key.startswith(scope.key_prefix) else key
        namespace, sep, name = tail.partition("/")
        if not sep or not scope.namespaced:
            namespace, name = "", tail
        self._summary.fail(
            ObjectError(
                resource=scope.label,
                namespace=namespace or None,
                name=name,
                status=None,
                reason=reason,
            )
        )

    def _save(self, scope: EtcdScope, progress: ResourceProgress) -> None:
        self._saver.save(scope.label, progress, self._summary)
