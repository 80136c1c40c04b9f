"""Check that every apiserver runs the same EncryptionConfiguration.

Two sources of truth: the config files themselves (one per control-plane node; their
parsed content must be identical), and, where apiservers run with
``--encryption-provider-config-automatic-reload``, their ``/metrics`` endpoint, whose
``apiserver_encryption_config_controller_last_config_info{hash="sha256:..."}`` says
which file content each one has loaded.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secretkit.errors import DependencyError, SafetyError, UsageError
from secretkit.fileio import load_yaml
from secretkit.loopback import is_loopback_host
from secretkit.rotation.files import file_hash, read_config_bytes

_INFO_LINE = re.compile(
    r'^apiserver_encryption_config_controller_last_config_info\{[^}]*hash="(?P<hash>[^"]+)"'
)


def load_identical_configs(paths: Sequence[Path]) -> tuple[dict[str, bytes], Any]:
    """Read every node's config; refuse when their parsed content differs."""
    raws = {str(p): read_config_bytes(p) for p in paths}
    # the raw bytes are kept for the hashes; parse errors never quote a key's line
    docs = {
        name: load_yaml(
            raw,
            source=name,
            what="config file",
            error=UsageError,
            hint="`secretkit config validate FILE` explains it",
        )
        for name, raw in raws.items()
    }
    first_name, first = next(iter(docs.items()))
    differing = [n for n, d in docs.items() if d != first]
    if differing:
        raise SafetyError(
            "the control-plane nodes' configs differ: "
            + ", ".join(f"{n} ({file_hash(raws[n])})" for n in differing)
            + f" vs {first_name} ({file_hash(raws[first_name])})",
            hint="make every node's EncryptionConfiguration identical before rotating "
            "(copy one over the others), then run the stage again",
        )
    return raws, first


def parse_config_info_hashes(metrics_text: str) -> set[str]:
    """All ``hash`` label values of the config info metric in a /metrics page."""
    return {m.group("hash") for line in metrics_text.splitlines() if (m := _INFO_LINE.match(line))}


@dataclass(frozen=True)
class MetricsCredentials:
    """How to authenticate to /metrics: a bearer token and/or a client certificate.

    Any of them may be None; ``cafile`` None means the system's CAs. Built from
    flags, or from a kubeconfig by :func:`metrics_credentials_from_kubeconfig`.
    """

    token: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MetricsEndpoint:
    """An apiserver /metrics URL with optional bearer token, client certificate and CA."""

    url: str
    token: str | None = field(default=None, repr=False)
    cafile: str | None = None
    insecure: bool = False
    certfile: str | None = None
    keyfile: str | None = None

    @classmethod
    def with_credentials(cls, url: str, credentials: MetricsCredentials) -> MetricsEndpoint:
        """``url`` with everything ``credentials`` holds."""
        return cls(
            url=url,
            token=credentials.token,
            cafile=credentials.cafile,
            insecure=credentials.insecure,
            certfile=credentials.certfile,
            keyfile=credentials.keyfile,
        )

    def fetch(self, timeout: float = 5.0) -> str:
        """GET the metrics page.

        The bearer token is only sent over https or to a loopback host, never through
        a proxy to a loopback host, and never to a redirect target.
        """
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                "not an http(s) URL of an apiserver's /metrics",
                where=self.url,
                hint="pass e.g. https://10.0.0.2:6443/metrics to --apiserver-metrics",
            )
        loopback = is_loopback_host(parts.hostname or "")
        if self.token and parts.scheme != "https" and not loopback:
            raise UsageError(
                "refusing to send the metrics bearer token over plain http",
                where=self.url,
                hint="use the apiserver's https:// URL (with --metrics-cacert)",
            )
        request = urllib.request.Request(self.url)  # noqa: S310 - operator-given URL
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if loopback:
            handlers.append(urllib.request.ProxyHandler({}))
        if parts.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=self._tls_context()))
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8", "replace")


    def _tls_context(self) -> ssl.SSLContext:
        """The CA and client certificate; a bad file is a usage error, never a retry."""
        try:
            context = ssl.create_default_context(cafile=self.cafile)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise UsageError(
                f"cannot load the CA file ({type(exc).__name__})",
                where=self.cafile,
                hint="pass a PEM CA bundle to --metrics-cacert",
            ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certfile:
            # only ever presented to the https host itself: redirects are not followed
            try:
                context.load_cert_chain(self.certfile, self.keyfile)
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"cannot load the client certificate and key ({type(exc).__name__})",
                    where=self.certfile,
                    hint="pass a PEM certificate to --metrics-cert and its key to "
                    "--metrics-key (or a kubeconfig with --metrics-kubeconfig)",
                ) from None
        return context


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Fail on a redirect: urllib would replay the Authorization header to the new URL."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        return None


def wait_for_hash(
    endpoints: Sequence[MetricsEndpoint],
    expected: str,
    *,
    timeout: float = 180.0,
    interval: float = 2.0,
    report: Callable[[str], None] = lambda _msg: None,
) -> dict[str, str]:
    """Poll every endpoint until each reports ``expected``; SafetyError on timeout.

    Only what a restarting apiserver does (connection refused or reset, timeouts,
    5xx answers) is waited out. What no wait can fix fails at once with a
    :class:`DependencyError` naming the flag to fix (:func:`permanent_error`): a
    certificate the CA does not verify, credentials the apiserver rejects (401/403),
    a redirect, a missing page.
    """
    deadline = time.monotonic() + timeout
    # a countdown every 10 s, so a wait for a reload (up to a minute) is never silent
    next_note = time.monotonic() + 10
    seen: dict[str, str] = {}
    pending = list(endpoints)
    while pending:
        still = []
        for ep in pending:
            try:
                hashes = parse_config_info_hashes(ep.fetch())
            except (OSError, urllib.error.URLError) as exc:
                permanent = permanent_error(exc, ep.url)
                if permanent is not None:
                    raise permanent from None
                seen[ep.url] = f"unreachable ({_reason(exc)})"
                still.append(ep)
                continue
            if expected in hashes:
                seen[ep.url] = expected
                report(f"  {ep.url}: loaded {expected}")
            else:
                seen[ep.url] = ", ".join(sorted(hashes)) or "no config info metric"
                still.append(ep)
        pending = still
        if pending and time.monotonic() > deadline:
            raise SafetyError(
                "apiservers did not load the new config in time: "
                + "; ".join(f"{ep.url} reports {seen[ep.url]}" for ep in pending),
                hint="check that they run with --encryption-provider-config-automatic-reload "
                "and that the file was copied to every node, or restart them",
            )
        if pending:
            now = time.monotonic()
            if now >= next_note:
                report(
                    f"  still waiting for {len(pending)} apiserver(s) to load {expected} "
                    f"({deadline - now:.0f}s left): "
                    + "; ".join(f"{ep.url} reports {seen[ep.url]}" for ep in pending)
                )
                next_note = now + 10
            time.sleep(interval)
    return seen


#: what to pass for each permanent failure (the stages' flags)
CREDENTIAL_FLAGS = (
    "--metrics-token-file, --metrics-cert/--metrics-key or --metrics-kubeconfig"
)
#: TLS errors a restarting server causes (the connection closes mid-handshake)
_TRANSIENT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError)


def _reason(exc: BaseException) -> str:
    """A short cause (never a response body)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return str(reason) if not isinstance(reason, BaseException) else (
        f"{type(reason).__name__}: {reason}"
    )


def permanent_error(exc: BaseException, url: str) -> DependencyError | None:
    """The error to stop waiting with, or None when ``exc`` may pass (keep polling)."""
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # it holds the connection
        code = exc.code
        if code in (401, 403):
            verb = "rejected the credentials" if code == 401 else "forbids this user"
            return DependencyError(
                f"the apiserver's /metrics answered {code}: it {verb}",
                where=url,
                hint=f"pass credentials allowed to GET /metrics ({CREDENTIAL_FLAGS}); "
                "the user needs `get` on the nonResourceURL /metrics",
            )
        if 300 <= code < 400:
            return DependencyError(
                f"the apiserver's /metrics redirects ({code}); redirects are not followed "
                "with credentials",
                where=url,
                hint="pass the URL the apiserver serves /metrics at directly",
            )
        if code >= 500 or code == 429:
            return None  # starting up or overloaded: wait
        return DependencyError(
            f"the apiserver's /metrics answered {code}",
            where=url,
            hint="check the URL passed to --apiserver-metrics (it ends in /metrics)",
        )
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DependencyError(
            "the apiserver's certificate does not verify: "
            + (reason.verify_message or "certificate verify failed"),
            where=url,
            hint="pass the CA that signed the apiserver's serving certificate with "
            "--metrics-cacert (or the kubeconfig that has it, --metrics-kubeconfig)",
        )
    if isinstance(reason, ssl.SSLError) and not isinstance(reason, _TRANSIENT_TLS):
        return DependencyError(
            f"TLS with the apiserver failed ({reason.reason or type(reason).__name__})",
            where=url,
            hint=f"check --metrics-cacert and the client certificate ({CREDENTIAL_FLAGS}); "
            "an http:// apiserver needs an http:// URL",
        )
    if isinstance(reason, socket.gaierror):
        return DependencyError(
            "the apiserver's host name does not resolve",
            where=url,
            hint="check the URL passed to --apiserver-metrics",
        )
    return None


def metrics_credentials_from_kubeconfig(
    kubeconfig: str | None, context: str | None = None
) -> MetricsCredentials:
    """The CA, client certificate and bearer token a kubeconfig context holds.

    Exec credential plugins run once here (a token lives far longer than a stage's
    wait). Files the kubeconfig embeds as data are written by the official client to
    private temp files it removes at exit.
    """
    from secretkit.kube.client import KubeConnectOptions, load_client_configuration

    configuration = load_client_configuration(
        KubeConnectOptions(kubeconfig=kubeconfig, context=context)
    )
    # the official client keeps it as "BearerToken" (older releases: "authorization")
    token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token and str(token).lower().startswith("bearer "):
        token = str(token)[7:].strip()
    return MetricsCredentials(
        token=str(token) if token else None,
        cafile=configuration.ssl_ca_cert or None,
        certfile=configuration.cert_file or None,
        keyfile=configuration.key_file or None,
        insecure=not configuration.verify_ssl,
    )
