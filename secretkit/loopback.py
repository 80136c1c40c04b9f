"""Is a host or URL on the loopback interface? One answer for every caller.

Only ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1) count: names are
never resolved, and a name that merely starts with ``127.`` (``127.0.0.1.nip.io``)
resolves anywhere, so it is not loopback.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from secretkit.errors import UsageError


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is loopback (see :func:`is_loopback_host`)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed URL (e.g. a bad IPv6 literal) is not loopback
        return False
    return is_loopback_host(host)


def parse_host_port(value: str, *, allow_remote: bool, where: str, serves: str,
                    allow_flag: str, expected: str = "HOST:PORT") -> tuple[str, int]:
    """Parse a listen address ``HOST:PORT`` (``[v6]:PORT``) into ``(host, port)``.

    The host must be an IP address or ``localhost``; a non-loopback one only with
    ``allow_remote`` (what ``serves`` says, e.g. "metrics", tells which data would be
    exposed; ``allow_flag`` is the opt-in to name; ``expected`` what the flag takes, for
    the message). UsageError otherwise.
    """
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host:
        raise UsageError(f"expected {expected}, got {value!r}", where=where)
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"port {port_text!r} is not a number", where=where) from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is out of range", where=where)
    if is_loopback_host(host):
        return host, port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"host {host!r} is not an IP address",
            where=where,
            hint="use 127.0.0.1, ::1, localhost, or the node's IP address",
        ) from None
    if not allow_remote:
        raise UsageError(
            f"refusing to serve {serves} on non-loopback address {host}",
            where=where,
            hint=f"pass {allow_flag} if the network exposure is intended",
        )
    return host, port
