"""The write probe and /metrics credentials against the sandbox (real etcd, real stand-ins).

Two apiservers share the sandbox's etcd: the sandbox's own stand-in (automatic reload)
and a second stand-in started here on the same config file without reload, which
keeps whatever the file held when it started, as a kube-apiserver does until it is
restarted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.encryption_config.model import content_hash
from secretkit.errors import DependencyError
from secretkit.fileio import write_private
from secretkit.rotation.verify import (
    MetricsEndpoint,
    metrics_credentials_from_kubeconfig,
    wait_for_hash,
)
from secretkit.sandbox.apiserver.server import ApiServer, ApiServerConfig
from secretkit.sandbox.servers import free_port, generate_test_pki
from tests.e2e.reencrypt.helpers import AESGCM_K1, AESGCM_K2K1, IDENTITY, config_yaml
from tests.e2e.rotation.helpers import config_secrets, create_secrets, secretkit
from tests.fixtures.sandbox import Sandbox, SandboxFactory
from tests.schemas import validate_document

pytestmark = pytest.mark.e2e

PROBE_KEYS = b"/registry/secrets/default/secretkit-write-probe-"


@contextmanager
def second_apiserver(sb: Sandbox) -> Iterator[ApiServer]:
    """Another stand-in on the sandbox's etcd and config file, without automatic reload."""
    pki = sb.dir / "pki"
    server = ApiServer(
        ApiServerConfig(
            etcd=sb.etcd_config,
            encryption_config=sb.config_path,
            tokens=frozenset({sb.token}),
            tls_cert=pki / "server.crt",
            tls_key=pki / "server.key",
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


def install(sb: Sandbox, config: bytes) -> None:
    """Write ``config`` over the sandbox's file and wait until its stand-in reloaded it."""
    write_private(sb.config_path, config)
    wanted = content_hash(config).removeprefix("sha256:")
    deadline = time.monotonic() + 30
    while sb.config_hash() != wanted:
        assert time.monotonic() < deadline, "the stand-in did not reload the config"
        time.sleep(0.1)


def probe_keys_in_etcd(sb: Sandbox) -> list[bytes]:
    with sb.etcd_client() as etcd:
        return [kv.key for page in etcd.range_pages(PROBE_KEYS) for kv in page]


def probe(
    sb: Sandbox, *urls: str, extra: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any], str]:
    args = [a for u in urls for a in ("--apiserver", u)]
    run = secretkit(
        "apiserver", "probe", "--config", str(sb.config_path), *args,
        "--kubeconfig", str(sb.kubeconfig), "--endpoints", sb.etcd_endpoint, "-o", "json",
        *extra,
    )
    doc = json.loads(run.stdout)
    validate_document(doc)
    return run.rc, doc, run.stderr


def test_the_probe_tells_a_restarted_apiserver_from_one_on_the_old_file(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("aesgcm", config=config_yaml(AESGCM_K1, IDENTITY), reload_interval=0.2)
    secrets = config_secrets(sb)
    with second_apiserver(sb) as lagging:
        rc, doc, err = probe(sb, sb.api_url, lagging.url)
        assert rc == 0, err
        assert [e["outcome"] for e in doc["endpoints"]] == ["match", "match"]
        assert doc["expected"]["description"] == "aesgcm key 'key1'"

        # the file moves on: the sandbox's stand-in reloads it, the second one cannot
        install(sb, config_yaml(AESGCM_K2K1, IDENTITY))
        secrets += config_secrets(sb)
        rc, doc, err = probe(sb, sb.api_url, lagging.url)
        assert rc == 3, (err, doc)
        first, second = doc["endpoints"]
        assert first["outcome"] == "match" and first["observed"]["key_name"] == "key2"
        assert second["outcome"] == "mismatch"
        expected = (
            f"apiserver {lagging.url} writes with aesgcm key 'key1'; the file's writer is "
            "aesgcm key 'key2'"
        )
        assert second["message"] == expected and expected in err
        assert first["deleted"] is True and second["deleted"] is True, json.dumps(doc)
        assert first["etcd_key"].startswith(PROBE_KEYS.decode())
        assert probe_keys_in_etcd(sb) == []  # deleted in both cases
        # text output says the same; no key and no object data in either
        text = secretkit(
            "apiserver", "probe", "--config", str(sb.config_path), "--apiserver", lagging.url,
            "--kubeconfig", str(sb.kubeconfig), "--endpoints", sb.etcd_endpoint,
        )
        assert text.rc == 3 and expected in text.stdout, text.output
        for secret in secrets:
            assert secret not in text.output + json.dumps(doc)

    # "restart" the second apiserver: it now loads the new file
    with second_apiserver(sb) as restarted:
        rc, doc, err = probe(sb, sb.api_url, restarted.url)
        assert rc == 0, err
        assert {e["observed"]["description"] for e in doc["endpoints"]} == {"aesgcm key 'key2'"}
    assert probe_keys_in_etcd(sb) == []


def test_leftovers_are_removed_and_failures_still_delete(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aesgcm", config=config_yaml(AESGCM_K1, IDENTITY))
    label = {"secretkit.io/write-probe": "true"}
    for kind, plural, name, labels in [
        ("Secret", "secrets", "secretkit-write-probe-leftover", label),
        ("ConfigMap", "configmaps", "secretkit-write-probe-leftover", label),
        ("Secret", "secrets", "secretkit-write-probe-unlabelled", {}),  # not ours to delete
        ("Secret", "secrets", "db", label),  # labelled, but not a probe's name
    ]:
        code, _ = sb.request("POST", f"/api/v1/namespaces/default/{plural}", {
            "apiVersion": "v1", "kind": kind, "metadata": {"name": name, "labels": labels}})
        assert code == 201

    # etcd unreachable: nothing can be judged (exit 5), the object is deleted anyway
    down = f"http://127.0.0.1:{free_port()}"
    run = secretkit(
        "apiserver", "probe", "--config", str(sb.config_path), "--apiserver", sb.api_url,
        "--kubeconfig", str(sb.kubeconfig), "--endpoints", down, "--dial-timeout", "1s",
        "-o", "json",
    )
    assert run.rc == 5, run.output
    doc = run.json()
    validate_document(doc)
    (result,) = doc["endpoints"]
    assert result["outcome"] == "error" and result["deleted"] is True, result
    assert sorted(doc["leftovers_removed"]) == [
        "configmaps/secretkit-write-probe-leftover", "secrets/secretkit-write-probe-leftover"]
    code, listed = sb.request("GET", "/api/v1/namespaces/default/secrets")
    assert code == 200
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == [
        "db", "secretkit-write-probe-unlabelled"]

    # one apiserver unreachable: the other is still probed, the run exits 5
    gone = f"https://127.0.0.1:{free_port()}"
    rc, doc, err = probe(sb, sb.api_url, gone)
    assert rc == 5, err
    assert [e["outcome"] for e in doc["endpoints"]] == ["match", "error"]
    assert doc["endpoints"][1]["deleted"] is None  # nothing was created there
    assert gone in err
    assert probe_keys_in_etcd(sb) == [PROBE_KEYS + b"unlabelled"]  # only the decoy

    # plain http to a remote host would send the kubeconfig's token in the clear
    run = secretkit("apiserver", "probe", "--config", str(sb.config_path),
                    "--apiserver", "http://10.0.0.2:6443", "--endpoints", sb.etcd_endpoint)
    assert run.rc == 2 and "plain http" in run.stderr, run.output


def test_metrics_with_a_kubeconfig_and_permanent_errors_fail_at_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("aesgcm", config=config_yaml(AESGCM_K1, IDENTITY))
    url = sb.api_url + "/metrics"
    loaded = "sha256:" + sb.config_hash()
    # token and CA both from the kubeconfig
    creds = metrics_credentials_from_kubeconfig(str(sb.kubeconfig))
    assert creds.token == sb.token and creds.cafile is not None
    seen = wait_for_hash([MetricsEndpoint.with_credentials(url, creds)], loaded, timeout=10)
    assert seen == {url: loaded}

    other_ca = generate_test_pki(tmp_path / "other").ca_cert
    cases = [
        (MetricsEndpoint(url, token=sb.token, cafile=str(other_ca)), "--metrics-cacert"),
        (MetricsEndpoint(url, token="bogus-token-value", cafile=str(sb.ca_file)),
         "--metrics-token-file"),
        (MetricsEndpoint(url, cafile=str(sb.ca_file)), "--metrics-kubeconfig"),  # no token
    ]
    for endpoint, flag in cases:
        started = time.monotonic()
        with pytest.raises(DependencyError) as caught:
            wait_for_hash([endpoint], loaded, timeout=60, interval=0.5)
        elapsed = time.monotonic() - started
        assert elapsed < 5, (flag, elapsed)  # not the 60 s timeout
        assert flag in (caught.value.hint or ""), caught.value.diagnostics()
        assert caught.value.where == url and "bogus-token-value" not in caught.value.diagnostics()


def test_the_stages_take_the_probe(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    sb = sandbox_factory("aesgcm", config=config_yaml(AESGCM_K1, IDENTITY), reload_interval=0.2)
    create_secrets(sb, 4)
    cfg = ["--config", str(sb.config_path)]
    etcd = ["--endpoints", sb.etcd_endpoint]
    kube = ["--kubeconfig", str(sb.kubeconfig)]
    run = secretkit("rotate", "prepare", *cfg, "--key-name", "key2",
                    "--resources", "secrets,configmaps")
    assert run.rc == 0, run.output
    install(sb, sb.config_path.read_bytes())  # the sandbox's stand-in runs the prepared file
    with second_apiserver(sb) as second:  # started now: runs the prepared file too
        probes = ["--probe-apiserver", sb.api_url, "--probe-apiserver", second.url]

        # a wrong CA for /metrics fails at once, naming the flag
        other_ca = generate_test_pki(tmp_path / "other").ca_cert
        started = time.monotonic()
        run = secretkit("rotate", "promote", *cfg, "--apiserver-metrics", sb.api_url + "/metrics",
                        "--metrics-kubeconfig", str(sb.kubeconfig),
                        "--metrics-cacert", str(other_ca), "--wait-timeout", "120")
        assert run.rc == 5 and "--metrics-cacert" in run.stderr, run.output
        assert time.monotonic() - started < 30  # two CLI start-ups, not the 120 s wait

        # at promote the probe runs, but cannot replace the confirmation
        run = secretkit("rotate", "promote", *cfg, *probes, *etcd, *kube)
        assert run.rc == 3 and "not confirmed" in run.stderr, run.output
        assert f"{second.url}: match" in run.stderr
        # /metrics through the kubeconfig's credentials, then the probe
        run = secretkit("rotate", "promote", *cfg, *probes, *etcd, *kube,
                        "--apiserver-metrics", sb.api_url + "/metrics",
                        "--apiserver-metrics", second.url + "/metrics",
                        "--metrics-kubeconfig", str(sb.kubeconfig), "--wait-timeout", "30")
        assert run.rc == 0, run.output
        assert f"write probe: {second.url} writes with aesgcm key 'key1'" in run.stdout
        install(sb, sb.config_path.read_bytes())

        # the second apiserver still runs the prepared file: reencrypt is refused
        run = secretkit("rotate", "reencrypt", *cfg, *probes, *etcd, *kube)
        assert run.rc == 3, run.output
        assert (f"apiserver {second.url} writes with aesgcm key 'key1'; the file's writer is "
                "aesgcm key 'key2'") in run.stderr
        status = secretkit("rotate", "status", *cfg, "-o", "json").json()
        assert status["next_stage"] == "reencrypt"

    with second_apiserver(sb) as second:  # restarted: the promoted file
        probes = ["--probe-apiserver", sb.api_url, "--probe-apiserver", second.url]
        run = secretkit("rotate", "reencrypt", *cfg, *probes, *etcd, *kube)
        assert run.rc == 0, run.output
        with sb.etcd_client() as client:
            client.compact(client.current_revision())
        run = secretkit("rotate", "prune", *cfg, *probes, *etcd, *kube)
        assert run.rc == 0, run.output
        assert "Procedure complete" in run.stdout
    assert probe_keys_in_etcd(sb) == []
