"""`secretkit monitor` never shows a key, a plaintext or an object name.

The monitor runs with ``--decrypt-check`` (it decrypts every value) over values
encrypted with canary keys, holding canary plaintexts, under canary object names; its
/metrics text, /healthz, /livez and every log record it wrote are searched for them
in every encoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import encode_unknown
from secretkit.core.transformers import build_transformers
from secretkit.etcd import EtcdClient
from tests.integration.monitor.helpers import (
    fast_options,
    fetch,
    objects,
    running_monitor,
    scrape,
    scrape_text,
    wait_for,
)
from tests.security import canaries as c

pytestmark = pytest.mark.etcd

NAME = "CANARY-OBJECT-NAME-db-password"


def test_metrics_and_logs_hold_no_secret_and_no_name(
    etcd_client: EtcdClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "enc.yaml"
    config.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n  - resources: [secrets]\n    providers:\n"
        f"      - aesgcm: {{keys: [{{name: k2, secret: {c.KEY2_B64}}}, "
        f"{{name: k1, secret: {c.KEY_B64}}}]}}\n"
        "      - identity: {}\n"
    )
    config.chmod(0o600)
    transformers = build_transformers(load_encryption_config(config.read_bytes()),
                                      lambda _: None)  # type: ignore[arg-type,return-value]
    plain = encode_unknown("v1", "Secret", c.PLAINTEXT)
    for i, namespace in enumerate(("a", "b")):
        key = f"/registry/secrets/{namespace}/{NAME}-{i}"
        etcd_client.put(key.encode(), transformers.for_etcd_key(key).write(plain, key))
    etcd_client.put(f"/registry/secrets/c/{NAME}".encode(), plain)  # plaintext
    # a value that does not open with its key (tampered): undecryptable
    broken = f"/registry/secrets/d/{NAME}"
    etcd_client.put(broken.encode(), transformers.for_etcd_key(broken).write(plain, broken)[:-4]
                    + b"XXXX")
    caplog.set_level(logging.DEBUG)
    options = fast_options(config=config, decrypt_check=True, history_every=3600.0)
    with running_monitor(options, etcd_client) as monitor:
        address = monitor.address
        samples = wait_for(lambda: (s := scrape(address))
                           and s.get(("secretkit_monitor_history_last_run_timestamp_seconds",
                                      frozenset())) and s, what="the history check")
        assert objects(samples, "ok", key="k2") == 2
        assert objects(samples, "plaintext") == 1
        assert objects(samples, "undecryptable", key="k2") == 1
        outputs = [scrape_text(address)]
        base = f"http://{address.host}:{address.port}"
        outputs += [fetch(base + path)[1] for path in ("/healthz", "/livez", "/nope")]
    outputs += [r.getMessage() for r in caplog.records]
    everything = "\n".join(outputs)
    assert not c.leaks(everything, c.KEY, c.KEY2, c.PLAINTEXT)
    assert NAME not in everything and "CANARY" not in everything
