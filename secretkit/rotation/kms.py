"""KMS v2 key rotation: rotate in the backend, wait for the plugin and the apiservers,
re-encrypt, and prove from etcd that no object still carries the old key_id."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretkit.errors import SafetyError
from secretkit.etcd.pages import linear_pages
from secretkit.formats import classify_value
from secretkit.formats.model import ValueProvider
from secretkit.kms_service import KMSService
from secretkit.rotation import gates


def count_key_ids(client: Any, prefixes: Sequence[bytes], kms_name: str) -> Counter[str]:
    """How many current values of kms provider ``kms_name`` use each key_id."""
    counts: Counter[str] = Counter()
    for prefix in prefixes:
        for page in linear_pages(client, prefix):
            for kv in page:
                stored = classify_value(kv.value)
                if stored.provider is ValueProvider.KMS_V2 and stored.name == kms_name:
                    counts[stored.kms_v2.key_id if stored.kms_v2 else "<undecodable>"] += 1
    return counts


def wait_for_plugin_key_id(
    plugin: KMSService, expected: str, *, timeout: float, interval: float = 1.0
) -> None:
    """Poll the plugin's Status until it reports ``expected`` (it caches its probe)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        status = plugin.status()
        last = status.key_id
        if last == expected and status.healthy:
            return
        time.sleep(interval)
    raise SafetyError(
        f"the plugin still reports key_id {last!r}, not {expected!r}, after {timeout:.0f}s",
        hint="check the plugin's --status-ttl and logs; it may be talking to another backend",
    )


@dataclass
class KMSRotationReport:
    """What ``secretkit kms rotate`` did and proved (also its JSON shape)."""

    provider: str
    old_key_id: str
    new_key_id: str
    reencrypt_runs: int = 0
    remaining_old: int = 0
    counts_after: dict[str, int] = field(default_factory=dict)
    retired_old: bool = False
    steps: list[str] = field(default_factory=list)


def rotate_kms_key(
    *,
    provider: str,
    backend: Any,
    plugin: KMSService,
    scan_client_factory: Callable[[], Any],
    prefixes: Sequence[bytes],
    run_reencrypt: Callable[[], None],
    plugin_timeout: float,
    refresh_wait: float,
    max_reencrypt_runs: int = 2,
    retire_old: bool = False,
    to_key: str | None = None,
    echo: Callable[[str], None] = print,
) -> KMSRotationReport:
    """Rotate, wait, re-encrypt and prove; raise SafetyError when the proof fails.

    ``to_key`` switches the backend to another key instead of rotating the current one
    (AWS KMS: move the configured alias to that key, which changes the key_id).
    """
    old = plugin.status().key_id
    echo(f"plugin reports key_id {old}")
    if to_key is not None:
        move = getattr(backend, "move_alias", None)
        if move is None:
            raise SafetyError(
                f"the {backend.kind} backend cannot switch to another key",
                hint="--to-key is for AWS KMS backends configured with an alias",
            )
        new = move(to_key)
    elif getattr(backend, "kind", "") == "aws":
        # refuse before touching the key: in-place rotation keeps the ARN (our key_id)
        raise SafetyError(
            "AWS KMS rotation in place keeps the key ARN, which is the key_id, so "
            "apiservers would never draw a new seed",
            hint="create a new key and pass --to-key ARN: the backend's alias moves to it",
        )
    else:
        new = backend.rotate()
    report = KMSRotationReport(provider=provider, old_key_id=old, new_key_id=new)
    if new == old:
        raise SafetyError(
            "the backend rotated but its key_id did not change",
            hint="the key_id must change on rotation, or the apiserver will never re-seed; "
            "check the backend's key_id scheme (docs/backends.md)",
        )
    report.steps.append(f"backend rotated: new key_id {new}")
    echo(report.steps[-1])
    wait_for_plugin_key_id(plugin, new, timeout=plugin_timeout)
    report.steps.append("plugin Status reports the new key_id")
    echo(report.steps[-1])
    if refresh_wait > 0:
        echo(f"waiting {refresh_wait:.0f}s for every apiserver to poll Status and re-seed ...")
        time.sleep(refresh_wait)
    for _ in range(max_reencrypt_runs):
        run_reencrypt()
        report.reencrypt_runs += 1
        with scan_client_factory() as client:
            counts = count_key_ids(client, prefixes, provider)
        report.counts_after = dict(counts)
        report.remaining_old = sum(n for k, n in counts.items() if k != new)
        if report.remaining_old == 0:
            break
        echo(f"{report.remaining_old} object(s) still under an older key_id; re-encrypting again")
    if report.remaining_old:
        raise SafetyError(
            f"{report.remaining_old} object(s) of provider {provider!r} still carry an old "
            f"key_id after {report.reencrypt_runs} re-encryption run(s)",
            hint="are all apiservers using the new key_id? wait for their Status poll "
            "(every 60s) and run `secretkit reencrypt` again",
        )
    report.steps.append(f"etcd: every {provider} object uses {new}")
    echo(report.steps[-1])
    if retire_old:
        with scan_client_factory() as client:
            leftovers = gates.scan(
                client, prefixes, gates.uses_kms_key_id(provider, [old]), include_history=False
            )
        if not leftovers.passed:
            raise SafetyError("objects under the old key_id appeared; not retiring it")
        retire = getattr(backend, "retire_old_versions", None)
        if retire is None:
            raise SafetyError(f"the {backend.kind} backend cannot retire old key versions")
        retire()
        report.retired_old = True
        report.steps.append("old key versions retired (no longer decryptable)")
        echo(report.steps[-1])
    return report
