"""Check that every apiserver runs the same EncryptionConfiguration.

Two sources of truth: the config files themselves (one per control-plane node; their
parsed content must be identical), and, where apiservers run with
``--encryption-provider-config-automatic-reload``, their ``/metrics`` endpoint, whose
``apiserver_encryption_config_controller_last_config_info{hash="sha256:..."}`` says
which file content each one has loaded.
"""

from __future__ import annotations

import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secretkit.errors import SafetyError, UsageError
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
class MetricsEndpoint:
    """An apiserver /metrics URL with optional bearer token and CA file."""

    url: str
    token: str | None = field(default=None, repr=False)
    cafile: str | None = None
    insecure: bool = False

    def fetch(self, timeout: float = 5.0) -> str:
        """GET the metrics page.

        The bearer token is only sent over https or to a loopback host, never through
        a proxy to a loopback host, and never to a redirect target.
        """
        parts = urlsplit(self.url)
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
            context = ssl.create_default_context(cafile=self.cafile)
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8", "replace")


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
    """Poll every endpoint until each reports ``expected``; SafetyError on timeout."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    pending = list(endpoints)
    while pending:
        still = []
        for ep in pending:
            try:
                hashes = parse_config_info_hashes(ep.fetch())
            except (OSError, urllib.error.URLError) as exc:
                seen[ep.url] = f"unreachable ({exc})"
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
            time.sleep(interval)
    return seen
