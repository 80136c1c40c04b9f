"""KMS v2 key rotation: rotate in the backend, wait for the plugin and the apiservers,
re-encrypt everything the provider covers, prove it from etcd, and only then (if asked)
retire the old key versions.

The scope follows the EncryptionConfiguration: every rule whose providers include the
kms provider is re-encrypted (a ``*.*`` rule covers every resource), and the proofs
read the whole keyspace, not a resource list. Retiring old versions is a removal like
pruning a key: it is refused while any stored value, current or in the history etcd
still holds, carries a key_id the backend would no longer decrypt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from secretkit.backends.interface import KeyBackend
from secretkit.core.encryption_config import EncryptionConfig, KMSProvider
from secretkit.core.kms_service import KMSService
from secretkit.core.layout import Layout
from secretkit.core.readability import Judge
from secretkit.errors import SafetyError, UsageError
from secretkit.etcd.interface import WatchableReader
from secretkit.rotation import gates
from secretkit.rotation.scope import ScopeMatcher


def kms_rule_resources(config: EncryptionConfig, name: str) -> list[str]:
    """Every resource name of the rules whose chain holds kms v2 provider ``name``."""
    names: list[str] = []
    for rule in config.rules:
        if any(
            isinstance(p, KMSProvider) and p.name == name and p.api_version == "v2"
            for p in rule.providers
        ):
            names += [n for n in rule.resources if n not in names]
    if not names:
        configured = sorted(
            {p.name for r in config.rules for p in r.providers if isinstance(p, KMSProvider)}
        )
        raise UsageError(
            f"the config has no kms v2 provider named {name!r}",
            where="--provider",
            hint="configured kms providers: " + (", ".join(configured) or "none"),
        )
    return names


def kms_rule_indexes(config: EncryptionConfig) -> tuple[int, ...]:
    """Indexes of the rules with any kms v2 provider (what a retirement can affect)."""
    return tuple(
        i for i, rule in enumerate(config.rules)
        if any(isinstance(p, KMSProvider) and p.api_version == "v2" for p in rule.providers)
    )


def wait_for_plugin_key_id(
    plugin: KMSService,
    expected: str,
    *,
    timeout: float,
    interval: float = 1.0,
    echo: Callable[[str], None] = lambda _m: None,
) -> None:
    """Poll the plugin's Status until it reports ``expected`` (it caches its probe)."""
    deadline = time.monotonic() + timeout
    last = ""
    next_note = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = plugin.status()
        last = status.key_id
        if last == expected and status.healthy:
            return
        if time.monotonic() >= next_note:
            echo(f"  still waiting for the plugin: {deadline - time.monotonic():.0f}s left")
            next_note += 10
        time.sleep(interval)
    raise SafetyError(
        f"the plugin still reports key_id {last!r}, not {expected!r}, after {timeout:.0f}s",
        hint="check the plugin's --status-ttl and logs; it may be talking to another backend",
    )


def countdown(seconds: float, what: str, echo: Callable[[str], None], step: float = 10) -> None:
    """Sleep ``seconds``, saying what for and how long is left every ``step`` seconds."""
    end = time.monotonic() + seconds
    echo(f"waiting {seconds:.0f}s {what} ...")
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(step, left))
        left = end - time.monotonic()
        if left > 0.5:
            echo(f"  {left:.0f}s left")


@dataclass
class KMSRotationReport:
    """What ``secretkit kms rotate`` did and proved (also its JSON shape)."""

    provider: str
    old_key_id: str
    new_key_id: str
    resources: list[str] = field(default_factory=list)
    reencrypt_runs: int = 0
    rewritten: int = 0
    remaining_old: int = 0
    counts_after: dict[str, int] = field(default_factory=dict)
    retired_old: bool = False
    gate: dict[str, Any] | None = None
    steps: list[str] = field(default_factory=list)


@dataclass
class KMSRotation:
    """One rotation of one kms v2 provider's key (see the module docstring)."""

    provider: str
    config: EncryptionConfig
    backend: KeyBackend
    plugin: KMSService
    open_etcd: Callable[[], AbstractContextManager[WatchableReader]]
    #: re-encrypts the given resource names in-process; returns objects rewritten
    reencrypt: Callable[[list[str]], int]
    layout: Layout = field(default_factory=Layout)
    plugin_timeout: float = 120.0
    refresh_wait: float = 70.0
    max_reencrypt_runs: int = 2
    retire_old: bool = False
    include_history: bool = True
    to_key: str | None = None
    echo: Callable[[str], None] = print
    #: called between steps; raises to stop (a scheduled run that lost its Lease)
    guard: Callable[[], None] | None = None

    def run(self) -> KMSRotationReport:
        """Rotate, wait, re-encrypt and prove; raise SafetyError when a proof fails."""
        resources = kms_rule_resources(self.config, self.provider)
        if self.retire_old:
            self._check_retire_possible()
            if self.include_history:
                # this run's own re-encryption leaves every old value in etcd's history
                # until compaction: the history gate could only refuse, after rotating
                raise UsageError(
                    "--retire-old in the same run as the rotation needs --ignore-history",
                    where="--retire-old",
                    hint="rotate now without --retire-old, and once etcd has compacted the "
                    "re-encryption's older revisions run `secretkit kms retire` (it proves "
                    "the history too); or accept --ignore-history",
                )
        old = self.plugin.status().key_id
        self.echo(f"plugin reports key_id {old}")
        new = self._rotate_backend()
        report = KMSRotationReport(
            provider=self.provider, old_key_id=old, new_key_id=new, resources=resources
        )
        if new == old:
            raise SafetyError(
                "the backend rotated but its key_id did not change",
                hint="the key_id must change on rotation, or the apiserver will never re-seed; "
                "check the backend's key_id scheme (docs/backends.md)",
            )
        self._step(report, f"backend rotated: new key_id {new}")
        wait_for_plugin_key_id(self.plugin, new, timeout=self.plugin_timeout, echo=self.echo)
        self._step(report, "plugin Status reports the new key_id")
        if self.refresh_wait > 0:
            countdown(
                self.refresh_wait, "for every apiserver to poll Status and re-seed", self.echo
            )
        for _ in range(self.max_reencrypt_runs):
            if self.guard is not None:
                self.guard()
            report.rewritten += self.reencrypt(resources)
            report.reencrypt_runs += 1
            with self.open_etcd() as client:
                counts = gates.count_key_ids(client, self.layout.root, self.provider)
            report.counts_after = counts
            report.remaining_old = sum(n for k, n in counts.items() if k != new)
            if report.remaining_old == 0:
                break
            self.echo(
                f"{report.remaining_old} value(s) still under an older key_id; re-encrypting again"
            )
        if report.remaining_old:
            raise SafetyError(
                f"{report.remaining_old} value(s) of provider {self.provider!r} still carry an "
                f"old key_id after {report.reencrypt_runs} re-encryption run(s)",
                hint="are all apiservers using the new key_id? wait for their Status poll "
                "(every 60s) and run `secretkit kms rotate` again, or `secretkit reencrypt`",
            )
        total = sum(report.counts_after.values())
        if total == 0:
            with self.open_etcd() as client:
                anything = any(page for page in client.scan(
                    self.layout.root.encode(), page_size=1, keys_only=True))
            if not anything:
                # a wrong prefix or etcd: a cluster always stores objects there
                raise SafetyError(
                    f"etcd holds no value at all under {self.layout.root}: the rotation "
                    "cannot be proven from it",
                    where=self.layout.root,
                    hint="check --etcd-prefix (the apiserver's own flag) and --endpoints",
                )
        if total == 0 and report.rewritten > 0:
            raise SafetyError(
                f"the re-encryption rewrote {report.rewritten:,} object(s) but etcd holds no "
                f"value of provider {self.provider!r} under {self.layout.root}: nothing to "
                "prove the rotation from",
                where=self.layout.root,
                hint="check --etcd-prefix (the apiserver's own flag) and --endpoints",
            )
        if total:
            self._step(report, f"etcd: all {total:,} value(s) of {self.provider} carry {new}")
        else:
            self._step(
                report,
                f"nothing to prove: etcd holds 0 values under provider {self.provider} "
                f"(rules: {', '.join(resources)})",
            )
        if self.retire_old:
            self._retire(report, new)
        return report

    def retire_only(self) -> KMSRotationReport:
        """Retire the old key versions of a rotation done earlier (after compaction).

        The plugin's current key_id is the one kept; the same whole-keyspace proof as
        ``run(retire_old=True)`` comes first.
        """
        resources = kms_rule_resources(self.config, self.provider)
        self._check_retire_possible()
        current = self.plugin.status().key_id
        backend_key_id = self.backend.status().key_id
        if backend_key_id != current:
            raise SafetyError(
                f"the plugin reports key_id {current!r} but the backend's current key is "
                f"{backend_key_id!r}",
                hint="wait for the plugin's Status to catch up (--status-ttl), then run again",
            )
        report = KMSRotationReport(
            provider=self.provider, old_key_id="", new_key_id=current, resources=resources
        )
        self._retire(report, current)
        return report

    def _step(self, report: KMSRotationReport, text: str) -> None:
        report.steps.append(text)
        self.echo(text)
        if self.guard is not None:
            self.guard()

    def _rotate_backend(self) -> str:
        if self.to_key is not None:
            return self.backend.move_alias(self.to_key)
        if self.backend.kind == "aws":
            # refuse before touching the key: in-place rotation keeps the ARN (our key_id)
            raise SafetyError(
                "AWS KMS rotation in place keeps the key ARN, which is the key_id, so "
                "apiservers would never draw a new seed",
                hint="create a new key and pass --to-key ARN: the backend's alias moves to it",
            )
        return str(self.backend.rotate())

    def _check_retire_possible(self) -> None:
        """Refuse a retirement that cannot end well before anything is touched."""
        if not self.backend.can_retire:
            raise UsageError(
                f"the {self.backend.kind} backend cannot retire old key versions",
                where="--retire-old",
                hint="only Vault/OpenBao transit keys have versions to retire",
            )

    def _retire(self, report: KMSRotationReport, new: str) -> None:
        def retired(key_id: str) -> bool:
            # every value under another version of this backend key, whichever
            # provider name wrote it (two providers may share one transit key)
            return key_id != new and self.backend.owns_key_id(key_id)

        self.echo(
            "judging every stored value as if only "
            f"{new} still decrypted"
            + (" (and older revisions)" if self.include_history else "")
            + " ..."
        )
        with self.open_etcd() as client:
            result = gates.prove_readable(
                client,
                after=Judge(self.config, layout=self.layout, retired=retired),
                before=Judge(self.config, layout=self.layout),
                covers=ScopeMatcher(self.config, kms_rule_indexes(self.config)).covers,
                include_history=self.include_history,
            )
        report.gate = result.to_json()
        if not result.passed:
            raise gates.refusal(
                result,
                "retire the old key versions",
                hint="run `secretkit reencrypt` for what still carries an old key_id; for "
                "older revisions, compact etcd or pass --ignore-history if you accept that "
                "a restore of an older revision could no longer be read",
            )
        self._step(report, result.summary(f"provider {self.provider}"))
        self.backend.retire_old_versions(new)
        report.retired_old = True
        self._step(report, "old key versions retired (no longer decryptable)")
