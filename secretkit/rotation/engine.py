"""The stage engine shared by key rotation, enabling and disabling encryption.

Every stage: settle an interrupted earlier write, check that every node's config is
identical and unchanged since the last stage, check that every apiserver runs it,
compute the new document with the plan (round-trip YAML: comments and layout
survive), validate it with the apiserver's rules, show a redacted diff, then (unless
``dry_run``) record the intent, back up and atomically rewrite every node's file and
record the stage.

The stages act on whole rules (:mod:`.scope`): everything the edited rules cover is
re-encrypted and proven. ``reencrypt`` fails unless etcd then shows every value of
those rules written by the write provider; ``prune`` first proves, over the whole
keyspace and the history etcd holds, that every stored value stays readable under
the pruned config (:func:`.gates.prove_readable`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from secretkit.core.encryption_config import EncryptionConfig, load_encryption_config
from secretkit.core.layout import Layout
from secretkit.core.readability import Judge, Verdict, describe
from secretkit.errors import SafetyError, UndecryptableError, UsageError
from secretkit.etcd.interface import WatchableReader
from secretkit.reencrypt.request import ReencryptRequest, outcome_error
from secretkit.reencrypt.summary import Summary
from secretkit.rotation import gates
from secretkit.rotation.files import atomic_write, backup, file_hash, redacted_diff
from secretkit.rotation.plans import Plan
from secretkit.rotation.scope import ScopeMatcher, rule_indexes_of, rule_scope
from secretkit.rotation.state import (
    PendingStage,
    RotationState,
    load_state,
    save_state,
)
from secretkit.rotation.verify import MetricsEndpoint, load_identical_configs, wait_for_hash
from secretkit.rotation.yamldoc import dump_document, load_document

#: what an operator must do for an apiserver to run a changed encryption config
RESTART_HOW = (
    "restart kube-apiserver on every control-plane node: the kubelet does NOT restart a "
    "static pod when only the encryption config file changes (its manifest did not), so "
    "move kube-apiserver.yaml out of the manifests directory and back, or stop its "
    "container (`crictl stop`), and wait until it is ready; or run the apiservers with "
    "--encryption-provider-config-automatic-reload and pass --apiserver-metrics URL "
    "for each, to wait for the new hash"
)


@dataclass
class StageOptions:
    """What every stage needs to know about the world."""

    configs: list[Path]
    state_path: Path
    dry_run: bool = False
    metrics: list[MetricsEndpoint] = field(default_factory=list)
    wait_timeout: float = 180.0
    assume_restarted: bool = False
    etcd_prefix: str = "/registry"
    ignore_history: bool = False
    #: how the operator runs this procedure, for messages (``secretkit rotate``)
    command: str = "secretkit rotate"


@dataclass
class StageWorld:
    """What the stages talk to besides the config files (the CLI wires the real ones)."""

    #: opens an etcd client (the reencrypt proof and the prune gate need one)
    open_etcd: Callable[[], AbstractContextManager[WatchableReader]] | None = None
    #: runs one re-encryption in-process (``secretkit.reencrypt.request.run_reencrypt``)
    reencrypt: Callable[[ReencryptRequest], Summary] | None = None
    #: the request every reencrypt stage starts from (Kubernetes client options, rate)
    reencrypt_template: ReencryptRequest = field(default_factory=ReencryptRequest)
    #: current kms v2 key_ids of a config's providers (name -> key_id; may be partial)
    kms_key_ids: Callable[[EncryptionConfig], dict[str, str]] = lambda _config: {}
    echo: Callable[[str], None] = print
    confirm: Callable[[str], bool] | None = None
    #: the write probe (``--probe-apiserver``): called with the file's config and the
    #: procedure's rule indexes, returns a line per apiserver, raises on a mismatch
    probe: Callable[[EncryptionConfig, Sequence[int]], list[str]] | None = None


@dataclass
class StageReport:
    """What a stage did (also its ``-o json`` shape)."""

    stage: str
    kind: str
    dry_run: bool
    resources: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    new_hash: str | None = None
    diff: str = ""
    gate: dict[str, Any] | None = None
    reencrypt: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None
    next_stage: str | None = None
    messages: list[str] = field(default_factory=list)


def _parse(raw: bytes, where: str) -> EncryptionConfig:
    """The config model; a config the apiserver would refuse never gets written."""
    return load_encryption_config(raw, source=where)


class StageEngine:
    """Runs the stages of one plan against one set of node config files."""

    def __init__(
        self,
        plan: Plan,
        options: StageOptions,
        world: StageWorld | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.world = world or StageWorld()
        self.layout = Layout(options.etcd_prefix)

    @property
    def echo(self) -> Callable[[str], None]:
        """Progress lines (stderr in the CLI)."""
        return self.world.echo

    # -- state and files ---------------------------------------------------------------
    def _settle(self, state: RotationState, raws: dict[str, bytes]) -> None:
        """Finish or roll back a stage whose write was interrupted (see state module)."""
        outcome = state.settle_pending({n: file_hash(r) for n, r in raws.items()})
        if outcome is not None:
            self.echo(f"note: {outcome}")
            if not self.options.dry_run:
                save_state(self.options.state_path, state)

    def _load_state(self, stage: str, raws: dict[str, bytes]) -> RotationState:
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
        self._settle(state, raws)
        state.require_next(stage)
        self._check_unchanged(state, raws)
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

    def _read(self) -> tuple[dict[str, bytes], Any, EncryptionConfig]:
        """Every node's raw file, the round-trip document, and the config model."""
        raws, _plain = load_identical_configs(self.options.configs)
        first_name, first_raw = next(iter(raws.items()))
        return raws, load_document(first_raw, source=first_name), _parse(first_raw, first_name)

    def verify_apiservers(
        self,
        expected_hash: str,
        config: EncryptionConfig | None = None,
        state: RotationState | None = None,
        *,
        probe_proves: bool = True,
    ) -> list[str]:
        """Make sure every apiserver runs the config with ``expected_hash``.

        /metrics first (it waits for an automatic reload), then the write probe. The
        probe proves the file only where its writer differs from the one before
        (``probe_proves``): at ``promote`` the prepared file writes like the previous
        one, so the operator's confirmation is still needed there.
        """
        messages: list[str] = []
        if self.options.metrics:
            self.echo(f"waiting for every apiserver to load {expected_hash} ...")
            seen = wait_for_hash(
                self.options.metrics,
                expected_hash,
                timeout=self.options.wait_timeout,
                report=self.echo,
            )
            messages += [f"{url}: {h}" for url, h in seen.items()]
        note = ""
        if self.world.probe is not None and config is not None and state is not None:
            messages += self.world.probe(config, _rule_indexes(config, state))
            if probe_proves or self.options.metrics:
                return messages
            note = (
                "\n(the write probe cannot show this at promote: what prepare added is "
                "read-only and does not change how an apiserver writes)"
            )
        elif self.options.metrics:
            return messages
        if self.options.assume_restarted:
            return [
                *messages,
                f"every kube-apiserver runs the config {expected_hash} (confirmed with --yes)",
            ]
        message = f"every kube-apiserver must now run the config with hash {expected_hash}: " + (
            RESTART_HOW
        )
        confirm = self.world.confirm
        if confirm is None or not confirm(message + note + "\nDo all apiservers run it now?"):
            raise SafetyError(
                "not confirmed that every apiserver runs the current config",
                hint="restart them (see above), then run this stage again with --yes, or "
                "pass --apiserver-metrics URL per apiserver to wait for the new hash"
                + ("" if note else ", or --probe-apiserver URL per apiserver to probe it"),
            )
        return [*messages, "confirmed by the operator"]

    # -- writing -----------------------------------------------------------------------
    def _backup_label(self, stage: str) -> str:
        if stage == "prune" and self.options.ignore_history:
            return UNPROVEN_PRUNE
        return stage

    def _write_stage(
        self,
        stage: str,
        state: RotationState,
        new_doc: Any,
        raws: dict[str, bytes],
    ) -> StageReport:
        first = next(iter(raws))
        new_raw = dump_document(new_doc, like=raws[first])
        _parse(new_raw, f"{stage} result")
        report = StageReport(
            stage=stage,
            kind=state.kind,
            dry_run=self.options.dry_run,
            resources=list(state.resources),
            new_hash=file_hash(new_raw),
            diff=redacted_diff(raws[first], new_raw, Path(first).name),
        )
        if self.options.dry_run:
            report.next_stage = stage
            report.messages.append("dry run: nothing was written")
            return report
        # the intent first: a crash between here and the record leaves a state that
        # says which files may have changed, and _settle finishes or undoes it
        state.pending = PendingStage(
            stage=stage,
            at=time.time(),
            before={name: file_hash(raw) for name, raw in raws.items()},
            after=file_hash(new_raw),
        )
        save_state(self.options.state_path, state)
        for name in raws:
            report.backups.append(str(backup(Path(name), self._backup_label(stage))))
            atomic_write(Path(name), new_raw)
            report.changed_files.append(name)
        state.record(stage, {name: file_hash(new_raw) for name in raws})
        save_state(self.options.state_path, state)
        report.next_stage = state.next_stage
        return report

    # -- stages ------------------------------------------------------------------------
    def prepare(
        self,
        resources: Sequence[str],
        key_name: str | None = None,
        *,
        check_plugin: Callable[[str], str] | None = None,
    ) -> StageReport:
        """Stage 1: add the new key/provider in a read-only position.

        ``check_plugin`` (enabling KMS) asks the plugin at the new provider's endpoint
        for its Status before the endpoint is written into any config.
        """
        raws, doc, config = self._read()
        existing = load_state(self.options.state_path)
        if existing is not None:
            self._settle(existing, raws)
            if existing.completed and existing.next_stage is not None:
                raise SafetyError(
                    f"a {existing.kind} rotation is in progress "
                    f"(next stage: {existing.next_stage})",
                    hint="finish it, or remove the state file "
                    f"{self.options.state_path} if it was abandoned",
                )
        scope = rule_scope(config, resources)
        state = self.plan.start(doc, list(scope.names), key_name)
        state.configs = [str(p) for p in self.options.configs]
        state.rule_indexes = list(scope.rule_indexes)
        messages: list[str] = []
        endpoint = self._new_kms_endpoint()
        if endpoint is not None and check_plugin is not None:
            key_id = check_plugin(endpoint)
            messages.append(f"the KMS plugin at {endpoint} answers Status (key_id {key_id})")
        report = self._write_stage("prepare", state, self.plan.prepare(doc, state), raws)
        report.messages[:0] = messages
        if len(scope.names) > 1:
            report.messages.append(
                f"this procedure covers every resource of the edited rule(s): "
                f"{', '.join(scope.names)}"
            )
        if not self.options.dry_run:
            report.messages.append(
                "next: make every kube-apiserver run this file before `promote`: " + RESTART_HOW
            )
        return report

    def _new_kms_endpoint(self) -> str | None:
        provider = getattr(self.plan, "provider", None)
        if isinstance(provider, dict) and "kms" in provider:
            endpoint = provider["kms"].get("endpoint")
            return str(endpoint) if endpoint else None
        return None

    def promote(self) -> StageReport:
        """Stage 2: the new key/provider becomes the writer."""
        raws, doc, _config = self._read()
        state = self._load_state("promote", raws)
        messages = self.verify_apiservers(
            file_hash(next(iter(raws.values()))), _config, state, probe_proves=False
        )
        report = self._write_stage("promote", state, self.plan.promote(doc, state), raws)
        report.messages[:0] = messages
        if not self.options.dry_run:
            report.messages.append(
                "next: make every kube-apiserver run this file before `reencrypt`: "
                + RESTART_HOW
            )
        return report

    def reencrypt(self) -> StageReport:
        """Stage 3: rewrite every object of the edited rules, then prove it from etcd."""
        raws, _doc, config = self._read()
        state = self._load_state("reencrypt", raws)
        first = next(iter(raws))
        report = StageReport(
            stage="reencrypt",
            kind=state.kind,
            dry_run=self.options.dry_run,
            resources=list(state.resources),
        )
        report.messages += self.verify_apiservers(file_hash(raws[first]), config, state)
        if self.world.reencrypt is None:
            raise UsageError("the reencrypt stage needs a way to reach the Kubernetes API")
        names = scope_names(config, state)
        request = replace(
            self.world.reencrypt_template,
            via="api",
            resources=(),
            config_resources=tuple(names),
            config=config,
            config_source=first,
            only_stale=False,
            verify=False,
            dry_run=self.options.dry_run,
            etcd_prefix=self.options.etcd_prefix,
        )
        self.echo("re-encrypting " + ", ".join(names) + " through the API server ...")
        summary = self.world.reencrypt(request)
        report.reencrypt = summary.to_json()
        error = outcome_error(summary, request)
        if error is not None:
            error.hint = (error.hint or "") + "; the stage is not recorded: run it again"
            raise error
        if self.options.dry_run:
            report.next_stage = "reencrypt"
            report.messages.append("dry run: nothing was rewritten")
            return report
        report.proof = self._prove_written(config, state, summary)
        report.messages.append(str(report.proof["summary"]))
        state.record("reencrypt", {n: file_hash(r) for n, r in raws.items()})
        save_state(self.options.state_path, state)
        report.next_stage = state.next_stage
        return report

    def _prove_written(
        self, config: EncryptionConfig, state: RotationState, summary: Summary
    ) -> dict[str, Any]:
        """Every value the edited rules govern is now written by the write provider."""
        matcher = _matcher(config, state)
        judge = Judge(config, layout=self.layout, current_key_ids=self.world.kms_key_ids(config))
        scanned = covered = stale = unreadable = 0
        examples: list[str] = []
        lost: list[str] = []
        with self._etcd() as client:
            for page in client.scan(self.layout.root.encode()):
                for kv in page:
                    scanned += 1
                    owner = self.layout.owner(kv.key)
                    if not matcher.covers(owner):
                        continue
                    covered += 1
                    verdict = judge.judge_owned(owner, kv.value)
                    key = kv.key.decode("utf-8", "replace")
                    if verdict.verdict is Verdict.UNREADABLE:
                        unreadable += 1
                        if len(lost) < 10:
                            lost.append(f"{key}: {verdict.reason}")
                    elif verdict.verdict is Verdict.STALE:
                        stale += 1
                        if len(examples) < 10:
                            examples.append(f"{key}: {verdict.reason}")
        names = ", ".join(scope_names(config, state))
        rewritten = summary.totals().get("rewritten", 0)
        if scanned == 0 or (covered == 0 and rewritten > 0):
            # a proof over nothing: the wrong --etcd-prefix or the wrong etcd
            raise SafetyError(
                f"etcd holds {scanned:,} value(s) under {self.layout.root} and "
                f"{covered:,} of {names}, though the re-encryption rewrote {rewritten:,}: "
                "nothing to prove it from",
                where=self.layout.root,
                hint="check --etcd-prefix (the apiserver's own flag) and --endpoints: the "
                "proof must read the etcd the apiservers write to",
            )
        if unreadable:
            raise UndecryptableError(
                f"{unreadable} value(s) of {names} cannot be read by any provider of the "
                "current config (data-loss risk):\n  " + "\n  ".join(lost),
                hint="do not prune; put the key that wrote them back into the config (or "
                "restore those objects from a backup); `secretkit audit` explains each",
            )
        writer = describe(judge.chain(*_first_owner(config, state))[0])
        if stale:
            cause = (
                "the re-encryption rewrote nothing, so the apiservers are not running the "
                "promoted file (they still take the old writer for current)"
                if rewritten == 0
                else f"{rewritten} object(s) were rewritten, yet these are still written by "
                "something else: an apiserver still runs an older file, or wrote them "
                "meanwhile"
            )
            raise SafetyError(
                f"{stale} value(s) of {names} are not written by {writer} after the "
                f"re-encryption: {cause}:\n  " + "\n  ".join(examples),
                hint=RESTART_HOW + "; then run this stage again",
            )
        text = (
            f"etcd: all {covered:,} value(s) of {names} are written by {writer} "
            f"({rewritten:,} rewritten by this run)"
            if covered
            else f"nothing to prove: etcd holds 0 values of {names} "
            "(nothing to re-encrypt)"
        )
        return {"covered": covered, "stale": stale, "writer": writer, "summary": text}

    def _etcd(self) -> AbstractContextManager[WatchableReader]:
        if self.world.open_etcd is None:
            raise UsageError(
                "this stage reads etcd to prove what it did",
                hint="pass --endpoints (and --cacert/--cert/--key) of the etcd cluster",
            )
        return self.world.open_etcd()

    def prune(self) -> StageReport:
        """Stage 4: remove the old key/provider, only if etcd proves nothing needs it."""
        raws, doc, config = self._read()
        state = self._load_state("prune", raws)
        first = next(iter(raws))
        messages = self.verify_apiservers(file_hash(raws[first]), config, state)
        new_doc = self.plan.prune(doc, state)
        after_config = _parse(dump_document(new_doc, like=raws[first]), "prune result")
        key_ids = self.world.kms_key_ids(config)
        matcher = _matcher(config, state)
        self.echo(
            "judging every stored value under the pruned config"
            + ("" if self.options.ignore_history else " (and older revisions)")
            + " ..."
        )
        with self._etcd() as client:
            result = gates.prove_readable(
                client,
                after=Judge(after_config, layout=self.layout, current_key_ids=key_ids),
                before=Judge(config, layout=self.layout, current_key_ids=key_ids),
                covers=matcher.covers,
                include_history=not self.options.ignore_history,
            )
        if not result.passed:
            raise gates.refusal(
                result,
                "prune",
                hint="run the reencrypt stage again (objects may have been written meanwhile "
                "by an apiserver on an older file); for older revisions, compact etcd "
                "(`etcdctl compact`) or pass --ignore-history if you accept that a restore "
                "of an older revision could no longer be read",
            )
        report = self._write_stage("prune", state, new_doc, raws)
        report.gate = result.to_json()
        report.messages[:0] = [*messages, result.summary(", ".join(scope_names(config, state)))]
        if not self.options.dry_run:
            report.messages.append(
                "every kube-apiserver must now drop what was removed: " + RESTART_HOW
            )
            backups = backup_files(self.options.configs)
            if backups:
                report.messages.append(
                    f"{len(backups)} backup file(s) beside the configs still hold what was "
                    "removed (and every key before it), e.g. " + backups[0]
                    + ": keep them until you are satisfied, then delete them with "
                    f"`{self.options.command} clean-backups --config ...`"
                )
        return report


def _rule_indexes(config: EncryptionConfig, state: RotationState) -> tuple[int, ...]:
    """The procedure's rules: recorded at prepare, else (older state files) every rule that
    names one of its resources. Whole rules either way: a shared rule is never half-done."""
    return tuple(state.rule_indexes) or rule_indexes_of(config, state.resources)


def _matcher(config: EncryptionConfig, state: RotationState) -> ScopeMatcher:
    """Which keys the procedure's rules govern."""
    return ScopeMatcher(config, _rule_indexes(config, state))


def scope_names(config: EncryptionConfig, state: RotationState) -> list[str]:
    """Every resource name of the procedure's rules (what re-encryption must cover)."""
    names: list[str] = []
    for index in _rule_indexes(config, state):
        if index < len(config.rules):
            names += [n for n in config.rules[index].resources if n not in names]
    return names or list(state.resources)


def _first_owner(config: EncryptionConfig, state: RotationState) -> tuple[str, str]:
    """``(group, resource)`` of the first scope name, to name the rule's write provider."""
    from secretkit.core.encryption_config.validate import parse_group_resource

    group, resource = parse_group_resource(state.resources[0])
    return group, resource


#: the backup label of a prune whose gate skipped etcd's history (--ignore-history):
#: those copies may be the last holders of keys older revisions still need
UNPROVEN_PRUNE = "prune-unproven"


def backup_files(configs: Sequence[Path]) -> list[str]:
    """Every ``<config>.bak-*`` copy the stages left beside ``configs``."""
    found: list[str] = []
    for config in configs:
        path = Path(config)
        found += sorted(str(p) for p in path.parent.glob(f"{path.name}.bak-*"))
    return found


def deletable_backups(configs: Sequence[Path]) -> list[str]:
    """:func:`backup_files`, once none of them may be the last holder of a key.

    A prune that ran with ``--ignore-history`` proved nothing about the older
    revisions etcd still holds: its backups are refused (SafetyError) until the
    operator proves them unneeded and deletes them by hand.
    """
    found = backup_files(configs)
    unproven = [name for name in found if f".bak-{UNPROVEN_PRUNE}-" in name]
    if unproven:
        raise SafetyError(
            f"refusing to delete {len(unproven)} backup(s) of a prune that ran with "
            "--ignore-history: older revisions etcd still holds may need the keys only "
            "they hold, e.g. " + unproven[0],
            hint="once etcd has compacted, prove nothing needs them with `secretkit audit "
            "--config FILE --history --fail-on undecryptable`, then delete them by hand",
        )
    return found
