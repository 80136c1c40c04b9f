"""One re-encrypt run end to end: checkpoint load/resume, progress, engine, summary.

The CLI builds the adapters (Kubernetes client, etcd client, transformer chain) and
calls :func:`run_api` or :func:`run_etcd`; everything here works on what it is given.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.errors import UsageError
from secretkit.etcd.interface import EtcdReader, EtcdStore
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.api_engine import ApiReencryptor, ApiRunOptions, ApiTransport
from secretkit.reencrypt.checkpoint import Checkpoint, CheckpointFile, run_fingerprint
from secretkit.reencrypt.etcd_engine import EtcdReencryptor, EtcdRunOptions, EtcdScope
from secretkit.reencrypt.etcd_keys import prefixes_for
from secretkit.reencrypt.ports import TransformerChain
from secretkit.reencrypt.progress import Progress
from secretkit.reencrypt.ratelimit import RateLimiter
from secretkit.reencrypt.stale_scan import scan_stale
from secretkit.reencrypt.summary import COUNTERS, ObjectError, Summary
from secretkit.reencrypt.verify import UNPARSED_EXAMPLES, unnamed_keys_message


@dataclass(frozen=True)
class RunControl:
    """What every run shares: resume file, progress stream and whether to show it."""

    resume: Path | None = None
    progress_stream: TextIO = sys.stderr
    show_progress: bool = True


def _open_checkpoint(
    control: RunControl, mode: str, fingerprint: str, summary: Summary
) -> tuple[Checkpoint, CheckpointFile | None]:
    if control.resume is None:
        return Checkpoint(fingerprint=fingerprint, mode=mode), None
    handle = CheckpointFile(control.resume)
    saved = handle.load()
    if saved is None:
        return Checkpoint(fingerprint=fingerprint, mode=mode), handle
    if saved.fingerprint != fingerprint or saved.mode != mode:
        raise UsageError(
            "the checkpoint belongs to a run with other parameters",
            where=str(control.resume),
            hint="resume with the same --via/--resources/--from-config/--only-stale, "
            "or pass a new --resume file",
        )
    # counters of finished pages carry over, so the final summary covers the whole run
    for name, progress in saved.resources.items():
        for counter, value in progress.counters.items():
            if counter in COUNTERS and value:
                summary.add(name, counter, value)
    for entry in saved.errors:
        summary.errors.append(ObjectError.from_json(entry))
    return saved, handle


def run_api(
    transport: ApiTransport,
    resources: Sequence[ApiResource],
    *,
    options: ApiRunOptions,
    qps: float,
    burst: int,
    control: RunControl,
    stale_source: tuple[EtcdReader, EncryptionConfig, Mapping[str, str]] | None = None,
    etcd_prefix: str = "/registry",
    namespace: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Summary:
    """Re-encrypt ``resources`` through the API; with ``stale_source`` only stale objects.

    ``warn`` hears of keys the stale scan found under a resource's prefix that name no
    object (the API cannot rewrite those).
    """
    summary = Summary(mode="api", dry_run=options.dry_run)
    names = [r.qualified for r in resources]
    fingerprint = run_fingerprint(
        "api",
        names,
        {
            "only_stale": stale_source is not None,
            "dry_run": options.dry_run,
            "namespace": options.namespace,
            "selector": options.label_selector,
        },
    )
    checkpoint, handle = _open_checkpoint(control, "api", fingerprint, summary)
    progress = Progress(control.progress_stream, summary.processed, enabled=control.show_progress)
    engine = ApiReencryptor(
        transport,
        options=options,
        limiter=RateLimiter(qps, burst),
        summary=summary,
        checkpoint=checkpoint,
        checkpoint_file=handle,
        on_total=progress.set_total,
    )
    start = time.monotonic()
    progress.start()
    try:
        only = fresh = None
        if stale_source is not None:
            store, config, key_ids = stale_source
            pending = [r for r in resources if checkpoint.progress(r.qualified).state != "done"]
            scan = scan_stale(
                store,
                pending,
                config,
                kms_key_ids=key_ids,
                prefix=etcd_prefix,
                namespace=namespace,
            )
            if scan.unparsed and warn is not None:
                warn("--only-stale: " + unnamed_keys_message(
                    len(scan.unparsed), scan.unparsed[:UNPARSED_EXAMPLES])
                    + "; the API cannot rewrite them, --via etcd can")
            only, fresh = scan.stale, scan.fresh
        # fresh objects are counted by the engine as it passes them in list order,
        # saved with each page: a resumed run counts those after last_key, once
        engine.run(resources, only=only, fresh=fresh)
        summary.complete = True
    finally:
        progress.stop()
        summary.elapsed_seconds = time.monotonic() - start
    return summary


def scopes_for(
    resources: Sequence[ApiResource], etcd_prefix: str, namespace: str | None = None
) -> list[EtcdScope]:
    """The etcd key ranges of ``resources`` (one scope per candidate prefix)."""
    scopes: list[EtcdScope] = []
    for res in resources:
        ranges = prefixes_for(res, etcd_prefix, namespace)
        for key_prefix in ranges:
            label = res.qualified if key_prefix == ranges[0] else f"{res.qualified}@{key_prefix}"
            scopes.append(EtcdScope(label, key_prefix, res.namespaced))
    return scopes


def _count_keys(store: EtcdReader, scopes: Sequence[EtcdScope]) -> int:
    return sum(
        len(page)
        for scope in scopes
        for page in store.scan(scope.key_prefix.encode(), keys_only=True)
    )


def run_etcd(
    store: EtcdStore,
    transformers: TransformerChain,
    scopes: Sequence[EtcdScope],
    *,
    options: EtcdRunOptions,
    control: RunControl,
    config: EncryptionConfig | None = None,
) -> Summary:
    """Re-encrypt stale values of ``scopes`` directly in etcd."""
    summary = Summary(mode="etcd", dry_run=options.dry_run)
    fingerprint = run_fingerprint(
        "etcd",
        [s.label + "=" + s.key_prefix for s in scopes],
        {"config": config.hash if config is not None else None, "dry_run": options.dry_run},
    )
    checkpoint, handle = _open_checkpoint(control, "etcd", fingerprint, summary)
    progress = Progress(control.progress_stream, summary.processed, enabled=control.show_progress)
    engine = EtcdReencryptor(
        store,
        transformers,
        options=options,
        summary=summary,
        checkpoint=checkpoint,
        checkpoint_file=handle,
    )
    start = time.monotonic()
    if control.show_progress:
        # a keys-only count is cheap (~100k keys/s) and gives the bar its ETA
        progress.set_total(_count_keys(store, scopes))
    progress.start()
    try:
        engine.run(scopes)
        summary.complete = True
    finally:
        progress.stop()
        summary.elapsed_seconds = time.monotonic() - start
    return summary
