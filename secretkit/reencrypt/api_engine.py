"""Re-encrypt through the Kubernetes API: list each resource in pages and replace
every object unchanged, with its resourceVersion as precondition.

The apiserver decrypts with its read chain and writes with its current write
provider; a replace that changes nothing is skipped by the apiserver unless the
stored value is stale, so re-running is safe and cheap.

Safety properties (see docs/reencrypt.md):

* The object sent back is exactly the object as read, with its resourceVersion:
  if anybody wrote it in between, the apiserver answers 409 and nothing is written.
* After a 409 the object is read again and the *newer* data is replaced; older data
  is never written back.
* A 404 means the object was deleted: counted as gone, never recreated (replace
  with a resourceVersion cannot create).
* 401/403 and an unreachable API stop the run with a clear error; every other
  per-object failure is recorded and the run goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from secretkit.errors import KubeError
from secretkit.kube.client import (
    AUTH_STATUSES,
    ApiResponse,
    collection_path,
    object_path,
    raise_for_status,
)
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.checkpoint import Checkpoint, CheckpointFile, ResourceProgress
from secretkit.reencrypt.ratelimit import RateLimiter
from secretkit.reencrypt.retry import RetryPolicy
from secretkit.reencrypt.summary import ObjectError, Summary

#: statuses worth retrying after a pause (overload, timeouts, server hiccups)
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class ApiTransport(Protocol):
    """The part of :class:`secretkit.kube.client.KubeClient` the engine uses."""

    host: str

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one request."""
        ...


@dataclass(frozen=True)
class ApiRunOptions:
    """Knobs of an API-path run (CLI flags map 1:1)."""

    page_size: int = 500
    concurrency: int = 8
    dry_run: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: how often a 410 (expired continue token) may restart one resource's list
    max_list_restarts: int = 5


def object_key(item: Mapping[str, Any]) -> tuple[str | None, str]:
    """``(namespace, name)`` of a listed object."""
    meta = item.get("metadata") or {}
    return meta.get("namespace") or None, str(meta.get("name", ""))


def order_key(namespace: str | None, name: str) -> str:
    """The object's position in list order (etcd key order): ``ns/name`` or ``name``."""
    return f"{namespace}/{name}" if namespace else name


class ApiReencryptor:
    """Drives one API-path run over a list of resources."""

    def __init__(
        self,
        transport: ApiTransport,
        *,
        options: ApiRunOptions,
        limiter: RateLimiter,
        summary: Summary,
        checkpoint: Checkpoint,
        checkpoint_file: CheckpointFile | None = None,
        on_total: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = transport
        self._opts = options
        self._limiter = limiter
        self._summary = summary
        self._checkpoint = checkpoint
        self._file = checkpoint_file
        self._on_total = on_total
        self._sleep = sleep
        self._abort = threading.Event()
        self._estimate: dict[str, int] = {}
        self._ckpt_lock = threading.Lock()

    # ------------------------------------------------------------------ run

    def run(
        self,
        resources: Sequence[ApiResource],
        *,
        only: Mapping[str, Sequence[tuple[str | None, str]]] | None = None,
    ) -> None:
        """Re-encrypt every object of ``resources`` (or only the keys in ``only``).

        ``only`` maps a resource's qualified name to sorted ``(namespace, name)``
        pairs (from an etcd stale scan). Raises KubeError on fatal API errors after
        saving the checkpoint, so ``--resume`` continues where the run stopped.
        """
        workers = max(self._opts.concurrency, 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="reencrypt") as pool, \
                ThreadPoolExecutor(1, thread_name_prefix="reencrypt-list") as lister:
            for res in resources:
                progress = self._checkpoint.progress(res.qualified)
                self._summary.ensure(res.qualified)
                if progress.state == "done":
                    self._estimate[res.qualified] = progress.counters.get("seen", 0)
                    continue
                progress.state = "running"
                if only is not None:
                    keys = only.get(res.qualified, ())
                    self._estimate[res.qualified] = len(keys)
                    self._report_total()
                    self._run_keys(pool, res, progress, keys)
                else:
                    self._run_list(pool, lister, res, progress)
                progress.state = "done"
                progress.continue_token = None
                self._save(res, progress)

    # -------------------------------------------------------------- listing

    def _list_page(self, res: ApiResource, token: str | None) -> ApiResponse:
        query = [("limit", str(self._opts.page_size))]
        if token:
            query.append(("continue", token))
        path = collection_path(res.group, res.version, res.resource)
        retry = 0
        while True:
            self._limiter.acquire()
            try:
                resp = self._api.request("GET", path, query=query)
            except KubeError:
                retry += 1
                if not self._opts.retry.should_retry(retry):
                    raise
                self._sleep(self._opts.retry.delay(retry))
                continue
            if resp.status in _TRANSIENT:
                retry += 1
                if self._opts.retry.should_retry(retry):
                    self._sleep(self._opts.retry.delay(retry, retry_after=resp.retry_after))
                    continue
            return resp

    def _run_list(
        self,
        pool: ThreadPoolExecutor,
        lister: ThreadPoolExecutor,
        res: ApiResource,
        progress: ResourceProgress,
    ) -> None:
        where = f"{self._api.host}{collection_path(res.group, res.version, res.resource)}"
        token = progress.continue_token
        skip_upto = progress.last_key
        restarts = 0
        pending: Future[ApiResponse] = lister.submit(self._list_page, res, token)
        while True:
            resp = pending.result()
            if resp.status == 410:
                # the continue token expired (compaction): list again from the start
                # and skip what the checkpoint says is done
                restarts += 1
                if token is None or restarts > self._opts.max_list_restarts:
                    _raise_list_error(resp, where)
                token = None
                skip_upto = progress.last_key
                pending = lister.submit(self._list_page, res, None)
                continue
            if not resp.ok:
                _raise_list_error(resp, where)
            body = resp.body if isinstance(resp.body, dict) else {}
            items: list[dict[str, Any]] = list(body.get("items") or [])
            meta = body.get("metadata") or {}
            next_token = meta.get("continue") or None
            self._update_estimate(res.qualified, len(items), meta.get("remainingItemCount"))
            # prefetch the next page while the workers replace this one
            if next_token:
                pending = lister.submit(self._list_page, res, next_token)
            if skip_upto is not None:
                items = [i for i in items if order_key(*object_key(i)) > skip_upto]
            self._replace_all(pool, res, items)
            if items:
                progress.last_key = max(order_key(*object_key(i)) for i in items)
            progress.continue_token = next_token
            self._save(res, progress)
            if not next_token:
                return
            token = next_token

    def _run_keys(
        self,
        pool: ThreadPoolExecutor,
        res: ApiResource,
        progress: ResourceProgress,
        keys: Sequence[tuple[str | None, str]],
    ) -> None:
        start = progress.last_key
        todo = [k for k in keys if start is None or order_key(*k) > start]
        todo.sort(key=lambda k: order_key(*k))
        step = max(self._opts.page_size, 1)
        for offset in range(0, len(todo), step):
            batch = todo[offset : offset + step]
            futures = [pool.submit(self._fetch_and_replace, res, ns, name) for ns, name in batch]
            self._wait(futures)
            progress.last_key = order_key(*batch[-1])
            self._save(res, progress)

    def _update_estimate(self, resource: str, page_len: int, remaining: Any) -> None:
        seen_before = self._summary.resource_counters(resource)["seen"]
        estimate = seen_before + page_len
        if isinstance(remaining, int) and remaining > 0:
            estimate += remaining
        self._estimate[resource] = max(self._estimate.get(resource, 0), estimate)
        self._report_total()

    def _report_total(self) -> None:
        if self._on_total is not None:
            self._on_total(sum(self._estimate.values()))

    # ------------------------------------------------------------ replacing

    def _replace_all(
        self, pool: ThreadPoolExecutor, res: ApiResource, items: list[dict[str, Any]]
    ) -> None:
        futures = [pool.submit(self._replace_one, res, item) for item in items]
        self._wait(futures)

    def _wait(self, futures: list[Future[None]]) -> None:
        fatal: BaseException | None = None
        for fut in futures:
            try:
                fut.result()
            except BaseException as exc:  # re-raised below after cleanup
                self._abort.set()
                fatal = fatal or exc
        if fatal is not None:
            raise fatal

    def _fetch_and_replace(self, res: ApiResource, namespace: str | None, name: str) -> None:
        if self._abort.is_set():
            return
        path = object_path(res.group, res.version, res.resource, name, namespace)
        resp = self._send("GET", path, None)
        if resp.status == 404:
            self._summary.add(res.qualified, "seen")
            self._summary.add(res.qualified, "gone")
            return
        if not resp.ok or not isinstance(resp.body, dict):
            self._summary.add(res.qualified, "seen")
            self._fail(res, namespace, name, resp)
            return
        self._replace_one(res, resp.body)

    def _replace_one(self, res: ApiResource, item: dict[str, Any]) -> None:
        if self._abort.is_set():
            return
        namespace, name = object_key(item)
        q = res.qualified
        self._summary.add(q, "seen")
        if self._opts.dry_run:
            self._summary.candidate(q, order_key(namespace, name))
            return
        path = object_path(res.group, res.version, res.resource, name, namespace)
        obj = item
        conflicts = 0
        retries = 0
        while True:
            obj["apiVersion"] = res.api_version
            obj["kind"] = res.kind
            sent_rv = (obj.get("metadata") or {}).get("resourceVersion")
            resp = self._send("PUT", path, obj)
            if resp.ok:
                body = resp.body if isinstance(resp.body, dict) else {}
                new_rv = (body.get("metadata") or {}).get("resourceVersion")
                self._summary.add(q, "unchanged" if new_rv == sent_rv else "rewritten")
                return
            if resp.status == 404:
                self._summary.add(q, "gone")
                return
            if resp.status == 409:
                conflicts += 1
                if not self._opts.retry.should_retry(conflicts):
                    self._fail(res, namespace, name, resp)
                    return
                self._summary.add(q, "conflicts_retried")
                self._sleep(self._opts.retry.delay(conflicts))
                # re-read: the newer object is what we replace next, never the old one
                fresh = self._send("GET", path, None)
                if fresh.status == 404:
                    self._summary.add(q, "gone")
                    return
                if not fresh.ok or not isinstance(fresh.body, dict):
                    self._fail(res, namespace, name, fresh)
                    return
                obj = fresh.body
                continue
            if resp.status in _TRANSIENT:
                retries += 1
                if self._opts.retry.should_retry(retries):
                    self._sleep(self._opts.retry.delay(retries, retry_after=resp.retry_after))
                    continue
            self._fail(res, namespace, name, resp)
            return

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> ApiResponse:
        """One request with rate limiting; transport errors retried, auth errors fatal."""
        retry = 0
        while True:
            self._limiter.acquire()
            try:
                resp = self._api.request(method, path, body=body)
            except KubeError:
                retry += 1
                if self._abort.is_set() or not self._opts.retry.should_retry(retry):
                    raise
                self._sleep(self._opts.retry.delay(retry))
                continue
            if resp.status in AUTH_STATUSES:
                _raise_auth(resp, self._api.host)
            return resp

    def _fail(
        self, res: ApiResource, namespace: str | None, name: str, resp: ApiResponse
    ) -> None:
        self._summary.fail(
            ObjectError(
                resource=res.qualified,
                namespace=namespace,
                name=name,
                status=resp.status,
                reason=resp.reason or _STATUS_TEXT.get(resp.status, "error"),
            )
        )

    # ----------------------------------------------------------- checkpoint

    def _save(self, res: ApiResource, progress: ResourceProgress) -> None:
        progress.counters = self._summary.resource_counters(res.qualified)
        with self._ckpt_lock:
            self._checkpoint.errors = [e.to_json() for e in self._summary.errors]
            if self._file is not None:
                self._file.save(self._checkpoint)


_STATUS_TEXT = {409: "Conflict", 422: "Invalid", 400: "BadRequest", 500: "InternalError"}


def _raise_auth(resp: ApiResponse, host: str) -> NoReturn:
    if resp.status == 401:
        raise KubeError(
            "the Kubernetes API rejected the credentials (401 Unauthorized)",
            where=host,
            hint="check the token, client certificate or exec plugin of the kubeconfig context",
        )
    raise KubeError(
        "the Kubernetes API refused the request (403 Forbidden)",
        where=host,
        hint="the user needs list, get and update on every resource being re-encrypted (RBAC)",
    )


def _raise_list_error(resp: ApiResponse, where: str) -> NoReturn:
    if resp.status in AUTH_STATUSES:
        _raise_auth(resp, where)
    raise_for_status(resp, where=where)
    # only reached for a 2xx answer, which callers never pass
    raise KubeError(f"unexpected list answer {resp.status}", where=where)
