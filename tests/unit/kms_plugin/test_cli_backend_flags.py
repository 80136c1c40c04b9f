"""A backend flag of another kind than the chosen backend is a usage error (exit 2).

--vault-key and --aws-key both set ``backend.key``: without this check
``--backend vault --aws-key X`` ran with X as the transit key. Driven through the
plugin's real entry point (its error boundary included), with the kind coming from
the flag, the environment or the config file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from kms_plugin.cli import BACKEND_FLAGS, main
from secretkit.backends import write_kek_file


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SECRETKIT_PLUGIN_* from the developer's shell reaches these runs."""
    for name in list(os.environ):
        if name.startswith("SECRETKIT_PLUGIN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def kek(tmp_path: Path) -> Path:
    path = tmp_path / "kek-1.bin"
    write_kek_file(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    return Run(int(info.value.code or 0), captured.out, captured.err)


#: one value per flag; each kind's flags, enough to be a complete backend on their own
VALUES = {
    "local_kek_file": "/nonexistent/kek.bin",
    "vault_addr": "http://127.0.0.1:1",
    "vault_mount": "transit",
    "vault_key": "k8s-etcd",
    "vault_token_file": "/nonexistent/token",
    "aws_key": "alias/k8s-etcd",
    "aws_region": "us-east-1",
    "aws_endpoint_url": "http://127.0.0.1:1",
}
FOREIGN = [
    (kind, flag_kind, name)
    for kind in BACKEND_FLAGS
    for flag_kind, names in BACKEND_FLAGS.items()
    if flag_kind != kind
    for name in names
]


def test_every_backend_flag_belongs_to_exactly_one_kind() -> None:
    names = [n for names in BACKEND_FLAGS.values() for n in names]
    assert sorted(names) == sorted(VALUES)


@pytest.mark.parametrize(("kind", "flag_kind", "name"), FOREIGN, ids=lambda x: str(x))
def test_flag_of_another_backend_is_refused(
    capsys: pytest.CaptureFixture[str], kind: str, flag_kind: str, name: str
) -> None:
    flag = "--" + name.replace("_", "-")
    res = run(capsys, "--backend", kind, flag, VALUES[name], "--check-config")
    assert res.code == 2
    assert (
        f"error: {flag} is a setting of the {flag_kind} backend, but the backend is {kind} "
        "(from --backend)" in res.err
    )
    assert f"where: {flag}" in res.err
    assert f"--backend {flag_kind}" in res.err
    assert "configuration OK" not in res.out


def test_aws_key_with_vault_points_at_vault_key(capsys: pytest.CaptureFixture[str]) -> None:
    res = run(
        capsys,
        "--backend",
        "vault",
        "--vault-addr",
        "http://127.0.0.1:1",
        "--aws-key",
        "alias/x",
        "--check-config",
    )
    assert res.code == 2
    assert (
        "hint: for the vault backend use --vault-key; drop --aws-key, or choose the aws "
        "backend (--backend aws)" in res.err
    )
    # the value itself is not echoed
    assert "alias/x" not in res.err


def test_kind_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETKIT_PLUGIN_BACKEND", "vault")
    res = run(capsys, "--aws-region", "us-east-1", "--check-config")
    assert res.code == 2
    assert (
        "--aws-region is a setting of the aws backend, but the backend is vault "
        "(from environment variable SECRETKIT_PLUGIN_BACKEND)" in res.err
    )


def test_flag_from_the_environment_is_named_as_such(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kek: Path
) -> None:
    monkeypatch.setenv("SECRETKIT_PLUGIN_VAULT_KEY", "k8s-etcd")
    res = run(capsys, "--backend", "local", "--local-kek-file", str(kek), "--check-config")
    assert res.code == 2
    assert "where: environment variable SECRETKIT_PLUGIN_VAULT_KEY" in res.err
    assert "unset SECRETKIT_PLUGIN_VAULT_KEY" in res.err


def test_kind_from_the_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text("backend:\n  type: vault\n  address: http://127.0.0.1:1\n  key: k8s-etcd\n")
    res = run(capsys, "--config", str(config), "--aws-key", "alias/x", "--check-config")
    assert res.code == 2
    assert f"but the backend is vault (from {config}:backend.type)" in res.err
    assert "for the vault backend use --vault-key" in res.err


def test_backend_flag_overrides_the_file_kind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kek: Path
) -> None:
    # --backend local replaces the file's vault section: local flags are right here
    config = tmp_path / "plugin.yaml"
    config.write_text("backend:\n  type: vault\n  address: http://127.0.0.1:1\n  key: k\n")
    res = run(
        capsys,
        "--config",
        str(config),
        "--backend",
        "local",
        "--local-kek-file",
        str(kek),
        "--check-config",
    )
    assert res.code == 0, res.err
    assert "backend:      local" in res.out
    # and a vault flag is then foreign, even though the file says vault
    res = run(
        capsys,
        "--config",
        str(config),
        "--backend",
        "local",
        "--local-kek-file",
        str(kek),
        "--vault-key",
        "k",
        "--check-config",
    )
    assert res.code == 2
    assert (
        "--vault-key is a setting of the vault backend, but the backend is local "
        "(from --backend)" in res.err
    )


def test_flags_of_the_chosen_kind_still_work(capsys: pytest.CaptureFixture[str], kek: Path) -> None:
    res = run(capsys, "--backend", "local", "--local-kek-file", str(kek), "--check-config")
    assert res.code == 0, res.err
    assert "configuration OK" in res.out


def test_without_any_kind_the_missing_backend_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    res = run(capsys, "--vault-key", "k", "--check-config")
    assert res.code == 2
    assert "no backend configured" in res.err
