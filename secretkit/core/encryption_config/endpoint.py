"""KMS plugin endpoints: one parser for ``--listen``, every client and the config validator.

It lives in the core layer (pure, no I/O, only :mod:`secretkit.errors`) so that
``encryption_config.validate`` can use it without importing an adapter;
:mod:`secretkit.kmsapi.endpoint` re-exports it for the gRPC clients.

kube-apiserver dials a KMS provider's ``endpoint`` through
``k8s.io/apiserver/.../envelope/util.ParseEndpoint``: Go's ``url.Parse``, scheme
``unix`` only, then the URL's *path* is the socket (a path starting with ``/@`` is a
Linux abstract socket, ``@`` + name). So the forms that reach a socket are:

* ``unix:///abs/path.sock`` (also ``unix:/abs/path.sock``): a filesystem socket;
* ``unix:///@name``: the abstract socket ``name``.

``unix:@name`` is *not* one of them: Go parses it as an opaque URL with an empty
path, so the apiserver dials nothing. A plugin that listens somewhere the apiserver
config cannot name is useless, so the plugin, the CLI's clients and ``secretkit config
validate`` accept exactly these forms.

Two deliberate refusals where upstream silently dials something other than what the
string says: a host part (``unix://run/kms.sock`` dials ``/kms.sock``) and a query
or fragment (dropped). Both are almost always typos; the error says what was meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from secretkit.errors import ConfigError

#: ``sun_path`` is 108 bytes: 107 for a path plus its NUL, or NUL plus a 107-byte name
UNIX_PATH_MAX = 107

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")  # RFC 3986, as Go's getScheme
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORMS = "unix:///abs/path.sock, or unix:///@name for an abstract socket"


@dataclass(frozen=True)
class UnixEndpoint:
    """A parsed endpoint: a filesystem socket ``path`` or an ``abstract`` socket name."""

    path: Path | None = None
    abstract: str | None = None

    @property
    def grpc_target(self) -> str:
        """The gRPC target (channel or ``add_insecure_port``) for this socket.

        gRPC parses unix targets as URIs (percent-decoded, ``?`` and ``#`` start a
        query and a fragment), for servers and clients alike, so those are escaped.
        """
        if self.abstract is not None:
            return "unix-abstract:" + _escape(self.abstract)
        path = str(self.path)
        if path.startswith("//"):
            # pathlib keeps a leading "//"; gRPC would read unix://x/... as a host
            path = "/" + path.lstrip("/")
        return "unix:" + _escape(path)

    @property
    def endpoint(self) -> str:
        """The canonical EncryptionConfiguration ``endpoint`` (parses back to ``self``)."""
        raw = "@" + self.abstract if self.abstract is not None else str(self.path).lstrip("/")
        return "unix:///" + _escape(raw)


def _escape(path: str) -> str:
    """Escape what a URI parser (Go's url.Parse, gRPC's) reads as escapes, query, fragment."""
    for char, escaped in (("%", "%25"), ("?", "%3F"), ("#", "%23")):
        path = path.replace(char, escaped)
    return path


def _invalid(endpoint: str, reason: str, where: str | None, hint: str | None = None) -> ConfigError:
    return ConfigError(
        f"invalid KMS endpoint {endpoint!r}: {reason}",
        where=where,
        hint=hint or f"kube-apiserver can dial {_FORMS}",
    )


def parse_endpoint(endpoint: str, *, where: str | None = None) -> UnixEndpoint:
    """Parse an endpoint as kube-apiserver does; refuse every form it cannot dial.

    ``where`` names the setting in errors (``--listen``, a config field). Raises
    :class:`~secretkit.errors.ConfigError`; callers that need another error class
    re-raise its ``what``/``where``/``hint`` so the wording stays the same.
    """
    if not endpoint:
        raise _invalid(endpoint, "it is empty", where)
    if _CONTROL.search(endpoint):
        raise _invalid(endpoint, "it contains a control character", where)
    match = _SCHEME.match(endpoint)
    if match is None:
        raise _invalid(
            endpoint,
            "it has no scheme: kube-apiserver only dials unix:// endpoints",
            where,
            f"write unix://{endpoint}" if endpoint.startswith("/") else None,
        )
    scheme = match.group(1).lower()  # Go's url.Parse lowercases the scheme
    if scheme != "unix":
        raise _invalid(
            endpoint,
            f"unsupported scheme {scheme!r}: kube-apiserver only dials unix sockets",
            where,
        )
    rest = endpoint[match.end() :]
    for char, name in (("#", "fragment"), ("?", "query")):
        if char in rest:
            raise _invalid(
                endpoint,
                f"kube-apiserver drops the {name} after {char!r} and dials the path before it",
                where,
                f"percent-encode a {char!r} that is part of the socket path "
                f"({'%23' if char == '#' else '%3F'})",
            )
    if not rest.startswith("/"):
        if rest.startswith("@"):
            raise _invalid(
                endpoint,
                "kube-apiserver reads no socket path from the unix:@name form",
                where,
                f"write unix:///{rest} for the abstract socket {rest[1:]!r}",
            )
        raise _invalid(
            endpoint,
            "the socket path must be absolute",
            where,
            "write unix:///abs/path.sock (three slashes)",
        )
    if rest.startswith("//"):
        host, slash, after = rest[2:].partition("/")
        if host:
            dialled = f"/{after}" if slash else "no path at all"
            raise _invalid(
                endpoint,
                f"it has a host part {host!r}, which kube-apiserver ignores (it dials {dialled})",
                where,
                f"write unix:///{host}/{after} (three slashes)"
                if slash
                else f"write unix:///abs/path/{host}",
            )
        rest = slash + after
    if _BAD_ESCAPE.search(rest):
        raise _invalid(endpoint, "it has an invalid %-escape", where, "write a literal % as %25")
    # Go's url.Parse percent-decodes the path; so does the apiserver's dialler. Strictly
    # UTF-8: gRPC targets are UTF-8 strings, so a path that is not cannot be served or
    # dialled (a raw argv byte arrives here as a lone surrogate, %FF as a bad byte)
    try:
        path = unquote_to_bytes(rest.encode("utf-8")).decode("utf-8")
    except UnicodeError:
        raise _invalid(endpoint, "the socket path is not UTF-8", where, _UTF8_HINT) from None
    if _CONTROL.search(path):
        raise _invalid(endpoint, "the socket path contains a control character", where)
    if path.startswith("/@"):
        name = path[2:]
        if not name:
            raise _invalid(endpoint, "the abstract socket name is empty", where)
        if len(name.encode("utf-8")) > UNIX_PATH_MAX:
            raise _invalid(
                endpoint, f"the abstract socket name is longer than {UNIX_PATH_MAX} bytes", where
            )
        return UnixEndpoint(abstract=name)
    return UnixEndpoint(path=Path(_filesystem_path(endpoint, path, where)))


#: a socket path the endpoint and gRPC target cannot carry
_UTF8_HINT = "use a socket path made of UTF-8 characters"


def _filesystem_path(endpoint: str, path: str, where: str | None) -> str:
    """Check a decoded filesystem socket path; return it with one leading slash.

    Every accepted path must survive ``parse_endpoint(e.endpoint) == e`` and give a
    gRPC target naming the same file, so the forms that do not are refused.
    """
    if path in ("", "/") or path.endswith("/"):
        raise _invalid(endpoint, "it names no socket (the path is empty or a directory)", where)
    # ``//run/kms.sock`` (from unix:////run/... or %2F) is /run/kms.sock to the kernel,
    # but as a gRPC target ``unix://run/kms.sock`` names a host "run": one slash
    path = "/" + path.lstrip("/")
    if path.startswith("/@"):
        # kube-apiserver dials //@x.sock as a file, but the only endpoint for the
        # file /@x.sock is read back (by it and by us) as the abstract socket x.sock
        raise _invalid(
            endpoint,
            "a socket file whose first path component starts with '@' has no endpoint "
            "that every reader takes for a file (unix:///@name is an abstract socket)",
            where,
            f"for the abstract socket write unix://{path}; for a file pick another directory",
        )
    if any(part in (".", "..") for part in path.split("/")):
        # pathlib drops '.' (``/run/kms.sock/.`` would become /run/kms.sock) while
        # kube-apiserver dials the path as written (ENOTDIR): the two would differ
        raise _invalid(
            endpoint,
            "the socket path has a '.' or '..' component; kube-apiserver dials it as "
            "written, while the plugin would normalise it",
            where,
            "write the socket path without '.' and '..' components",
        )
    if len(path.encode("utf-8")) > UNIX_PATH_MAX:
        raise _invalid(
            endpoint,
            f"the socket path is longer than {UNIX_PATH_MAX} bytes (the unix socket limit)",
            where,
            "use a shorter directory such as /run/kms/",
        )
    return path


def grpc_target(endpoint: str) -> str:
    """Map an endpoint (see :func:`parse_endpoint`) to a gRPC channel target."""
    return parse_endpoint(endpoint).grpc_target
