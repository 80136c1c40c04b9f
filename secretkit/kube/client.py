"""A small, fast Kubernetes API client over the official ``kubernetes`` package.

The official client does the hard parts (kubeconfig merging, contexts, in-cluster
service accounts, exec credential plugins, client certificates); this adapter only
sends raw requests through its connection pool (:meth:`KubeClient.send`), so that
listing and rewriting tens of thousands of objects pays neither for model
(de)serialization nor for re-encoding bodies: a body goes out byte for byte as given
(the official client's ``json.dumps`` adds spaces, which changes the bytes of a
``runtime.RawExtension`` such as a ControllerRevision's ``data``: HTTP 422).

Every failure is translated into :class:`~secretkit.errors.KubeError` or returned as
an :class:`ApiResponse` with the HTTP status, so callers decide what a 404 or 409
means. Response bodies are never put into error messages: they may echo object data.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from secretkit.errors import KubeError, UsageError
from secretkit.kube.http1 import Http1Pool, tls_context
from secretkit.kube.kubeconfig import DirectConfig, load_direct

#: HTTP statuses that mean "the credentials are not good enough": fatal for a run
AUTH_STATUSES = frozenset({401, 403})
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
#: how long a bearer token is reused before asking the kubeconfig's refresh hook again
_TOKEN_TTL = 1.0


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
class RawResponse:
    """One HTTP answer as bytes: status, body, content type, ``Retry-After`` seconds."""

    status: int
    body: bytes
    content_type: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300

    @property
    def is_protobuf(self) -> bool:
        """True when the body is ``application/vnd.kubernetes.protobuf``."""
        return self.content_type.startswith(PROTOBUF)

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        if not self.body or self.is_protobuf:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


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
        self._options = options
        from secretkit import __version__

        self._user_agent = f"secretkit/{__version__}"
        self._token_at = -_TOKEN_TTL - 1.0
        self._cached_token: str | None = None
        self._http1: Http1Pool | None = None
        self._api: Any = None
        self._configuration: Any = None
        self._kubeconfig: DirectConfig | None = None
        # the common kubeconfig (one file, TLS, a static token) without importing the
        # official client (~0.4 s); anything else goes through it, as kubectl would
        direct = load_direct(_kubeconfig_paths(options.kubeconfig), options.context)
        if direct is not None:
            host = (options.server or direct.host).rstrip("/")
            try:
                context, server_name = direct.tls_context(host)
            except (OSError, ValueError):
                direct = None  # the official client reports the TLS problem
        if direct is not None:
            self._kubeconfig = direct
            self.host: str = host
            self._http1 = Http1Pool(self.host, context, server_name, timeout=options.timeout)
            return
        self._init_official(options)

    def _init_official(self, options: KubeConnectOptions) -> None:
        # imported lazily: the kubernetes package is heavy and only this command needs it
        from kubernetes import client as _client

        k8s_client: Any = _client
        configuration = load_client_configuration(options)
        configuration.connection_pool_maxsize = max(options.pool_size, 1)
        # connection failures are retried by the engine's policy, not hidden in urllib3
        configuration.retries = 1
        self.host = str(configuration.host)
        self._configuration = configuration
        self._api = k8s_client.ApiClient(configuration)
        # the official client's connection pool: its TLS set-up (CA, client certs, proxy)
        self._pool: Any = self._api.rest_client.pool_manager
        import urllib3

        self._timeout = urllib3.Timeout(total=options.timeout)
        self._retries = urllib3.Retry(total=1, read=0, status=0, redirect=0, raise_on_status=False)
        if not getattr(configuration, "proxy", None):
            try:
                context, server_name = tls_context(configuration)
            except (OSError, ValueError):
                pass  # urllib3 reports the TLS problem on the first request
            else:
                self._http1 = Http1Pool(self.host, context, server_name,
                                        timeout=options.timeout)

    def close(self) -> None:
        """Release pooled connections."""
        if self._http1 is not None:
            self._http1.close()
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = JSON,
    ) -> RawResponse:
        """Send one request with ``body`` exactly as given; return the answer for any status.

        Raises :class:`KubeError` only when no HTTP answer came back (unreachable,
        TLS failure, timeout), naming the API host, never the body.
        """
        import urllib3

        headers = {"Accept": accept, "User-Agent": self._user_agent}
        if content_type is not None:
            headers["Content-Type"] = content_type
        token = self._token()
        if token:
            headers["authorization"] = token
        target = path + ("?" + urlencode(list(query)) if query else "")
        if self._http1 is not None:
            return self._send_http1(method, target, headers, body)
        try:
            # behind a proxy, or TLS files the lean client could not load
            resp: Any = self._pool.request(
                method, self.host + target, body=body, headers=headers,
                timeout=self._timeout, retries=self._retries, preload_content=True,
                redirect=False,
            )
        except urllib3.exceptions.SSLError:
            raise self._tls_failed() from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from None
        return RawResponse(int(resp.status), bytes(resp.data),
                           str(resp.headers.get("Content-Type", "")),
                           _retry_after(resp.headers.get("Retry-After")))

    def _send_http1(self, method: str, target: str, headers: dict[str, str],
                    body: bytes | None) -> RawResponse:
        assert self._http1 is not None
        try:
            answer = self._http1.request(method, target, headers, body)
        except ssl.SSLError:
            raise self._tls_failed() from None
        except OSError as exc:
            raise self._unreachable(exc) from None
        return RawResponse(answer.status, answer.body, answer.headers.get("content-type", ""),
                           _retry_after(answer.headers.get("retry-after")))

    def _tls_failed(self) -> KubeError:
        return KubeError(
            "TLS handshake with the Kubernetes API failed",
            where=self.host,
            hint="check the cluster CA and client certificate in the kubeconfig",
        )

    def _unreachable(self, exc: BaseException) -> KubeError:
        # the exception's type only: its text may hold a URL with credentials
        return KubeError(
            "cannot reach the Kubernetes API",
            where=self.host,
            hint=f"{type(exc).__name__}; is the API server running and the address right?",
        )

    def _token(self) -> str | None:
        """The bearer token, refreshed at most once a second.

        The kubeconfig loader's refresh hook (exec credential plugins, token files)
        runs on every lookup and rebuilds part of the configuration (a proxy scan of
        the environment, ~50 us); a token that is valid now is valid a second later.
        """
        now = time.monotonic()
        if now - self._token_at > _TOKEN_TTL:
            if self._kubeconfig is not None:
                try:
                    self._cached_token = self._kubeconfig.bearer()
                except (OSError, ValueError) as exc:
                    # a file caught mid-rotation keeps the last good token, as client-go
                    if self._cached_token is None:
                        raise KubeError(
                            "the kubeconfig's token file gives no usable token",
                            where=str(self._kubeconfig.token_file),
                            hint=f"{exc}; fix the file (or set the user's token)",
                        ) from None
            else:
                self._cached_token = self._configuration.get_api_key_with_prefix(
                    "BearerToken", alias="authorization")
            self._token_at = now
        return self._cached_token

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one JSON request (compact JSON, as kubectl sends); parse the JSON answer."""
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        raw = self.send(method, path, query=query, body=data,
                        content_type=JSON if data is not None else None)
        return ApiResponse(status=raw.status, body=raw.json(), retry_after=raw.retry_after)

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


def collection_path(
    group: str, version: str, resource: str, namespace: str | None = None
) -> str:
    """The URL path listing a resource across all namespaces, or in ``namespace``."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{resource}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _retry_after(header: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in seconds (dates, junk, nan, inf: None)."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None
