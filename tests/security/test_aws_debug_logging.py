"""``secretkit -vv`` with an AWS KMS backend: botocore's DEBUG bodies stay out of the log.

At DEBUG, botocore logs every response body (a KMS Decrypt response holds the DEK
seed in ``Plaintext``) and the signed canonical request (the session token). A kms
v2 value is written with a pinned seed (the canary key) through AWS KMS on moto, then
``secretkit -vv inspect`` decrypts it offline; its output must not contain the seed,
the plaintext or the session token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from secretkit.backends import BackendKMSService, load_backends_file
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import encode_unknown
from secretkit.core.transformers import build_transformers
from tests.fixtures.servers import MotoServer
from tests.security import canaries as c

pytestmark = pytest.mark.aws

ETCD_KEY = "/registry/secrets/default/aws-canary"
CONFIG = b"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {apiVersion: v2, name: aws-kms, endpoint: "unix:///nonexistent/plugin.sock"}
"""


def test_verbose_cli_does_not_log_the_dek_seed(moto_server: MotoServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_SESSION_TOKEN": c.TOKEN, "AWS_DEFAULT_REGION": moto_server.region}
    for name, setting in creds.items():
        monkeypatch.setenv(name, setting)
    key_arn = moto_server.kms_client().create_key()["KeyMetadata"]["Arn"]
    backends_file = tmp_path / "backends.yaml"
    backends_file.write_text(f"aws-kms:\n  type: aws\n  key: {key_arn}\n"
                             f"  region: {moto_server.region}\n"
                             f"  endpoint_url: {moto_server.endpoint_url}\n")
    config = tmp_path / "enc.yaml"
    config.write_bytes(CONFIG)
    backends = load_backends_file(backends_file)
    # every 32-byte draw (the seed, the HKDF info) is the canary key: the seed is known
    chain = build_transformers(load_encryption_config(CONFIG),
                               kms=lambda p: BackendKMSService(backends[p.name]),
                               rng=lambda n: c.KEY[:n] if n == 32 else bytes(n))
    value = chain.for_etcd_key(ETCD_KEY).write(encode_unknown("v1", "Secret", c.PLAINTEXT),
                                               ETCD_KEY)
    for backend in backends.values():
        backend.close()
    value_file = tmp_path / "value.bin"
    value_file.write_bytes(value)

    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "-vv", "inspect", "--etcd-key", ETCD_KEY,
         "--config", str(config), "--backends", str(backends_file), "-o", "json",
         str(value_file)],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"decrypted": true' in proc.stdout  # the seed really went through AWS KMS
    assert "DEBUG" in proc.stderr  # -vv did turn DEBUG on
    found = c.leaks(proc.stdout + proc.stderr, c.KEY, c.PLAINTEXT, c.TOKEN)
    assert not found, f"leaked {found}:\n{proc.stderr[-3000:]}"
