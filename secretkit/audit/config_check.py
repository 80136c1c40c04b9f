"""``audit config``: CIS-style checks of the apiserver's encryption-at-rest settings.

Inputs are the kube-apiserver static-pod manifest (its flags) and the
EncryptionConfiguration it names (or one passed explicitly). Each check yields a
:class:`CheckFinding` with a severity and a one-line remediation; passed checks are
listed too so the report shows what was covered. Key values are never read into
the report: only provider types, key names and file modes.
"""

from __future__ import annotations

import stat
from pathlib import Path

from secretkit.audit.checks import CheckFinding, CheckReport, Severity
from secretkit.audit.flags import Flags
from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import (
    EncryptionConfig,
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    ProviderType,
    providers_for,
    validate_encryption_config,
)
from secretkit.errors import SecretkitError
from secretkit.fileio import is_private_mode

_SECRETS_RULES = ("secrets", "*.", "*.*")


def apiserver_flag_findings(flags: Flags) -> list[CheckFinding]:
    """Checks on kube-apiserver flags alone."""
    where = flags.source
    out: list[CheckFinding] = []
    has_config = flags.has("encryption-provider-config")
    out.append(
        CheckFinding(
            "apiserver.encryption-provider-config",
            Severity.CRITICAL,
            "encryption at rest configured (--encryption-provider-config)",
            has_config,
            detail=flags.get("encryption-provider-config")
            or "flag absent: Secrets are stored in plaintext in etcd",
            remediation="write an EncryptionConfiguration and pass --encryption-provider-config",
            where=where,
        )
    )
    if has_config:
        out.append(
            CheckFinding(
                "apiserver.encryption-config-reload",
                Severity.LOW,
                "automatic reload of the encryption config "
                "(--encryption-provider-config-automatic-reload)",
                flags.is_true("encryption-provider-config-automatic-reload"),
                detail="without it every key rotation step needs an apiserver restart",
                remediation="add --encryption-provider-config-automatic-reload=true",
                where=where,
            )
        )
    prefix = flags.get("etcd-prefix")
    if prefix and prefix.rstrip("/") != "/registry":
        out.append(
            CheckFinding(
                "apiserver.etcd-prefix",
                Severity.INFO,
                f"custom --etcd-prefix {prefix}",
                True,
                detail=f"pass `--prefix {prefix}` to `secretkit audit` and `reencrypt --via etcd`",
                where=where,
            )
        )
    servers = flags.list("etcd-servers")
    plain = [s for s in servers if s.startswith("http://")]
    out.append(
        CheckFinding(
            "apiserver.etcd-tls",
            Severity.HIGH,
            "apiserver talks to etcd over TLS with a client certificate",
            not plain
            and bool(servers)
            and all(flags.has(f) for f in ("etcd-cafile", "etcd-certfile", "etcd-keyfile")),
            detail=(f"plain http etcd servers: {', '.join(plain)}" if plain else "")
            or ("" if servers else "--etcd-servers absent"),
            remediation="use https --etcd-servers with "
            "--etcd-cafile/--etcd-certfile/--etcd-keyfile",
            where=where,
        )
    )
    return out


def _covers_secrets(cfg: EncryptionConfig) -> bool:
    return any(name in _SECRETS_RULES for rule in cfg.rules for name in rule.resources)


def encryption_config_findings(cfg: EncryptionConfig, path: Path | None) -> list[CheckFinding]:
    """Checks on the EncryptionConfiguration (and its file mode when ``path`` is local)."""
    where = cfg.source
    out: list[CheckFinding] = []
    problems = validate_encryption_config(cfg)
    if not problems:
        out.append(
            CheckFinding(
                "config.valid",
                Severity.HIGH,
                "the encryption config passes the apiserver's validation rules",
                True,
                where=where,
            )
        )
    for problem in problems:
        out.append(
            CheckFinding(
                "config.valid",
                Severity.HIGH,
                f"invalid: {problem.path}: {problem.message}",
                False,
                remediation=problem.hint or "fix the field so the apiserver accepts the file",
                where=where,
            )
        )
    covered = _covers_secrets(cfg)
    out.append(
        CheckFinding(
            "config.secrets-covered",
            Severity.CRITICAL,
            "secrets are covered by a resources rule",
            covered,
            detail="" if covered else "no rule names secrets, *. or *.*: Secrets use identity",
            remediation="add `secrets` to a resources rule with an encrypting provider",
            where=where,
        )
    )
    secrets_providers = providers_for(cfg, "secrets")
    first = secrets_providers[0]
    out.append(
        CheckFinding(
            "config.identity-not-first",
            Severity.CRITICAL,
            "the write provider for secrets is not identity",
            not isinstance(first, IdentityProvider),
            detail="identity first means new Secrets are written in plaintext"
            if isinstance(first, IdentityProvider)
            else f"secrets are written by {_describe(first)}",
            remediation="move an encrypting provider (kms v2, aesgcm, secretbox) before identity",
            where=where,
        )
    )
    all_providers = [p for rule in cfg.rules for p in rule.providers]
    kms_v1 = sorted(
        {p.name for p in all_providers if isinstance(p, KMSProvider) and p.api_version == "v1"}
    )
    out.append(
        CheckFinding(
            "config.kms-v1",
            Severity.MEDIUM,
            "no deprecated kms v1 providers",
            not kms_v1,
            detail=f"kms v1 providers: {', '.join(kms_v1)}" if kms_v1 else "",
            remediation="migrate to kms apiVersion v2 (kms v1 needs the KMSv1 feature gate)",
            where=where,
        )
    )
    aescbc = [
        p
        for p in all_providers
        if isinstance(p, LocalKeyProvider) and p.type is ProviderType.AESCBC
    ]
    out.append(
        CheckFinding(
            "config.aescbc",
            Severity.MEDIUM,
            "no aescbc providers (unauthenticated, padding-oracle prone)",
            not aescbc,
            detail="aescbc is listed" if aescbc else "",
            remediation="prefer kms v2, or secretbox/aesgcm for local keys",
            where=where,
        )
    )
    if isinstance(first, LocalKeyProvider) and first.type is ProviderType.AESGCM:
        out.append(
            CheckFinding(
                "config.aesgcm-rotation",
                Severity.LOW,
                "aesgcm writes secrets: rotate its key before ~200k writes",
                False,
                detail="random 96-bit nonces make nonce reuse likely after ~2^32 writes per key; "
                "upstream recommends rotating every 200k writes",
                remediation="prefer kms v2 (a fresh key per seed) or rotate the aesgcm key often",
                where=where,
            )
        )
    if isinstance(first, LocalKeyProvider):
        out.append(
            CheckFinding(
                "config.local-key-on-disk",
                Severity.LOW,
                "the secrets write key lives in the config file on every control-plane node",
                False,
                detail="anyone with the node's disk (or a backup of it) and etcd can decrypt",
                remediation="use a kms v2 provider backed by an external KMS",
                where=where,
            )
        )
    if path is not None:
        out.append(_file_mode_finding(path))
    return out


def _file_mode_finding(path: Path) -> CheckFinding:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return CheckFinding(
            "config.file-permissions",
            Severity.INFO,
            "encryption config file mode could not be read",
            False,
            detail=exc.strerror or "",
            where=str(path),
        )
    ok = is_private_mode(mode)
    return CheckFinding(
        "config.file-permissions",
        Severity.HIGH,
        "encryption config (key file) is readable by its owner only (0600)",
        ok,
        detail=f"mode {mode:04o}",
        remediation=f"chmod 600 {path}",
        where=str(path),
    )


def _describe(provider: IdentityProvider | LocalKeyProvider | KMSProvider) -> str:
    if isinstance(provider, IdentityProvider):
        return "identity"
    if isinstance(provider, LocalKeyProvider):
        return f"{provider.type.value} key {provider.keys[0].name!r}"
    return f"kms {provider.api_version} provider {provider.name!r}"


def audit_config(flags: Flags | None, encryption_config: Path | None) -> CheckReport:
    """Run the apiserver flag checks and the EncryptionConfiguration checks."""
    subject = " + ".join(
        s
        for s in (
            flags.source if flags else None,
            str(encryption_config) if encryption_config else None,
        )
        if s
    )
    report = CheckReport("config", subject)
    if flags is not None:
        for finding in apiserver_flag_findings(flags):
            report.add(finding)
    path = encryption_config
    if path is None and flags is not None and flags.get("encryption-provider-config"):
        candidate = Path(flags.get("encryption-provider-config") or "")
        if candidate.exists():
            path = candidate
        else:
            report.add(
                CheckFinding(
                    "config.readable",
                    Severity.INFO,
                    "the encryption config named by the manifest is not readable here",
                    False,
                    detail=str(candidate),
                    remediation="run on a control-plane node or pass --config FILE",
                    where=flags.source,
                )
            )
    if path is not None:
        try:
            cfg = load_encryption_config_file(path)
        except SecretkitError as exc:
            report.add(
                CheckFinding(
                    "config.valid",
                    Severity.CRITICAL,
                    "the encryption config does not load (the apiserver would not start)",
                    False,
                    detail=exc.what,
                    remediation=exc.hint or "fix the file; `secretkit config validate` explains",
                    where=str(path),
                )
            )
            report.add(_file_mode_finding(path))
        else:
            for finding in encryption_config_findings(cfg, path):
                report.add(finding)
    return report
