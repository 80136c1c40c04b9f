"""docs/reencrypt.md and ``reencrypt --help`` say what the code does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest

from secretkit.cli.reencrypt_cmd import reencrypt
from secretkit.errors import ExitCode, UsageError
from secretkit.etcd import MemoryEtcd
from secretkit.kube.discovery import ApiResource, resolve
from secretkit.reencrypt.request import ReencryptRequest, outcome_error
from tests.unit.reencrypt.test_request import CONFIG, etcd_run

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "reencrypt.md").read_text()
GUIDE = (ROOT / "docs" / "user-guide.md").read_text()
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "secretkit.reencrypt.summary.v1.json")
                    .read_text())


def _uncomment(jsonc: str) -> str:
    """JSON with ``//`` comments outside strings removed."""
    out: list[str] = []
    for line in jsonc.splitlines():
        quoted = False
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                quoted = not quoted
            elif not quoted and line.startswith("//", i):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _summary_example() -> dict[str, Any]:
    found = re.search(r"```jsonc\n(\{\n  \"schema\": \"secretkit\.reencrypt.*?)```", DOC, re.S)
    assert found is not None
    example: dict[str, Any] = json.loads(_uncomment(found.group(1)))
    return example


def test_the_json_summary_example_has_every_field_of_the_schema() -> None:
    example = _summary_example()
    assert set(example) == set(SCHEMA["properties"])
    verify = SCHEMA["$defs"]["verify"]["properties"]
    assert set(example["verify"]) == set(verify)


def _allow_empty_help() -> str:
    for param in reencrypt.params:
        if isinstance(param, click.Option) and param.name == "allow_empty":
            return " ".join((param.help or "").split())
    raise AssertionError("no --allow-empty")


def test_a_misspelt_resource_is_a_usage_error_through_the_api_and_empty_in_etcd() -> None:
    """What the help and the docs say about a misspelt --resources is what happens."""
    served = [ApiResource("", "secrets", "v1", "Secret", True)]
    with pytest.raises(UsageError) as info:
        resolve(["secrest"], served)
    assert info.value.exit_code == ExitCode.USAGE
    # --via etcd has no discovery: a name it does not know could be a CRD with no objects
    request = ReencryptRequest(via="etcd", config=CONFIG, resources=("secrest",),
                               allow_empty=False)
    summary, _ = etcd_run(MemoryEtcd(), resources=("secrest",))
    error = outcome_error(summary, request)
    assert error is not None and error.exit_code == ExitCode.FINDINGS
    # and the words: not "a misspelt --resources" among the exit-1 cases without more
    for text in (_allow_empty_help(), " ".join(DOC.split()), " ".join(GUIDE.split())):
        assert "misspelt -n, -l or --resources" not in text.replace("`", "")
    assert "usage error, exit 2" in _allow_empty_help()
    assert "usage error, exit 2" in " ".join(DOC.split())
    assert "refused before the run (exit 2" in " ".join(GUIDE.split())
