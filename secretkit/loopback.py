"""Is a host or URL on the loopback interface? One answer for every caller.

Only ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1) count: names are
never resolved, and a name that merely starts with ``127.`` (``127.0.0.1.nip.io``)
resolves anywhere, so it is not loopback.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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
