"""Re-encrypt through the Kubernetes API: list each resource's metadata in pages and ask
the apiserver to rewrite every object as it is.

The request that does it is an **empty merge patch** (``PATCH`` with body ``{}``). The
apiserver applies a patch inside its own compare-and-swap loop (``GuaranteedUpdate``
in ``k8s.io/apiserver``): it reads the stored object, applies the (empty) patch,
encodes the result and compares it with the stored bytes. Unchanged and not stale:
nothing is written. Stale (not written by the current write provider/key): it is
written back as it is, with the current key. So:

* no object travels to the server and none is re-serialized by the client (the
  ControllerRevision 422, ``data: field is immutable``, cannot happen);
* no write can be lost: a concurrent writer's newer object is what the apiserver
  patches (its CAS retries inside the server), and a patch never creates an object
  (a deleted one answers 404, counted as gone);
* it works on every resource type, built-in or custom (merge patch is always
  served; strategic merge is not served for custom resources).

Lists ask for ``PartialObjectMetadataList`` (names and resourceVersions only, in
protobuf where the server offers it); the patch's answer is ``PartialObjectMetadata``.
A server that cannot patch a resource (405/415) or refuses the patch's result (422)
gets the object back byte for byte as it sent it (GET, then PUT of the same bytes
with its resourceVersion as precondition; 409 re-reads the newer object).

Concurrency adapts to the server (:mod:`.window`): 429/503 and ``Retry-After`` halve
the number of requests in flight and pause new ones as asked; it grows back as
answers come. 401/403 and an unreachable API stop the run with a clear error; every
other per-object failure is recorded and the run goes on.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from secretkit.errors import KubeError
from secretkit.kube.client import (
    AUTH_STATUSES,
    JSON,
    PROTOBUF,
    ApiResponse,
    RawResponse,
    collection_path,
    object_path,
    raise_for_status,
)
from secretkit.kube.discovery import ApiResource
from secretkit.kube.metadata import (
    LIST_ACCEPT,
    OBJECT_ACCEPT,
    RAW_ACCEPT,
    ObjectRef,
    parse_list,
    parse_object,
)
from secretkit.reencrypt.checkpoint import (
    Checkpoint,
    CheckpointFile,
    ProgressSaver,
    ResourceProgress,
)
from secretkit.reencrypt.etcd_keys import list_order
from secretkit.reencrypt.ratelimit import RateLimiter
from secretkit.reencrypt.retry import RetryPolicy
from secretkit.reencrypt.summary import ObjectError, Summary, processed
from secretkit.reencrypt.window import AdaptiveWindow

#: statuses worth retrying after a pause (overload, timeouts, server hiccups)
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
#: the no-op update: an empty JSON merge patch (RFC 7386), served for every resource
MERGE_PATCH = "application/merge-patch+json"
EMPTY_PATCH = b"{}"
#: answers to a patch that mean "this server will not patch this": send the object back
_PATCH_REFUSED = frozenset({405, 415})


class ApiTransport(Protocol):
    """The part of :class:`secretkit.kube.client.KubeClient` the engine uses."""

    host: str

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
        """Send one request with ``body`` as given; the answer for any HTTP status."""
        ...


@dataclass(frozen=True)
class ApiRunOptions:
    """Knobs of an API-path run (CLI flags map 1:1)."""

    page_size: int = 500
    #: the most requests in flight; fewer while the server asks to slow down
    concurrency: int = 8
    dry_run: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: how often a 410 (expired continue token) may restart one resource's list
    max_list_restarts: int = 5
    #: list one namespace only (cluster-scoped resources are left out by the caller)
    namespace: str | None = None
    #: a label selector for the lists (``-l app=web``)
    label_selector: str | None = None


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
        self._saver = ProgressSaver(checkpoint, checkpoint_file)
        self._on_total = on_total
        self._sleep = sleep
        self._abort = threading.Event()
        self._estimate: dict[str, int] = {}
        self.window = AdaptiveWindow(options.concurrency)
        #: resources whose list answers cannot be metadata-only (406)
        self._full_lists: set[str] = set()
        #: resources the server will not patch: their objects are sent back as read
        self._no_patch: set[str] = set()

    # ------------------------------------------------------------------ run

    def run(
        self,
        resources: Sequence[ApiResource],
        *,
        only: Mapping[str, Sequence[ObjectRef]] | None = None,
        fresh: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Re-encrypt every object of ``resources`` (or only the objects in ``only``).

        ``only`` maps a resource's qualified name to its objects from an etcd stale
        scan, each with the resourceVersion it was judged at; ``fresh`` to the sorted
        list-order keys the scan found fresh. Those are never sent: each is counted
        ``seen`` and ``skipped_fresh`` once the run has passed it in list order (with
        the page saved after it), so a resumed run counts exactly the fresh ones after
        the checkpoint's ``last_key`` (an object rewritten by a batch that was in
        flight at a kill is fresh now, and counted so). Raises KubeError on fatal API
        errors after saving the checkpoint, so ``--resume`` continues where the run
        stopped.
        """
        workers = max(self._opts.concurrency, 1)
        self._count_up_front(resources, only)
        with ThreadPoolExecutor(workers, thread_name_prefix="reencrypt") as pool, \
                ThreadPoolExecutor(1, thread_name_prefix="reencrypt-list") as lister:
            for res in resources:
                progress = self._checkpoint.progress(res.qualified)
                self._summary.ensure(res.qualified)
                if progress.state == "done":
                    continue
                progress.state = "running"
                if only is not None:
                    fresh_keys = fresh.get(res.qualified, ()) if fresh is not None else ()
                    self._run_keys(pool, res, progress, only.get(res.qualified, ()), fresh_keys)
                else:
                    self._run_list(pool, lister, res, progress)
                progress.state = "done"
                progress.continue_token = None
                self._save(res, progress)

    # -------------------------------------------------------------- listing

    def _count_up_front(
        self,
        resources: Sequence[ApiResource],
        only: Mapping[str, Sequence[ObjectRef]] | None,
    ) -> None:
        """A real total for the progress line before the first object is rewritten.

        A resource finished earlier counts what it processed. With ``only`` a resource
        counts its stale objects still to do, plus what a resumed run processed before.
        Otherwise one list of ``limit=1`` per resource: the API server's
        ``remainingItemCount`` plus the one item is the resource's size (a server that
        does not send it, or a resource being resumed, is left to the running estimate).
        """
        for res in resources:
            progress = self._checkpoint.progress(res.qualified)
            before = processed(self._summary.resource_counters(res.qualified))
            if progress.state == "done":
                self._estimate[res.qualified] = before
            elif only is not None:
                todo = _after(only.get(res.qualified, ()), progress.last_key)
                self._estimate[res.qualified] = before + len(todo)
        if only is not None:
            self._report_total()
            return
        for res in resources:
            if self._checkpoint.progress(res.qualified).state in ("done", "running"):
                continue
            try:
                resp = self._list_page(res, None, limit=1)
            except KubeError:
                return  # the run itself reports an unreachable API
            if not resp.ok:
                continue
            page = parse_list(resp.body, resp.content_type)
            if page.remaining is not None:
                self._estimate[res.qualified] = len(page.items) + page.remaining
            elif not page.continue_token:
                self._estimate[res.qualified] = len(page.items)
        self._report_total()

    def _list_page(
        self, res: ApiResource, token: str | None, *, limit: int | None = None
    ) -> RawResponse:
        query = [("limit", str(limit or self._opts.page_size))]
        if self._opts.label_selector:
            query.append(("labelSelector", self._opts.label_selector))
        if token:
            query.append(("continue", token))
        namespace = self._opts.namespace if res.namespaced else None
        path = collection_path(res.group, res.version, res.resource, namespace)
        while True:
            full = res.qualified in self._full_lists
            resp = self._exchange("GET", path, query=query,
                                  accept=JSON if full else LIST_ACCEPT)
            if resp.status == 406 and not full:
                # a server that cannot answer metadata only: read names from full objects
                self._full_lists.add(res.qualified)
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
        pending: Future[RawResponse] = lister.submit(self._list_page, res, token)
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
            page = parse_list(resp.body, resp.content_type)
            self._update_estimate(res.qualified, len(page.items), page.remaining)
            # prefetch the next page while the workers rewrite this one
            if page.continue_token:
                pending = lister.submit(self._list_page, res, page.continue_token)
            items = page.items
            if skip_upto is not None:
                items = [i for i in items if list_order((i.namespace, i.name)) > skip_upto]
            self._wait([pool.submit(self._rewrite, res, item) for item in items])
            if items:
                progress.last_key = max(list_order((i.namespace, i.name)) for i in items)
            progress.continue_token = page.continue_token
            self._save(res, progress)
            if not page.continue_token:
                return
            token = page.continue_token

    def _run_keys(
        self,
        pool: ThreadPoolExecutor,
        res: ApiResource,
        progress: ResourceProgress,
        refs: Sequence[ObjectRef],
        fresh: Sequence[str] = (),
    ) -> None:
        todo = _after(refs, progress.last_key)
        # fresh keys up to last_key are in the counters the checkpoint carried over;
        # ``fresh`` is sorted, so positions in it count them (no copy of the keys)
        fresh_counted = (0 if progress.last_key is None
                         else bisect_right(fresh, progress.last_key))
        step = max(self._opts.page_size, 1)
        for offset in range(0, len(todo), step):
            batch = todo[offset : offset + step]
            # each carries the resourceVersion the scan judged: the same one back from
            # the patch is a no-op the API server skipped (unchanged), as for a list
            self._wait([pool.submit(self._rewrite, res, ref) for ref in batch])
            progress.last_key = list_order((batch[-1].namespace, batch[-1].name))
            passed = bisect_right(fresh, progress.last_key)
            self._count_fresh(res.qualified, passed - fresh_counted)
            fresh_counted = passed
            self._save(res, progress)
        # the rest lie after the last stale object; run() saves them with "done"
        self._count_fresh(res.qualified, len(fresh) - fresh_counted)

    def _count_fresh(self, resource: str, count: int) -> None:
        if count:
            self._summary.add(resource, "seen", count)
            self._summary.add(resource, "skipped_fresh", count)

    def _update_estimate(self, resource: str, page_len: int, remaining: int | None) -> None:
        seen_before = self._summary.resource_counters(resource)["seen"]
        estimate = seen_before + page_len
        if remaining is not None and remaining > 0:
            estimate += remaining
        self._estimate[resource] = max(self._estimate.get(resource, 0), estimate)
        self._report_total()

    def _report_total(self) -> None:
        if self._on_total is not None:
            self._on_total(sum(self._estimate.values()))

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

    # ------------------------------------------------------------ rewriting

    def _rewrite(self, res: ApiResource, ref: ObjectRef) -> None:
        """Have the apiserver rewrite one object if stale: an empty merge patch."""
        if self._abort.is_set():
            return
        q = res.qualified
        self._summary.add(q, "seen")
        if self._opts.dry_run:
            self._summary.candidate(q, list_order((ref.namespace, ref.name)))
            return
        if q in self._no_patch:
            self._send_back(res, ref)
            return
        path = object_path(res.group, res.version, res.resource, ref.name, ref.namespace)
        conflicts = 0
        while True:
            resp = self._exchange("PATCH", path, body=EMPTY_PATCH, content_type=MERGE_PATCH,
                                  accept=OBJECT_ACCEPT)
            if resp.ok:
                self._count_written(q, ref, resp)
                return
            if resp.status == 404:
                self._summary.add(q, "gone")
                return
            if resp.status == 409:
                # the apiserver gave up retrying its own compare-and-swap: ask again
                conflicts += 1
                if not self._opts.retry.should_retry(conflicts):
                    self._fail(res, ref, resp)
                    return
                self._summary.add(q, "conflicts_retried")
                self._sleep(self._opts.retry.delay(conflicts))
                continue
            if resp.status in _PATCH_REFUSED:
                self._no_patch.add(q)
                self._send_back(res, ref)
                return
            if resp.status == 422:
                # the server's own round trip of the object changed it (a RawExtension
                # it re-encodes differently): send back exactly the bytes it stores
                self._send_back(res, ref)
                return
            self._fail(res, ref, resp)
            return

    def _send_back(self, res: ApiResource, ref: ObjectRef) -> None:
        """GET the object and PUT the very same bytes (its resourceVersion guards it)."""
        q = res.qualified
        path = object_path(res.group, res.version, res.resource, ref.name, ref.namespace)
        conflicts = 0
        while True:
            got = self._exchange("GET", path, accept=RAW_ACCEPT)
            if got.status == 404:
                self._summary.add(q, "gone")
                return
            if not got.ok:
                self._fail(res, ref, got)
                return
            put = self._exchange("PUT", path, body=got.body,
                                 content_type=PROTOBUF if got.is_protobuf else JSON,
                                 accept=OBJECT_ACCEPT)
            if put.ok:
                self._count_written(q, ref, put)
                return
            if put.status == 404:
                self._summary.add(q, "gone")
                return
            if put.status == 409:
                # written in between: read the newer object, never send the older one
                conflicts += 1
                if not self._opts.retry.should_retry(conflicts):
                    self._fail(res, ref, put)
                    return
                self._summary.add(q, "conflicts_retried")
                self._sleep(self._opts.retry.delay(conflicts))
                continue
            self._fail(res, ref, put)
            return

    def _count_written(self, q: str, ref: ObjectRef, resp: RawResponse) -> None:
        try:
            rv = parse_object(resp.body, resp.content_type).resource_version
        except KubeError:
            rv = ""
        self._summary.add(q, "unchanged" if rv and rv == ref.resource_version else "rewritten")

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = JSON,
    ) -> RawResponse:
        """One request, retried while the transport fails or the server is overloaded.

        Goes through the rate limiter and the adaptive window; 401/403 are fatal.
        Returns the last answer once it is not transient or retries are used up.
        """
        transport_retries = retries = 0
        while True:
            self._limiter.acquire()
            with self.window.slot() as answer:
                try:
                    resp = self._api.send(method, path, query=query, body=body,
                                          content_type=content_type, accept=accept)
                except KubeError:
                    transport_retries += 1
                    if self._abort.is_set() or not self._opts.retry.should_retry(
                            transport_retries):
                        raise
                    resp = None
                if resp is not None:
                    answer[:] = [resp.status, resp.retry_after]
            if resp is None:
                self._sleep(self._opts.retry.delay(transport_retries))
                continue
            if resp.status in AUTH_STATUSES:
                _raise_auth(resp, self._api.host)
            if resp.status in _TRANSIENT:
                retries += 1
                if self._opts.retry.should_retry(retries) and not self._abort.is_set():
                    self._sleep(self._opts.retry.delay(retries, retry_after=resp.retry_after))
                    continue
            return resp

    def _fail(self, res: ApiResource, ref: ObjectRef, resp: RawResponse) -> None:
        reason = ""
        doc = resp.json()
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            reason = str(doc.get("reason") or "")
        self._summary.fail(
            ObjectError(
                resource=res.qualified,
                namespace=ref.namespace,
                name=ref.name,
                status=resp.status,
                reason=reason or _STATUS_TEXT.get(resp.status, "error"),
            )
        )

    # ----------------------------------------------------------- checkpoint

    def _save(self, res: ApiResource, progress: ResourceProgress) -> None:
        self._saver.save(res.qualified, progress, self._summary)


def _after(refs: Sequence[ObjectRef], last_key: str | None) -> list[ObjectRef]:
    """``refs`` past a resumed resource's last finished key, in list order."""
    todo = [r for r in refs if last_key is None or list_order((r.namespace, r.name)) > last_key]
    return sorted(todo, key=lambda r: list_order((r.namespace, r.name)))


_STATUS_TEXT = {409: "Conflict", 422: "Invalid", 400: "BadRequest", 500: "InternalError"}


def _raise_auth(resp: RawResponse, host: str) -> NoReturn:
    if resp.status == 401:
        raise KubeError(
            "the Kubernetes API rejected the credentials (401 Unauthorized)",
            where=host,
            hint="check the token, client certificate or exec plugin of the kubeconfig context",
        )
    raise KubeError(
        "the Kubernetes API refused the request (403 Forbidden)",
        where=host,
        hint="the user needs list and patch (or get and update) on every resource being "
        "re-encrypted (RBAC)",
    )


def _raise_list_error(resp: RawResponse, where: str) -> NoReturn:
    if resp.status in AUTH_STATUSES:
        _raise_auth(resp, where)
    raise_for_status(ApiResponse(resp.status, resp.json(), resp.retry_after), where=where)
    # only reached for a 2xx answer, which callers never pass
    raise KubeError(f"unexpected list answer {resp.status}", where=where)

