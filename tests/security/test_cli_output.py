"""Default CLI output, JSON output and error messages never show a key or plaintext.

Every command runs through the real entry point (its one error boundary included)
with canary keys and plaintexts; stdout and stderr are searched for them in every
encoding. Files the commands write must be 0600 and replaced atomically.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from secretkit.core.formats import aesgcm_encrypt, encode_unknown, prefix_for, secretbox_encrypt
from secretkit.rotation.files import redacted_diff
from tests.security import canaries as c
from tests.unit.cli.helpers import Run, run_cli

ETCD_KEY = "/registry/secrets/default/db"


def _config(*providers: str) -> str:
    body = "".join(providers)
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n  - resources: [secrets]\n    providers:\n" + body
    )


def _aesgcm(name: str, secret_line: str) -> str:
    return f"      - aesgcm:\n          keys:\n            - name: {name}\n{secret_line}"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _clean(res: Run, *secrets: bytes | str) -> None:
    found = c.leaks(res.out + res.err, *(secrets or c.ALL))
    assert not found, f"secret leaked ({found}):\n{res.out}\n{res.err}"


# -- config generate / show / validate ---------------------------------------------------------


@pytest.mark.parametrize("output", ["text", "json"])
def test_generate_to_file_prints_no_key_and_writes_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    target = tmp_path / "enc.yaml"
    res = run_cli(capsys, "config", "generate", "--provider", "aesgcm", "-f", str(target),
                  "-o", output)
    assert res.code == 0, res.err
    secret = yaml.safe_load(target.read_text())["resources"][0]["providers"][0]["aesgcm"][
        "keys"][0]["secret"]
    _clean(res, secret)
    assert _mode(target) == 0o600


def test_generate_refuses_overwrite_and_force_replaces_a_loose_file_with_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "enc.yaml"
    target.write_text("precious")
    target.chmod(0o644)
    res = run_cli(capsys, "config", "generate", "-f", str(target))
    assert res.code != 0 and "error:" in res.err
    assert target.read_text() == "precious"  # untouched
    res = run_cli(capsys, "config", "generate", "-f", str(target), "--force")
    assert res.code == 0, res.err
    assert _mode(target) == 0o600  # the new key is not left group/world readable
    assert not [p for p in tmp_path.iterdir() if p.name != "enc.yaml"]  # no temp file left


def test_generate_to_stdout_needs_show_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_cli(capsys, "config", "generate", "--provider", "secretbox")
    assert res.code != 0 and "--show-secrets" in res.err
    assert "secret:" not in res.out


@pytest.mark.parametrize("output", ["text", "json"])
def test_show_never_prints_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    path = tmp_path / "enc.yaml"
    path.write_text(_config(_aesgcm("k1", f"              secret: {c.KEY_B64}\n"),
                            _aesgcm("k2", f"              secret: {c.KEY2_B64}\n")))
    res = run_cli(capsys, "config", "show", str(path), "-o", output)
    assert res.code == 0, res.err
    assert "k1" in res.out and "sha256:" in res.out
    _clean(res)


BAD_SECRETS = {
    # not base64: the value itself must not be echoed
    "not-base64": f"              secret: '{c.TOKEN}!!'\n",
    # valid base64 of the wrong length
    "short-key": f"              secret: {c.KEY_B64[:24]}\n",
    # a list / mapping where a string belongs
    "list": f"              secret: ['{c.KEY_B64}']\n",
    "mapping": f"              secret: {{v: '{c.KEY_B64}'}}\n",
    # a typo'd field next to the key: unknown-field errors name the field, not the value
    "typo-field": f"              secret: {c.KEY_B64}\n              secrte: {c.KEY2_B64}\n",
    # YAML syntax errors after a key: no source snippet in the message
    "yaml-error": f"              secret: {c.KEY_B64}\n\t  bad: [\n",
    "unterminated-quote": f"              secret: \"{c.KEY_B64}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_SECRETS))
@pytest.mark.parametrize("command", ["validate", "show"])
def test_bad_key_errors_do_not_echo_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: str
) -> None:
    path = tmp_path / "enc.yaml"
    path.write_text(_config(_aesgcm("k1", BAD_SECRETS[case])))
    for output in ("text", "json"):
        res = run_cli(capsys, "config", command, str(path), "-o", output)
        assert res.code != 0, f"{case} was accepted"
        assert res.err.strip() or res.out.strip()
        _clean(res)


def test_bad_json_config_does_not_echo_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
           "resources": [{"resources": ["secrets"], "providers": [
               {"secretbox": {"keys": [{"name": "k", "secret": c.KEY_B64[:20] + "=="}]}}]}]}
    path = tmp_path / "enc.json"
    path.write_text(json.dumps(doc))
    res = run_cli(capsys, "config", "validate", str(path), "-o", "json")
    assert res.code != 0
    _clean(res, c.KEY_B64[:20])


# -- inspect -------------------------------------------------------------------------------------


@pytest.fixture()
def offline(tmp_path: Path) -> dict[str, Path]:
    """A config with the canary key, and values written with it / with another key."""
    config = tmp_path / "enc.yaml"
    config.write_text(_config(_aesgcm("k1", f"              secret: {c.KEY_B64}\n")))
    plaintext = encode_unknown("v1", "Secret", c.PLAINTEXT)
    prefix = prefix_for("aesgcm", "k1")
    good = tmp_path / "good.bin"
    good.write_bytes(prefix + aesgcm_encrypt(c.KEY, plaintext, ETCD_KEY.encode()))
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(prefix + aesgcm_encrypt(c.KEY2, plaintext, ETCD_KEY.encode()))
    other = tmp_path / "other.bin"
    other.write_bytes(prefix_for("secretbox", "k9") + secretbox_encrypt(c.KEY2, plaintext))
    identity = tmp_path / "identity.bin"
    identity.write_bytes(plaintext)
    return {"config": config, "good": good, "wrong": wrong, "other": other,
            "identity": identity}


@pytest.mark.parametrize("value", ["good", "identity"])
@pytest.mark.parametrize("output", ["text", "json"])
def test_inspect_hides_plaintext_by_default(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str], value: str, output: str
) -> None:
    for with_config in (False, True):
        args = ["inspect", "--etcd-key", ETCD_KEY, "-o", output]
        if with_config:
            args += ["--config", str(offline["config"])]
        res = run_cli(capsys, *args, str(offline[value]))
        # the config has no identity provider: a plaintext value is unreadable then (4)
        assert res.code == (4 if with_config and value == "identity" else 0), res.err
        _clean(res)


def test_inspect_show_plaintext_does_show_it(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The opt-in works, so the default-hiding tests above are not vacuous."""
    res = run_cli(capsys, "inspect", "--etcd-key", ETCD_KEY, "--config", str(offline["config"]),
                  "--show-plaintext", "-o", "json", str(offline["good"]))
    assert res.code == 0, res.err
    assert c.leaks(res.out, c.PLAINTEXT)
    _clean(res, c.KEY, c.KEY2)


@pytest.mark.parametrize("value", ["wrong", "other"])
def test_inspect_decrypt_failure_is_clear_and_leaks_nothing(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str], value: str
) -> None:
    for output in ("text", "json"):
        res = run_cli(capsys, "inspect", "--etcd-key", ETCD_KEY, "--config",
                      str(offline["config"]), "-o", output, str(offline[value]))
        assert res.code == 4 and "error:" in res.err
        _clean(res)
        res = run_cli(capsys, "-vv", "inspect", "--etcd-key", ETCD_KEY, "--config",
                      str(offline["config"]), "--show-plaintext", str(offline[value]))
        assert res.code == 4
        _clean(res)  # tracebacks (-vv) carry no secret either


def test_inspect_bad_input_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(capsys, "inspect", "--etcd-key", ETCD_KEY, str(tmp_path / "missing.bin"))
    assert res.code != 0 and ("error" in res.err.lower() or "usage" in res.err.lower())
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"k8s:enc:kms:v2:p:" + c.PLAINTEXT)
    res = run_cli(capsys, "inspect", "--etcd-key", ETCD_KEY, "-o", "json", str(garbage))
    _clean(res)


# -- rotation / encryption stages: redacted diffs and file modes --------------------------------

FLOW_CONFIG = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - {{name: old1, secret: {c.KEY_B64}}}
            - name: old2
              secret: "{c.KEY2_B64}" # quoted, with a comment
      - identity: {{}}
"""

BLOCK_CONFIG = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: old1
              secret: >-
                {c.KEY_B64}
      - identity: {{}}
"""


@pytest.mark.parametrize("layout", ["flow", "block", "json"])
def test_redacted_diff_masks_every_yaml_layout(layout: str) -> None:
    if layout == "json":
        old = json.dumps(yaml.safe_load(FLOW_CONFIG)).encode()
    else:
        old = (FLOW_CONFIG if layout == "flow" else BLOCK_CONFIG).encode()
    doc = yaml.safe_load(old)
    doc["resources"][0]["providers"][0].popitem()
    doc["resources"][0]["providers"][0]["aesgcm"] = {"keys": [{"name": "n", "secret": "x" * 8}]}
    diff = redacted_diff(old, yaml.safe_dump(doc).encode(), "enc.yaml")
    assert "<redacted" in diff and "-" in diff
    assert not c.leaks(diff, c.KEY, c.KEY2), diff


@pytest.mark.parametrize("layout", ["flow", "block"])
@pytest.mark.parametrize("output", ["text", "json"])
def test_rotate_prepare_dry_run_diff_is_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, output: str
) -> None:
    path = tmp_path / "enc.yaml"
    path.write_text(FLOW_CONFIG if layout == "flow" else BLOCK_CONFIG)
    path.chmod(0o600)
    before = path.read_bytes()
    res = run_cli(capsys, "rotate", "prepare", "--config", str(path), "--dry-run",
                  "--key-name", "new1", "-o", output)
    assert res.code == 0, res.err
    assert "new1" in res.out
    _clean(res)
    assert path.read_bytes() == before


def test_rotate_and_enable_write_0600_files_and_never_print_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = tmp_path / "node-a.yaml"
    node.write_text(FLOW_CONFIG)
    node.chmod(0o640)  # the operator's file was group-readable: the rewrite tightens it
    res = run_cli(capsys, "rotate", "prepare", "--config", str(node), "--yes",
                  "--key-name", "new1")
    assert res.code == 0, res.err
    doc = yaml.safe_load(node.read_text())
    new = next(k["secret"] for k in doc["resources"][0]["providers"][0]["aesgcm"]["keys"]
               if k["name"] == "new1")
    _clean(res, c.KEY, c.KEY2, new)
    written = [p for p in tmp_path.iterdir() if p.is_file()]
    assert any(".bak-" in p.name for p in written)  # the backup holds the old keys...
    assert {p.name: _mode(p) for p in written} == {p.name: 0o600 for p in written}  # ...0600
    res = run_cli(capsys, "rotate", "status", "--config", str(node), "-o", "json")
    assert res.code == 0, res.err
    _clean(res, c.KEY, c.KEY2, new)

    plain = tmp_path / "plain" / "enc.yaml"
    plain.parent.mkdir()
    plain.write_text(_config("      - identity: {}\n"))
    res = run_cli(capsys, "encryption", "enable", "prepare", "--config", str(plain),
                  "--provider", "secretbox", "--key-name", "fresh", "--yes", "-o", "json")
    assert res.code == 0, res.err
    doc = yaml.safe_load(plain.read_text())
    fresh = next(p["secretbox"]["keys"][0]["secret"] for p in doc["resources"][0]["providers"]
                 if "secretbox" in p)
    _clean(res, fresh)
    assert all(_mode(p) == 0o600 for p in plain.parent.iterdir() if p.is_file())


def test_validate_warns_about_a_key_file_others_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "enc.yaml"
    path.write_text(_config(_aesgcm("k1", f"              secret: {c.KEY_B64}\n")))
    path.chmod(0o644)
    res = run_cli(capsys, "config", "validate", str(path))
    assert res.code == 0 and "chmod 600" in res.out and "0644" in res.out
    _clean(res)
    report = json.loads(run_cli(capsys, "config", "validate", str(path), "-o", "json").out)
    assert report["valid"] is True and report["files"][0]["warnings"]
    path.chmod(0o600)
    report = json.loads(run_cli(capsys, "config", "validate", str(path), "-o", "json").out)
    assert report["files"][0]["warnings"] == []
    kms = tmp_path / "kms.yaml"  # no key material: no warning whatever the mode
    kms.write_text(_config('      - kms: {apiVersion: v2, name: p, endpoint: "unix:///s.sock"}\n'))
    kms.chmod(0o644)
    assert "warning" not in run_cli(capsys, "config", "validate", str(kms)).out


BROKEN_KEY_LINE = _config(_aesgcm("k1", f"              secret: {c.KEY_B64}: x\n"))


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "validate"],
        ["config", "show"],
        ["rotate", "prepare", "--dry-run", "--config"],
        ["encryption", "disable", "prepare", "--dry-run", "--config"],
        ["-vv", "rotate", "prepare", "--dry-run", "--config"],
    ],
    ids=["validate", "show", "rotate", "disable", "rotate-vv"],
)
def test_yaml_errors_on_a_key_line_quote_no_part_of_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """PyYAML's messages quote the offending source line; a key must not ride along."""
    path = tmp_path / "enc.yaml"
    path.write_text(BROKEN_KEY_LINE)
    res = run_cli(capsys, *argv, str(path))
    assert res.code != 0 and "error" in res.err.lower()
    assert "9" in res.out + res.err  # the line number is what points the operator at it
    _clean(res)
