"""One endpoint parser: plugin, clients and ``config validate`` take what the apiserver dials.

The accepted forms follow kube-apiserver's ``envelope/util.ParseEndpoint`` (Go
``url.Parse``, scheme ``unix``, the URL path is the socket, ``/@name`` is abstract).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_plugin.config import build_config, parse_listen
from secretkit.core.encryption_config import endpoint as core_endpoint
from secretkit.core.encryption_config.endpoint import UnixEndpoint, grpc_target, parse_endpoint
from secretkit.core.encryption_config.load import check_encryption_config
from secretkit.core.encryption_config.model import (
    ConfigProblem,
    EncryptionConfig,
    KMSProvider,
    ResourceRule,
)
from secretkit.core.encryption_config.validate import validate_encryption_config
from secretkit.errors import ConfigError, UsageError
from secretkit.kmsapi import endpoint as kmsapi_endpoint

LOCAL = {"type": "local", "keys": [{"kek_file": "/k"}]}

#: endpoint -> (what it names, gRPC target)
ACCEPTED = {
    "unix:///run/kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    # Go's url.Parse: one slash is a path too, and the scheme is case-insensitive
    "unix:/run/kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    "UNIX:///run/kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    "unix:///@kms": (UnixEndpoint(abstract="kms"), "unix-abstract:kms"),
    # percent-escapes are decoded, as the apiserver's dialler sees the path; gRPC
    # decodes its target too, so a literal % is re-escaped there
    "unix:///run/a%20b.sock": (UnixEndpoint(path=Path("/run/a b.sock")), "unix:/run/a b.sock"),
    "unix:///run/a%25b.sock": (UnixEndpoint(path=Path("/run/a%b.sock")), "unix:/run/a%25b.sock"),
    "unix:///@a%25b": (UnixEndpoint(abstract="a%b"), "unix-abstract:a%25b"),
    "unix:///" + "x" * 106: (UnixEndpoint(path=Path("/" + "x" * 106)), "unix:/" + "x" * 106),
    # extra leading slashes are one slash to the kernel; the target must keep one
    # (gRPC reads unix://run/... as the host "run")
    "unix:////run/kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    "unix:///%2Frun/kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    "unix:///run//kms.sock": (UnixEndpoint(path=Path("/run/kms.sock")), "unix:/run/kms.sock"),
    "unix:///run/%40x.sock": (UnixEndpoint(path=Path("/run/@x.sock")), "unix:/run/@x.sock"),
}

#: endpoint -> words the error must contain
REJECTED = {
    "": "empty",
    "tcp://127.0.0.1:1": "unsupported scheme 'tcp'",
    "http://127.0.0.1/kms": "unsupported scheme 'http'",
    # a bare path has no scheme: the apiserver refuses it
    "/run/kms.sock": "no scheme",
    # Go parses unix:@name as opaque: the apiserver would dial an empty path
    "unix:@kms": "unix:@name",
    "unix:@": "unix:@name",
    "unix:relative.sock": "must be absolute",
    "unix:": "must be absolute",
    # two slashes: "run" is a host, the apiserver would dial /kms.sock
    "unix://run/kms.sock": "host part 'run'",
    "unix://relative.sock": "host part",
    "unix://": "names no socket",
    "unix:///": "names no socket",
    "unix:///run/": "names no socket",
    "unix:///@": "abstract socket name is empty",
    "unix:///run/kms.sock?mode=1": "query",
    "unix:///run/kms#1.sock": "fragment",
    "unix:///run/a%zz.sock": "invalid %-escape",
    "unix:///run/a\n.sock": "control character",
    "unix:///run/a%00.sock": "control character",
    "unix:///" + "x" * 107: "longer than 107 bytes",
    "unix:///@" + "x" * 108: "longer than 107 bytes",
    # the file /@x.sock: its only endpoint, unix:///@x.sock, is the abstract socket
    "unix:////@x.sock": "first path component starts with '@'",
    "unix:///%2F@x.sock": "first path component starts with '@'",
    "unix:///%2F%40x.sock": "first path component starts with '@'",
    # pathlib would drop the '.', kube-apiserver dials it (ENOTDIR)
    "unix:///run/kms.sock/.": "'.' or '..' component",
    "unix:///run/./kms.sock": "'.' or '..' component",
    "unix:///run/../kms.sock": "'.' or '..' component",
    # not UTF-8: an escaped byte, and a raw argv byte (a lone surrogate in Python)
    "unix:///run/a%FF.sock": "not UTF-8",
    "unix:///@a%FF": "not UTF-8",
    "unix:///run/a\udcff.sock": "not UTF-8",
}


@pytest.mark.parametrize("endpoint", list(ACCEPTED))
def test_plugin_and_client_accept_the_same(endpoint: str) -> None:
    expected, target = ACCEPTED[endpoint]
    parsed = parse_endpoint(endpoint)
    assert parsed == expected
    assert parse_listen(endpoint, "--listen") == expected
    assert grpc_target(endpoint) == target
    assert parsed.grpc_target == target
    # the canonical spelling names the same socket (what the plugin prints for the config)
    assert parse_endpoint(parsed.endpoint) == parsed


@pytest.mark.parametrize("endpoint", list(REJECTED))
def test_plugin_and_client_reject_the_same_with_one_wording(endpoint: str) -> None:
    words = REJECTED[endpoint]
    with pytest.raises(ConfigError) as client:
        grpc_target(endpoint)
    with pytest.raises(UsageError) as plugin:
        parse_listen(endpoint, "--listen")
    assert words in client.value.what
    # same message and hint; only the class (exit code 2 for the plugin) and where differ
    assert plugin.value.what == client.value.what
    assert plugin.value.hint == client.value.hint
    assert plugin.value.where == "--listen"
    assert plugin.value.exit_code == 2


def test_hints_say_what_to_write() -> None:
    with pytest.raises(ConfigError) as info:
        parse_endpoint("unix:@kms")
    assert info.value.hint == "write unix:///@kms for the abstract socket 'kms'"
    with pytest.raises(ConfigError) as info:
        parse_endpoint("unix://run/kms.sock")
    assert info.value.hint == "write unix:///run/kms.sock (three slashes)"
    with pytest.raises(ConfigError) as info:
        parse_endpoint("/run/kms.sock")
    assert info.value.hint == "write unix:///run/kms.sock"


def test_plugin_config_prints_an_endpoint_the_apiserver_can_use() -> None:
    cfg = build_config({"listen": "unix:///@plugin", "backend": LOCAL}, {}, {})
    assert cfg.listen.abstract == "plugin"
    assert cfg.listen.endpoint == "unix:///@plugin"
    with pytest.raises(UsageError, match="unix:@name") as info:
        build_config({"listen": "unix:@plugin", "backend": LOCAL}, {}, {}, source="p.yaml")
    assert info.value.where == "p.yaml:listen"


def _kms_config(endpoint: str) -> bytes:
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n  - resources: [secrets]\n    providers:\n"
        f"      - kms:\n          apiVersion: v2\n          name: p\n"
        f"          endpoint: '{endpoint}'\n      - identity: {{}}\n"
    ).encode()


@pytest.mark.parametrize("endpoint", [e for e in ACCEPTED if len(e) < 100])
def test_config_validator_accepts_every_endpoint_the_parser_accepts(endpoint: str) -> None:
    _, problems = check_encryption_config(_kms_config(endpoint))
    assert [p for p in problems if p.path.endswith("endpoint")] == []


def test_config_validator_rejects_the_unix_at_form() -> None:
    # upstream's validator only checks the scheme, so kube-apiserver starts with this
    # config and then dials an empty path: the form must not pass `config validate`
    _, problems = check_encryption_config(_kms_config("unix:@kms"))
    (problem,) = [p for p in problems if p.path.endswith("endpoint")]
    assert problem.path == "resources[0].providers[0].kms.endpoint"
    assert "unix:@name" in problem.message
    assert problem.hint == "write unix:///@kms for the abstract socket 'kms'"


@pytest.mark.parametrize("endpoint", [e for e in REJECTED if e])
def test_config_validator_rejects_what_the_parser_rejects_with_its_wording(
    endpoint: str,
) -> None:
    provider = KMSProvider("p", endpoint, api_version="v2")
    rule = ResourceRule(resources=("secrets",), providers=(provider,))
    problems = validate_encryption_config(EncryptionConfig(rules=(rule,)))
    with pytest.raises(ConfigError) as parser:
        parse_endpoint(endpoint)
    # one problem, at the field, with the parser's message and hint
    assert problems == [
        ConfigProblem(
            "resources[0].providers[0].kms.endpoint", parser.value.what, parser.value.hint
        )
    ]


def test_config_validator_still_requires_an_endpoint() -> None:
    provider = KMSProvider("p", "", api_version="v2")
    rule = ResourceRule(resources=("secrets",), providers=(provider,))
    (problem,) = validate_encryption_config(EncryptionConfig(rules=(rule,)))
    assert problem.path == "resources[0].providers[0].kms.endpoint"
    assert problem.message == "endpoint is a mandatory field for a kms"


def test_kmsapi_endpoint_is_the_core_parser() -> None:
    # one parser: the adapters' name re-exports the core module's objects
    assert kmsapi_endpoint.parse_endpoint is core_endpoint.parse_endpoint
    assert kmsapi_endpoint.UnixEndpoint is core_endpoint.UnixEndpoint
