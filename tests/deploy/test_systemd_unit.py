"""docs/deploy/secretkit-kms-plugin.service: valid for systemd, hardened, and it behaves.

``systemd-analyze verify`` checks the unit against a root holding the documented
install path (/opt/secretkit/bin/secretkit-kms-plugin) and this machine's systemd
units; ``systemd-analyze security --offline`` scores its hardening. The behaviour the
unit relies on (READY=1 only once the socket answers) is tested with the real plugin
in tests/integration/kms_plugin/test_sd_notify.py.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "docs" / "deploy" / "secretkit-kms-plugin.service"
README = REPO / "docs" / "deploy" / "README.md"


def _unit() -> dict[str, dict[str, list[str]]]:
    """Parse the unit: section -> key -> every value (systemd keys may repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = {}
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).append(value)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the documented install layout and this machine's systemd units."""
    root = tmp_path_factory.mktemp("root")
    binary = root / "opt" / "secretkit" / "bin" / "secretkit-kms-plugin"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / "usr" / "lib").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd", root / "usr" / "lib" / "systemd", symlinks=True)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units / UNIT.name)
    return root


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze comes with Debian's systemd package"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120,
                          check=False, env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin"})


def test_systemd_analyze_verify_is_clean(root: Path) -> None:
    run = _analyze("verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}")
    assert run.returncode == 0, run.stderr
    # unknown keys and bad values are only warnings: any output is a failure here
    assert run.stderr.strip() == "" and run.stdout.strip() == "", run.stderr


def test_systemd_analyze_verify_notices_a_broken_unit(root: Path, tmp_path: Path) -> None:
    """The check above can fail: a typo in a key is reported."""
    broken = root / "etc" / "systemd" / "system" / "broken-kms.service"
    broken.write_text(UNIT.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    try:
        run = _analyze("verify", f"--root={root}", "/etc/systemd/system/broken-kms.service")
        assert "NoNewPrivilegez" in run.stderr
    finally:
        broken.unlink()


def test_hardening_scores_ok(root: Path) -> None:
    run = _analyze("security", "--offline=true", f"--root={root}", UNIT.name)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", run.stdout)
    assert match is not None, run.stdout[-2000:] + run.stderr
    assert float(match.group(1)) <= 2.5, match.group(0)  # systemd calls <= 2.9 "OK"


def test_restarting_the_plugin_never_takes_the_apiserver_down() -> None:
    unit = _unit()
    for section in unit.values():
        for key in ("RequiredBy", "Requires", "BindsTo", "PartOf", "Requisite", "PropagatesStopTo",
                    "PropagatesReloadTo"):
            assert not any("kube-apiserver" in v for v in section.get(key, [])), key
    assert unit["Unit"]["Before"] == ["kube-apiserver.service"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_ready_means_the_socket_answers() -> None:
    service = _unit()["Service"]
    # Before= orders kube-apiserver after "started"; with Type=notify that is READY=1,
    # which the plugin sends once its socket accepts connections
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert int(service["TimeoutStopSec"][0]) > 10  # > --grace-period


def test_install_path_and_documentation_are_real() -> None:
    unit = _unit()
    exec_start = unit["Service"]["ExecStart"][0]
    binary = exec_start.split()[0]
    assert binary == "/opt/secretkit/bin/secretkit-kms-plugin"
    assert "--listen unix:///var/run/secretkit/kms-plugin.sock" in exec_start
    readme = README.read_text()
    # the README installs exactly there, and installs the documentation the unit names
    assert "python3 -m venv /opt/secretkit" in readme
    for doc in unit["Unit"]["Documentation"]:
        assert re.match(r"(file|man):", doc), doc
        if doc.startswith("file://"):
            target = doc.removeprefix("file://")
            assert target in readme, f"README must install {target}"
            source = re.search(rf"(docs/\S+) {re.escape(target)}", readme)
            assert source is not None and (REPO / source.group(1)).is_file()


def test_parses_as_ini() -> None:
    """No stray continuation lines or duplicate sections (configparser would choke)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert set(parser.sections()) == {"Unit", "Service", "Install"}
