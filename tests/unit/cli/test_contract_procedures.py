"""`-o json` of the staged procedures, split-rule and kek create, validated on real output.

Every case runs the real entry point on config files in a tmp dir (no servers): each
document must be exactly one JSON document on stdout and validate against the schema
file it names. The stages that need etcd or the Kubernetes API (reencrypt, prune), the
reencrypt command and the kms commands are validated on a sandbox in
tests/e2e/rotation/test_json_schemas.py.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends.local import default_key_id
from secretkit.cli.output import schema_id, schema_path
from secretkit.rotation.state import PendingStage, load_state, save_state
from secretkit.sandbox.servers import free_port
from tests.schemas import REPO, one_document, validate_document
from tests.unit.cli.helpers import Run, run_cli

AESGCM_KEY = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
SHARED_AESGCM = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: "{AESGCM_KEY}"
      - identity: {{}}
"""
PLAINTEXT = """\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
"""


def _nodes(tmp_path: Path, text: str, count: int = 2) -> list[str]:
    """``--config`` flags for ``count`` identical node files."""
    flags: list[str] = []
    for i in range(count):
        path = tmp_path / f"node{i + 1}.yaml"
        path.write_text(text)
        path.chmod(0o600)
        flags += ["--config", str(path)]
    return flags


def _doc(res: Run, schema: str, code: int = 0) -> dict[str, Any]:
    assert res.code == code, res.err
    doc = one_document(res.out)
    assert validate_document(doc) == schema
    assert "Traceback" not in res.err
    return doc


def _error(res: Run, code: int) -> dict[str, Any]:
    error: dict[str, Any] = _doc(res, "secretkit.error/v1", code)["error"]
    # humans still get the message on stderr (after any progress lines)
    assert error["exit_code"] == code and re.search("^error: ", res.err, re.M), res.err
    return error


# -- the stages that need no server ----------------------------------------------------------


def test_rotate_prepare_and_promote_print_stage_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM)
    every = ["--resources", "secrets,configmaps"]
    dry = _doc(run_cli(capsys, "rotate", "prepare", *cfg, *every, "--key-name", "key2",
                       "--dry-run", "--yes", "-o", "json"), "secretkit.stage/v1")
    assert (dry["stage"], dry["kind"], dry["dry_run"]) == ("prepare", "local-key", True)
    assert dry["changed_files"] == [] and dry["next_stage"] == "prepare"
    assert "+            - name: key2" in dry["diff"] and AESGCM_KEY not in dry["diff"]

    done = _doc(run_cli(capsys, "rotate", "prepare", *cfg, *every, "--key-name", "key2",
                        "--yes", "-o", "json"), "secretkit.stage/v1")
    assert done["changed_files"] == cfg[1::2] and len(done["backups"]) == 2
    assert done["resources"] == ["secrets", "configmaps"] and done["next_stage"] == "promote"
    assert done["gate"] is None and done["reencrypt"] is None and done["proof"] is None

    promoted = _doc(run_cli(capsys, "rotate", "promote", *cfg, "--yes", "-o", "json"),
                    "secretkit.stage/v1")
    assert promoted["stage"] == "promote" and promoted["next_stage"] == "reencrypt"
    assert promoted["new_hash"] != done["new_hash"]
    assert AESGCM_KEY not in str(done) + str(promoted)


@pytest.mark.parametrize(
    ("procedure", "text", "flags", "kind"),
    [
        (("encryption", "enable"), PLAINTEXT, ("--provider", "aescbc"), "enable"),
        (("encryption", "disable"), SHARED_AESGCM, ("--resources", "secrets,configmaps"),
         "disable"),
    ],
)  # fmt: skip
def test_enable_and_disable_print_the_same_stage_document(
    procedure: tuple[str, str], text: str, flags: tuple[str, ...], kind: str,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    cfg = _nodes(tmp_path, text, count=1)
    doc = _doc(run_cli(capsys, *procedure, "prepare", *cfg, *flags, "--yes", "-o", "json"),
               "secretkit.stage/v1")
    assert (doc["kind"], doc["stage"], doc["next_stage"]) == (kind, "prepare", "promote")
    status = _doc(run_cli(capsys, *procedure, "status", *cfg, "-o", "json"),
                  "secretkit.stage.status/v1")
    assert status["kind"] == kind and status["in_progress"] is True


def test_status_without_with_and_with_an_interrupted_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM)
    none = _doc(run_cli(capsys, "rotate", "status", *cfg, "-o", "json"),
                "secretkit.stage.status/v1")
    assert none == {"schema": "secretkit.stage.status/v1", "in_progress": False,
                    "state_file": str(tmp_path / "secretkit-rotation.json")}  # fmt: skip
    assert run_cli(capsys, "rotate", "prepare", *cfg, "--resources", "secrets,configmaps",
                   "--key-name", "key2", "--yes").code == 0  # fmt: skip
    status = _doc(run_cli(capsys, "rotate", "status", *cfg, "-o", "json"),
                  "secretkit.stage.status/v1")
    assert status["last_stage"] == "prepare" and status["next_stage"] == "promote"
    assert status["new_key_name"] == "key2" and status["old_key_names"] == ["key1"]
    assert status["pending"] is None and status["configs"] == cfg[1::2]

    # a crash between the intent and the record: the status shows the pending write
    path = Path(status["state_file"])
    state = load_state(path)
    assert state is not None
    hashes = state.completed[-1].hashes
    state.pending = PendingStage("promote", 1.0, dict(hashes), next(iter(hashes.values())))
    save_state(path, state)
    pending = _doc(run_cli(capsys, "rotate", "status", "--state", str(path), "-o", "json"),
                   "secretkit.stage.status/v1")
    assert pending["pending"]["stage"] == "promote" and pending["in_progress"] is True


def test_clean_backups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM)
    empty = _doc(run_cli(capsys, "rotate", "clean-backups", *cfg, "-o", "json"),
                 "secretkit.stage.clean-backups/v1")
    assert empty["backups"] == [] and empty["deleted"] == []
    assert run_cli(capsys, "rotate", "prepare", *cfg, "--resources", "secrets,configmaps",
                   "--yes").code == 0  # fmt: skip
    listed = _doc(run_cli(capsys, "rotate", "clean-backups", *cfg, "--dry-run", "-o", "json"),
                  "secretkit.stage.clean-backups/v1")
    assert len(listed["backups"]) == 2 and listed["deleted"] == [] and listed["dry_run"]
    # not confirmed (no terminal, no --yes): nothing deleted, one error document
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    error = _error(run_cli(capsys, "rotate", "clean-backups", *cfg, "-o", "json"), 2)
    assert "not confirmed" in error["what"]
    assert all(Path(b).exists() for b in listed["backups"])
    deleted = _doc(run_cli(capsys, "rotate", "clean-backups", *cfg, "--yes", "-o", "json"),
                   "secretkit.stage.clean-backups/v1")
    assert deleted["deleted"] == listed["backups"]
    assert not any(Path(b).exists() for b in listed["backups"])


def test_split_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM)
    args = ("config", "split-rule", *cfg, "--resources", "secrets", "-o", "json")
    dry = _doc(run_cli(capsys, *args, "--dry-run"), "secretkit.config.split-rule/v1")
    assert dry["dry_run"] and dry["changed_files"] == [] and dry["resources"] == ["secrets"]
    assert AESGCM_KEY not in dry["diff"]
    done = _doc(run_cli(capsys, *args), "secretkit.config.split-rule/v1")
    assert done["changed_files"] == cfg[1::2] and done["new_hash"] == dry["new_hash"]
    assert len(done["backups"]) == 2


def test_kek_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kek-1.bin"
    doc = _doc(run_cli(capsys, "kek", "create", str(path), "-o", "json"),
               "secretkit.kek.create/v1")
    kek = path.read_bytes()
    assert doc == {"schema": "secretkit.kek.create/v1", "path": str(path),
                   "key_id": default_key_id(kek)}  # fmt: skip
    error = _error(run_cli(capsys, "kek", "create", str(path), "-o", "json"), 2)
    assert error["where"] == str(path) and path.read_bytes() == kek


# -- refusals and usage errors: one error document, nothing else --------------------------------


def test_a_refused_stage_prints_one_error_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM)
    # no state yet: nothing to promote
    error = _error(run_cli(capsys, "rotate", "promote", *cfg, "--yes", "-o", "json"), 3)
    assert error["reason"] == "refused" and "no rotation in progress" in error["what"]
    assert run_cli(capsys, "rotate", "prepare", *cfg, "--resources", "secrets,configmaps",
                   "--yes").code == 0  # fmt: skip
    # out of order (before any etcd is dialled) and unconfirmed restarts: both exit 3
    error = _error(run_cli(capsys, "rotate", "prune", *cfg, "--yes", "-o", "json"), 3)
    assert "next one is `promote`" in error["what"]
    error = _error(run_cli(capsys, "rotate", "promote", *cfg, "-o", "json"), 3)
    assert "not confirmed" in error["what"]
    error = _error(run_cli(capsys, "encryption", "enable", "promote", *cfg, "--yes", "-o",
                           "json"), 3)  # fmt: skip
    assert "'local-key' procedure" in error["what"]


def test_an_unreachable_etcd_is_one_error_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _nodes(tmp_path, SHARED_AESGCM, count=1)
    for stage in ("prepare", "promote"):
        extra = ["--resources", "secrets,configmaps"] if stage == "prepare" else []
        assert run_cli(capsys, "rotate", stage, *cfg, *extra, "--yes").code == 0
    # as if the reencrypt stage had run: the prune gate is next and must dial etcd
    path = tmp_path / "secretkit-rotation.json"
    state = load_state(path)
    assert state is not None
    state.record("reencrypt", state.completed[-1].hashes)
    save_state(path, state)
    endpoint = f"http://127.0.0.1:{free_port()}"
    error = _error(run_cli(capsys, "rotate", "prune", *cfg, "--yes", "--endpoints", endpoint,
                           "--dial-timeout", "1s", "-o", "json"), 5)  # fmt: skip
    assert error["reason"] == "unavailable"
    assert "key1" in Path(cfg[1]).read_text()  # nothing was pruned


#: usage errors of the commands this module covers; CFG is replaced by a node file
USAGE_CASES: list[tuple[str, ...]] = [
    ("rotate", "prepare"),  # --config missing
    ("rotate", "prepare", "--config", "CFG", "--resources", "secret"),
    ("rotate", "prepare", "--config", "CFG", "--resources", "secrets"),  # half a shared rule
    ("rotate", "prepare", "--config", "/nonexistent/enc.yaml"),
    ("rotate", "promote", "--config", "CFG", "--wait-timeout", "x"),
    ("rotate", "reencrypt", "--config", "CFG", "--no-such-flag", "5"),  # not passed on
    ("rotate", "status"),
    ("rotate", "clean-backups"),
    ("encryption", "enable", "prepare", "--config", "CFG", "--provider", "kms"),
    ("encryption", "disable", "prune", "--config", "CFG", "--bogus"),
    ("config", "split-rule", "--config", "CFG", "--resources", "nope"),
    ("kek", "create"),
    ("kms", "status", "--kms-socket", "relative/k.sock"),
    ("kms", "rotate", "--provider", "k", "--kms-socket", "unix:///k.sock"),
    ("kms", "retire", "--backends", "CFG", "--provider", "k", "--kms-socket", "unix:k.sock",
     "--config", "CFG"),
    ("reencrypt", "--via", "etcd"),  # needs --config
    ("reencrypt", "--concurrency", "0"),
]


@pytest.mark.parametrize("argv", USAGE_CASES, ids=lambda a: " ".join(a)[:60])
def test_usage_errors_print_one_error_document(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = _nodes(tmp_path, SHARED_AESGCM, count=1)[1]
    args = [node if a == "CFG" else a for a in argv]
    error = _error(run_cli(capsys, *args, "-o", "json"), 2)
    assert error["reason"] == "usage"
    text = run_cli(capsys, *args)
    assert text.code == 2 and text.out == "", text.out


# -- the schema files themselves ------------------------------------------------------------


def test_every_schema_the_code_names_has_a_linked_file() -> None:
    names = set()
    for path in (REPO / "secretkit").rglob("*.py"):
        names |= {schema_id(n) for n in re.findall(r'schema_id\(\s*"([^"]+)"', path.read_text())}
        names |= set(re.findall(r'"(secretkit\.[a-z.-]+/v\d+)"', path.read_text()))
    guide = (REPO / "docs" / "user-guide.md").read_text()
    assert "secretkit.stage/v1" in names and "secretkit.reencrypt.summary/v1" in names
    for name in sorted(names):
        path = REPO / schema_path(name)
        assert path.is_file(), name
        assert f"(schemas/{path.name})" in guide, name


def test_the_schemas_are_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A document off its shape fails: the validation above is not vacuous."""
    cfg = _nodes(tmp_path, SHARED_AESGCM, count=1)
    doc = one_document(run_cli(capsys, "rotate", "prepare", *cfg, "--resources",
                               "secrets,configmaps", "--dry-run", "--yes", "-o", "json").out)
    validate_document(doc)
    for broken in (
        {**doc, "undocumented": 1},
        {**doc, "stage": "prune"},  # a prune report always carries its gate
        {**doc, "stage": "reencrypt"},  # ... a reencrypt report its summary
        {**doc, "changed_files": ["x"]},  # a dry run writes nothing
        {k: v for k, v in doc.items() if k != "messages"},
    ):
        with pytest.raises(AssertionError):
            validate_document(broken)
