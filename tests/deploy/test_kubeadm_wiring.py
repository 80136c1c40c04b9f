"""kubeadm wiring: the deploy patch and ClusterConfiguration give kube-apiserver what it needs.

Both routes in docs/deploy/kubeadm/ are applied to kubeadm's default kube-apiserver
manifest (tests/data/kubeadm/kube-apiserver.yaml): the JSON patch exactly as kubeadm
applies ``kube-apiserver+json.yaml`` from a ``--patches`` directory, the
ClusterConfiguration's extraArgs/extraVolumes as kubeadm renders them. The results
must pass ``kubernetes-validate --strict`` and hand the apiserver the flag, the
EncryptionConfiguration's directory and the plugin's socket directory.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secretkit.config_files import load_encryption_config_file

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
PATCH = DEPLOY / "kubeadm" / "patches" / "kube-apiserver+json.yaml"
CLUSTER_CONFIG = DEPLOY / "kubeadm" / "cluster-configuration.yaml"
DEFAULT = REPO / "tests" / "data" / "kubeadm" / "kube-apiserver.yaml"
VERSIONS = ["1.30.0", "1.37.0"]
CONFIG_FLAG = "--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml"


def _pointer(doc: Any, path: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, parts[-1]


def apply_json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 ``add`` and ``replace`` (all the deploy patch may use); others fail loudly."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parent, key = _pointer(doc, op["path"])
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), op["value"])
            else:
                parent[key] = op["value"]
        elif op["op"] == "replace":
            if isinstance(parent, list):
                parent[int(key)] = op["value"]
            else:
                assert key in parent, op["path"]
                parent[key] = op["value"]
        else:
            raise AssertionError(f"unsupported op {op['op']} in {PATCH.name}")
    return doc


def apply_cluster_configuration(manifest: dict[str, Any], config: dict[str, Any]) -> Any:
    """Render apiServer.extraArgs/extraVolumes into the manifest as kubeadm does."""
    out = copy.deepcopy(manifest)
    container = out["spec"]["containers"][0]
    api = config["apiServer"]
    for arg in api.get("extraArgs", []):
        container["command"].append(f"--{arg['name']}={arg['value']}")
    for vol in api.get("extraVolumes", []):
        out["spec"]["volumes"].append(
            {"name": vol["name"], "hostPath": {"path": vol["hostPath"], "type": vol["pathType"]}}
        )
        mount = {"name": vol["name"], "mountPath": vol["mountPath"]}
        if vol.get("readOnly"):
            mount["readOnly"] = True
        container["volumeMounts"].append(mount)
    return out


def _default() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT.read_text())
    assert isinstance(data, dict)
    return data


def _patched() -> dict[str, Any]:
    ops = yaml.safe_load(PATCH.read_text())
    return apply_json_patch(_default(), ops)  # type: ignore[no-any-return]


def _configured() -> dict[str, Any]:
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    assert config["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert config["kind"] == "ClusterConfiguration"
    return apply_cluster_configuration(_default(), config)  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("route", ["patch", "cluster-configuration", "unchanged"])
def test_result_passes_strict_schema_validation(route: str, version: str) -> None:
    manifest = {"patch": _patched, "cluster-configuration": _configured,
                "unchanged": _default}[route]()
    kubernetes_validate.validate(manifest, version, strict=True)


def test_schema_validation_can_fail() -> None:
    broken = _patched()
    broken["spec"]["volumes"][-1]["hostPath"]["typo"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def _mounted_host_dirs(manifest: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """mountPath -> (host path, read-only) for the apiserver container."""
    volumes = {v["name"]: v["hostPath"]["path"] for v in manifest["spec"]["volumes"]}
    container = manifest["spec"]["containers"][0]
    return {m["mountPath"]: (volumes[m["name"]], bool(m.get("readOnly")))
            for m in container["volumeMounts"]}


@pytest.mark.parametrize("build", [_patched, _configured], ids=["patch", "cluster-config"])
def test_apiserver_gets_the_flag_the_config_and_the_socket(build: Any) -> None:
    manifest = build()
    command = manifest["spec"]["containers"][0]["command"]
    assert CONFIG_FLAG in command
    assert "--encryption-provider-config-automatic-reload=true" in command
    mounts = _mounted_host_dirs(manifest)
    config_file = Path(CONFIG_FLAG.split("=", 1)[1])
    # the EncryptionConfiguration's directory, read-only, same path inside and out
    assert mounts[str(config_file.parent)] == (str(config_file.parent), True)
    # the socket named by the shipped EncryptionConfiguration is inside a mounted,
    # writable directory (connect(2) on a unix socket needs write access)
    enc = load_encryption_config_file(DEPLOY / "encryption-config.yaml")
    endpoints = [p.endpoint for r in enc.rules for p in r.providers if hasattr(p, "endpoint")]
    socket_dir = str(Path(endpoints[0].removeprefix("unix://")).parent)
    assert mounts[socket_dir] == (socket_dir, False)
    # and it is the directory the plugin's static pod shares
    pod = yaml.safe_load((DEPLOY / "static-pod.yaml").read_text())
    host_paths = {v["hostPath"]["path"] for v in pod["spec"]["volumes"] if "hostPath" in v}
    assert socket_dir in host_paths


def test_both_routes_agree() -> None:
    patched, configured = _patched(), _configured()
    assert sorted(patched["spec"]["containers"][0]["command"]) == sorted(
        configured["spec"]["containers"][0]["command"])
    assert _mounted_host_dirs(patched) == _mounted_host_dirs(configured)


def test_nothing_else_changes() -> None:
    before, after = _default(), _patched()
    after_container = after["spec"]["containers"][0]
    before_container = before["spec"]["containers"][0]
    for key in ("image", "livenessProbe", "readinessProbe", "startupProbe", "resources"):
        assert after_container[key] == before_container[key]
    assert after_container["command"][: len(before_container["command"])] == \
        before_container["command"]
