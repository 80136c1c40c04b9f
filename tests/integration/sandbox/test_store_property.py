"""Two stand-in apiservers on one real etcd, each starting its updates from the values
it last saw (upstream's ``cachedExistingObject``), driven in random orders: creates,
lists, reads, patches (real changes, no-ops, updates the object refuses), replaces
with a ``resourceVersion`` precondition, deletes and write-key switches.

The invariant, checked after every step against etcd read by a third store that
caches nothing: every write an apiserver acknowledged is what etcd holds (no update
was lost or applied to an outdated object), every answer an apiserver gave describes
the object as etcd held it then (never a cached guess), and every value stays
readable. The model is the list of acknowledged writes, nothing the stores compute.
"""

from __future__ import annotations

import base64
import copy
import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from secretkit.etcd import EtcdClient
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.kinds import SECRETS
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.sandbox.apiserver.store import ObjectStore
from tests.fixtures.servers import EtcdServer

pytestmark = pytest.mark.etcd

EXAMPLES = int(os.environ.get("SECRETKIT_STORE_PROPERTY_EXAMPLES", "150"))
#: two names: the apiservers meet on the same objects often
NAMES = ("a", "b")
_counter = itertools.count()


_KEYS = {"k1": base64.b64encode(b"1" * 32).decode(), "k2": base64.b64encode(b"2" * 32).decode()}


def _config(first: str, *, without_k1: bool = False) -> bytes:
    """Both keys and identity readable (``without_k1``: key1 pruned, as a correct prune
    leaves a config once nothing needs it): only the write provider moves."""
    order = ("k2", "k1") if first == "k2" else ("k1", "k2")
    if without_k1:
        order = ("k2",)
    aesgcm = "      - aesgcm: {keys: [" + ", ".join(
        f"{{name: {n}, secret: {_KEYS[n]}}}" for n in order) + "]}\n"
    identity = "      - identity: {}\n"
    providers = identity + aesgcm if first == "identity" else aesgcm + identity
    return ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
            "resources:\n  - resources: [secrets]\n    providers:\n" + providers).encode()


class TwoApiservers(RuleBasedStateMachine):
    """See the module docstring."""

    server: EtcdServer

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.etcd = EtcdClient(self.server.client_config())
        self.prefix = f"/sp{next(_counter)}-{os.getpid()}/registry"
        self.stores = [self._store(f"api{i}", "k1") for i in range(2)]
        #: each apiserver's write provider, and whether key1 was pruned from it
        self.writers = ["k1", "k1"]
        self.pruned = [False, False]
        self.oracle = self._store("oracle", "k1")
        #: name -> the data/labels of the last acknowledged write (None: deleted)
        self.model: dict[str, dict[str, Any] | None] = dict.fromkeys(NAMES)
        self.serial = itertools.count()

    def _store(self, name: str, first: str) -> ObjectStore:
        path = Path(self.dir.name) / f"{name}.yaml"
        path.write_bytes(_config(first))
        return ObjectStore(self.etcd, EncryptionState(path), self.prefix)

    def teardown(self) -> None:
        self.etcd.delete_prefix(self.prefix.encode())
        self.etcd.close()
        self.dir.cleanup()

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _content(obj: dict[str, Any]) -> dict[str, Any]:
        return {"data": obj.get("data") or {}, "labels": obj["metadata"].get("labels") or {}}

    def _secret(self, name: str) -> dict[str, Any]:
        return {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                "metadata": {"name": name, "namespace": "ns",
                             "labels": {"v": str(next(self.serial))}},
                "data": {"k": "dmFsdWU="}}

    def _etcd_state(self, name: str) -> dict[str, Any] | None:
        try:
            return self._content(self.oracle.get(SECRETS, "ns", name).object())
        except ApiError as err:
            assert err.code == 404, err
            return None

    # -- rules -----------------------------------------------------------------------
    @rule(api=st.integers(0, 1), name=st.sampled_from(NAMES))
    def create(self, api: int, name: str) -> None:
        obj = self._secret(name)
        try:
            self.stores[api].create(SECRETS, copy.deepcopy(obj))
        except ApiError as err:
            assert err.code == 409 and self.model[name] is not None, err
            return
        assert self.model[name] is None, "created over an existing object"
        self.model[name] = self._content(obj)

    @rule(api=st.integers(0, 1))
    def list_all(self, api: int) -> None:
        listed = {s.object()["metadata"]["name"]: self._content(s.object())
                  for s in self.stores[api].list(SECRETS, "ns").items}
        assert listed == {n: c for n, c in self.model.items() if c is not None}

    @rule(api=st.integers(0, 1), name=st.sampled_from(NAMES))
    def get(self, api: int, name: str) -> None:
        try:
            got = self._content(self.stores[api].get(SECRETS, "ns", name).object())
        except ApiError as err:
            assert err.code == 404 and self.model[name] is None, err
            return
        assert got == self.model[name]

    @rule(api=st.integers(0, 1), name=st.sampled_from(NAMES),
          kind=st.sampled_from(["relabel", "no-op", "conditional"]))
    def patch(self, api: int, name: str, kind: str) -> None:
        """``conditional`` refuses (422) an object whose label is odd and relabels an
        even one: which of the two happens depends on the object etcd holds."""
        label = str(next(self.serial))

        def relabel(obj: dict[str, Any]) -> dict[str, Any]:
            new = copy.deepcopy(obj)
            new["metadata"]["labels"] = {"v": label}
            return new

        def conditional(obj: dict[str, Any]) -> dict[str, Any]:
            if int(obj["metadata"]["labels"]["v"]) % 2:
                raise ApiError(422, "Invalid", "refused")
            return relabel(obj)

        before = self.model[name]
        mutate = {"relabel": relabel, "no-op": None, "conditional": conditional}[kind]
        try:
            answer = self.stores[api].update(SECRETS, "ns", name, mutate)
        except ApiError as err:
            if err.code == 404:
                assert before is None, "an existing object was not found"
                return
            assert err.code == 422 and kind == "conditional", err
            assert before is not None and int(before["labels"]["v"]) % 2, (
                "refused on an outdated object")
            return
        assert before is not None, "an update of a deleted object succeeded"
        if kind == "conditional":
            assert int(before["labels"]["v"]) % 2 == 0, "accepted on an outdated object"
        if kind != "no-op":
            self.model[name] = {**before, "labels": {"v": label}}
        # the answer is the object as etcd holds it now, never a cached guess
        assert self._content(answer.object()) == self.model[name]
        current = self.etcd.get(self.oracle.key(SECRETS, "ns", name).encode())
        assert current is not None
        assert answer.object()["metadata"]["resourceVersion"] == str(current.mod_revision)

    @rule(api=st.integers(0, 1), other=st.integers(0, 1), name=st.sampled_from(NAMES))
    def replace_with_precondition(self, api: int, other: int, name: str) -> None:
        """A client read the object from one apiserver and writes through another."""
        try:
            seen = self.stores[other].get(SECRETS, "ns", name)
        except ApiError:
            return
        rv = str(seen.revision)
        if self.model[name] is not None and self._etcd_state(name) != self.model[name]:
            raise AssertionError("the model and etcd disagree before the replace")
        label = str(next(self.serial))

        def relabel(obj: dict[str, Any]) -> dict[str, Any]:
            new = copy.deepcopy(obj)
            new["metadata"]["labels"] = {"v": label}
            return new

        current = self.etcd.get(self.oracle.key(SECRETS, "ns", name).encode())
        try:
            self.stores[api].update(SECRETS, "ns", name, relabel, precondition=rv)
        except ApiError as err:
            assert err.code in (404, 409), err
            # refused only when the precondition is really outdated
            assert current is None or str(current.mod_revision) != rv, err
            return
        assert current is not None and str(current.mod_revision) == rv
        self.model[name] = {**(self.model[name] or {}), "labels": {"v": label}}

    @rule(api=st.integers(0, 1), name=st.sampled_from(NAMES))
    def delete(self, api: int, name: str) -> None:
        try:
            self.stores[api].delete(SECRETS, "ns", name)
        except ApiError as err:
            assert err.code == 404 and self.model[name] is None, err
            return
        assert self.model[name] is not None
        self.model[name] = None

    @rule(api=st.integers(0, 1), first=st.sampled_from(["k1", "k2", "identity"]))
    def switch_write_key(self, api: int, first: str) -> None:
        """An apiserver restarts with another write provider (its cache survives)."""
        if any(self.pruned) and first == "k1":
            first = "k2"  # key1 is gone from the cluster: nobody writes with it again
        self.writers[api] = first
        self._configure(api)

    @rule(api=st.integers(0, 1))
    def rotate_key1_out(self, api: int) -> None:
        """The local-key runbook in one step: no apiserver writes with key1 any more,
        the other apiserver re-encrypts every object (empty patches), and once etcd
        holds no key1 value (what the prune gate proves) key1 leaves ``api``'s config,
        reloaded in place: the values ``api`` last saw may still be key1's."""
        self.writers = ["k2" if w == "k1" else w for w in self.writers]
        for each in (0, 1):
            self._configure(each)
        for name in NAMES:
            if self.model[name] is not None:
                self.stores[1 - api].update(SECRETS, "ns", name, None)
        for page in self.etcd.scan(self.prefix.encode() + b"/"):
            assert not any(kv.value.startswith(b"k8s:enc:aesgcm:v1:k1:") for kv in page)
        self.pruned[api] = True
        self._configure(api)

    def _configure(self, api: int) -> None:
        path = Path(self.dir.name) / f"api{api}.yaml"
        path.write_bytes(_config(self.writers[api], without_k1=self.pruned[api]))
        self.stores[api]._encryption = EncryptionState(path)

    # -- the invariant -----------------------------------------------------------------
    @invariant()
    def etcd_holds_every_acknowledged_write(self) -> None:
        for name in NAMES:
            assert self._etcd_state(name) == self.model[name], name


@pytest.mark.timeout(600)
def test_cached_state_updates_never_lose_or_invent_a_write(etcd_server: EtcdServer) -> None:
    TwoApiservers.server = etcd_server
    run = TwoApiservers.TestCase
    run.settings = settings(
        max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=os.environ.get("SECRETKIT_PROPERTY_RANDOM") != "1",
        # checking that a broken store is caught wants the first failure, not the smallest
        phases=([Phase.explicit, Phase.reuse, Phase.generate]
                if os.environ.get("SECRETKIT_PROPERTY_NO_SHRINK") == "1" else list(Phase)),
    )
    run().runTest()
