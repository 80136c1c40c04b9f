"""What a re-encryption request refuses up front, and what a finished run amounts to."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.errors import ExitCode, UsageError
from secretkit.etcd import ForwardingEtcd, MemoryEtcd
from secretkit.kmsapi.services import KMSServices
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.request import (
    ReencryptRequest,
    ReencryptWorld,
    Via,
    outcome_error,
    run_reencrypt,
)
from secretkit.reencrypt.stale_scan import scan_stale
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
    """A CRD is not in the layout table: -n can only take its namespaced objects, and
    says so; without -n nothing is left out (--verify reads either key shape)."""
    store = scoped_store()
    _, warnings = etcd_run(store, resources=("widgets.example.com",))
    assert warnings == []
    _, warnings = etcd_run(store, resources=("widgets.example.com",), verify=True)
    assert warnings == []
    _, warnings = etcd_run(store, resources=("widgets.example.com",), namespace="team-a")
    assert len(warnings) == 1, warnings
    assert "scope not in the layout table: widgets.example.com" in warnings[0]
    assert "cluster-scoped ones, if any, are left out" in warnings[0]


WIDGETS = load_encryption_config(config(AESGCM_KEY2, AESCBC_KEY1, "identity: {}").replace(
    b"resources: [secrets]", b"resources: [secrets, widgets.example.com]"))


def _widgets_with_an_old_apiserver() -> tuple[ForwardingEtcd, list[str]]:
    """A fresh Secret and two values of a cluster-scoped CRD (keys ``<prefix>/<name>``),
    behind an apiserver left running with the old config that writes w-0 stale again
    right before every swap that includes it."""
    store, old = MemoryEtcd(), chain(OLD)
    fresh = "/registry/secrets/ns/fresh"
    store.put(fresh.encode(), chain(NEW).for_etcd_key(fresh).write(b"k8s\x00s", fresh))
    widgets = ["/registry/example.com/widgets/w-0", "/registry/example.com/widgets/w-1"]
    for key in widgets:
        store.put(key.encode(), old.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))

    class OldApiserver(ForwardingEtcd):
        def _rewrite(self, keys: set[bytes]) -> None:
            if widgets[0].encode() in keys:
                value = old.for_etcd_key(widgets[0]).write(b"k8s\x00again", widgets[0])
                self.inner.put(widgets[0].encode(), value)

        def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
            self._rewrite({k for k, _, _ in items})
            return super().compare_and_swap_many(items)

        def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
            self._rewrite({key})
            return super().compare_and_swap(key, value, mod_revision=mod_revision)

    return OldApiserver(store), widgets


def test_via_etcd_verify_reads_a_cluster_scoped_resource_of_unknown_scope() -> None:
    """--verify must see the CRD value the old apiserver wrote stale again."""
    etcd, _widgets = _widgets_with_an_old_apiserver()
    request = ReencryptRequest(via="etcd", config=WIDGETS, verify=True, show_progress=False,
                               resources=("secrets", "widgets.example.com"))
    world = ReencryptWorld(kms=KMSServices(), open_etcd=lambda: nullcontext(etcd),
                           apiservers_stopped=True)
    summary = run_reencrypt(request, world)
    assert summary.totals()["conflicts_skipped"] == 1  # the old apiserver's value stays
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["stale"]) == (3, 1)
    assert summary.verify["stale_examples"] == ["widgets.example.com:w-0"]
    error = outcome_error(summary, request)
    assert error is not None and "1 stale value(s) remain" in error.what


@pytest.mark.parametrize("names", [("*.*",), ("secrets", "*.example.com")])
def test_via_etcd_verify_with_a_wildcard_reads_the_whole_prefix(names: tuple[str, ...]) -> None:
    """A wildcard's run rewrites every value under the prefix; its proof reads them all
    (it was skipped with a warning, and the run passed)."""
    etcd, widgets = _widgets_with_an_old_apiserver()
    request = ReencryptRequest(via="etcd", config=WIDGETS, verify=True, show_progress=False,
                               resources=names)
    world = ReencryptWorld(kms=KMSServices(), open_etcd=lambda: nullcontext(etcd),
                           apiservers_stopped=True)
    summary = run_reencrypt(request, world)
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["stale"]) == (3, 1)
    assert summary.verify["stale_examples"] == [widgets[0]]
    error = outcome_error(summary, request)
    assert error is not None and "1 stale value(s) remain" in error.what


def test_via_etcd_verify_with_a_wildcard_over_a_wrong_prefix_proves_nothing() -> None:
    store = seeded()
    request = ReencryptRequest(via="etcd", config=CONFIG, verify=True, show_progress=False,
                               resources=("*.*",), etcd_prefix="/regsitry", allow_empty=False)
    summary = run_reencrypt(request, ReencryptWorld(
        kms=KMSServices(), open_etcd=lambda: nullcontext(store), apiservers_stopped=True))
    assert summary.verify is not None and summary.verify["verdict"] == "empty"
    assert outcome_error(summary, request) is not None


def test_via_etcd_verify_counts_and_reports_keys_that_name_no_object() -> None:
    """A key below a resource's prefix that fits no object shape is read and judged like
    any other value (--via etcd rewrote it: it scans the whole range) and named in a
    warning, never dropped from the verification."""
    store, old = MemoryEtcd(), chain(OLD)
    odd = "/registry/secrets/ns/a/b"
    for key in ("/registry/secrets/ns/s", odd):
        store.put(key.encode(), old.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))
    summary, warnings = etcd_run(store, verify=True)
    assert summary.totals()["rewritten"] == 2
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["verdict"]) == (2, "ok")
    assert len(warnings) == 1 and odd in warnings[0], warnings
    # and -o json says so too
    assert summary.verify["keys_naming_no_object"] == 1
    assert summary.verify["keys_naming_no_object_examples"] == [odd]


def test_via_etcd_namespace_verifies_only_the_namespaced_keys_of_an_unknown_resource() -> None:
    """-n with a resource of unknown scope: its namespace's keys are rewritten and
    verified, a cluster-scoped key (of the same name as the namespace) is left out."""
    store, old = MemoryEtcd(), chain(OLD)
    keys = ["/registry/example.com/widgets/team-a", "/registry/example.com/widgets/team-a/w",
            "/registry/example.com/widgets/team-b/w"]
    for key in keys:
        store.put(key.encode(), old.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))
    summary, warnings = etcd_run(store, config=WIDGETS, resources=("widgets.example.com",),
                                 namespace="team-a", verify=True)
    assert len(warnings) == 1 and "left out" in warnings[0]
    assert summary.totals()["rewritten"] == 1
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["verdict"]) == (1, "ok")
    summary, _ = etcd_run(store, config=WIDGETS, resources=("widgets.example.com",),
                          verify=True)
    assert summary.totals()["rewritten"] == 2
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["verdict"]) == (3, "ok")


def _jobs_crd(raw: bytes) -> bytes:
    return raw.replace(b"resources: [secrets]", b"resources: [jobs.example.com]")


def test_a_crd_named_like_a_builtin_never_reads_the_builtins_values() -> None:
    """jobs.example.com's guessed built-in layout (``jobs/``) is batch Jobs' path: a
    plaintext batch Job there is fine under its own (identity) rule, and is no object
    of the CRD to rewrite, verify or count (it was judged by the CRD's chain:
    'undecryptable', exit 4, and it filled an otherwise empty run)."""
    store = MemoryEtcd()
    builtin = "/registry/jobs/ns/batch-job"
    store.put(builtin.encode(), b"k8s\x00plain batch job")
    crd = "/registry/example.com/jobs/ns/crd-job"
    old = chain(_jobs_crd(OLD))
    store.put(crd.encode(), old.for_etcd_key(crd).write(b"k8s\x00crd job", crd))
    jobs = load_encryption_config(_jobs_crd(NEW))
    summary, _ = etcd_run(store, config=jobs, resources=("jobs.example.com",), verify=True)
    assert summary.totals()["seen"] == summary.totals()["rewritten"] == 1
    assert summary.verify is not None
    assert (summary.verify["checked"], summary.verify["undecryptable"]) == (1, 0)
    assert summary.verify["verdict"] == "ok"
    request = ReencryptRequest(via="etcd", config=jobs, resources=("jobs.example.com",),
                               verify=True)
    assert outcome_error(summary, request) is None
    kv = store.get(builtin.encode())
    assert kv is not None and kv.value == b"k8s\x00plain batch job"
    # and over the built-in alone the CRD's run is empty, as it should be
    store.delete(crd.encode())
    summary, _ = etcd_run(store, config=jobs, resources=("jobs.example.com",), verify=True)
    assert summary.totals()["seen"] == 0
    assert summary.verify is not None and summary.verify["verdict"] == "empty"


def test_only_stale_never_sends_a_builtins_objects_to_a_crd_named_like_it() -> None:
    """The API path's scan: a stale batch Job is not a jobs.example.com object to PATCH."""
    store, old = MemoryEtcd(), chain(_jobs_crd(OLD).replace(b"jobs.example.com", b"jobs.batch"))
    builtin = "/registry/jobs/ns/batch-job"
    store.put(builtin.encode(), old.for_etcd_key(builtin).write(b"k8s\x00j", builtin))
    jobs = load_encryption_config(_jobs_crd(NEW).replace(b"[jobs.example.com]",
                                                         b"[jobs.example.com, jobs.batch]"))
    crd = ApiResource("example.com", "jobs", "v1", "Job", True)
    scan = scan_stale(store, [crd], jobs)
    assert scan.stale == {"jobs.example.com": []}
    assert scan.fresh == {"jobs.example.com": []}
    assert scan.unparsed == []


@pytest.mark.parametrize("allow_empty", [False, None, True])
def test_stale_values_verify_found_win_over_an_empty_run(allow_empty: bool | None) -> None:
    """A run that sent nothing (--only-stale over keys that name no object, say) while
    etcd holds stale values: the error names those, not "0 objects ... nothing to
    re-encrypt" (which hid them behind advice to check the spelling)."""
    summary = Summary(mode="api", complete=True)
    summary.ensure("secrets")
    summary.verify = {"checked": 2, "stale": 2, "stale_examples": ["/registry/secrets/ns/a/b"],
                      "undecryptable": 0, "verdict": "stale"}
    error = outcome_error(summary, ReencryptRequest(verify=True, allow_empty=allow_empty))
    assert error is not None and error.exit_code == ExitCode.FINDINGS
    assert "2 stale value(s) remain" in error.what
    assert "0 objects" not in error.what
