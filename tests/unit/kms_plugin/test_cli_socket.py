"""``--socket PATH`` listens on exactly PATH, whatever characters it holds.

``"unix://" + PATH`` let the endpoint parser read ``%41`` as an escape and ``?``/``#``
as a query or fragment. Driven through the plugin's real entry point with
``--check-config`` (builds the local backend, prints the endpoint, serves nothing);
the printed endpoint is parsed back to the path it names.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kms_plugin.cli import main, socket_endpoint
from secretkit.backends import write_kek_file
from secretkit.core.encryption_config.endpoint import UnixEndpoint, parse_endpoint
from secretkit.errors import UsageError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SECRETKIT_PLUGIN_* from the developer's shell reaches these runs."""
    for name in list(os.environ):
        if name.startswith("SECRETKIT_PLUGIN_"):
            monkeypatch.delenv(name)


def _check_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str
) -> tuple[int, str, str]:
    tmp_path.mkdir(exist_ok=True)
    kek = tmp_path / "kek.bin"
    write_kek_file(kek)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*argv, "--backend", "local", "--local-kek-file", str(kek), "--check-config"])
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(
    "name",
    ["a%41b.sock", "a%zz.sock", "a?b.sock", "kms#1.sock", "100%.sock", "a b.sock", "@x.sock"],
)
def test_socket_path_is_taken_literally(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    path = f"/run/kms/{name}"
    code, out, err = _check_config(capsys, tmp_path, "--socket", path)
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("listen:")]
    endpoint = line.split(maxsplit=1)[1]
    # the printed endpoint (what goes into the EncryptionConfiguration) names this file
    assert parse_endpoint(endpoint) == UnixEndpoint(path=Path(path))
    assert socket_endpoint(path) == endpoint


def test_socket_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETKIT_PLUGIN_SOCKET", "/run/kms/p%2F.sock")
    code, out, err = _check_config(capsys, tmp_path)
    assert code == 0, err
    assert "listen:       unix:///run/kms/p%252F.sock" in out
    assert parse_endpoint("unix:///run/kms/p%252F.sock").path == Path("/run/kms/p%2F.sock")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("relative.sock", "needs an absolute path"),
        ("run/kms.sock", "needs an absolute path"),
        ("/@kms", "abstract socket"),
        ("/run/kms/", "names no socket"),
        ("/" + "x" * 107, "longer than 107 bytes"),
        ("/run/a\nb.sock", "control character"),
        # "//@x.sock" is the file /@x.sock, whose endpoint reads back as abstract
        ("//@x.sock", "abstract socket"),
        ("///@x.sock", "abstract socket"),
        # pathlib would drop the '.', kube-apiserver dials it as written
        ("/run/kms.sock/.", "'.' or '..' component"),
        ("/run/./kms.sock", "'.' or '..' component"),
        # an argv byte that is not UTF-8 arrives as a lone surrogate
        ("/run/a\udcff.sock", "not UTF-8"),
    ],
)
def test_unusable_socket_paths_are_usage_errors_naming_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: str, words: str
) -> None:
    with pytest.raises(UsageError, match=words) as info:
        socket_endpoint(path)
    assert info.value.where == "--socket"
    code, out, err = _check_config(capsys, tmp_path, "--socket", path)
    assert code == 2
    assert words in err
    assert "where: --socket" in err
    assert "configuration OK" not in out


def test_socket_and_listen_together_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _check_config(
        capsys, tmp_path, "--socket", "/run/a.sock", "--listen", "unix:///run/b.sock"
    )
    assert code == 2
    assert "either --listen or --socket" in err


def test_extra_leading_slashes_give_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the kernel reads //run/kms.sock as /run/kms.sock; the printed endpoint and the
    # gRPC target must not start with "//" (gRPC would take "run" for a host)
    code, out, err = _check_config(capsys, tmp_path, "--socket", "//run/kms.sock")
    assert code == 0, err
    assert "listen:       unix:///run/kms.sock" in out
    code, out, err = _check_config(capsys, tmp_path / "b", "--listen", "unix:////run/kms.sock")
    assert code == 0, err
    assert "listen:       unix:///run/kms.sock" in out
    assert parse_endpoint("unix:////run/kms.sock").grpc_target == "unix:/run/kms.sock"


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("unix:////@x.sock", "first path component starts with '@'"),
        ("unix:///%2F@x.sock", "first path component starts with '@'"),
        ("unix:///run/kms.sock/.", "'.' or '..' component"),
        ("unix:///run/a%FF.sock", "the socket path is not UTF-8"),
        ("unix:///run/a\udcff.sock", "the socket path is not UTF-8"),
    ],
)
def test_unusable_listen_endpoints_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, endpoint: str, words: str
) -> None:
    code, out, err = _check_config(capsys, tmp_path, "--listen", endpoint)
    assert code == 2
    assert words in err
    assert "where: --listen" in err
    assert "Traceback" not in err
    assert "configuration OK" not in out
