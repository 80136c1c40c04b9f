"""Every endpoint the parser accepts round-trips and names one socket for gRPC too.

Property-style: endpoints built from the characters that matter to a URI parser
(slashes, ``@``, ``.``, ``%`` escapes, ``?``/``#`` escaped, non-ASCII, bytes that are
not UTF-8). For each accepted one, the canonical ``endpoint`` parses back to the same
socket, and the gRPC target, decoded as gRPC decodes it, names that socket.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from hypothesis import example, given, settings
from hypothesis import strategies as st

from secretkit.core.encryption_config.endpoint import UnixEndpoint, parse_endpoint
from secretkit.errors import ConfigError

#: pieces an endpoint's path is built from: separators, '@', dot components, escapes
PIECES = st.sampled_from(
    [
        "/",
        "//",
        "@",
        ".",
        "..",
        "%2F",
        "%2f",
        "%40",
        "%25",
        "%3F",
        "%23",
        "%FF",
        "%C3%A9",
        "é",
        "\udcff",
        " ",
        "a",
        "run",
        "kms.sock",
        "x",
    ]
)
ENDPOINTS = st.builds(
    lambda prefix, parts: prefix + "".join(parts),
    st.sampled_from(["unix:", "unix:/", "unix://", "unix:///", "unix:////", "UNIX:///"]),
    st.lists(PIECES, max_size=8),
)


def _grpc_names(target: str) -> UnixEndpoint:
    """What gRPC serves or dials for ``target`` (its URI parser, unix schemes only)."""
    if target.startswith("unix-abstract:"):
        return UnixEndpoint(abstract=unquote(target[len("unix-abstract:") :], errors="strict"))
    assert target.startswith("unix:")
    rest = target[len("unix:") :]
    # "unix://host/path" would be an authority; "?" and "#" a query and fragment
    assert not rest.startswith("//")
    assert "?" not in rest and "#" not in rest
    return UnixEndpoint(path=Path(unquote(rest, errors="strict")))


@settings(max_examples=400, deadline=None)
@given(ENDPOINTS)
@example("unix:////run/kms.sock")
@example("unix:///%2Frun/kms.sock")
@example("unix:////@x.sock")
@example("unix:///run/kms.sock/.")
@example("unix:///run/a%FF.sock")
@example("unix:///run/a\udcff.sock")
def test_accepted_endpoints_round_trip(endpoint: str) -> None:
    try:
        parsed = parse_endpoint(endpoint)
    except ConfigError as exc:
        assert exc.what.startswith("invalid KMS endpoint")
        return
    assert parse_endpoint(parsed.endpoint) == parsed
    assert _grpc_names(parsed.grpc_target) == parsed
    if parsed.path is not None:
        text = str(parsed.path)
        # one leading slash, no '.' components pathlib would have hidden, and the
        # path is what the kernel gets from kube-apiserver's dial
        assert text.startswith("/") and not text.startswith("//")
        assert "." not in text.split("/") and ".." not in text.split("/")
        assert not text.startswith("/@")
        text.encode("utf-8")
    else:
        assert parsed.abstract is not None
        parsed.abstract.encode("utf-8")
