"""The stage engine shared by key rotation, enabling and disabling encryption.

Each stage: check that every node's config is identical and unchanged since the
last stage, check that every apiserver runs it, compute the new document with the
plan, validate it with the apiserver's rules, show a redacted diff, then (unless
``dry_run``) back up and atomically rewrite every node's file and record the stage.
``prune`` first runs its safety gate against etcd and refuses while any stored value
still needs what it removes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from secretkit.errors import SafetyError
from secretkit.rotation import config_edit, gates
from secretkit.rotation.files import atomic_write, backup, file_hash, redacted_diff
from secretkit.rotation.plans import Plan
from secretkit.rotation.reencrypt_step import run_reencrypt
from secretkit.rotation.state import RotationState, load_state, save_state
from secretkit.rotation.verify import MetricsEndpoint, load_identical_configs, wait_for_hash


@dataclass
class StageOptions:
    """What every stage needs to know about the world."""

    configs: list[Path]
    state_path: Path
    dry_run: bool = False
    metrics: list[MetricsEndpoint] = field(default_factory=list)
    wait_timeout: float = 180.0
    assume_restarted: bool = False


@dataclass
class StageReport:
    """What a stage did (also its ``-o json`` shape)."""

    stage: str
    kind: str
    dry_run: bool
    changed_files: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    new_hash: str | None = None
    diff: str = ""
    gate: dict[str, Any] | None = None
    next_stage: str | None = None
    messages: list[str] = field(default_factory=list)


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).encode()


def _validate(raw: bytes, where: str) -> None:
    """Never write a config the apiserver would refuse to start with."""
    from secretkit.encryption_config import load_encryption_config

    load_encryption_config(raw, source=where)


class StageEngine:
    """Runs the stages of one plan against one set of node config files."""

    def __init__(
        self,
        plan: Plan,
        options: StageOptions,
        *,
        echo: Callable[[str], None] = print,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.echo = echo
        self.confirm = confirm

    # -- checks between stages -------------------------------------------------
    def _load_state(self, stage: str) -> RotationState:
        state = load_state(self.options.state_path)
        if state is None:
            raise SafetyError(
                f"no rotation in progress (no state file at {self.options.state_path})",
                hint="start with the `prepare` stage, or pass --state",
            )
        if state.kind != self.plan.kind:
            raise SafetyError(
                f"the rotation in progress is a {state.kind!r} procedure, not {self.plan.kind!r}",
                hint="finish it first (`secretkit rotate status --state "
                f"{self.options.state_path}`)",
            )
        state.require_next(stage)
        return state

    def _check_unchanged(self, state: RotationState, raws: dict[str, bytes]) -> None:
        if not state.completed:
            return
        recorded = state.completed[-1].hashes
        changed = [n for n, raw in raws.items() if recorded.get(n) not in (None, file_hash(raw))]
        if changed:
            raise SafetyError(
                "config files changed since the last stage: " + ", ".join(changed),
                hint="restore them from their .bak files, or start the rotation over",
            )

    def verify_apiservers(self, expected_hash: str) -> list[str]:
        """Make sure every apiserver runs the config with ``expected_hash``."""
        if self.options.metrics:
            self.echo(f"waiting for every apiserver to load {expected_hash} ...")
            seen = wait_for_hash(
                self.options.metrics,
                expected_hash,
                timeout=self.options.wait_timeout,
                report=self.echo,
            )
            return [f"{url}: {h}" for url, h in seen.items()]
        message = (
            f"every kube-apiserver must now run the config with hash {expected_hash}: restart "
            "kube-apiserver on each control-plane node (static pod: the kubelet restarts it "
            "when its manifest changes), or pass --apiserver-metrics URL for each apiserver "
            "running with --encryption-provider-config-automatic-reload"
        )
        if self.options.assume_restarted:
            return [message + " (confirmed with --yes)"]
        if self.confirm is None or not self.confirm(message + "\nHave all apiservers restarted?"):
            raise SafetyError(
                "not confirmed that every apiserver runs the new config",
                hint="restart them, then run this stage again (or pass --yes once done)",
            )
        return ["confirmed by the operator"]

    # -- stages ------------------------------------------------------------------
    def _write_stage(
        self, stage: str, state: RotationState, new_doc: Any, raws: dict[str, bytes]
    ) -> StageReport:
        new_raw = _dump(new_doc)
        _validate(new_raw, f"{stage} result")
        first = next(iter(raws))
        report = StageReport(
            stage=stage,
            kind=state.kind,
            dry_run=self.options.dry_run,
            new_hash=file_hash(new_raw),
            diff=redacted_diff(raws[first], new_raw, Path(first).name),
        )
        if self.options.dry_run:
            report.next_stage = stage
            report.messages.append("dry run: nothing was written")
            return report
        for name in raws:
            report.backups.append(str(backup(Path(name), stage)))
            atomic_write(Path(name), new_raw)
            report.changed_files.append(name)
        state.record(stage, {name: file_hash(new_raw) for name in raws})
        save_state(self.options.state_path, state)
        report.next_stage = state.next_stage
        return report

    def prepare(self, resources: Sequence[str], key_name: str | None = None) -> StageReport:
        """Stage 1: add the new key/provider in a read-only position."""
        existing = load_state(self.options.state_path)
        if existing is not None and existing.next_stage is not None:
            raise SafetyError(
                f"a {existing.kind} rotation is in progress (next stage: {existing.next_stage})",
                hint="finish it, or remove the state file "
                f"{self.options.state_path} if it was abandoned",
            )
        raws, doc = load_identical_configs(self.options.configs)
        state = self.plan.start(doc, resources, key_name)
        state.configs = [str(p) for p in self.options.configs]
        report = self._write_stage("prepare", state, self.plan.prepare(doc, state), raws)
        others = [r for r in config_edit.covered_resources(doc, resources) if r not in resources]
        if others:
            report.messages.append(
                f"the rule for {', '.join(resources)} also covers {', '.join(others)}: "
                "they follow the same procedure (split the rule first to treat them apart)"
            )
        return report

    def promote(self) -> StageReport:
        """Stage 2: the new key/provider becomes the writer."""
        state = self._load_state("promote")
        raws, doc = load_identical_configs(self.options.configs)
        self._check_unchanged(state, raws)
        messages = self.verify_apiservers(file_hash(next(iter(raws.values()))))
        report = self._write_stage("promote", state, self.plan.promote(doc, state), raws)
        report.messages[:0] = messages
        return report

    def reencrypt(self, reencrypt_args: Sequence[str]) -> StageReport:
        """Stage 3: rewrite every object so it is stored under the new writer."""
        state = self._load_state("reencrypt")
        raws, _doc = load_identical_configs(self.options.configs)
        self._check_unchanged(state, raws)
        report = StageReport(stage="reencrypt", kind=state.kind, dry_run=self.options.dry_run)
        report.messages += self.verify_apiservers(file_hash(next(iter(raws.values()))))
        run_reencrypt(
            reencrypt_args, state.resources, dry_run=self.options.dry_run, echo=self.echo
        )
        if not self.options.dry_run:
            state.record("reencrypt", {n: file_hash(r) for n, r in raws.items()})
            save_state(self.options.state_path, state)
        report.next_stage = state.next_stage
        return report

    def prune(
        self,
        scan: Callable[[gates.Predicate, Sequence[str]], gates.GateResult],
    ) -> StageReport:
        """Stage 4: remove the old key/provider, only if etcd proves nothing needs it."""
        state = self._load_state("prune")
        raws, doc = load_identical_configs(self.options.configs)
        self._check_unchanged(state, raws)
        messages = self.verify_apiservers(file_hash(next(iter(raws.values()))))
        result = scan(self.plan.gate(doc, state), state.resources)
        gate = {
            "scanned": result.scanned,
            "blockers": result.blocker_count,
            "examples": [
                {
                    "etcd_key": b.etcd_key,
                    "mod_revision": b.mod_revision,
                    "reason": b.reason,
                    "historic": b.historic,
                }
                for b in result.examples
            ],
        }
        if not result.passed:
            lines = [
                f"  {b.etcd_key} @{b.mod_revision}: {b.reason}"
                + (" (older revision)" if b.historic else "")
                for b in result.examples
            ]
            raise SafetyError(
                f"refusing to prune: {result.blocker_count} stored value(s) out of "
                f"{result.scanned} scanned still need what prune would remove:\n"
                + "\n".join(lines),
                hint="run the reencrypt stage again (new objects may have been written "
                "meanwhile); for older revisions, compact etcd (`etcdctl compact`) or pass "
                "--ignore-history if you accept that a restore of an older revision "
                "could no longer be read",
            )
        report = self._write_stage("prune", state, self.plan.prune(doc, state), raws)
        report.gate = gate
        report.messages[:0] = messages
        report.messages.append(
            "restart (or let auto-reload pick up) every apiserver so none still "
            "holds the removed key"
        )
        return report
