"""Bad input gets a clear error and a non-zero exit, never a traceback.

Every command group is run through the real entry point with input that cannot
work (missing files, garbage files, an etcd or plugin that is not there, missing
flags). The run must exit non-zero with an ``error:`` (or click ``Error:``) line
and no Python traceback unless ``-vv`` was given.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.security import canaries as c
from tests.unit.cli.helpers import run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cases(tmp: Path) -> dict[str, list[str]]:
    garbage = tmp / "garbage.yaml"
    garbage.write_bytes(b"\x00\xff" + c.PLAINTEXT + b"\n: : [")
    missing = str(tmp / "missing.yaml")
    etcd = f"http://127.0.0.1:{_closed_port()}"
    sock = f"unix://{tmp}/absent.sock"
    return {
        "config validate missing": ["config", "validate", missing],
        "config validate garbage": ["config", "validate", str(garbage)],
        "config show garbage": ["config", "show", str(garbage)],
        "config generate kms without endpoint": ["config", "generate", "--provider", "kms",
                                                 "-f", str(tmp / "x.yaml")],
        "inspect missing file": ["inspect", "--etcd-key", "/registry/secrets/a/b", missing],
        "inspect garbage config": ["inspect", "--etcd-key", "/registry/secrets/a/b",
                                   "--config", str(garbage), str(garbage)],
        "audit no etcd": ["audit", "--endpoints", etcd, "--dial-timeout", "1"],
        "audit garbage config": ["audit", "--endpoints", etcd, "--config", str(garbage)],
        "audit garbage backends": ["audit", "--endpoints", etcd, "--backends", str(garbage)],
        "reencrypt missing kubeconfig": ["reencrypt", "--kubeconfig", missing],
        "kms status no plugin": ["kms", "status", "--kms-socket", sock, "--no-etcd"],
        "kms status bad socket": ["kms", "status", "--kms-socket", "tcp://127.0.0.1:1",
                                  "--no-etcd"],
        "rotate prepare missing config": ["rotate", "prepare", "--config", missing, "--yes"],
        "rotate prepare garbage config": ["rotate", "prepare", "--config", str(garbage),
                                          "--yes"],
        "rotate prune no etcd": ["rotate", "prune", "--config", str(garbage), "--yes",
                                 "--endpoints", etcd],
        "encryption enable without provider": ["encryption", "enable", "prepare", "--config",
                                               str(garbage), "--yes"],
        "sandbox status missing dir": ["sandbox", "status", "--dir", str(tmp / "nope")],
        "unknown command": ["no-such-command"],
        "unknown flag": ["config", "validate", "--no-such-flag", missing],
    }


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return sorted(_cases(Path(tmp)))


CASE_NAMES = _case_names()


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_fails_clearly(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(capsys, *_cases(tmp_path)[case])
    assert res.code != 0, f"{case}: exit 0\n{res.out}\n{res.err}"
    assert "error" in res.err.lower(), f"{case}: no error line\n{res.err}"
    assert "Traceback" not in res.err + res.out, f"{case}: traceback\n{res.err}"
    assert not c.leaks(res.out + res.err, c.PLAINTEXT), f"{case}: echoed the input"
