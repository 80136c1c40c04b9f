"""The kubeconfig reader that spares the ``kubernetes`` import: for the kubeconfigs it
takes, it must see exactly what the official client sees; for any other it must step
aside (None), so the official client loads it as kubectl would."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretkit.kube.client import KubeConnectOptions, load_client_configuration
from secretkit.kube.kubeconfig import load_direct
from secretkit.sandbox.servers import generate_test_pki

SERVER = "https://127.0.0.1:6443"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def _write(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any],
           context: dict[str, Any] | None = None) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": context or {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _cases(tmp_path: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    pki = generate_test_pki(tmp_path / "pki")
    (tmp_path / "token").write_text("file-token\n")
    return {
        "token and CA data": ({"server": SERVER, "certificate-authority-data": _b64(pki.ca_cert)},
                              {"token": "tok-1"}),
        "client certificate files, relative CA": (
            {"server": SERVER, "certificate-authority": "pki/ca.crt"},
            {"client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)}),
        "client certificate data": (
            {"server": SERVER, "certificate-authority-data": _b64(pki.ca_cert),
             "tls-server-name": "kubernetes.default"},
            {"client-certificate-data": _b64(pki.client_cert),
             "client-key-data": _b64(pki.client_key)}),
        "insecure with a token file": ({"server": SERVER, "insecure-skip-tls-verify": True},
                                       {"tokenFile": str(tmp_path / "token")}),
    }


@pytest.mark.parametrize("case", ["token and CA data", "client certificate files, relative CA",
                                  "client certificate data", "insecure with a token file"])
def test_it_sees_what_the_official_client_sees(tmp_path: Path, case: str) -> None:
    cluster, user = _cases(tmp_path)[case]
    path = _write(tmp_path, cluster, user)
    ours = load_direct(str(path), None)
    assert ours is not None, case
    theirs = load_client_configuration(KubeConnectOptions(kubeconfig=str(path)))
    assert ours.host == theirs.host
    assert ours.insecure == (not theirs.verify_ssl)
    assert ours.tls_server_name == (getattr(theirs, "tls_server_name", None) or None)
    expected_token = theirs.get_api_key_with_prefix("BearerToken", alias="authorization")
    # a token file's trailing newline: client-go (kubectl) trims it, the Python client
    # does not (a header with a newline); this reader trims, like kubectl
    assert ours.bearer() == (expected_token.strip() if expected_token else None)
    if theirs.ssl_ca_cert:
        ca = ours.ca_data or Path(str(ours.ca_file)).read_bytes()
        assert ca == Path(theirs.ssl_ca_cert).read_bytes()
    if theirs.cert_file:
        cert = ours.cert_data or Path(str(ours.cert_file)).read_bytes()
        key = ours.key_data or Path(str(ours.key_file)).read_bytes()
        assert cert == Path(theirs.cert_file).read_bytes()
        assert key == Path(theirs.key_file).read_bytes()
    context, name = ours.tls_context()  # the TLS material loads
    assert context is not None and name


@pytest.mark.parametrize(("cluster", "user", "context"), [
    ({"server": SERVER}, {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                   "command": "aws"}}, None),
    ({"server": SERVER}, {"auth-provider": {"name": "oidc"}}, None),
    ({"server": SERVER}, {"username": "a", "password": "b"}, None),
    ({"server": SERVER}, {"token": "t", "as": "someone-else"}, None),
    ({"server": SERVER, "proxy-url": "http://10.0.0.1:3128"}, {"token": "t"}, None),
    ({"server": SERVER}, {"token": "t"}, {"cluster": "c", "user": "u", "unknown": 1}),
    ({"server": "unix:///run/k.sock"}, {"token": "t"}, None),
])
def test_it_steps_aside_for_anything_else(tmp_path: Path, cluster: dict[str, Any],
                                          user: dict[str, Any],
                                          context: dict[str, Any] | None) -> None:
    assert load_direct(str(_write(tmp_path, cluster, user, context)), None) is None


def test_it_steps_aside_for_several_files_proxies_and_unknown_contexts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {"server": SERVER}, {"token": "t"})
    assert load_direct(str(path), None) is not None
    assert load_direct(f"{path}:{path}", None) is None
    assert load_direct(str(path), "no-such-context") is None
    assert load_direct(str(tmp_path / "missing"), None) is None
    assert load_direct(None, None) is None  # in-cluster
    (tmp_path / "bad").write_text("{ not yaml")
    assert load_direct(str(tmp_path / "bad"), None) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    assert load_direct(str(path), None) is None


def test_a_common_kubeconfig_does_not_import_the_official_client(tmp_path: Path) -> None:
    path = _write(tmp_path, {"server": SERVER}, {"token": "t"})
    code = ("import sys\n"
            "from secretkit.kube.client import KubeClient, KubeConnectOptions\n"
            f"c = KubeClient(KubeConnectOptions(kubeconfig={str(path)!r}))\n"
            "print(c.host, 'kubernetes' in sys.modules)\n"
            "c.close()\n")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=60)
    assert out.stdout.split() == [SERVER, "False"]


def test_the_credentials_never_show_in_a_repr(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "pki")
    path = _write(tmp_path, {"server": SERVER}, {
        "token": "sekrit-token", "client-certificate-data": _b64(pki.client_cert),
        "client-key-data": _b64(pki.client_key)})
    config = load_direct(str(path), None)
    assert config is not None
    shown = repr(config)
    assert "sekrit-token" not in shown and "PRIVATE KEY" not in shown
    assert b"PRIVATE KEY" in (config.key_data or b"")


def test_ca_data_wins_over_a_ca_file_as_in_the_official_client(tmp_path: Path) -> None:
    """Trusting both would accept a server that only the file's CA signed."""
    data_ca = generate_test_pki(tmp_path / "a").ca_cert
    file_ca = generate_test_pki(tmp_path / "b").ca_cert
    path = _write(tmp_path, {"server": SERVER, "certificate-authority-data": _b64(data_ca),
                             "certificate-authority": str(file_ca)}, {"token": "t"})
    ours = load_direct(str(path), None)
    assert ours is not None and ours.ca_file is None and ours.ca_data == data_ca.read_bytes()
    theirs = load_client_configuration(KubeConnectOptions(kubeconfig=str(path)))
    assert Path(theirs.ssl_ca_cert).read_bytes() == data_ca.read_bytes()


@pytest.mark.parametrize("cluster", [
    {"server": SERVER, "insecure-skip-tls-verify": "false"},
    {"server": SERVER, "insecure-skip-tls-verify": True,
     "certificate-authority-data": base64.b64encode(b"x").decode()},
])
def test_kubeconfigs_kubectl_refuses_are_refused(tmp_path: Path, cluster: dict[str, Any]
                                                 ) -> None:
    from secretkit.errors import UsageError

    with pytest.raises(UsageError) as refused:
        load_direct(str(_write(tmp_path, cluster, {"token": "t"})), None)
    assert "insecure-skip-tls-verify" in refused.value.what


def test_token_file_then_token_as_client_go_picks_them(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    path = _write(tmp_path, {"server": SERVER},
                  {"token": "inline", "tokenFile": str(token_file)})
    config = load_direct(str(path), None)
    assert config is not None
    token_file.write_text("from-file\n")
    assert config.bearer() == "Bearer from-file"  # readable: the file wins
    token_file.unlink()
    assert config.bearer() == "Bearer inline"  # unreadable: the inline token
    token_file.write_text("")
    assert config.bearer() == "Bearer inline"  # empty: the inline token
    alone = load_direct(str(_write(tmp_path, {"server": SERVER},
                                   {"tokenFile": str(token_file)})), None)
    assert alone is not None
    with pytest.raises(OSError):
        alone.bearer()  # empty, and nothing else to send
    token_file.write_text("two\nlines")
    with pytest.raises(ValueError):
        alone.bearer()


def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    from secretkit.kube.http1 import Http1Pool

    pool = Http1Pool("http://127.0.0.1:9", None, None, timeout=1)
    with pytest.raises(ValueError, match="line break"):
        pool.request("GET", "/api", {"authorization": "Bearer a\r\nX-Injected: 1"}, None)
