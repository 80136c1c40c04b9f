"""The rotation life cycle as a stateful property, with a real etcd as the oracle.

The invariant (issue 11): after every step, every stored value (current, and the older
revisions etcd still holds) is readable by every config some apiserver may still run,
and every config file on disk is one kube-apiserver would accept.

Hypothesis draws the starting EncryptionConfiguration (several rules, shared rules,
``*.*`` and ``*.<group>`` wildcards, local keys, kms v2 and identity mixed), then a
sequence of steps: simulated apiservers that each run the config they last loaded
(lagging behind the node files) write and delete objects through their own
transformer chain; stages of any procedure are tried in any order with any resource
selection (refusals are fine, data loss is not); a stage's re-encryption is served
by a random mix of apiservers with writers interleaved; etcd is compacted; a stage's
file writes are interrupted half-way. The operator is truthful: they confirm "every
apiserver runs the current file" only when it is so.

"Readable" is decided by decrypting, through the transformer chain of each config
(upstream's read rules), not by the judgement the gates use.

The test can fail: ``old_gate_blind_spots.patch`` (beside this file) puts the old
code's blind spots back (a partial selection of a shared rule accepted, re-encryption
and the gate limited to the resources typed, no proof after re-encrypting). With it
applied, this test finds the shared-rule data loss within the CI's 60 examples (fixed
seed; about 5 minutes with shrinking)::

    git apply tests/integration/rotation/old_gate_blind_spots.patch
    python -m pytest tests/integration/rotation/test_lifecycle_property.py
    # AssertionError: .../configmaps/ns/obj0 @1109 unreadable by a running config
    #   [(['secrets', 'configmaps'], ['aesgcm'])]: no provider could decrypt the value:
    #   aesgcm: no matching key was found ...   (and, shrunk from another example, the
    #   enable-encryption loss: ... no matching prefix found (resource 'configmaps'))
    git apply -R tests/integration/rotation/old_gate_blind_spots.patch

CI checks that this stays true: ``test_property_finds_old_bug.py`` runs this test on a
patched copy of the tree (shrinking off: the first failure comes within seconds).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from secretkit.backends.interface import BackendKMSService
from secretkit.backends.local import LocalBackend, LocalKey
from secretkit.core.encryption_config import (
    EncryptionConfig,
    KMSProvider,
    load_encryption_config,
)
from secretkit.core.formats import encode_unknown
from secretkit.core.layout import Layout
from secretkit.core.transformers import TransformerSet, build_transformers
from secretkit.errors import SecretkitError
from secretkit.etcd import EtcdClient, EtcdCompactedError
from secretkit.reencrypt.request import ReencryptRequest
from secretkit.reencrypt.summary import ObjectError, Summary
from secretkit.rotation import files as rotation_files
from secretkit.rotation.engine import StageEngine, StageOptions, StageWorld
from secretkit.rotation.kms import KMSRotation
from secretkit.rotation.plans import DisableEncryption, EnableEncryption, LocalKeyRotation
from tests.fixtures.servers import EtcdServer

pytestmark = pytest.mark.etcd

#: how hard CI searches (the shared-rule bug of the old gate is found well within this)
EXAMPLES = int(os.environ.get("SECRETKIT_PROPERTY_EXAMPLES", "60"))
STEPS = int(os.environ.get("SECRETKIT_PROPERTY_STEPS", "30"))

#: (resource name in configs, etcd path segment) of the simulated resources
RESOURCES = {
    "secrets": "secrets",
    "configmaps": "configmaps",
    "deployments.apps": "deployments",
}
#: kms provider names: one per rule position (names must be unique in a config), and
#: "kms-b" for enabling kms
KMS_NAMES = ("kms-a", "kms-b", "kms-c", "kms-d")
_RULE_KMS = ("kms-a", "kms-c", "kms-d")
_counter = itertools.count()
#: how often each stage outcome happened (the run must exercise real prunes)
OUTCOMES: Counter[str] = Counter()


class VersionedKey(LocalBackend):
    """A transit-like backend key for the test: versions, rotation, retirement."""

    can_retire = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = 1
        super().__init__([LocalKey(os.urandom(32), key_id=f"prop:{name}:v1")])

    def rotate(self) -> str:
        self.version += 1
        key = LocalKey(os.urandom(32), key_id=f"prop:{self.name}:v{self.version}")
        self._write = key
        self._aead[key.key_id] = AESGCM(key.kek)
        return key.key_id

    def owns_key_id(self, key_id: str) -> bool:
        return key_id.startswith(f"prop:{self.name}:v")

    def retire_old_versions(self, keep: str) -> int:
        kept = int(keep.rsplit(":v", 1)[1])
        for key_id in list(self._aead):
            if int(key_id.rsplit(":v", 1)[1]) < kept:
                del self._aead[key_id]
        return kept


# -- strategies ---------------------------------------------------------------------
def _secret(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def local_provider(draw: st.DrawFn, names: Iterator[str]) -> dict[str, Any]:
    ptype = draw(st.sampled_from(["aesgcm", "aescbc", "secretbox"]))
    count = draw(st.integers(1, 2))
    keys = [
        {"name": next(names), "secret": _secret(draw(st.binary(min_size=32, max_size=32)))}
        for _ in range(count)
    ]
    return {ptype: {"keys": keys}}


def kms_provider(name: str) -> dict[str, Any]:
    return {"kms": {"apiVersion": "v2", "name": name,
                    "endpoint": f"unix:///run/{name}.sock", "timeout": "3s"}}


@st.composite
def chain(draw: st.DrawFn, names: Iterator[str], position: int) -> list[dict[str, Any]]:
    first = draw(st.sampled_from(["local", "kms", "identity"]))
    providers: list[dict[str, Any]] = []
    if first == "local":
        providers.append(draw(local_provider(names)))
    elif first == "kms":
        providers.append(kms_provider(_RULE_KMS[position]))
    else:
        providers.append({"identity": {}})
    if first != "identity" and draw(st.booleans()):
        providers.append({"identity": {}})
    return providers


RULE_SHAPES = [
    [["secrets", "configmaps"]],
    [["secrets"], ["configmaps"]],
    [["secrets", "configmaps", "deployments.apps"]],
    [["secrets"], ["*.*"]],
    [["*.*"]],
    [["configmaps"], ["*.apps"], ["secrets"]],
    [["secrets", "configmaps"], ["*.apps"]],
]


@st.composite
def config_document(draw: st.DrawFn) -> dict[str, Any]:
    names = (f"k{i}" for i in itertools.count(1))
    shape = draw(st.sampled_from(RULE_SHAPES))
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {"resources": list(r), "providers": draw(chain(names, i))}
            for i, r in enumerate(shape)
        ],
    }


# -- the simulated cluster ----------------------------------------------------------
def _dump(doc: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode()


@dataclass
class Apiserver:
    """One kube-apiserver: the config it last loaded and its transformer chain."""

    name: str
    raw: bytes
    chain: TransformerSet


@dataclass
class Cluster:
    """etcd (real), node config files, simulated apiservers, in-process KMS backends."""

    etcd: EtcdClient
    prefix: str
    workdir: Path
    kms: dict[str, BackendKMSService]
    apiservers: list[Apiserver] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    #: (etcd key, mod_revision) -> value of everything etcd holds (see refresh_history)
    held: dict[tuple[str, int], bytes] = field(default_factory=dict)
    scanned_to: int = 0
    #: (config bytes, key, mod_revision) already proven readable (neither changes)
    proven: set[tuple[bytes, str, int]] = field(default_factory=set)

    @property
    def nodes(self) -> list[Path]:
        return [self.workdir / "node1.yaml", self.workdir / "node2.yaml"]

    @property
    def layout(self) -> Layout:
        return Layout(self.prefix)

    def kms_factory(self, provider: Any) -> BackendKMSService:
        return self.kms[provider.name]

    def chain_of(self, raw: bytes) -> TransformerSet:
        return build_transformers(load_encryption_config(raw), self.kms_factory)

    def load(self, apiserver: Apiserver) -> None:
        raw = self.nodes[0].read_bytes()
        apiserver.raw, apiserver.chain = raw, self.chain_of(raw)

    def key(self, resource: str, name: str) -> str:
        return f"{self.prefix}/{RESOURCES[resource]}/ns/{name}"

    def write(self, apiserver: Apiserver, resource: str, name: str) -> None:
        key = self.key(resource, name)
        plaintext = encode_unknown("v1", "Object", f"{resource}/{name}".encode())
        value = apiserver.chain.for_etcd_key(key, self.prefix).write(plaintext, key)
        self.etcd.put(key.encode(), value)

    def refresh_history(self) -> None:
        """Learn every value etcd holds under the prefix, revision by revision.

        Independent of secretkit's history reader: the keyspace is read as of each
        revision since the last look (a value seen at any retained revision is held).
        Compaction drops what is no longer visible at the compaction revision or later.
        """
        current = self.etcd.current_revision()
        for revision in range(self.scanned_to + 1, current + 1):
            try:
                for items in self.etcd.range_pages(self.root, revision=revision):
                    for kv in items:
                        self.held.setdefault((kv.key.decode(), kv.mod_revision), kv.value)
            except EtcdCompactedError:
                continue
        self.scanned_to = current

    def compacted(self, revision: int) -> None:
        """Forget values only visible before ``revision`` (etcd compacted them)."""
        visible: dict[tuple[str, int], bytes] = {}
        for items in self.etcd.range_pages(self.root, revision=revision):
            for kv in items:
                visible[(kv.key.decode(), kv.mod_revision)] = kv.value
        self.held = {
            ident: value
            for ident, value in self.held.items()
            if ident[1] >= revision or ident in visible
        }

    def forget_history(self) -> None:
        """Keep only the live values (an accepted loss of older revisions)."""
        self.refresh_history()
        live = {
            (kv.key.decode(), kv.mod_revision)
            for items in self.etcd.range_pages(self.root)
            for kv in items
        }
        self.held = {ident: value for ident, value in self.held.items() if ident in live}

    @property
    def root(self) -> bytes:
        return self.prefix.encode() + b"/"

    # -- what a stage's re-encryption does through the API ---------------------------
    def reencrypt(self, request: ReencryptRequest) -> Summary:
        summary = Summary(mode="api", dry_run=request.dry_run)
        wanted = list(request.config_resources)
        for page in self.etcd.range_pages(self.prefix.encode() + b"/"):
            for kv in page:
                key = kv.key.decode()
                owner = self.layout.owner(key)
                if not any(_named(n, g, r) for n in wanted for g, r in owner.resources):
                    continue
                resource = owner.qualified
                summary.add(resource, "seen")
                if self.rng.random() < 0.2:  # a concurrent writer on a random apiserver
                    lagging = self.rng.choice(self.apiservers)
                    self.write(lagging, _resource_of(owner), key.rsplit("/", 1)[1])
                server = self.rng.choice(self.apiservers)
                current = self.etcd.get(kv.key)
                if current is None:
                    summary.add(resource, "gone")
                    continue
                transformer = server.chain.for_etcd_key(key, self.prefix)
                try:
                    result = transformer.read(current.value, key)
                except SecretkitError:
                    summary.fail(ObjectError(resource, "ns", key, 500, "InternalError"))
                    continue
                if not result.stale:
                    summary.add(resource, "unchanged")
                    continue
                new = transformer.write(result.plaintext, key)
                if self.etcd.compare_and_swap(kv.key, new, mod_revision=current.mod_revision):
                    summary.add(resource, "rewritten")
                else:
                    summary.add(resource, "conflicts_skipped")
        summary.complete = True
        return summary


def _named(name: str, group: str, resource: str) -> bool:
    if name == "*.*":
        return True
    res, _, grp = name.partition(".")
    if res == "*":
        return grp == group
    return (grp, res) == (group, resource)


def _resource_of(owner: Any) -> str:
    group, resource = owner.resources[0]
    return f"{resource}.{group}" if group else resource


# -- the state machine --------------------------------------------------------------
class RotationLifecycle(RuleBasedStateMachine):
    """See the module docstring."""

    server: EtcdServer

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.cluster: Cluster | None = None
        self.names = (f"obj{i}" for i in itertools.count())
        self.created: list[tuple[str, str]] = []

    @initialize(doc=config_document(), apiservers=st.integers(1, 3), seed=st.integers(0, 2**32))
    def start(self, doc: dict[str, Any], apiservers: int, seed: int) -> None:
        workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        etcd = self._stack.enter_context(EtcdClient(self.server.client_config()))
        # every provider name on one backend key (providers renamed, endpoints moved):
        # retiring one provider's old versions must judge the others' values too
        shared = VersionedKey("shared")
        self.backends = {name: shared for name in KMS_NAMES}
        kms = {name: BackendKMSService(self.backends[name]) for name in KMS_NAMES}
        self.cluster = Cluster(etcd, f"/pt{next(_counter)}-{os.getpid()}/registry", workdir, kms,
                               rng=random.Random(seed))
        self.cluster.scanned_to = etcd.current_revision()
        raw = _dump(doc)
        for node in self.cluster.nodes:
            node.write_bytes(raw)
            node.chmod(0o600)
        for i in range(apiservers):
            self.cluster.apiservers.append(
                Apiserver(f"apiserver-{i}", raw, self.cluster.chain_of(raw))
            )
        # a cluster in use holds objects of every kind before anyone rotates anything:
        # the values a stage forgets are the ones already stored
        for resource in sorted(RESOURCES):
            name = next(self.names)
            self.cluster.write(self.cluster.apiservers[0], resource, name)
            self.created.append((resource, name))

    def teardown(self) -> None:
        if self.cluster is not None:
            self.cluster.etcd.delete_prefix(self.cluster.prefix.encode() + b"/")
        self._stack.close()

    # -- the engine, driven like the CLI -----------------------------------------------
    def engine(self, plan: Any, *, ignore_history: bool = False) -> StageEngine:
        cluster = self.cluster
        assert cluster is not None
        current = cluster.nodes[0].read_bytes()

        def truthful(_message: str) -> bool:
            return all(a.raw == current for a in cluster.apiservers)

        world = StageWorld(
            open_etcd=lambda: contextlib.nullcontext(cluster.etcd),
            reencrypt=cluster.reencrypt,
            kms_key_ids=lambda config: {
                name: service.status().key_id for name, service in cluster.kms.items()
            },
            echo=lambda _m: None,
            confirm=truthful,
        )
        options = StageOptions(
            configs=cluster.nodes,
            state_path=cluster.workdir / "state.json",
            etcd_prefix=cluster.prefix,
            ignore_history=ignore_history,
        )
        return StageEngine(plan, options, world)

    def _attempt(self, action: Any, name: str) -> bool:
        """Run a stage; refusals (usage, safety, config errors) are allowed outcomes."""
        try:
            action()
        except SecretkitError as exc:
            OUTCOMES[f"{name}: refused ({type(exc).__name__})"] += 1
            if os.environ.get("SECRETKIT_PROPERTY_DEBUG"):
                print(f"{name}: {exc.what[:160]}")
            return False
        OUTCOMES[f"{name}: done"] += 1
        return True

    # -- rules --------------------------------------------------------------------
    @precondition(lambda self: self.cluster is not None)
    @rule(data=st.data())
    def apiserver_writes(self, data: st.DataObject) -> None:
        assert self.cluster is not None
        server = data.draw(st.sampled_from(self.cluster.apiservers))
        resource = data.draw(st.sampled_from(sorted(RESOURCES)))
        if self.created and data.draw(st.booleans()):
            resource, name = data.draw(st.sampled_from(self.created))
        else:
            name = next(self.names)
            self.created.append((resource, name))
        self.cluster.write(server, resource, name)

    @precondition(lambda self: self.cluster is not None and bool(self.created))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        assert self.cluster is not None
        resource, name = data.draw(st.sampled_from(self.created))
        self.cluster.etcd.delete(self.cluster.key(resource, name).encode())

    @precondition(lambda self: self.cluster is not None)
    @rule(data=st.data())
    def apiserver_reloads(self, data: st.DataObject) -> None:
        assert self.cluster is not None
        self.cluster.load(data.draw(st.sampled_from(self.cluster.apiservers)))

    @precondition(lambda self: self.cluster is not None)
    @rule()
    def operator_restarts_every_apiserver(self) -> None:
        assert self.cluster is not None
        for server in self.cluster.apiservers:
            self.cluster.load(server)

    @precondition(lambda self: hasattr(self, "plan"))
    @rule(restart=st.booleans(), compact=st.booleans())
    def operator_runs_the_next_stage(self, restart: bool, compact: bool) -> None:
        """The runbook path: (restart the apiservers, compact before a prune, then) run
        what `status` says is next."""
        assert self.cluster is not None
        if restart:
            self.operator_restarts_every_apiserver()
        from secretkit.rotation.state import load_state

        state = load_state(self.cluster.workdir / "state.json")
        if state is None or state.next_stage in (None, "prepare"):
            return
        if compact and state.next_stage == "prune":
            self.compact()
        engine = self.engine(self.plan)
        self._attempt(getattr(engine, state.next_stage), state.next_stage)

    @precondition(lambda self: self.cluster is not None)
    @rule(data=st.data(), retire=st.booleans(), history=st.booleans(), restart=st.booleans())
    def kms_rotation(
        self, data: st.DataObject, retire: bool, history: bool, restart: bool
    ) -> None:
        """`kms rotate` of a kms provider the config has (maybe --retire-old, maybe
        --ignore-history); the apiservers pick the new key_id up at their next Status
        poll, or some lag behind."""
        cluster = self.cluster
        assert cluster is not None
        config = load_encryption_config(cluster.nodes[0].read_bytes())
        names = sorted({p.name for r in config.rules for p in r.providers
                        if isinstance(p, KMSProvider)})
        if not names:
            return
        provider = data.draw(st.sampled_from(names))

        def reencrypt(names: list[str]) -> int:
            lagging = [a for a in cluster.apiservers if not restart and cluster.rng.random() < 0.5]
            for server in cluster.apiservers:
                if server not in lagging:
                    cluster.load(server)  # a new seed from the new key_id
            summary = cluster.reencrypt(ReencryptRequest(config_resources=tuple(names)))
            return int(summary.totals().get("rewritten", 0))

        rotation = KMSRotation(
            provider=provider, config=config, backend=self.backends[provider],
            plugin=cluster.kms[provider],
            open_etcd=lambda: contextlib.nullcontext(cluster.etcd), reencrypt=reencrypt,
            layout=cluster.layout, plugin_timeout=1, refresh_wait=0, retire_old=retire,
            include_history=not history, echo=lambda _m: None,
        )
        done = self._attempt(rotation.run, "kms rotate" + (" --retire-old" if retire else ""))
        if done and retire:
            if history:
                # --ignore-history: the operator accepted that older revisions become
                # unreadable; every current value must still be readable
                cluster.forget_history()
            # the DEK caches of running apiservers hide a retired key until they
            # restart; the invariant must judge what a restarted apiserver reads
            self.operator_restarts_every_apiserver()
            cluster.proven.clear()

    @precondition(lambda self: self.cluster is not None)
    @rule()
    def compact(self) -> None:
        assert self.cluster is not None
        self.cluster.refresh_history()
        revision = self.cluster.etcd.current_revision()
        with contextlib.suppress(EtcdCompactedError):
            self.cluster.etcd.compact(revision)
        self.cluster.compacted(revision)

    @precondition(lambda self: self.cluster is not None)
    @rule(
        kind=st.sampled_from(["local-key", "enable-aesgcm", "enable-kms", "disable"]),
        resources=st.sampled_from(
            [["secrets"], ["configmaps"], ["secrets", "configmaps"],
             ["secrets", "configmaps", "deployments.apps"], ["*.*"], ["*.apps"]]
        ),
        secret=st.binary(min_size=32, max_size=32),
    )
    def prepare(self, kind: str, resources: list[str], secret: bytes) -> None:
        plan: Any
        if kind == "local-key":
            plan = LocalKeyRotation()
        elif kind == "enable-aesgcm":
            plan = EnableEncryption(
                provider={"aesgcm": {"keys": [{"name": f"new{next(_counter)}",
                                               "secret": _secret(secret)}]}}
            )
        elif kind == "enable-kms":
            plan = EnableEncryption(provider=kms_provider("kms-b"))
        else:
            plan = DisableEncryption()
        # an explicit, never repeated key name: the default is a timestamp, and two
        # prepares in one second would collide depending on timing (a flaky replay)
        name = f"rot{next(_counter)}"
        if self._attempt(
            lambda: self.engine(plan).prepare(resources, name), f"prepare {kind}"
        ):
            self.plan = plan

    @precondition(lambda self: self.cluster is not None)
    @rule(data=st.data())
    def prepare_a_whole_rule(self, data: st.DataObject) -> None:
        """The runbook path: pick a rule of the config, the procedure its writer allows."""
        assert self.cluster is not None
        doc = yaml.safe_load(self.cluster.nodes[0].read_bytes())
        rule_ = data.draw(st.sampled_from(doc["resources"]))
        writer = next(iter(rule_["providers"][0]))
        if writer == "identity":
            kind = data.draw(st.sampled_from(["enable-aesgcm", "enable-kms"]))
        elif writer == "kms":
            kind = "disable"
        else:
            kind = data.draw(st.sampled_from(["local-key", "disable"]))
        self.prepare(kind, list(rule_["resources"]), data.draw(st.binary(min_size=32,
                                                                           max_size=32)))

    @precondition(lambda self: self.cluster is not None)
    @rule(data=st.data())
    def operator_follows_a_runbook(self, data: st.DataObject) -> None:
        """A whole procedure as a runbook says, with writers between the stages.

        The resources are a whole rule or any part of one (what an operator may type);
        before each stage some apiservers write (possibly still on an older file), then
        the operator restarts them all and, before a prune, may compact etcd.
        """
        assert self.cluster is not None
        doc = yaml.safe_load(self.cluster.nodes[0].read_bytes())
        rule_ = data.draw(st.sampled_from(doc["resources"]))
        names = list(rule_["resources"])
        resources = data.draw(
            st.sampled_from([names]) | st.lists(st.sampled_from(names), min_size=1, unique=True)
        )
        writer = next(iter(rule_["providers"][0]))
        kinds = {"identity": ["enable-aesgcm", "enable-kms"], "kms": ["disable"]}
        kind = data.draw(st.sampled_from(kinds.get(writer, ["local-key", "disable"])))
        self.prepare(kind, resources, data.draw(st.binary(min_size=32, max_size=32)))
        if not hasattr(self, "plan"):
            return
        for stage in ("promote", "reencrypt", "prune"):
            for _ in range(data.draw(st.integers(0, 3))):
                self.apiserver_writes(data)
            self.operator_restarts_every_apiserver()
            if stage == "prune" and data.draw(st.booleans()):
                self.compact()
            if not self._attempt(getattr(self.engine(self.plan), stage), f"runbook {stage}"):
                return

    @precondition(lambda self: hasattr(self, "plan"))
    @rule(stage=st.sampled_from(["promote", "reencrypt", "prune"]))
    def stage(self, stage: str) -> None:
        engine = self.engine(self.plan)
        self._attempt(getattr(engine, stage), stage)

    @precondition(lambda self: hasattr(self, "plan"))
    @rule(after=st.integers(0, 1))
    def interrupted_stage(self, after: int) -> None:
        """The next stage, its file writes stopped after ``after`` of the two node files."""
        from secretkit.rotation.state import load_state

        assert self.cluster is not None
        self.operator_restarts_every_apiserver()
        state = load_state(self.cluster.workdir / "state.json")
        stage = state.next_stage if state is not None else None
        if stage not in ("promote", "prune"):
            stage = "prepare"
        real = rotation_files.write_private
        written = [0]

        def flaky(path: Path, data: bytes, *, mode: int = 0o600) -> None:
            if path.name in ("node1.yaml", "node2.yaml"):
                if written[0] >= after:
                    raise OSError("simulated crash")
                written[0] += 1
            real(path, data, mode=mode)

        rotation_files.write_private = flaky  # type: ignore[assignment]
        try:
            engine = self.engine(self.plan)
            try:
                if stage == "prepare":
                    self._attempt(
                        lambda: engine.prepare(["secrets", "configmaps"], f"rot{next(_counter)}"),
                        "interrupted prepare",
                    )
                else:
                    self._attempt(getattr(engine, stage), f"interrupted {stage}")
            except OSError:
                OUTCOMES[f"interrupted {stage}: crashed mid-write"] += 1
        finally:
            rotation_files.write_private = real  # type: ignore[assignment]
        if after == 1:
            # the operator makes the nodes identical again, as the error says
            nodes = self.cluster.nodes if self.cluster else []
            if nodes and nodes[0].read_bytes() != nodes[1].read_bytes():
                nodes[1].write_bytes(nodes[0].read_bytes())

    # -- the invariant ------------------------------------------------------------
    @invariant()
    def every_value_readable_by_every_running_config(self) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        configs: dict[bytes, TransformerSet] = {a.raw: a.chain for a in cluster.apiservers}
        for node in cluster.nodes:
            raw = node.read_bytes()
            config: EncryptionConfig = load_encryption_config(raw)  # the apiserver accepts it
            assert config.rules
            configs.setdefault(raw, cluster.chain_of(raw))
        cluster.refresh_history()
        for (key, revision), value in cluster.held.items():
            for raw, chain_set in configs.items():
                if (raw, key, revision) in cluster.proven:
                    continue
                try:
                    chain_set.for_etcd_key(key, cluster.prefix).read(value, key)
                except SecretkitError as exc:
                    doc = yaml.safe_load(raw)
                    rules = [
                        (r["resources"], [next(iter(p)) for p in r["providers"]])
                        for r in doc["resources"]
                    ]
                    raise AssertionError(
                        f"{key} @{revision} unreadable by a running config {rules}: {exc.what}"
                    ) from None
                cluster.proven.add((raw, key, revision))


@pytest.mark.timeout(900)
def test_rotation_lifecycle_never_loses_a_value(etcd_server: EtcdServer) -> None:
    RotationLifecycle.server = etcd_server
    run = RotationLifecycle.TestCase
    run.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=os.environ.get("SECRETKIT_PROPERTY_RANDOM") != "1",
        # the mutation check (test_property_finds_old_bug.py) wants the first failure,
        # not the smallest one
        phases=(
            [Phase.explicit, Phase.reuse, Phase.generate]
            if os.environ.get("SECRETKIT_PROPERTY_NO_SHRINK") == "1"
            else list(Phase)
        ),
    )
    OUTCOMES.clear()
    run().runTest()
    print("stage outcomes:", dict(sorted(OUTCOMES.items())))
    # a property over nothing proves nothing: the search reached every kind of step
    for outcome in ("prune: done", "reencrypt: done", "promote: done"):
        assert OUTCOMES[outcome] > 0, (outcome, dict(OUTCOMES))
    assert any("prune: refused (SafetyError)" in o for o in OUTCOMES), dict(OUTCOMES)
    assert any("crashed mid-write" in o for o in OUTCOMES), dict(OUTCOMES)
