"""The operator contract, without servers: exit codes, one JSON document, bounds, flags.

Every case runs the real entry point (its one error boundary included). Cases that
need etcd, OpenBao or the sandbox live in tests/integration/audit/test_contract_etcd.py
and tests/e2e/sandbox/test_contract_sandbox.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secretkit.cli.output import output_from_argv
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    DecryptError,
    DependencyError,
    EtcdError,
    ExitCode,
    FindingsError,
    FormatError,
    KubeError,
    SafetyError,
    SecretkitError,
    UndecryptableError,
    UsageError,
    redact_urls,
)
from tests.schemas import one_document, validate_document
from tests.unit.cli.helpers import Run, run_cli

DATA = Path(__file__).resolve().parents[2] / "data" / "upstream-configs"
VALID = DATA / "valid-configs" / "aes" / "aes-gcm.yaml"
ETCD_KEY = "/registry/secrets/default/db"

# -- the table ---------------------------------------------------------------------------


def test_the_exit_code_table_is_the_documented_one() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0), ("FINDINGS", 1), ("USAGE", 2), ("REFUSED", 3), ("DATA_AT_RISK", 4),
        ("UNAVAILABLE", 5),
    ]  # fmt: skip
    guide = (Path(__file__).resolve().parents[3] / "docs" / "user-guide.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | `{code.reason}` |" in guide, code


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (SecretkitError, 1), (FindingsError, 1), (UsageError, 2), (ConfigError, 2),
        (FormatError, 2), (SafetyError, 3), (UndecryptableError, 4), (DecryptError, 4),
        (DependencyError, 5), (EtcdError, 5), (KubeError, 5), (BackendError, 5),
        (BackendUnavailable, 5), (BackendPermissionDenied, 5), (BackendTimeout, 5),
        (BackendInvalidRequest, 5),
    ],
)  # fmt: skip
def test_each_error_class_carries_its_code(cls: type[SecretkitError], code: int) -> None:
    assert cls("x").exit_code == code
    assert cls("x").to_json()["exit_code"] == code


# -- JSON: one document for every outcome --------------------------------------------------


def _json_error(res: Run, code: int) -> dict[str, object]:
    assert res.code == code, res.err
    doc = one_document(res.out)
    assert validate_document(doc) == "secretkit.error/v1"
    error = doc["error"]
    assert isinstance(error, dict) and error["exit_code"] == code
    assert res.err.startswith("error:"), res.err  # humans still get the message on stderr
    assert "Traceback" not in res.err
    return error


#: usage errors of every kind, from click's own parser to our checks: all exit 2
USAGE_CASES: list[tuple[str, ...]] = [
    ("nosuchcommand",),
    ("audit", "--bogus-flag"),
    ("audit", "--dial-timeout", "5x"),
    ("audit", "--dial-timeout", "nan"),
    ("audit", "--dial-timeout", "99999999999999999999999h"),
    ("audit", "--cert", str(VALID)),
    ("audit", "--cacert", "/nonexistent/ca.crt"),
    ("audit", "--cacert", str(VALID)),  # not PEM
    ("audit", "--fail-on", "plaintxt"),
    ("audit", "--resources", "secret"),
    ("audit", "--resources", "*.*"),
    ("audit", "--page-size", "0"),
    ("audit", "--password", "p", "--password-file", str(VALID), "--user", "u"),
    ("audit", "--endpoints", "http://root:s3cr3t@127.0.0.1:1"),
    ("audit", "etcd-access", "--dial-timeout", "inf", "--etcd-flags", "--x=1"),
    ("audit", "etcd-access"),
    ("audit", "config"),
    ("audit", "config", "--fail-on", "severe", "--config", str(VALID)),
    ("config", "generate", "--provider", "nope"),
    ("config", "generate", "--resources", "secret", "--show-secrets"),
    ("config", "generate", "--provider", "kms", "--kms-name", "a", "--kms-endpoint",
     "unix:///s.sock", "--kms-timeout", "99999999999999999999999h"),
    ("config", "generate", "--provider", "aesgcm"),  # refuses to print a key
    ("config", "show", "/nonexistent/enc.yaml"),
    ("inspect", str(VALID)),  # --etcd-key missing
    ("inspect", "--etcd-key", ETCD_KEY, "/dev/zero"),
    ("sandbox", "seed", "--secrets", "99999999999999999999"),
    ("sandbox", "up", "--kms-poll-interval", "nan"),
    ("sandbox", "up", "--plugin-status-ttl", "inf"),
]


@pytest.mark.parametrize("argv", USAGE_CASES, ids=lambda a: " ".join(a)[:60])
def test_usage_errors_exit_2_with_one_json_error_document(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    # -o json goes last: the mode must be known even when parsing fails before it
    error = _json_error(run_cli(capsys, *argv, "-o", "json"), 2)
    assert error["reason"] == "usage"
    text = run_cli(capsys, *argv)
    assert text.code == 2 and text.out == "" and text.err.startswith("error:"), text.err


def test_the_output_mode_is_read_before_click_parses() -> None:
    assert output_from_argv(["audit", "-o", "json"]) == "json"
    assert output_from_argv(["audit", "--output=json"]) == "json"
    assert output_from_argv(["audit", "-ojson"]) == "json"
    assert output_from_argv(["kms", "rotate", "--", "-o", "json"]) == "text"  # reencrypt's


def test_findings_print_the_report_and_no_second_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n"
                   "resources: [{resources: [secrets], providers: []}]\n")
    res = run_cli(capsys, "config", "validate", str(VALID), str(bad), "-o", "json")
    assert res.code == 1, res.err
    doc = one_document(res.out)  # the report, not an error document after it
    assert validate_document(doc) == "secretkit.config.validate/v1" and doc["valid"] is False


def test_internal_errors_are_reported_without_their_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret-looking-text")

    monkeypatch.setattr("secretkit.config_files.load_encryption_config_file", boom)
    error = _json_error(run_cli(capsys, "config", "show", str(VALID), "-o", "json"), 5)
    assert error["reason"] == "internal" and "RuntimeError" in str(error["what"])
    res = run_cli(capsys, "config", "show", str(VALID))
    assert "secret-looking-text" not in res.out + res.err
    assert "Traceback" not in res.err
    verbose = run_cli(capsys, "config", "show", str(VALID), "-vv")  # -vv after the command
    assert "Traceback" in verbose.err and verbose.code == 5


# -- every output has a schema, checked on real output --------------------------------------


def test_config_outputs_match_their_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "enc.yaml"
    res = run_cli(capsys, "config", "generate", "--provider", "aesgcm", "--resources",
                  "secrets,configmaps,*.apps", "-f", str(target), "-o", "json")
    assert res.code == 0, res.err
    doc = one_document(res.out)
    assert validate_document(doc) == "secretkit.config.generate/v1"
    assert doc["written"] == str(target) and doc["config"] is None
    for argv in (("config", "show", str(target)), ("config", "validate", str(target))):
        res = run_cli(capsys, *argv, "-o", "json")
        assert res.code == 0, res.err
        validate_document(one_document(res.out))


@pytest.mark.parametrize("provider", ["secretbox", "kms"])
def test_generate_to_stdout_with_json_prints_json(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["config", "generate", "--provider", provider, "-o", "json"]
    if provider == "kms":
        args += ["--kms-name", "k", "--kms-endpoint", "unix:///run/k.sock", "--kms-timeout", "7"]
    else:
        args.append("--show-secrets")
    res = run_cli(capsys, *args)
    assert res.code == 0, res.err
    doc = one_document(res.out)
    validate_document(doc)
    assert doc["written"] is None and doc["config"]["kind"] == "EncryptionConfiguration"
    if provider == "kms":  # a bare number is seconds; the config gets a Go duration
        assert doc["config"]["resources"][0]["providers"][0]["kms"]["timeout"] == "7s"


def test_audit_config_and_inspect_match_their_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = tmp_path / "enc.yaml"
    enc.write_bytes(VALID.read_bytes())
    enc.chmod(0o600)
    res = run_cli(capsys, "audit", "config", "--config", str(enc), "-o", "json")
    assert res.code in (0, 1), res.err
    assert validate_document(one_document(res.out)) == "secretkit.audit.checks/v1"
    # the old spelling still works (hidden alias) and gives the same document
    old = run_cli(capsys, "audit", "config", "--encryption-config", str(enc), "-o", "json")
    assert json.loads(old.out) == json.loads(res.out)
    value = tmp_path / "v.bin"
    value.write_bytes(b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x00\x1a\x00\"\x00")
    res = run_cli(capsys, "inspect", "--etcd-key", ETCD_KEY, str(value), "-o", "json")
    assert res.code == 0, res.err
    assert validate_document(one_document(res.out)) == "secretkit.inspect/v1"


def test_every_schema_file_is_linked_from_the_user_guide() -> None:
    root = Path(__file__).resolve().parents[3]
    guide = (root / "docs" / "user-guide.md").read_text()
    for path in (root / "docs" / "schemas").glob("*.json"):
        assert f"(schemas/{path.name})" in guide, path.name


# -- unknown resource names ----------------------------------------------------------------


def test_a_resource_typo_is_an_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("audit", "--resources", "secrets,secret"),
                 ("config", "generate", "--resources", "secret", "--show-secrets")):
        res = run_cli(capsys, *argv)
        assert res.code == 2 and "did you mean 'secrets'" in res.err, res.err


def test_validate_warns_about_names_no_apiserver_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = tmp_path / "enc.yaml"
    enc.write_text(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n"
        "  - resources: [secret, deployments, widgets.example.com, configmaps]\n"
        "    providers: [{identity: {}}]\n"
    )
    res = run_cli(capsys, "config", "validate", str(enc), "-o", "json")
    assert res.code == 0, res.err  # the apiserver accepts it: warnings, not problems
    doc = one_document(res.out)
    validate_document(doc)
    warnings = {w["path"]: w for w in doc["files"][0]["warnings"]}
    assert set(warnings) == {"resources[0].resources[0]", "resources[0].resources[1]"}
    assert "'secrets'" in warnings["resources[0].resources[0]"]["hint"]
    assert "'deployments.apps'" in warnings["resources[0].resources[1]"]["hint"]
    text = run_cli(capsys, "config", "validate", str(enc))
    assert "warning: resources[0].resources[0]: no kube-apiserver serves" in text.out


# -- flags ---------------------------------------------------------------------------------


def test_verbose_works_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "config", "show", str(VALID), "-v").code == 0
    assert run_cli(capsys, "-v", "config", "show", str(VALID), "--verbose").code == 0
    res = run_cli(capsys, "config", "show", "/nonexistent", "-vv")
    assert res.code == 2 and "Traceback" in res.err  # -vv counted after the subcommand


def test_old_flag_spellings_are_hidden_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_cli(capsys, "audit", "--help")
    assert "--etcd-prefix" in res.out and "--prefix " not in res.out
    res = run_cli(capsys, "audit", "config", "--help")
    assert "--config" in res.out and "--encryption-config" not in res.out
    res = run_cli(capsys, "inspect", "--prefix", "/custom", "--etcd-key", "/custom/secrets/a/b",
                  str(VALID), "-o", "json")
    assert res.code == 0 and json.loads(res.out)["resource"] == "secrets", res.err


def test_password_file_and_environment(tmp_path: Path) -> None:
    from secretkit.cli.etcd_options import etcd_config_from

    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    base = {"endpoints": "http://127.0.0.1:2379", "user": "root"}
    assert etcd_config_from({**base, "password_file": pw}).password == "s3cret"
    os.environ["ETCDCTL_PASSWORD"] = "from-env"
    try:
        assert etcd_config_from(base).password == "from-env"
    finally:
        del os.environ["ETCDCTL_PASSWORD"]


# -- credentials in URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://admin:PASS@host:8200/v1", "https://REDACTED@host:8200/v1"),
        ("is etcd at http://root:p@ss@127.0.0.1:2379?", "is etcd at http://REDACTED@127.0.0.1:2379?"),
        ("https://TOKEN@host", "https://REDACTED@host"),
        ("failed for root:PASS@127.0.0.1:1: bad", "failed for REDACTED@127.0.0.1:1: bad"),
        ("mail ops@example.com", "mail ops@example.com"),
        ("unix:///@abstract and unix:///run/a@b.sock", "unix:///@abstract and unix:///run/a@b.sock"),
    ],
)  # fmt: skip
def test_url_credentials_are_redacted(text: str, shown: str) -> None:
    assert redact_urls(text) == shown
    err = UsageError(text, where=text, hint=text)
    assert (err.what, err.where, err.hint) == (shown, shown, shown)


def test_an_endpoint_password_never_reaches_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("audit", "--endpoints", "http://root:s3cr3tPW@127.0.0.1:1"),
                 ("audit", "etcd-access", "--endpoints", "ftp://root:s3cr3tPW@127.0.0.1:1")):
        for output in ("text", "json"):
            res = run_cli(capsys, *argv, "-o", output)
            assert res.code == 2, res.err
            assert "s3cr3tPW" not in res.out + res.err


# -- bounded input: every file-taking option -----------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    huge = tmp_path / "huge"
    with huge.open("wb") as fh:  # sparse: 17 MiB of nothing, over every cap
        fh.truncate(17 * 1024 * 1024)
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)) * 8)
    directory = tmp_path / "dir"
    directory.mkdir()
    return {"device": Path("/dev/zero"), "huge": huge, "binary": binary, "directory": directory}


#: every option of these commands that takes a file; FILE is replaced by the bad file
FILE_OPTIONS: list[tuple[str, ...]] = [
    ("config", "validate", "FILE"),
    ("config", "show", "FILE"),
    ("inspect", "--etcd-key", ETCD_KEY, "FILE"),
    ("inspect", "--etcd-key", ETCD_KEY, "--config", "FILE", str(VALID)),
    ("inspect", "--etcd-key", ETCD_KEY, "--config", str(VALID), "--backends", "FILE", str(VALID)),
    ("audit", "--config", "FILE", "--snapshot", str(VALID)),
    ("audit", "--config", str(VALID), "--backends", "FILE", "--snapshot", str(VALID)),
    ("audit", "--snapshot", "FILE"),
    ("audit", "--cacert", "FILE"),
    ("audit", "--cert", "FILE", "--key", "FILE"),
    ("audit", "--user", "root", "--password-file", "FILE"),
    ("audit", "etcd-access", "--cacert", "FILE", "--etcd-flags", "--x=1"),
    ("audit", "etcd-access", "--manifest", "FILE"),
    ("audit", "config", "--apiserver-manifest", "FILE"),
    ("audit", "config", "--config", "FILE"),
]


@pytest.mark.parametrize("argv", FILE_OPTIONS, ids=lambda a: " ".join(a)[:70])
@pytest.mark.timeout(60)
def test_every_file_option_refuses_devices_huge_binary_and_directories(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, bad in _bad_files(tmp_path).items():
        if kind == "binary" and argv[0] == "inspect" and argv[-1] == "FILE":
            continue  # a stored value is binary: that is what inspect reads
        res = run_cli(capsys, *[str(bad) if a == "FILE" else a for a in argv])
        expected = 1 if argv[:2] == ("config", "validate") else 2  # validate: an invalid file
        assert res.code == expected, f"{kind}: {res.err}"
        assert "Traceback" not in res.err
        if expected == 2:
            assert res.err.startswith("error:") and str(bad) in res.err, f"{kind}: {res.err}"
        else:
            assert str(bad) in res.out


def test_backend_token_files_are_bounded_and_must_be_text(tmp_path: Path) -> None:
    from secretkit.backends import build_backend

    for kind, bad in _bad_files(tmp_path).items():
        backend = build_backend(
            {"type": "vault", "address": "http://127.0.0.1:1", "key": "k",
             "auth": {"method": "token", "token_file": str(bad)}},
            where="b.yaml:kms",
        )  # fmt: skip
        with pytest.raises(ConfigError) as err:
            backend.status()
        assert str(bad) in str(err.value) and "Unicode" not in str(err.value), kind
        backend.close()


def test_vault_tls_files_are_bounded_and_must_be_pem(tmp_path: Path) -> None:
    from secretkit.backends import build_backend

    for kind, bad in _bad_files(tmp_path).items():
        with pytest.raises(ConfigError) as err:
            build_backend(
                {"type": "vault", "address": "https://127.0.0.1:1", "key": "k",
                 "auth": {"method": "token", "token": "t"}, "tls": {"ca_file": str(bad)}},
                where="b.yaml:kms",
            )  # fmt: skip
        assert str(bad) in str(err.value), kind


def test_the_plugin_config_is_bounded(tmp_path: Path) -> None:
    for kind, bad in _bad_files(tmp_path).items():
        proc = subprocess.run(
            [sys.executable, "-m", "kms_plugin", "--config", str(bad), "--check-config"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, f"{kind}: {proc.stderr}"
        assert str(bad) in proc.stderr and "Traceback" not in proc.stderr, kind


# -- numbers within the ranges the apiserver accepts ------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400", "-1"])
def test_backend_timeouts_must_be_finite(value: str, tmp_path: Path) -> None:
    from secretkit.backends import load_backends_file

    path = tmp_path / "b.yaml"
    path.write_text(
        "kms:\n  type: vault\n  address: http://127.0.0.1:1\n  key: k\n"
        f"  auth: {{method: token, token: t}}\n  timeout_seconds: {value}\n"
    )
    with pytest.raises(ConfigError, match="timeout_seconds"):
        load_backends_file(path)


@pytest.mark.parametrize("value", ["nan", "inf", ".nan", "1e400", "0", "-5"])
def test_plugin_status_ttl_must_be_finite_and_positive(value: str) -> None:
    from kms_plugin.config import build_config

    with pytest.raises(UsageError, match="status_ttl"):
        build_config({"status_ttl": value}, {}, {}, source="f.yaml")


def test_a_timeout_go_cannot_hold_is_invalid_like_the_apiserver_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = tmp_path / "enc.yaml"
    enc.write_text(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n"
        "  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: k, "
        "endpoint: 'unix:///k.sock', timeout: 99999999999999999999999h}\n"
    )
    res = run_cli(capsys, "config", "validate", str(enc), "-o", "json")
    assert res.code == 1
    (problem,) = one_document(res.out)["files"][0]["problems"]
    assert problem["path"] == "resources[0].providers[0].kms.timeout"
    assert "invalid duration" in problem["message"]


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from secretkit import fileio

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "enc.yaml"
    target.write_bytes(b"old")
    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(UsageError) as err:
        fileio.write_private(target, b"new")
    assert "No space left on device" in err.value.what and err.value.where == str(target)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_write_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        res = run_cli(capsys, "config", "generate", "-f", str(readonly / "enc.yaml"), "-o", "json")
    finally:
        readonly.chmod(0o700)
    if os.geteuid() == 0:  # pragma: no cover - root writes anyway
        return
    error = _json_error(res, 2)
    assert str(readonly / "enc.yaml") == error["where"]


def test_a_group_without_its_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_cli(capsys, "config")
    assert res.code == 2 and "Commands:" in res.out + res.err and "error:" not in res.err
    error = _json_error(run_cli(capsys, "audit", "etcd-access", "--bogus", "-o", "json"), 2)
    assert error["where"] == "secretkit audit etcd-access"
