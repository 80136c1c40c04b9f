"""A small, fast Kubernetes API client over the official ``kubernetes`` package.

The official client does the hard parts (kubeconfig merging, contexts, in-cluster
service accounts, exec credential plugins, client certificates); this adapter only
sends raw JSON requests through its connection pool, so that listing and replacing
tens of thousands of objects does not pay for model (de)serialization.

Every failure is translated into :class:`~secretkit.errors.KubeError` or returned as
an :class:`ApiResponse` with the HTTP status, so callers decide what a 404 or 409
means. Response bodies are never put into error messages: they may echo object data.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from secretkit.errors import KubeError, UsageError

#: HTTP statuses that mean "the credentials are not good enough": fatal for a run
AUTH_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class KubeConnectOptions:
    """How to find the cluster, like kubectl: explicit file, ``KUBECONFIG``, ``~/.kube/config``,
    then the in-cluster service account."""

    kubeconfig: str | None = None
    context: str | None = None
    #: per-request timeout in seconds
    timeout: float = 30.0
    #: HTTP connection pool size; at least the worker count
    pool_size: int = 16
    #: talk to this API server URL instead of the kubeconfig's (its CA, credentials and
    #: ``tls-server-name`` still apply): one apiserver of several behind a balancer
    server: str | None = None


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer: status, parsed JSON body (or None) and the Status reason."""

    status: int
    body: Any
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The machine-readable ``Status.reason`` (``Conflict``, ``NotFound``...) or ``""``."""
        if isinstance(self.body, dict) and self.body.get("kind") == "Status":
            return str(self.body.get("reason") or "")
        return ""


def _kubeconfig_paths(explicit: str | None) -> str | None:
    """Return the kubeconfig path list to load, or None for in-cluster."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.exists() else None


class KubeClient:
    """Raw JSON requests against the Kubernetes API with kubectl-like configuration."""

    def __init__(self, options: KubeConnectOptions) -> None:
        # imported lazily: the kubernetes package is heavy and only this command needs it
        from kubernetes import client as _client

        k8s_client: Any = _client
        self._options = options
        configuration = load_client_configuration(options)
        configuration.connection_pool_maxsize = max(options.pool_size, 1)
        # connection failures are retried by the engine's policy, not hidden in urllib3
        configuration.retries = 1
        self.host: str = str(configuration.host)
        self._api: Any = k8s_client.ApiClient(configuration)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release pooled connections."""
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one request; return the answer for any HTTP status.

        Raises :class:`KubeError` only when no HTTP answer came back (unreachable,
        TLS failure, timeout), naming the API host, never the body.
        """
        import urllib3

        headers: dict[str, str] = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        # param_serialize applies auth (bearer tokens, exec plugins that refresh them)
        with self._lock:
            method_s, url, header_params, _, _ = self._api.param_serialize(
                method,
                path,
                query_params=list(query) or None,
                header_params=headers,
                auth_settings=["BearerToken"],
            )
        if self._options.server and not url.startswith(self.host + "/"):
            # a request for one apiserver must never silently reach another one
            raise KubeError(
                "the request would not go to the apiserver it was meant for",
                where=self.host,
                hint="this is a bug, please report it",
            )
        try:
            resp: Any = self._api.call_api(
                method_s,
                url,
                header_params=header_params,
                body=dict(body) if body is not None else None,
                _request_timeout=self._options.timeout,
            )
            raw = resp.read()
        except urllib3.exceptions.SSLError:
            raise KubeError(
                "TLS handshake with the Kubernetes API failed",
                where=self.host,
                hint="check the cluster CA and client certificate in the kubeconfig",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(
                "cannot reach the Kubernetes API",
                where=self.host,
                hint=f"{type(exc).__name__}; is the API server running and the address right?",
            ) from None
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        retry_after: float | None = None
        header = resp.headers.get("Retry-After") if resp.headers else None
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        return ApiResponse(status=int(resp.status), body=parsed, retry_after=retry_after)

    def get_json(self, path: str) -> Any:
        """GET a path that must succeed (discovery); KubeError otherwise."""
        resp = self.request("GET", path)
        if not resp.ok:
            raise_for_status(resp, where=f"{self.host}{path}")
        return resp.body


def load_client_configuration(options: KubeConnectOptions) -> Any:
    """The official client's ``Configuration`` for ``options``, like kubectl builds it.

    Host, CA, client certificate, bearer token (exec plugins included) and
    ``tls-server-name``, with the host replaced by ``options.server`` when set.
    UsageError (bad input: exit 2) when no configuration can be loaded.
    """
    from kubernetes import client as _client
    from kubernetes import config as _config
    from kubernetes.config.config_exception import ConfigException

    # the package ships partial annotations; treat it as untyped
    k8s_client: Any = _client
    k8s_config: Any = _config

    configuration = k8s_client.Configuration()
    paths = _kubeconfig_paths(options.kubeconfig)
    where = paths or "in-cluster service account"
    try:
        if paths is None:
            if options.context:
                raise UsageError(
                    f"context {options.context!r} requested but no kubeconfig found",
                    where="KUBECONFIG / ~/.kube/config",
                    hint="pass --kubeconfig FILE or set KUBECONFIG",
                )
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            for path in paths.split(os.pathsep):
                if path and not Path(path).expanduser().exists():
                    raise UsageError(
                        "kubeconfig file does not exist",
                        where=path,
                        hint="pass --kubeconfig FILE or set KUBECONFIG",
                    )
            k8s_config.load_kube_config(
                config_file=paths,
                context=options.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except ConfigException as exc:
        raise UsageError(
            "cannot load the Kubernetes client configuration",
            where=where,
            hint=f"{_first_line(exc)}; check --kubeconfig/--context or KUBECONFIG",
        ) from None
    except UsageError:
        raise
    except Exception as exc:  # malformed YAML, bad base64 in certificate data...
        raise UsageError(
            "invalid kubeconfig",
            where=where,
            hint=f"{type(exc).__name__}; check the file with `kubectl config view`",
        ) from None
    if options.server:
        server = options.server.rstrip("/")
        configuration.host = server
        hook = configuration.refresh_api_key_hook
        if hook is not None:
            # the official client's token hook re-applies the whole kubeconfig (host
            # and the hook itself included) before every request: put both back
            def keep_server(config: Any, _hook: Any = hook) -> None:
                _hook(config)
                config.host = server
                config.refresh_api_key_hook = keep_server

            configuration.refresh_api_key_hook = keep_server
    return configuration


def raise_for_status(resp: ApiResponse, *, where: str) -> None:
    """Raise a KubeError for a non-2xx answer, with a hint for the common cases."""
    if resp.ok:
        return
    hints = {
        401: "the credentials were rejected: check the token/certificate in the kubeconfig",
        403: "the user may not do this: grant list/get/update on the resources (RBAC)",
        404: "the API path does not exist: is the resource served by this cluster?",
        410: "the list continue token expired; run again with --resume to continue",
    }
    raise KubeError(
        f"Kubernetes API answered {resp.status} {resp.reason or ''}".rstrip(),
        where=where,
        hint=hints.get(resp.status, "see the API server logs"),
    )


def object_path(
    group: str, version: str, resource: str, name: str, namespace: str | None
) -> str:
    """The URL path of one object."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{resource}/{quote(name, safe='')}"


def collection_path(group: str, version: str, resource: str) -> str:
    """The URL path listing a resource across all namespaces."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    return f"{base}/{resource}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
