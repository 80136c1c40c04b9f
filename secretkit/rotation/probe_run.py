"""Run the write probe: create an object through each apiserver, judge what etcd got.

For every apiserver endpoint: create a short-lived, labelled probe object (a random
nonce, no data) through that endpoint, read the raw value etcd stored for it *at the
revision of that create* (so a later write by anyone else cannot be mistaken for
it), name the writer from the value's prefix (:mod:`.probe`), and delete the object,
whatever happened. Objects an earlier run could not delete are found by their label
and removed first. The adapters (an API client per endpoint, an etcd client) are
passed in; nothing here prints or reads files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from secretkit.core.encryption_config.model import EncryptionConfig
from secretkit.core.layout import Layout
from secretkit.errors import (
    DependencyError,
    ExitCode,
    KubeError,
    SafetyError,
    SecretkitError,
    UsageError,
)
from secretkit.etcd.errors import EtcdCompactedError
from secretkit.etcd.interface import EtcdReader, KeyValue
from secretkit.kube.client import ApiResponse, object_path
from secretkit.rotation.probe import (
    PROBE_LABEL,
    PROBE_RESOURCES,
    Writer,
    expected_writer,
    is_probe_object,
    mismatch,
    mismatch_message,
    observed_writer,
    probe_chain,
    probe_name,
    probe_object,
)


class ApiAccess(Protocol):
    """What the probe needs of an API client (:class:`secretkit.kube.KubeClient`)."""

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """One request; an answer for any HTTP status, KubeError when none came."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class ProbeRequest:
    """What to probe: endpoints, the file's config, and where the objects go."""

    endpoints: tuple[str, ...]
    #: the config file the apiservers should run (None: no encryption config)
    config: EncryptionConfig | None
    resource: str = "secrets"
    namespace: str = "default"
    etcd_prefix: str = "/registry"
    #: kms v2 provider name -> the plugin's current key_id (may be partial)
    current_key_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass
class EndpointResult:
    """The probe of one apiserver endpoint (``outcome``: match, mismatch or error)."""

    endpoint: str
    outcome: str
    message: str
    observed: Writer | None = None
    object_name: str | None = None
    etcd_key: str | None = None
    revision: int | None = None
    #: True once the probe object is gone (None: none was created)
    deleted: bool | None = None
    delete_error: str | None = None
    error: SecretkitError | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``-o json`` shape of one endpoint."""
        return {
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "message": self.message,
            "observed": self.observed.to_json() if self.observed is not None else None,
            "object": self.object_name,
            "etcd_key": self.etcd_key,
            "revision": self.revision,
            "deleted": self.deleted,
            "delete_error": self.delete_error,
            "error": self.error.to_json() if self.error is not None else None,
        }


@dataclass
class ProbeReport:
    """Every endpoint's result and the leftovers an earlier run had left."""

    resource: str
    namespace: str
    expected: Writer
    results: list[EndpointResult] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    leftover_errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every endpoint writes with the file's writer."""
        return bool(self.results) and all(r.outcome == "match" for r in self.results)

    def lines(self) -> list[str]:
        """One line per endpoint and per leftover, for humans."""
        out = [f"{r.endpoint}: {r.outcome}: {r.message}" for r in self.results]
        for r in self.results:
            if r.delete_error is not None:
                out.append(
                    f"{r.endpoint}: the probe object {self.namespace}/{r.object_name} could "
                    f"not be deleted ({r.delete_error}); the next probe removes it (label "
                    f"{PROBE_LABEL})"
                )
        if self.leftovers_removed:
            out.append(
                f"removed {len(self.leftovers_removed)} probe object(s) an earlier run had "
                "left: " + ", ".join(self.leftovers_removed)
            )
        out += [f"leftover probe objects: {e}" for e in self.leftover_errors]
        return out

    def failure(self) -> SecretkitError | None:
        """The error that ends the run: a mismatch refuses (exit 3) before anything
        could not be checked (the first error's own code); None when it passed."""
        mismatched = [r for r in self.results if r.outcome == "mismatch"]
        if mismatched:
            return SafetyError(
                "not every apiserver writes with the file's writer: "
                + "; ".join(r.message for r in mismatched),
                hint="an apiserver that writes with another writer runs another config: "
                "copy the file to its node and restart it (or wait for its automatic "
                "reload), then probe again",
            )
        errors = [r for r in self.results if r.outcome == "error"]
        if errors:
            first = errors[0].error
            cls: type[SecretkitError] = type(first) if first is not None else DependencyError
            return cls(
                "the write probe could not check every apiserver: "
                + "; ".join(f"{r.endpoint}: {r.message}" for r in errors),
                where=errors[0].endpoint,
                hint=first.hint if first is not None else None,
            )
        return None

    @property
    def exit_code(self) -> ExitCode:
        """The run's exit code (0 when every endpoint matched)."""
        error = self.failure()
        return ExitCode.OK if error is None else error.exit_code

    def to_json(self) -> dict[str, Any]:
        """The ``secretkit.apiserver.probe/v1`` document body."""
        return {
            "resource": self.resource,
            "namespace": self.namespace,
            "expected": self.expected.to_json(),
            "passed": self.passed,
            "endpoints": [r.to_json() for r in self.results],
            "leftovers_removed": list(self.leftovers_removed),
            "leftover_errors": list(self.leftover_errors),
        }


def run_probe(
    request: ProbeRequest,
    *,
    open_api: Callable[[str], ApiAccess],
    etcd: EtcdReader,
    rng: Callable[[int], bytes] = os.urandom,
    report: Callable[[str], None] = lambda _msg: None,
) -> ProbeReport:
    """Probe every endpoint in turn; never raises for one endpoint's failure.

    ``open_api(url)`` returns an API client whose requests go to that endpoint only.
    """
    chain = probe_chain(request.config, request.resource)
    result = ProbeReport(
        resource=request.resource,
        namespace=request.namespace,
        expected=expected_writer(chain, request.current_key_ids),
    )
    layout = Layout(request.etcd_prefix)
    cleaned = False
    for endpoint in request.endpoints:
        try:
            api = open_api(endpoint)
        except SecretkitError as exc:
            result.results.append(_error(endpoint, exc))
            continue
        try:
            if not cleaned:
                cleaned = _remove_leftovers(api, request.namespace, result)
            report(f"probing {endpoint} with a {request.resource} object ...")
            result.results.append(
                _probe_one(api, endpoint, request, result.expected, chain, layout, etcd, rng)
            )
        finally:
            api.close()
    return result


def _error(endpoint: str, exc: SecretkitError, **found: Any) -> EndpointResult:
    return EndpointResult(endpoint, "error", exc.what, error=exc, **found)


def _probe_one(
    api: ApiAccess,
    endpoint: str,
    request: ProbeRequest,
    expected: Writer,
    chain: Any,
    layout: Layout,
    etcd: EtcdReader,
    rng: Callable[[int], bytes],
) -> EndpointResult:
    created: dict[str, Any] | None = None
    found = EndpointResult(endpoint, "error", "")
    try:
        created = _create(api, endpoint, request, rng)
        name = created["metadata"]["name"]
        found.object_name = name
        found.deleted = False
        key = layout.prefixes("", request.resource)[0] + f"{request.namespace}/{name}"
        found.etcd_key = key
        revision = _revision(created)
        found.revision = revision
        value = _read_write(etcd, key, revision)
        observed = found.observed = observed_writer(value, chain)
        if mismatch(expected, observed) is None:
            found.outcome = "match"
            found.message = f"writes with {observed.describe()}, the file's writer"
        else:
            found.outcome = "mismatch"
            found.message = mismatch_message(endpoint, expected, observed)
    except SecretkitError as exc:
        found.outcome, found.message, found.error = "error", exc.what, exc
    finally:
        if created is not None:
            found.deleted, found.delete_error = _delete(api, request, created)
    return found


def _create(
    api: ApiAccess, endpoint: str, request: ProbeRequest, rng: Callable[[int], bytes]
) -> dict[str, Any]:
    path = _collection(request.resource, request.namespace)
    for _attempt in range(2):
        body = probe_object(request.resource, request.namespace, probe_name(rng), rng(16))
        resp = _request(api, endpoint, "POST", path, body=body)
        if resp.status == 409 and resp.reason == "AlreadyExists":
            continue  # a name clash of 64 random bits: draw another name once
        if resp.ok and isinstance(resp.body, dict):
            return resp.body
        raise _api_error(resp, endpoint, request, "create")
    raise KubeError(
        "the probe object's name was taken twice in a row", where=endpoint,
        hint="run the probe again",
    )


def _collection(resource: str, namespace: str) -> str:
    """``/api/v1/namespaces/<ns>/<resource>`` (core group)."""
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/{resource}"


def _request(
    api: ApiAccess, endpoint: str, method: str, path: str, **kwargs: Any
) -> ApiResponse:
    try:
        return api.request(method, path, **kwargs)
    except KubeError as exc:
        # name the endpoint probed, not only the host the client was built for
        raise KubeError(exc.what, where=endpoint, hint=exc.hint) from None


def _api_error(
    resp: ApiResponse, endpoint: str, request: ProbeRequest, verb: str
) -> SecretkitError:
    what = f"{verb} of a probe {request.resource} object answered {resp.status} {resp.reason}"
    if resp.status == 401:
        return KubeError(
            what.rstrip(), where=endpoint,
            hint="the credentials were rejected: check the token or client certificate "
            "in the kubeconfig (--kubeconfig)",
        )
    if resp.status == 403:
        return KubeError(
            what.rstrip(), where=endpoint,
            hint=f"the kubeconfig's user needs create, list and delete on "
            f"{request.resource} in namespace {request.namespace!r} (RBAC)",
        )
    if resp.status == 404:
        return UsageError(
            what.rstrip(), where=endpoint,
            hint=f"does namespace {request.namespace!r} exist? choose another with "
            "--probe-namespace (or --namespace)",
        )
    return KubeError(what.rstrip(), where=endpoint, hint="see the apiserver's log")


def _revision(obj: Mapping[str, Any]) -> int | None:
    """The create's etcd revision: kube-apiserver's resourceVersion is etcd's mod_revision."""
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def _read_write(etcd: EtcdReader, key: str, revision: int | None) -> bytes:
    """The value the create wrote: etcd's value at the create's revision."""
    raw_key = key.encode()
    kv: KeyValue | None
    try:
        kv = etcd.get(raw_key, revision=revision)
    except EtcdCompactedError:
        kv = etcd.get(raw_key)  # compacted meanwhile: the current value, if still ours
    if kv is None:
        raise UsageError(
            f"the probe object is not in etcd at {key}"
            + (f" (revision {revision})" if revision else ""),
            where="--endpoints",
            hint="pass the etcd cluster of these apiservers (--endpoints) and their "
            "--etcd-prefix (--prefix)",
        )
    if revision is not None and kv.mod_revision != revision:
        raise DependencyError(
            f"etcd holds another write of {key} (revision {kv.mod_revision}, the probe's "
            f"was {revision})",
            hint="something rewrote the probe object right away; probe again",
        )
    return kv.value


def _delete(
    api: ApiAccess, request: ProbeRequest, obj: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Delete the probe object (only that one: the uid is a precondition)."""
    metadata = obj.get("metadata") or {}
    path = object_path("", "v1", request.resource, str(metadata.get("name")), request.namespace)
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if metadata.get("uid"):
        body["preconditions"] = {"uid": metadata["uid"]}
    try:
        resp = api.request("DELETE", path, body=body)
    except KubeError as exc:
        return False, exc.what
    if resp.ok or resp.status == 404:
        return True, None
    return False, f"{resp.status} {resp.reason}".rstrip()


def _remove_leftovers(api: ApiAccess, namespace: str, report: ProbeReport) -> bool:
    """Delete probe objects earlier runs left; True once the namespace was listed."""
    for resource in PROBE_RESOURCES:
        path = _collection(resource, namespace)
        try:
            resp = api.request("GET", path, query=[("labelSelector", PROBE_LABEL)])
        except KubeError:
            return False  # this endpoint is down: the next one lists them
        if not resp.ok:
            if resp.status in (401, 403):
                report.leftover_errors.append(
                    f"cannot list {resource} in {namespace!r} ({resp.status}): leftovers, "
                    "if any, stay"
                )
            continue
        items = resp.body.get("items") if isinstance(resp.body, dict) else None
        request = ProbeRequest(endpoints=(), config=None, resource=resource, namespace=namespace)
        for item in items or []:
            if not isinstance(item, dict) or not is_probe_object(item):
                continue
            deleted, error = _delete(api, request, item)
            name = f"{resource}/{item['metadata']['name']}"
            if deleted:
                report.leftovers_removed.append(name)
            else:
                report.leftover_errors.append(f"cannot delete {name}: {error}")
    return True
