"""What a re-encryption request refuses up front, and what a finished run amounts to."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.errors import ExitCode, UsageError
from secretkit.etcd import MemoryEtcd
from secretkit.kmsapi.services import KMSServices
from secretkit.reencrypt.request import (
    ReencryptRequest,
    ReencryptWorld,
    Via,
    outcome_error,
    run_reencrypt,
)
from secretkit.reencrypt.summary import Summary
from tests.unit.reencrypt.test_etcd_engine import (
    AESCBC_KEY1,
    AESGCM_KEY2,
    NEW,
    OLD,
    chain,
    config,
)
from tests.unit.reencrypt.test_only_stale_counts import seeded

CONFIG = load_encryption_config(NEW)


@pytest.mark.parametrize("via", ["api", "etcd"])
def test_verify_after_a_dry_run_is_refused_with_the_reason(via: Via) -> None:
    request = ReencryptRequest(via=via, config=CONFIG, dry_run=True, verify=True)
    with pytest.raises(UsageError) as info:
        request.check()
    error = info.value
    assert "--dry-run" in error.what and "--verify" in error.what
    assert "writes nothing" in error.what
    assert error.hint is not None and "secretkit audit" in error.hint


def test_an_empty_run_is_a_failure_only_when_the_caller_asks() -> None:
    """The CLI refuses a run over nothing (unless --allow-empty); a library caller such
    as a rotation stage may find nothing of a resource and decides for itself."""
    summary = Summary(mode="api", complete=True)
    summary.ensure("secrets")
    assert outcome_error(summary, ReencryptRequest()) is None
    error = outcome_error(summary, ReencryptRequest(namespace="team-b", allow_empty=False))
    assert error is not None and error.exit_code == ExitCode.FINDINGS
    assert "0 objects of secrets in namespace 'team-b'" in error.what
    assert error.hint is not None and "--allow-empty" in error.hint
    # one object seen (even fresh, left alone by --only-stale) is not an empty run
    summary.add("secrets", "seen")
    summary.add("secrets", "skipped_fresh")
    assert outcome_error(summary, ReencryptRequest(allow_empty=False)) is None


def test_allow_empty_accepts_a_verify_over_nothing_only_after_a_run_over_nothing() -> None:
    empty_verify = {"checked": 0, "stale": 0, "undecryptable": 0, "verdict": "empty"}
    summary = Summary(mode="api", complete=True)
    summary.verify = dict(empty_verify)
    assert outcome_error(summary, ReencryptRequest(allow_empty=True)) is None
    # a library caller that did not say: a verify over nothing still proves nothing
    error = outcome_error(summary, ReencryptRequest())
    assert error is not None and "nothing is proven" in error.what
    # stale values etcd holds are not excused by an empty run
    summary.verify = dict(empty_verify, checked=2, stale=2, verdict="stale")
    error = outcome_error(summary, ReencryptRequest(allow_empty=True))
    assert error is not None and "2 stale value(s) remain" in error.what
    summary.verify = dict(empty_verify)
    # the API listed objects but etcd held none of them: a wrong --etcd-prefix
    summary.add("secrets", "seen", 3)
    summary.add("secrets", "rewritten", 3)
    error = outcome_error(summary, ReencryptRequest(allow_empty=True))
    assert error is not None and "nothing is proven" in error.what


def etcd_run(store: MemoryEtcd, **fields: Any) -> tuple[Summary, list[str]]:
    """One ``--via etcd`` run over ``store`` (apiservers stopped), and its warnings."""
    warnings: list[str] = []
    fields.setdefault("config", CONFIG)
    request = ReencryptRequest(via="etcd", show_progress=False, **fields)
    world = ReencryptWorld(kms=KMSServices(), open_etcd=lambda: nullcontext(store),
                           warn=warnings.append, apiservers_stopped=True)
    return run_reencrypt(request, world), warnings


def test_an_etcd_run_over_nothing_fails_like_an_api_run() -> None:
    store = seeded()  # objects in namespace "ns" only
    request = ReencryptRequest(via="etcd", config=CONFIG, namespace="nope", allow_empty=False)
    summary, _ = etcd_run(store, namespace="nope")
    error = outcome_error(summary, request)
    assert error is not None and error.exit_code == ExitCode.FINDINGS
    assert "0 objects of secrets in namespace 'nope'" in error.what
    assert error.hint is not None and "--etcd-prefix" in error.hint
    summary, _ = etcd_run(store, namespace="nope", verify=True)
    assert summary.verify is not None and summary.verify["verdict"] == "empty"
    assert outcome_error(summary, replace(request, verify=True, allow_empty=True)) is None
    summary, _ = etcd_run(store, namespace="ns")
    assert outcome_error(summary, replace(request, namespace="ns")) is None


SCOPED = load_encryption_config(config(AESGCM_KEY2, AESCBC_KEY1, "identity: {}").replace(
    b"resources: [secrets]", b"resources: [secrets, namespaces]"))


def scoped_store() -> MemoryEtcd:
    """A stale Secret in team-a and two stale (cluster-scoped) Namespaces."""
    store, old = MemoryEtcd(), chain(OLD)
    for key in ("/registry/secrets/team-a/db", "/registry/namespaces/team-a",
                "/registry/namespaces/team-b"):
        store.put(key.encode(), old.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))
    return store


def test_via_etcd_with_a_namespace_leaves_cluster_scoped_resources_out_with_a_note() -> None:
    store = scoped_store()
    summary, warnings = etcd_run(store, config=SCOPED, resources=("secrets", "namespaces"),
                                 namespace="team-a", verify=True)
    # the same note the API path gives, and no scope of a namespace path under namespaces/
    assert warnings == ["--namespace team-a: cluster-scoped, left out: namespaces"]
    assert set(summary.counters) == {"secrets"}
    assert summary.totals()["rewritten"] == 1
    assert summary.verify is not None and summary.verify["checked"] == 1
    with pytest.raises(UsageError) as info:
        etcd_run(store, config=SCOPED, resources=("namespaces",), namespace="team-a")
    assert "none of the resources is namespaced" in info.value.what


def test_via_etcd_verifies_the_values_of_a_cluster_scoped_resource() -> None:
    store = scoped_store()
    summary, _ = etcd_run(store, config=SCOPED, resources=("namespaces",), verify=True)
    assert summary.totals()["rewritten"] == 2
    # its keys have no namespace segment: read as objects, not skipped as malformed
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["verdict"]) == (2, "ok")


def test_via_etcd_says_when_a_resource_scope_is_a_guess() -> None:
    """A CRD is not in the layout table: taken as namespaced, and -n/--verify say so."""
    store = scoped_store()
    _, warnings = etcd_run(store, resources=("widgets.example.com",))
    assert warnings == []
    _, warnings = etcd_run(store, resources=("widgets.example.com",), namespace="team-a")
    assert len(warnings) == 1 and "taken as namespaced: widgets.example.com" in warnings[0]
