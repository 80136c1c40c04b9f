"""Wire one audit run together: scope, config, KMS services, source, report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.audit.model import (
    DEFAULT_FINDINGS_LIMIT,
    DEFAULT_PAGE_SIZE,
    AuditReport,
    FindingKind,
)
from secretkit.audit.scan import Progress, ScanOptions, scan_etcd, scan_snapshot
from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import EncryptionConfig
from secretkit.core.resources import check_resource_names
from secretkit.errors import FindingsError, UsageError, redact_urls
from secretkit.etcd.config import EtcdConfig
from secretkit.kmsapi.services import KMSServices, current_key_ids, open_kms_services


class AuditFailed(FindingsError):
    """The audit ran and found what ``--fail-on`` lists (exit code 1)."""


@dataclass(frozen=True)
class AuditRequest:
    """Everything one audit needs; built by the CLI from flags."""

    prefix: str = "/registry"
    page_size: int = DEFAULT_PAGE_SIZE
    resources: tuple[str, ...] | None = None
    all_resources: bool = False
    config: Path | None = None
    backends: Path | None = None
    kms_sockets: Mapping[str, str] = field(default_factory=dict)
    decrypt_check: bool = False
    history: bool = False
    snapshot: Path | None = None
    findings_limit: int = DEFAULT_FINDINGS_LIMIT
    #: an audit that reads no object passes (a cluster known to be empty); otherwise
    #: it fails: a wrong prefix, the wrong etcd or a snapshot of nothing proves nothing
    allow_empty: bool = False

    def check(self) -> None:
        """Reject flag combinations that cannot work."""
        check_reading_inputs(
            page_size=self.page_size,
            decrypt_check=self.decrypt_check,
            has_config=self.config is not None,
            kms_inputs=bool(self.backends or self.kms_sockets),
            resources=self.resources,
        )


def check_reading_inputs(
    *,
    page_size: int,
    decrypt_check: bool,
    has_config: bool,
    kms_inputs: bool,
    resources: tuple[str, ...] | None,
) -> None:
    """The flag rules every reader of etcd values shares (the audit, the monitor)."""
    if page_size < 1:
        raise UsageError("--page-size must be at least 1", where="--page-size")
    if decrypt_check and not has_config:
        raise UsageError(
            "--decrypt-check needs --config",
            where="--decrypt-check",
            hint="pass the apiserver's EncryptionConfiguration with --config FILE",
        )
    if kms_inputs and not has_config:
        raise UsageError(
            "--backends/--kms-socket need --config",
            where="--backends/--kms-socket",
            hint="the kms provider names they refer to come from the config",
        )
    if resources is not None and not resources:
        raise UsageError("--resources is empty", where="--resources")
    if resources:
        # a typo would scan nothing and pass: unknown names are errors
        check_resource_names(resources, where="--resources")


def fail_on_kinds(text: str) -> tuple[FindingKind, ...]:
    """Parse ``--fail-on plaintext,stale``; ``none`` means never fail."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    kinds = []
    for name in names:
        try:
            kinds.append(FindingKind(name))
        except ValueError:
            raise UsageError(
                f"unknown --fail-on value {name!r}",
                where="--fail-on",
                hint="choose from " + ", ".join(k.value for k in FindingKind) + " (or none)",
            ) from None
    return tuple(kinds)


def _policy(request: AuditRequest, config: EncryptionConfig | None) -> ScopePolicy:
    if request.resources is not None:
        return ScopePolicy(
            resources=request.resources,
            explicit=True,
            all_resources=request.all_resources,
            config=config,
        )
    return ScopePolicy(all_resources=request.all_resources, config=config)


def _encrypted_by(config: EncryptionConfig) -> tuple[str, ...]:
    """The resource names of the config's rules whose write provider is not identity."""
    names: list[str] = []
    for rule in config.rules:
        if rule.providers and rule.providers[0].type.value != "identity":
            names += [n for n in rule.resources if n not in names]
    return tuple(names)


def run_audit(
    request: AuditRequest,
    *,
    etcd_config: EtcdConfig | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Run one audit against a snapshot file or a live etcd.

    ``etcd_config`` says how to reach etcd (None: the ``ETCDCTL_*`` environment).
    """
    request.check()
    config = load_encryption_config_file(request.config) if request.config else None
    policy = _policy(request, config)
    source = str(request.snapshot) if request.snapshot else _endpoints(etcd_config)
    report = AuditReport(
        source=source,
        prefix=request.prefix,
        config_source=str(request.config) if request.config else None,
        config_hash=config.hash if config else None,
        decrypt_checked=request.decrypt_check,
        protected_resources=request.resources
        or (_encrypted_by(config) if config else ("secrets",)),
        findings_limit=request.findings_limit,
    )
    if config is not None and request.resources is None:
        report.notes.append(
            "protected resources: those the config encrypts (write provider is not identity)"
        )
    services = open_kms_services(request.backends, request.kms_sockets) if config else KMSServices()
    try:
        transformers = None
        if config is not None:
            report.kms_key_ids, notes = current_key_ids(config, services)
            report.notes.extend(notes)
            if request.decrypt_check:
                from secretkit.core.transformers import build_transformers

                transformers = build_transformers(config, services.factory)
                transformers.refresh_kms()
        classifier = Classifier(
            policy=policy,
            prefix=request.prefix,
            kms_key_ids=report.kms_key_ids,
            transformers=transformers,
        )
        options = ScanOptions(
            prefix=request.prefix, page_size=request.page_size, history=request.history
        )
        if request.snapshot is not None:
            scan_snapshot(request.snapshot, classifier, report, options, progress)
        else:
            from secretkit.etcd import EtcdClient

            with EtcdClient(etcd_config) as client:
                scan_etcd(client, classifier, report, options, progress)
    finally:
        services.close()
    if report.total_objects == 0:
        report.nothing_checked = not request.allow_empty
        report.notes.append(
            f"no keys matched under {request.prefix!r}: check --etcd-prefix (the apiserver's own "
            "flag) and --resources"
        )
    return report


def _endpoints(etcd_config: EtcdConfig | None) -> str:
    endpoints = etcd_config.endpoints if etcd_config is not None else ()
    # reports quote the source: never the credentials of an http://user:pass@ endpoint
    return redact_urls(",".join(str(e) for e in endpoints)) or "etcd"
