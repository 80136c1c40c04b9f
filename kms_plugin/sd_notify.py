"""systemd readiness notification (``Type=notify``) without a dependency.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to
a ``Type=notify`` service; one datagram with ``READY=1`` tells it the service is up,
so units ordered ``After=`` it (kube-apiserver) start only once the socket accepts
connections. Without ``NOTIFY_SOCKET`` every call here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("kms_plugin.sd_notify")


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``) to systemd; True when a message was sent."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return False
    if target.startswith("@"):
        address = "\0" + target[1:]
    elif target.startswith("/"):
        address = target
    else:
        log.warning("ignoring NOTIFY_SOCKET that is neither a path nor @name")
        return False
    message = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as exc:
        # readiness is best effort: systemd would time the unit out and say so itself
        log.warning("cannot notify systemd", extra={"error": exc.strerror or type(exc).__name__})
        return False
    return True
