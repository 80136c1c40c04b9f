"""docs/deploy: the static pod, the tmpfiles rule and the README agree with what ships."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
README = DEPLOY / "README.md"
BUILD_IMAGE = REPO / "scripts" / "build-image"


def _pod() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((DEPLOY / "static-pod.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_static_pod_passes_strict_validation(version: str) -> None:
    kubernetes_validate.validate(_pod(), version, strict=True)


def test_static_pod_runs_the_built_image_as_its_user() -> None:
    container = _pod()["spec"]["containers"][0]
    script = BUILD_IMAGE.read_text()
    name = re.search(r'^NAME="([^"]+)"', script, re.M)
    tag = re.search(r'^TAG="([^"]+)"', script, re.M)
    assert name and tag
    assert container["image"] == f"localhost/{name.group(1)}:{tag.group(1)}"
    assert container["imagePullPolicy"] == "Never"
    ctx = container["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (65532, 65532, True)
    assert ctx["readOnlyRootFilesystem"] is True and ctx["capabilities"] == {"drop": ["ALL"]}
    assert "--config.user 65532:65532" in script


def test_tmpfiles_rule_creates_the_socket_directory_for_the_plugin_user(tmp_path: Path) -> None:
    tool = shutil.which("systemd-tmpfiles")
    assert tool is not None, "systemd-tmpfiles comes with Debian's systemd package"
    subprocess.run([tool, "--create", f"--root={tmp_path}",
                    str(DEPLOY / "tmpfiles-secretkit.conf")], check=True)
    st = (tmp_path / "run" / "secretkit").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 65532, 65532)
    # the pod mounts exactly that directory (/var/run is a symlink to /run)
    volumes = {v["name"]: v["hostPath"] for v in _pod()["spec"]["volumes"]}
    assert volumes["socket-dir"] == {"path": "/var/run/secretkit", "type": "Directory"}


def _named_files() -> set[str]:
    """Every repository file the README names in a link or a code span."""
    text = README.read_text()
    names = set(re.findall(r"\]\(([^)#\s]+)\)", text))
    names |= set(re.findall(r"`((?:docs|scripts)/[^`\s]+|[\w.+-]+\.(?:ya?ml|service|conf))`",
                            text))
    return {n for n in names if not n.startswith(("http", "/"))}


def test_every_file_the_readme_names_exists() -> None:
    names = _named_files()
    assert len(names) >= 8, names
    for name in sorted(names):
        path = (DEPLOY / name) if not name.startswith(("docs/", "scripts/")) else REPO / name
        assert path.exists(), f"docs/deploy/README.md names {name}, which does not exist"


def test_every_file_in_docs_deploy_is_named_and_tested() -> None:
    """Nothing ships in docs/deploy that the README does not walk through or no test reads."""
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("*.py"))
    readme = README.read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_dir() or path == README:
            continue
        rel = path.relative_to(DEPLOY).as_posix()
        assert path.name in readme, f"README does not mention {rel}"
        assert path.name in tests, f"no test reads {rel}"
