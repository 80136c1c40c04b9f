"""``/readyz``, ``/livez`` and ``/healthz`` as kube-apiserver v1.36 answers them.

The check names, their order and the text are those captured from a real apiserver
(``tests/data/real-apiserver/metrics-and-health.txt``):

* the kms check is in ``/readyz`` and ``/healthz``, **not** in ``/livez``: a stopped
  plugin makes the apiserver unready, never restarts it;
* with automatic config reload it is one check, ``kms-providers`` (present even when
  no kms provider is configured); without, upstream registers one check per kms
  provider, ``kms-provider-<i>`` (from the source, not in the capture);
* a failed check shows as ``[-]<name> failed: reason withheld`` and the endpoint
  answers 500 with ``<endpoint> check failed``; ``/<endpoint>/<check>`` gives the
  reason (``internal server error: kms-provider-0: ...``);
* a kms check reuses its last plugin answer for 20 s after a success and 3 s after a
  failure (:class:`~secretkit.sandbox.apiserver.encryption.KMSProbe`), which is why
  a stopped plugin showed up ~11 s later in the capture (anywhere from 0 to ~23 s).

The other checks (post-start hooks of components the stand-in does not have) are
listed as ``ok`` so that the output has the real shape; ``etcd`` really asks etcd.
"""

from __future__ import annotations

from collections.abc import Callable

from secretkit.sandbox.apiserver.encryption import EncryptionState

#: the post-start hooks and controllers of a kube-apiserver, in the captured order
_HOOKS = (
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/peer-endpoint-reconciler-controller",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-apiserver-identity-lease-controller",
    "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
    "poststarthook/storage-readiness",
    "poststarthook/start-legacy-token-tracking-controller",
    "poststarthook/start-service-ip-repair-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/bootstrap-controller",
    "poststarthook/start-kubernetes-service-cidr-controller",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-status-local-available-controller",
    "poststarthook/apiservice-status-remote-available-controller",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-wait-for-first-sync",
    "poststarthook/apiservice-discovery-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller",
)
_RELOAD_HOOK = "poststarthook/start-encryption-provider-config-automatic-reload"
KMS = "<kms>"  # placeholder for the kms check(s) in the tables below

#: the checks of each endpoint, in the captured order
CHECKS: dict[str, tuple[str, ...]] = {
    "readyz": ("ping", "log", KMS, "informer-sync", _RELOAD_HOOK, *_HOOKS, "shutdown"),
    "livez": ("ping", "log", "loopback-serving-certificate", "etcd", _RELOAD_HOOK, *_HOOKS),
    "healthz": ("ping", "log", "loopback-serving-certificate", "etcd", KMS, _RELOAD_HOOK,
                *_HOOKS),
}


class HealthChecks:
    """Runs the checks of one endpoint and renders kube-apiserver's answers."""

    def __init__(self, encryption: EncryptionState,
                 etcd_ok: Callable[[], str | None] | None = None) -> None:
        self._encryption = encryption
        self._etcd_ok = etcd_ok or (lambda: None)

    def _checks(self, endpoint: str) -> list[tuple[str, Callable[[], str | None]]]:
        reload = self._encryption.automatic_reload
        out: list[tuple[str, Callable[[], str | None]]] = []
        for name in CHECKS[endpoint]:
            if name == KMS:
                out.extend(self._kms_checks(reload))
            elif name == _RELOAD_HOOK and not reload:
                continue
            elif name == "etcd":
                out.append((name, self._etcd_ok))
            else:
                out.append((name, lambda: None))
        return out

    def _kms_checks(self, reload: bool) -> list[tuple[str, Callable[[], str | None]]]:
        if reload:
            return [("kms-providers", self._all_kms)]
        return [(f"kms-provider-{probe.index}", probe.check)
                for probe in self._encryption.probes]

    def _all_kms(self) -> str | None:
        errors = []
        for probe in self._encryption.probes:
            error = probe.check()
            if error is not None:
                errors.append(f"kms-provider-{probe.index}: {error}")
        return ", ".join(errors) if errors else None

    def root(self, endpoint: str, *, verbose: bool) -> tuple[int, str]:
        """``/<endpoint>[?verbose]``: status code and body."""
        lines: list[str] = []
        failed = False
        for name, check in self._checks(endpoint):
            if check() is None:
                lines.append(f"[+]{name} ok\n")
            else:
                # the reason goes to the check's own path, not to this public one
                lines.append(f"[-]{name} failed: reason withheld\n")
                failed = True
        if failed:
            return 500, "".join(lines) + f"{endpoint} check failed\n"
        if not verbose:
            return 200, "ok"
        return 200, "".join(lines) + f"{endpoint} check passed\n"

    def single(self, endpoint: str, name: str) -> tuple[int, str] | None:
        """``/<endpoint>/<check>``: status code and body, None for an unknown check."""
        for check_name, check in self._checks(endpoint):
            if check_name == name:
                error = check()
                if error is None:
                    return 200, "ok"
                return 500, f"internal server error: {error}\n"
        return None
