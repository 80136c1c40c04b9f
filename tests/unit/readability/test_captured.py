"""The one judgement against keyspaces a real kube-apiserver v1.36.2 wrote.

The expected verdicts were worked out independently of secretkit (by decrypting every
value with ``cryptography``/``pynacl``, see tests/data/real-apiserver/README.md).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.encryption_config.model import EncryptionConfig
from secretkit.core.readability import Judge, Verdict

DATA = Path(__file__).parents[2] / "data" / "real-apiserver"


def _values(folder: str) -> list[tuple[bytes, bytes]]:
    out = []
    for line in (DATA / folder / "values.jsonl").read_text().splitlines():
        entry = json.loads(line)
        out.append((entry["key"].encode(), base64.b64decode(entry["value_b64"])))
    return out


def _config(path: Path) -> EncryptionConfig:
    return load_encryption_config(path.read_bytes(), source=str(path))


def _expected(folder: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / folder / "expected.json").read_text())
    return data


def test_local_providers_stale_exactly_as_captured() -> None:
    expected = _expected("local-providers")["keys"]
    judge = Judge(_config(DATA / "local-providers" / "config-3.yaml"))
    values = _values("local-providers")
    assert len(values) == len(expected) == 42
    for key, value in values:
        judged = judge.judge(key, value)
        stale = expected[key.decode()]["stale_under_final_config"]
        want = Verdict.STALE if stale else Verdict.CURRENT
        assert judged.verdict is want, (key, judged)
        assert judged.key_name == expected[key.decode()]["key_name"]


def test_local_providers_under_every_captured_config_stay_readable() -> None:
    # every config of the capture keeps all three keys: nothing is ever unreadable
    values = _values("local-providers")
    for n in range(4):
        judge = Judge(_config(DATA / "local-providers" / f"config-{n}.yaml"))
        assert all(judge.judge(k, v).readable for k, v in values)


def test_removing_a_key_makes_exactly_its_values_unreadable() -> None:
    expected = _expected("local-providers")["keys"]
    raw = (DATA / "local-providers" / "config-3.yaml").read_text()
    # drop the secretbox provider (key-c) from the final config
    lines = raw.splitlines()
    start = next(i for i, line in enumerate(lines) if "secretbox:" in line)
    without = "\n".join(lines[:start] + lines[start + 4 :]) + "\n"
    judge = Judge(load_encryption_config(without.encode()))
    for key, value in _values("local-providers"):
        judged = judge.judge(key, value)
        lost = expected[key.decode()]["key_name"] == "key-c"
        assert judged.readable is not lost, key
        if lost:
            assert "secretbox key 'key-c' is not in the config" in judged.reason


def test_star_star_kms_v2_keyspace() -> None:
    expected = _expected("star-star-kms-v2")
    (write_key_id,) = expected["write_key_id"] if isinstance(
        expected["write_key_id"], list
    ) else [expected["write_key_id"]]
    config = _config(DATA / "star-star-kms-v2" / "encryption-config.yaml")
    judge = Judge(config, current_key_ids={"real-kms": write_key_id})
    internal = {e["key"] for e in expected["plaintext_despite_star_star"]}
    values = _values("star-star-kms-v2")
    assert len(values) == len(expected["keys"])
    for key, value in values:
        judged = judge.judge(key, value)
        if key.decode() in internal:
            assert judged.verdict is Verdict.INTERNAL, key
        else:
            assert expected["keys"][key.decode()]["provider"] == "kms"
            assert judged.verdict is Verdict.CURRENT, (key, judged)
    # a retired key version makes every kms value unreadable, never an internal key
    retired = Judge(config, retired=lambda key_id: key_id != "local:sha256:other")
    verdicts = {k: retired.judge(k, v).verdict for k, v in values}
    assert {k.decode() for k, v in verdicts.items() if v is Verdict.INTERNAL} == internal
    assert all(v is Verdict.UNREADABLE for k, v in verdicts.items() if k.decode() not in internal)
    # a new key_id makes them stale, still readable
    rotated = Judge(config, current_key_ids={"real-kms": "local:sha256:new"})
    assert all(
        rotated.judge(k, v).verdict is Verdict.STALE
        for k, v in values
        if k.decode() not in internal
    )
