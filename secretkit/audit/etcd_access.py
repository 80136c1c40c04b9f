"""``audit etcd-access``: can someone reach etcd's data without the apiserver?

Live probes talk to each client endpoint the way an attacker would: over plain HTTP,
or over TLS *without* a client certificate, asking etcd's JSON gateway for a
``count_only`` range of the Secrets prefix (no value is ever fetched). Flag checks read
etcd's own command line (static-pod manifest or a flag string) for client and peer TLS
settings. Every probe targets only the endpoints the operator names.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from secretkit.audit.checks import CheckFinding, CheckReport, Severity
from secretkit.audit.flags import Flags
from secretkit.errors import UsageError, redact_urls
from secretkit.etcd.keys import prefix_range_end
from secretkit.fileio import is_private_mode
from secretkit.loopback import is_loopback_url


@dataclass(frozen=True)
class ProbeResult:
    """What one unauthenticated request to an endpoint returned."""

    endpoint: str
    reachable: bool
    handshake_ok: bool
    read_allowed: bool
    auth_required: bool
    version: str | None
    error: str | None = None


def _connection(endpoint: str, cacert: Path | None, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"endpoint {redact_urls(endpoint)!r} is not an http:// or https:// URL",
            where="--endpoints",
            hint="e.g. --endpoints https://10.0.0.5:2379",
        )
    port = parts.port or 2379
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    context = ssl.create_default_context(cafile=str(cacert) if cacert else None)
    if cacert is None:
        # we only probe whether the server demands a client certificate; trusting the
        # server is not the question here, and we send no credentials at all
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)


def probe_endpoint(
    endpoint: str,
    *,
    prefix: str = "/registry/secrets/",
    cacert: Path | None = None,
    timeout: float = 5.0,
) -> ProbeResult:
    """Ask ``endpoint`` for a count of keys under ``prefix`` with no credentials at all."""
    key = prefix.encode()
    body = json.dumps(
        {
            "key": base64.b64encode(key).decode(),
            "range_end": base64.b64encode(prefix_range_end(key)).decode(),
            "count_only": True,
        }
    )
    version: str | None = None
    conn = _connection(endpoint, cacert, timeout)
    # the probe never sends the URL's userinfo, and the report never quotes it
    endpoint = redact_urls(endpoint)
    try:
        try:
            conn.request("GET", "/version")
            response = conn.getresponse()
            payload = response.read()
            if response.status == 200:
                version = str(json.loads(payload).get("etcdserver") or "") or None
            conn.request(
                "POST", "/v3/kv/range", body=body, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            payload = response.read()
        except ssl.SSLError as exc:
            return ProbeResult(endpoint, True, False, False, True, version, _ssl_reason(exc))
        except (ConnectionResetError, BrokenPipeError) as exc:
            # TLS 1.3 servers reject a missing client certificate after the handshake
            return ProbeResult(endpoint, True, False, False, True, version, type(exc).__name__)
        except OSError as exc:
            return ProbeResult(endpoint, False, False, False, False, None, exc.strerror or str(exc))
    finally:
        conn.close()
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = {}
    if response.status == 200 and isinstance(answer, dict) and "header" in answer:
        return ProbeResult(endpoint, True, True, True, False, version)
    error = (
        str(answer.get("error") or answer.get("message") or response.reason)
        if isinstance(answer, dict)
        else response.reason
    )
    auth = "user name" in error or "permission denied" in error or "token" in error
    return ProbeResult(endpoint, True, True, False, auth, version, error)


def _ssl_reason(exc: ssl.SSLError) -> str:
    return exc.reason or type(exc).__name__


def probe_findings(result: ProbeResult) -> list[CheckFinding]:
    """Findings from one live probe."""
    where = result.endpoint
    if not result.reachable:
        return [
            CheckFinding(
                "etcd.reachable",
                Severity.INFO,
                "endpoint did not answer",
                False,
                detail=result.error or "",
                where=where,
                remediation="check the address, or run this from a control-plane node",
            )
        ]
    findings: list[CheckFinding] = []
    plain = urlsplit(result.endpoint).scheme == "http"
    findings.append(
        CheckFinding(
            "etcd.client-tls",
            Severity.CRITICAL if not is_loopback_url(where) else Severity.HIGH,
            "client endpoint serves plain HTTP" if plain else "client endpoint uses TLS",
            not plain,
            where=where,
            detail="traffic (including Secret values) crosses the network unencrypted"
            if plain
            else "",
            remediation="serve clients over https with --cert-file/--key-file" if plain else "",
            bypass=plain,
        )
    )
    if result.read_allowed:
        findings.append(
            CheckFinding(
                "etcd.unauthenticated-read",
                Severity.CRITICAL,
                "etcd answers a Secrets range with no client certificate and no credentials",
                False,
                where=where,
                detail="anyone who can reach this port can read and write every Secret",
                remediation="set --client-cert-auth=true and --trusted-ca-file, and require https",
                bypass=True,
            )
        )
    elif result.auth_required and not result.handshake_ok:
        findings.append(
            CheckFinding(
                "etcd.client-cert-auth",
                Severity.CRITICAL,
                "etcd refuses clients without a certificate",
                True,
                where=where,
                detail=f"TLS rejected an anonymous client ({result.error})",
            )
        )
    elif result.auth_required:
        findings.append(
            CheckFinding(
                "etcd.client-cert-auth",
                Severity.HIGH,
                "etcd accepts clients without a certificate (only etcd RBAC stops them)",
                False,
                where=where,
                detail=result.error or "",
                remediation="set --client-cert-auth=true and --trusted-ca-file",
                bypass=False,
            )
        )
    else:
        findings.append(
            CheckFinding(
                "etcd.unauthenticated-read",
                Severity.MEDIUM,
                "anonymous range request was refused for an unclear reason",
                False,
                where=where,
                detail=result.error or "",
                remediation="check manually with etcdctl without --cert/--key",
            )
        )
    if result.version:
        findings.append(
            CheckFinding(
                "etcd.version", Severity.INFO, f"etcd version {result.version}", True, where=where
            )
        )
    return findings


def flag_findings(flags: Flags) -> list[CheckFinding]:
    """Client/peer TLS checks on etcd's own flags."""
    where = flags.source
    out: list[CheckFinding] = []

    def check(
        check_id: str,
        severity: Severity,
        ok: bool,
        title: str,
        fix: str,
        *,
        bypass: bool = False,
        detail: str = "",
    ) -> None:
        out.append(
            CheckFinding(
                check_id,
                severity,
                title,
                ok,
                detail=detail,
                remediation="" if ok else fix,
                where=where,
                bypass=bypass and not ok,
            )
        )

    client_urls = flags.list("listen-client-urls")
    plain = [u for u in client_urls if u.startswith("http://")]
    remote_plain = [u for u in plain if not is_loopback_url(u)]
    check(
        "etcd.flags.listen-client-urls",
        Severity.CRITICAL if remote_plain else Severity.MEDIUM,
        not plain,
        "client URLs are https only",
        "list only https:// URLs in --listen-client-urls",
        bypass=bool(remote_plain),
        detail=", ".join(plain) and f"plain http: {', '.join(plain)}",
    )
    check(
        "etcd.flags.cert-file",
        Severity.HIGH,
        flags.has("cert-file") and flags.has("key-file"),
        "client TLS certificate configured (--cert-file/--key-file)",
        "set --cert-file and --key-file",
    )
    check(
        "etcd.flags.client-cert-auth",
        Severity.CRITICAL,
        flags.is_true("client-cert-auth"),
        "client certificate authentication on (--client-cert-auth=true)",
        "set --client-cert-auth=true",
        bypass=True,
    )
    check(
        "etcd.flags.trusted-ca-file",
        Severity.HIGH,
        flags.has("trusted-ca-file"),
        "client CA configured (--trusted-ca-file)",
        "set --trusted-ca-file to the etcd client CA",
        bypass=True,
    )
    check(
        "etcd.flags.auto-tls",
        Severity.HIGH,
        not flags.is_true("auto-tls"),
        "auto-tls off (self-signed certificates, no client verification)",
        "remove --auto-tls and use real certificates",
        bypass=True,
    )
    peer_urls = flags.list("listen-peer-urls")
    check(
        "etcd.flags.peer-tls",
        Severity.HIGH,
        bool(peer_urls)
        and all(u.startswith("https://") for u in peer_urls)
        and flags.has("peer-cert-file")
        and flags.has("peer-key-file"),
        "peer traffic uses TLS (https peer URLs, --peer-cert-file/--peer-key-file)",
        "serve peers over https with --peer-cert-file/--peer-key-file/--peer-trusted-ca-file",
        bypass=True,
    )
    check(
        "etcd.flags.peer-client-cert-auth",
        Severity.HIGH,
        flags.is_true("peer-client-cert-auth"),
        "peer certificate authentication on (--peer-client-cert-auth=true)",
        "set --peer-client-cert-auth=true",
        bypass=True,
    )
    check(
        "etcd.flags.peer-auto-tls",
        Severity.HIGH,
        not flags.is_true("peer-auto-tls"),
        "peer-auto-tls off",
        "remove --peer-auto-tls and use real peer certificates",
        bypass=True,
    )
    data_dir = flags.get("data-dir")
    if data_dir and Path(data_dir).is_dir():
        mode = stat.S_IMODE(Path(data_dir).stat().st_mode)
        check(
            "etcd.flags.data-dir-permissions",
            Severity.HIGH,
            is_private_mode(mode),
            "etcd data directory is private to its owner (0700)",
            f"chmod 700 {data_dir}",
            bypass=True,
            detail=f"mode {mode:04o}: the bbolt file holds every Secret value",
        )
    return out


def audit_etcd_access(
    endpoints: list[str],
    *,
    flags: Flags | None = None,
    cacert: Path | None = None,
    timeout: float = 5.0,
    prefix: str = "/registry",
) -> CheckReport:
    """Run the live probes on every endpoint and, if given, the flag checks."""
    subject = redact_urls(", ".join(endpoints)) if endpoints else (flags.source if flags else "")
    report = CheckReport("etcd-access", subject)
    for endpoint in endpoints:
        result = probe_endpoint(
            endpoint, prefix=prefix.rstrip("/") + "/secrets/", cacert=cacert, timeout=timeout
        )
        for finding in probe_findings(result):
            report.add(finding)
    if flags is not None:
        for finding in flag_findings(flags):
            report.add(finding)
    return report
