"""One annotation-key rule for the core and the plugin, checked against upstream's table.

The table is kube-apiserver's own: ``TestIsFullyQualifiedDomainName`` in
k8s.io/apimachinery/pkg/util/validation (the function the KMS v2 envelope's
``validateAnnotations`` calls). The plugin must refuse exactly what the apiserver
would refuse when it decodes the stored ``EncryptedObject``, and accept the rest.
"""

from __future__ import annotations

import pytest

from kms_plugin.errors import InvalidRequest
from kms_plugin.service import validate_annotations
from secretkit.core.formats.kmsv2 import is_fully_qualified_domain_name, validate_encrypted_object
from secretkit.core.formats.model import DEKSourceType, EncryptedObject
from secretkit.errors import FormatError

UPSTREAM_GOOD = [
    "a.com",
    "k8s.io",
    "dev.k8s.io",
    "dev.k8s.io.",
    "foo.example.com",
    "this.is.a.really.long.fqdn",
    "bbc.co.uk",
    "10.0.0.1",
    "hyphens-are-good.k8s.io",
    "a" * 63 + ".k8s.io",
    "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 54 + ".k8s.io",
]
UPSTREAM_BAD = [
    ".",
    "...",
    ".io",
    "com",
    ".com",
    "Dev.k8s.io",
    ".foo.example.com",
    "*.example.com",
    "*.bar.com",
    "*.foo.bar.com",
    "underscores_are_bad.k8s.io",
    "foo@bar.example.com",
    "http://foo.example.com",
    "a" * 64 + ".k8s.io",
    "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 55 + ".k8s.io",
]
#: our additions: the empty key, two trailing dots, 253 characters plus the one dot
#: upstream strips, and text Python's ``$`` would have let through
EXTRA = [
    ("", False),
    ("version.example.com.", True),
    ("version.example.com..", False),
    ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 54 + ".k8s.io.", True),
    ("version.example.com\n", False),
    ("version.example\n.com", False),
    ("ex\u00e4mple.com", False),
]
TABLE = [(k, True) for k in UPSTREAM_GOOD] + [(k, False) for k in UPSTREAM_BAD] + EXTRA


def _core_accepts(key: str) -> bool:
    obj = EncryptedObject(
        encrypted_data=b"d", key_id="k", encrypted_dek_source=b"s",
        annotations={key: b"v"}, encrypted_dek_source_type=DEKSourceType(1),
    )
    try:
        validate_encrypted_object(obj)
    except FormatError:
        return False
    return True


def _plugin_accepts(key: str) -> bool:
    try:
        validate_annotations({key: b"v"}, where="Decrypt")
    except InvalidRequest:
        return False
    return True


@pytest.mark.parametrize(("key", "valid"), TABLE, ids=[repr(k[:24]) for k, _ in TABLE])
def test_core_and_plugin_follow_upstream(key: str, valid: bool) -> None:
    assert is_fully_qualified_domain_name(key) is valid
    assert _core_accepts(key) is valid
    assert _plugin_accepts(key) is valid


def test_one_function_serves_both() -> None:
    import kms_plugin.service as service

    assert service.is_fully_qualified_domain_name is is_fully_qualified_domain_name
