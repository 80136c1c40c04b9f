"""The sandbox names its plugin socket through the one endpoint module.

``f"unix://{path}"`` is misread when the path holds ``%``, ``?`` or ``#``: kube-apiserver
and our parser percent-decode the path and cut it at a query or fragment, and in YAML
`` #`` starts a comment. Every endpoint the sandbox builds (the EncryptionConfiguration,
the plugin's ``--listen``, the runbook's ``--kms-endpoint``/``--kms-socket``) must map
back to exactly the socket path. Nothing is started here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_plugin.config import parse_listen
from secretkit.core.encryption_config import KMSProvider, load_encryption_config
from secretkit.core.encryption_config.endpoint import parse_endpoint
from secretkit.errors import ConfigError
from secretkit.sandbox import configs
from secretkit.sandbox.orchestrate import SandboxOptions, plugin_argv, sandbox_encryption_config
from secretkit.sandbox.runbook import Runbook
from secretkit.sandbox.state import SandboxState

#: socket paths a temp or user-chosen sandbox directory could produce
AWKWARD = [
    "/tmp/sb%41/kms.sock",  # a naive endpoint would dial /tmp/sbA/kms.sock
    "/tmp/sb%/kms.sock",  # a naive endpoint is an invalid %-escape
    "/tmp/sb #1/kms.sock",  # fragment for the apiserver, comment for YAML
    "/tmp/sb?x=1/kms.sock",  # query
    "/tmp/plain/kms-plugin.sock",
]


def _state(socket_path: str) -> SandboxState:
    directory = str(Path(socket_path).parent)
    return SandboxState(
        dir=directory,
        encryption="kms",
        etcd_endpoint="http://127.0.0.1:2379",
        api_url="https://127.0.0.1:6443",
        api_port=6443,
        kubeconfig=f"{directory}/kubeconfig",
        token_file=f"{directory}/apiserver-token",
        encryption_config=f"{directory}/encryption-config.yaml",
        backends_file=f"{directory}/backends.yaml",
        plugin_socket=socket_path,
        openbao_address="http://127.0.0.1:8200",
        openbao_token_file=f"{directory}/openbao-token",
        transit_mount="transit",
        transit_key="sandbox-kek",
    )


def _kms_endpoint_of(config: bytes) -> str:
    cfg = load_encryption_config(config)  # runs the validator, endpoint check included
    (kms,) = [p for rule in cfg.rules for p in rule.providers if isinstance(p, KMSProvider)]
    return kms.endpoint


def test_the_naive_form_really_is_misread() -> None:
    # what this module guards against: without escaping, another socket is named
    assert parse_endpoint("unix:///tmp/sb%41/kms.sock").path == Path("/tmp/sbA/kms.sock")
    with pytest.raises(ConfigError):
        parse_endpoint("unix:///tmp/sb #1/kms.sock")


@pytest.mark.parametrize("socket_path", AWKWARD)
def test_plugin_endpoint_maps_back_to_the_socket(socket_path: str) -> None:
    endpoint = configs.plugin_endpoint(socket_path)
    assert parse_endpoint(endpoint).path == Path(socket_path)
    assert configs.plugin_endpoint(Path(socket_path)) == endpoint


@pytest.mark.parametrize("socket_path", AWKWARD)
def test_kms_mode_config_names_the_socket(socket_path: str) -> None:
    config = sandbox_encryption_config(SandboxOptions(encryption="kms"), Path(socket_path))
    assert parse_endpoint(_kms_endpoint_of(config)).path == Path(socket_path)


@pytest.mark.parametrize("socket_path", AWKWARD)
def test_custom_config_placeholder_names_the_socket(socket_path: str) -> None:
    # the quickstart's and the e2e tests' way: their own YAML with {kms_endpoint}
    template = b"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: sandbox-kms
          endpoint: {kms_endpoint}
      - identity: {}
"""
    config = sandbox_encryption_config(
        SandboxOptions(encryption_config=template), Path(socket_path)
    )
    assert parse_endpoint(_kms_endpoint_of(config)).path == Path(socket_path)


@pytest.mark.parametrize("socket_path", AWKWARD)
def test_plugin_listens_on_the_socket(socket_path: str) -> None:
    argv = plugin_argv(_state(socket_path), 30.0)
    listen = argv[argv.index("--listen") + 1]
    # the plugin's own --listen parser, as `python -m kms_plugin` runs it
    assert parse_listen(listen, "--listen").path == Path(socket_path)
    assert argv[argv.index("--status-ttl") + 1] == "30.0"


@pytest.mark.parametrize("socket_path", AWKWARD)
def test_runbook_passes_the_socket_to_the_cli(socket_path: str) -> None:
    runbook = Runbook(_state(socket_path), echo=lambda _line: None)
    assert parse_endpoint(runbook.kms_endpoint).path == Path(socket_path)
    # the printed command abbreviates the sandbox directory, escaped or not
    name = Path(socket_path).name
    assert runbook._short(runbook.kms_endpoint) == f"unix://$SB/{name}"
    assert runbook._short(runbook.state.plugin_socket) == f"$SB/{name}"
