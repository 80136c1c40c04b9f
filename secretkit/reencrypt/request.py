"""The re-encryption use case as a library call: one frozen request, one run, one summary.

``secretkit reencrypt``, every rotation stage and ``secretkit kms rotate`` call
:func:`run_reencrypt` in-process with a :class:`ReencryptRequest`; the CLI only parses
flags into a request, renders the summary and maps :func:`outcome_error` to an exit
code. Nothing here reads flags, prints, or exits.

What a run needs from the world comes in a :class:`ReencryptWorld`: how to open the
Kubernetes client and etcd, the KMS services, where warnings go and whether the
operator confirmed that the apiservers are stopped (``--via etcd``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from secretkit.core.encryption_config import EncryptionConfig
from secretkit.errors import (
    SafetyError,
    SecretkitError,
    UndecryptableError,
    UsageError,
)
from secretkit.etcd.interface import EtcdStore
from secretkit.kmsapi.services import KMSServices, current_key_ids
from secretkit.kube.client import KubeConnectOptions
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.runner import RunControl
from secretkit.reencrypt.summary import Summary

Via = Literal["api", "etcd"]


@dataclass(frozen=True)
class ReencryptRequest:
    """Everything one re-encryption run is asked to do.

    ``resources`` are names an operator typed (``secrets``, ``deployments.apps``,
    ``*.example.com``): an unknown exact name is an error. ``config_resources`` are
    names taken from an EncryptionConfiguration: one the cluster does not serve (a
    CRD not installed) is skipped with a warning. With neither, Secrets.
    """

    via: Via = "api"
    resources: tuple[str, ...] = ()
    config_resources: tuple[str, ...] = ()
    #: judges staleness (--only-stale, --verify) and decrypts/encrypts (--via etcd)
    config: EncryptionConfig | None = None
    #: where ``config`` came from, for messages
    config_source: str | None = None
    only_stale: bool = False
    verify: bool = False
    dry_run: bool = False
    #: --via etcd: rewrite values that are not stale too
    force: bool = False
    page_size: int = 500
    concurrency: int = 16
    #: requests/s cap; 0: none (the adaptive in-flight window follows 429/503)
    qps: float = 0.0
    burst: int = 1000
    etcd_prefix: str = "/registry"
    resume: Path | None = None
    show_progress: bool = True
    kube: KubeConnectOptions = field(default_factory=KubeConnectOptions)
    #: only objects of this namespace (cluster-scoped resources are left out)
    namespace: str | None = None
    #: only objects with these labels (a Kubernetes label selector; API path only)
    label_selector: str | None = None
    #: a run that found no object at all (:func:`outcome_error`): False fails it (the
    #: CLI's default), True passes it, a ``--verify`` over nothing included
    #: (``--allow-empty``); None leaves it to the caller (rotation stages and kms rotate
    #: may find nothing of a resource and judge that themselves)
    allow_empty: bool | None = None

    @property
    def names(self) -> list[str]:
        """Every resource name asked for (explicit first), Secrets when none."""
        names = list(self.resources) + [n for n in self.config_resources if n not in self.resources]
        return names or ["secrets"]

    def check(self) -> None:
        """Refuse combinations that cannot work, before anything is opened."""
        needs_config = self.only_stale or self.verify or self.via == "etcd"
        if needs_config and self.config is None:
            raise UsageError(
                "this mode needs the EncryptionConfiguration",
                hint="pass --config FILE (the same file the API server uses)",
            )
        if self.dry_run and self.verify:
            # verifying the unchanged store would only say what the dry run listed, and
            # a pass or fail of it would read as the outcome of a run that never wrote
            raise UsageError(
                "--verify cannot follow --dry-run: a dry run writes nothing, so there is "
                "no re-encryption to verify",
                where="--dry-run/--verify",
                hint="drop --verify to see what would be rewritten (with --only-stale: "
                "exactly the stale objects), or drop --dry-run to re-encrypt and verify; "
                "`secretkit audit --config FILE` reports what is stale or undecryptable now",
            )
        if self.via == "etcd" and self.only_stale:
            raise UsageError(
                "--only-stale is implied by --via etcd (only stale values are rewritten)",
                hint="drop --only-stale, or pass --force to rewrite fresh values too",
            )
        if self.label_selector and (self.via == "etcd" or self.only_stale):
            raise UsageError(
                "--selector needs the API path without --only-stale: labels cannot be read "
                "from encrypted values in etcd",
                where="--selector",
                hint="drop --selector, or run without --only-stale (fresh objects are "
                "left unchanged by the API server anyway)",
            )
        if self.qps < 0 or self.qps != self.qps:  # NaN is not equal to itself
            raise UsageError(
                f"--qps must be a number >= 0 (0 = unlimited), not {self.qps}", where="--qps"
            )


EtcdOpener = Callable[[], AbstractContextManager[EtcdStore]]


@dataclass
class ReencryptWorld:
    """The adapters a run talks to, supplied by the caller (the CLI, a stage, a test)."""

    kms: KMSServices
    #: opens an etcd client (needed by --only-stale, --verify and --via etcd)
    open_etcd: EtcdOpener | None = None
    #: opens a Kubernetes client from the request's options (default: KubeClient)
    open_kube: Callable[[KubeConnectOptions], AbstractContextManager[Any]] | None = None
    warn: Callable[[str], None] = lambda _message: None
    #: --via etcd: True once the operator confirmed every apiserver is stopped
    apiservers_stopped: bool = False


def run_reencrypt(request: ReencryptRequest, world: ReencryptWorld) -> Summary:
    """Re-encrypt what ``request`` asks for; return the summary (never exits, never prints).

    Errors that stop the run before or during it are raised; per-object failures and
    the ``--verify`` verdict are in the summary: :func:`outcome_error` turns them into
    the error a caller should raise.
    """
    request.check()
    control = RunControl(resume=request.resume, show_progress=request.show_progress)
    if request.via == "etcd":
        return _run_etcd(request, world, control)
    return _run_api(request, world, control)


def outcome_error(summary: Summary, request: ReencryptRequest) -> SecretkitError | None:
    """The error a finished run amounts to, or None when it succeeded.

    Undecryptable values (exit 4) come first: in etcd mode such a value is also a
    failed object, and "run it again" is the wrong advice for it. Then failed objects,
    then stale values ``--verify`` found (whatever the run found to send), then a run
    that found no object, which fails when ``request.allow_empty`` is False: a
    misspelt namespace or selector must not read as done.
    """
    totals = summary.totals()
    failed = totals["failed"]
    empty = totals["seen"] == 0
    verify = summary.verify
    if verify is not None and verify.get("undecryptable"):
        return UndecryptableError(
            f"{verify['undecryptable']} stored value(s) cannot be read by any provider "
            f"of {request.config_source or 'the config'} (data-loss risk; a rewrite "
            "cannot fix them)" + (f"; {failed} object(s) also failed" if failed else ""),
            where=_keys_where(verify),
            hint="add the missing key or provider back to the config (removed too early?) "
            "or restore these objects from a backup; the summary lists every key "
            "(verify.undecryptable_keys with -o json), `secretkit audit` explains each",
        )
    if failed:
        return SecretkitError(
            f"{failed} object(s) could not be re-encrypted",
            hint="see the summary; fix the cause and run again (only stale objects change)",
        )
    verdict = verify.get("verdict") if verify is not None else "ok"
    if verify is not None and verdict not in ("ok", "empty"):
        # before the empty run: stale values etcd holds are the finding, even when the
        # run found no object to send (objects the API does not list, a wrong -n)
        return SecretkitError(
            f"{verify.get('stale')} stale value(s) remain after the run",
            hint="run again (objects written by an API server with an older config?)",
        )
    if empty and request.allow_empty is False:
        return _empty_run_error(summary, request)
    if verdict == "empty":
        if empty and request.allow_empty:
            return None  # found nothing, verified nothing, and was told that is fine
        return SecretkitError(
            "--verify read 0 stored values of the resources asked for: nothing is proven",
            hint="check --resources, -n/--namespace and --etcd-prefix (the apiserver's own "
            "flag): the verification reads etcd directly",
        )
    return None


def _empty_run_error(summary: Summary, request: ReencryptRequest) -> SecretkitError:
    """0 objects found: say which resources, namespace and selector matched nothing."""
    # etcd scopes of a second candidate prefix are labelled "<resource>@<prefix>"
    resources = ", ".join(sorted({label.split("@")[0] for label in summary.counters}))
    resources = resources or ", ".join(request.names)
    scope = "".join(
        [
            f" in namespace {request.namespace!r}" if request.namespace is not None else "",
            f" with labels {request.label_selector!r}" if request.label_selector else "",
        ]
    )
    checks = ["--resources"]
    if request.namespace is not None:
        checks.insert(
            0, f"that namespace {request.namespace} exists (kubectl get namespace "
            f"{request.namespace})"
        )
    if request.label_selector:
        checks.append("-l/--selector")
    if request.via == "etcd" or request.only_stale:
        checks.append("--etcd-prefix (the apiserver's own flag: etcd is read directly)")
    return SecretkitError(
        f"0 objects of {resources}{scope}: nothing to re-encrypt, so nothing is proven",
        hint="check " + ", ".join(checks) + "; pass --allow-empty when an empty run is "
        "expected",
    )


def _keys_where(verify: Mapping[str, Any]) -> str:
    """The first undecryptable etcd keys, for the error's ``where``."""
    keys: list[str] = list(verify.get("undecryptable_keys") or [])
    more = int(verify["undecryptable"]) - len(keys[:3])
    return ", ".join(keys[:3]) + (f" (and {more} more)" if more > 0 else "")


def _strict_key_ids(request: ReencryptRequest, world: ReencryptWorld) -> dict[str, str]:
    """Every kms v2 provider's current key_id; an unhealthy plugin stops the run."""
    if request.config is None:
        return {}
    return current_key_ids(request.config, world.kms, strict=True)[0]


def _open_etcd(world: ReencryptWorld) -> AbstractContextManager[EtcdStore]:
    if world.open_etcd is None:
        raise UsageError(
            "this mode reads etcd, but no etcd connection was given",
            hint="pass --endpoints (and --cacert/--cert/--key) of the etcd cluster",
        )
    return world.open_etcd()


def _open_kube(request: ReencryptRequest, world: ReencryptWorld) -> AbstractContextManager[Any]:
    options = request.kube
    if options.pool_size < request.concurrency + 2:
        from dataclasses import replace

        options = replace(options, pool_size=request.concurrency + 2)
    if world.open_kube is not None:
        return world.open_kube(options)
    from secretkit.kube.client import KubeClient

    return KubeClient(options)


def resolve_resources(
    request: ReencryptRequest, available: Sequence[ApiResource], warn: Callable[[str], None]
) -> list[ApiResource]:
    """The discovered resources the request names (explicit strict, config lenient)."""
    from secretkit.kube.discovery import resolve

    explicit = list(request.resources) or ([] if request.config_resources else ["secrets"])
    resources = resolve(explicit, available)
    missing: list[str] = []
    for res in resolve(list(request.config_resources), available, missing=missing):
        if res not in resources:
            resources.append(res)
    if missing:
        warn("not served by this cluster, skipped: " + ", ".join(missing))
    if not resources:
        raise UsageError("no resource to re-encrypt", where=",".join(request.names))
    return resources


def _run_api(request: ReencryptRequest, world: ReencryptWorld, control: RunControl) -> Summary:
    from secretkit.kube.discovery import discover
    from secretkit.reencrypt.api_engine import ApiRunOptions
    from secretkit.reencrypt.runner import run_api
    from secretkit.reencrypt.verify import verify_no_stale

    with ExitStack() as stack:
        client = stack.enter_context(_open_kube(request, world))
        resources = _in_namespace(
            request, resolve_resources(request, discover(client), world.warn), world.warn
        )
        key_ids: dict[str, str] = {}
        store: EtcdStore | None = None
        if request.only_stale or request.verify:
            key_ids = _strict_key_ids(request, world)
            store = stack.enter_context(_open_etcd(world))
        assert request.config is not None or store is None
        summary = run_api(
            client,
            resources,
            options=ApiRunOptions(
                page_size=request.page_size,
                concurrency=request.concurrency,
                dry_run=request.dry_run,
                namespace=request.namespace,
                label_selector=request.label_selector,
            ),
            qps=request.qps,
            burst=request.burst,
            control=control,
            stale_source=(
                (store, request.config, key_ids)
                if request.only_stale and store is not None and request.config is not None
                else None
            ),
            etcd_prefix=request.etcd_prefix,
            namespace=request.namespace,
            warn=world.warn,
        )
        verifiable = store is not None and request.config is not None
        if request.verify and verifiable:
            assert store is not None and request.config is not None
            summary.verify = verify_no_stale(
                store,
                resources,
                request.config,
                kms_key_ids=key_ids,
                prefix=request.etcd_prefix,
                namespace=request.namespace,
                warn=world.warn,
            )
        return summary


def _in_namespace(
    request: ReencryptRequest, resources: list[ApiResource], warn: Callable[[str], None]
) -> list[ApiResource]:
    """With ``-n``, only namespaced resources (a cluster-scoped one has no namespace)."""
    if request.namespace is None:
        return resources
    kept = [r for r in resources if r.namespaced]
    left = [r.qualified for r in resources if not r.namespaced]
    if left:
        warn(f"--namespace {request.namespace}: cluster-scoped, left out: " + ", ".join(left))
    if not kept:
        raise UsageError(
            f"none of the resources is namespaced, so --namespace {request.namespace} "
            "leaves nothing to re-encrypt",
            where="--namespace",
        )
    return kept


def _etcd_resources(names: Sequence[str]) -> tuple[list[ApiResource], list[ApiResource]]:
    """``names`` as resources, scoped as the layout table says (no discovery: the
    apiserver is stopped), and those the table does not know (CRDs), whose scope is
    unknown: they are marked namespaced (a ``-n`` run takes its namespace's range of
    them), and ``--verify`` reads their keys in either shape."""
    from secretkit.core.layout import Layout
    from secretkit.kube.discovery import split_name

    layout = Layout()
    out: list[ApiResource] = []
    unknown: list[ApiResource] = []
    for name in names:
        resource, group = split_name(name.strip().lower())
        known = layout.find(group, resource)
        res = ApiResource(group, resource, "", "", known is None or known.namespaced)
        if known is None:
            unknown.append(res)
        out.append(res)
    return out, unknown


def _run_etcd(request: ReencryptRequest, world: ReencryptWorld, control: RunControl) -> Summary:
    from secretkit.core.transformers import build_transformers
    from secretkit.reencrypt.etcd_engine import EtcdRunOptions, EtcdScope
    from secretkit.reencrypt.runner import run_etcd, scopes_for
    from secretkit.reencrypt.verify import verify_no_stale, verify_prefix

    config = request.config
    assert config is not None  # checked by request.check()
    if not request.dry_run and not world.apiservers_stopped:
        raise SafetyError(
            "--via etcd rewrites etcd behind the API server's back",
            hint="stop every kube-apiserver (or make sure none can write with an older "
            "config), then pass --i-understand-the-apiserver-is-stopped",
        )
    prefix = request.etcd_prefix
    # a KMS outage would fail every object one by one: check every plugin first
    _strict_key_ids(request, world)
    names = request.names
    resources: list[ApiResource] = []
    unknown: list[ApiResource] = []
    if any(n.startswith("*.") for n in names):
        if request.namespace is not None:
            raise UsageError(
                "--namespace cannot narrow a wildcard in --via etcd (its keys have no "
                "known layout)",
                where="--namespace",
                hint="name the resources, or drop --namespace",
            )
        # a wildcard covers keys of unknown paths: scan everything, the chain decides
        scopes = [EtcdScope("*", prefix.rstrip("/") + "/", True)]
    else:
        named, unknown = _etcd_resources(names)
        if unknown and request.namespace is not None:
            world.warn(
                "scope not in the layout table: " + ", ".join(r.qualified for r in unknown)
                + f"; --namespace {request.namespace} takes only its namespaced objects in "
                "that namespace (cluster-scoped ones, if any, are left out)"
            )
        resources = _in_namespace(request, named, world.warn)
        scopes = scopes_for(resources, prefix, request.namespace)
    transformers = build_transformers(config, world.kms.factory)
    with _open_etcd(world) as store:
        summary = run_etcd(
            store,
            transformers,
            scopes,
            options=EtcdRunOptions(
                page_size=request.page_size,
                concurrency=request.concurrency,
                dry_run=request.dry_run,
                force=request.force,
                etcd_prefix=prefix,
            ),
            control=control,
            config=config,
        )
        if request.verify and not resources:
            # the wildcard's engine scanned the whole prefix: so does its proof
            summary.verify = verify_prefix(
                store, config, kms_key_ids=_strict_key_ids(request, world), prefix=prefix
            )
        if request.verify and resources:
            summary.verify = verify_no_stale(
                store,
                resources,
                config,
                kms_key_ids=_strict_key_ids(request, world),
                prefix=prefix,
                namespace=request.namespace,
                unknown_scope=unknown,
                warn=world.warn,
            )
        return summary


def iter_names(values: Sequence[str]) -> Iterator[str]:
    """Split comma-separated, repeated ``--resources`` values into names."""
    for value in values:
        for part in value.split(","):
            if part.strip():
                yield part.strip()
