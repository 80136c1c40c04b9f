"""A small synchronous etcd v3 client over our own gRPC stubs (see docs/adr/0001).

Only what secretkit needs: it serves every role of :mod:`secretkit.etcd.interface`
(the scan, reads at any revision, put, compare-and-swap, guarded delete, watches),
plus exact ``limit``-sized pages, compaction, status and snapshots. Every gRPC
failure becomes an :class:`~secretkit.errors.EtcdError` (see
:mod:`secretkit.etcd.errors`); keys' values never appear in messages or logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from secretkit._proto.etcd import kv_pb2, rpc_pb2, rpc_pb2_grpc
from secretkit.errors import ConfigError, EtcdError
from secretkit.etcd.config import EtcdConfig
from secretkit.etcd.errors import (
    EtcdResponseTooLargeError,
    is_tls_failure,
    rpc_code,
    translate,
)
from secretkit.etcd.interface import MAX_TXN_OPS, KeyValue
from secretkit.etcd.keys import ALL_KEYS, next_key, prefix_range_end
from secretkit.etcd.model import EtcdStatus, KeyValueRecord, WatchRange
from secretkit.etcd.pages import linear_pages
from secretkit.etcd.watch import WatchStream
from secretkit.fileio import open_private, read_file

log = logging.getLogger(__name__)

T = TypeVar("T")

#: large enough for a page of big objects; range_pages halves its page when exceeded
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

__all__ = ["MAX_MESSAGE_BYTES", "MAX_TXN_OPS", "EtcdClient", "grpc_target"]


def _channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # etcd endpoints are dialled directly; an HTTP(S)_PROXY meant for the web must not apply
        ("grpc.enable_http_proxy", 0),
        # a watch waits for changes for hours: ping while a call is open so a member
        # that vanished without closing the connection (power loss, partition) is
        # noticed in seconds; etcd accepts pings every 5 s (--grpc-keepalive-min-time)
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


@dataclass
class _Connection:
    endpoint: str
    channel: grpc.Channel
    kv: rpc_pb2_grpc.KVStub
    maintenance: rpc_pb2_grpc.MaintenanceStub
    auth: rpc_pb2_grpc.AuthStub
    lease: rpc_pb2_grpc.LeaseStub
    watch: rpc_pb2_grpc.WatchStub
    token: str | None = field(default=None, repr=False)


def grpc_target(endpoint: str) -> str:
    """``http(s)://host:port`` (or bare ``host:port``) -> the gRPC target ``host:port``."""
    target = endpoint
    for scheme in ("http://", "https://"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            break
    target = target.rstrip("/")
    if not target or "/" in target or "://" in target:
        raise ConfigError(
            f"cannot use etcd endpoint {endpoint!r}",
            where="endpoints",
            hint="endpoints look like https://10.0.0.1:2379 or 127.0.0.1:2379",
        )
    return target


def _pem(path: Path | None, what: str) -> bytes | None:
    return read_file(path, what=what, error=ConfigError) if path else None


def _to_kv(kv: kv_pb2.KeyValue) -> KeyValueRecord:
    return KeyValueRecord(
        key=kv.key,
        value=kv.value,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
    )


class EtcdClient:
    """Synchronous etcd v3 client; use as a context manager (or call :meth:`close`).

    Serves :class:`~secretkit.etcd.interface.EtcdStore` and
    :class:`~secretkit.etcd.interface.WatchableReader`. Thread-safe: one gRPC
    channel to the current endpoint is shared. When an endpoint
    is UNAVAILABLE the request is retried on the next one. A retried
    :meth:`compare_and_swap` may report a conflict for a write that did land; callers
    re-read on conflict anyway, so this errs on the safe side.
    """

    def __init__(
        self, config: EtcdConfig | None = None, *, max_message_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self._config = config if config is not None else EtcdConfig.from_env()
        self._options = _channel_options(max_message_bytes)
        self._targets = [grpc_target(e) for e in self._config.endpoints]
        self._credentials = self._channel_credentials()
        self._lock = threading.Lock()
        self._index = 0
        self._conn: _Connection | None = None
        self._closed = False

    # -- life cycle -------------------------------------------------------------------

    @property
    def config(self) -> EtcdConfig:
        """The settings this client was built with."""
        return self._config

    @property
    def endpoint(self) -> str:
        """The endpoint requests currently go to."""
        return self._config.endpoints[self._index]

    def close(self) -> None:
        """Close the gRPC channel. Idempotent."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.channel.close()
                self._conn = None

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _channel_credentials(self) -> grpc.ChannelCredentials | None:
        cfg = self._config
        if not cfg.uses_tls:
            return None
        root = _pem(cfg.cacert, "the CA certificate (--cacert)")
        cert = _pem(cfg.cert, "the client certificate (--cert)")
        key = _pem(cfg.key, "the client key (--key)")
        return grpc.ssl_channel_credentials(
            root_certificates=root, private_key=key, certificate_chain=cert
        )

    def _connection(self) -> _Connection:
        with self._lock:
            if self._closed:
                raise EtcdError("the etcd client is closed", where=self.endpoint)
            if self._conn is None:
                target = self._targets[self._index]
                if self._credentials is not None:
                    channel = grpc.secure_channel(target, self._credentials, self._options)
                else:
                    channel = grpc.insecure_channel(target, self._options)
                self._conn = _Connection(
                    endpoint=self._config.endpoints[self._index],
                    channel=channel,
                    kv=rpc_pb2_grpc.KVStub(channel),
                    maintenance=rpc_pb2_grpc.MaintenanceStub(channel),
                    auth=rpc_pb2_grpc.AuthStub(channel),
                    lease=rpc_pb2_grpc.LeaseStub(channel),
                    watch=rpc_pb2_grpc.WatchStub(channel),
                )
            return self._conn

    def _rotate(self, failed: _Connection) -> None:
        with self._lock:
            if self._conn is failed:
                failed.channel.close()
                self._conn = None
                self._index = (self._index + 1) % len(self._targets)
                log.info("etcd endpoint %s unavailable; trying %s", failed.endpoint, self.endpoint)

    def _metadata(self, conn: _Connection) -> list[tuple[str, str]] | None:
        cfg = self._config
        if not cfg.user:
            return None
        if conn.token is None:
            resp = conn.auth.Authenticate(
                rpc_pb2.AuthenticateRequest(name=cfg.user, password=cfg.password or ""),
                timeout=cfg.timeout,
            )
            conn.token = resp.token
        return [("token", conn.token)]

    def _call(
        self,
        operation: str,
        invoke: Callable[[_Connection, list[tuple[str, str]] | None], T],
        *,
        revision: int | None = None,
        read_only: bool = False,
    ) -> T:
        """Run ``invoke`` on the current endpoint, fail over to the next one, translate errors.

        Fails over on UNAVAILABLE; read-only requests also on DEADLINE_EXCEEDED (a
        silent endpoint), where retrying a write could apply it twice.
        """
        failover_codes = {grpc.StatusCode.UNAVAILABLE}
        if read_only:
            failover_codes.add(grpc.StatusCode.DEADLINE_EXCEEDED)
        failovers = 0
        reauthenticated = False
        while True:
            conn = self._connection()
            try:
                return invoke(conn, self._metadata(conn))
            except grpc.RpcError as exc:
                code = rpc_code(exc)
                if code in failover_codes and failovers + 1 < len(self._targets):
                    failovers += 1
                    self._rotate(conn)
                    continue
                if (
                    code == grpc.StatusCode.UNAUTHENTICATED
                    and self._config.user
                    and conn.token is not None
                    and not reauthenticated
                    and not is_tls_failure(exc)
                ):
                    conn.token = None  # expired simple token: log in again once
                    reauthenticated = True
                    continue
                raise translate(
                    exc,
                    endpoint=conn.endpoint,
                    operation=operation,
                    timeout=self._config.timeout,
                    revision=revision,
                ) from None

    # -- reads ------------------------------------------------------------------------

    def _range(self, request: rpc_pb2.RangeRequest, operation: str) -> rpc_pb2.RangeResponse:
        timeout = self._config.timeout
        resp: rpc_pb2.RangeResponse = self._call(
            operation,
            lambda c, md: c.kv.Range(request, timeout=timeout, metadata=md),
            revision=request.revision or None,
            read_only=True,
        )
        return resp

    def range_raw(
        self, request: rpc_pb2.RangeRequest, operation: str = "range"
    ) -> rpc_pb2.RangeResponse:
        """One Range RPC, with failover and error mapping; for callers that page themselves.

        etcd 3.5 counts the rest of the range on every paged request, so a long scan
        paged by ``limit`` alone costs O(n²); the audit's reader instead reads guessed,
        bounded ranges through this call (``secretkit.etcd.pages``). Thread-safe.
        The response holds raw ``mvccpb.KeyValue`` messages (no copies).
        """
        return self._range(request, operation)

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValueRecord | None:
        """The key as of ``revision`` (default: now), or None when it did not exist then."""
        resp = self._range(rpc_pb2.RangeRequest(key=key, revision=revision or 0), "get")
        return _to_kv(resp.kvs[0]) if resp.kvs else None

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> list[KeyValueRecord | None]:
        """Each ``(key, revision)``'s value as of that revision, in one read-only Txn.

        At most :data:`MAX_TXN_OPS` requests (etcd's default ``--max-txn-ops``).
        Raises :class:`EtcdCompactedError` when any revision was compacted (etcd
        rejects the whole Txn then).
        """
        if len(requests) > MAX_TXN_OPS:
            raise ValueError(f"get_many takes at most {MAX_TXN_OPS} requests")
        ops = [
            rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key, revision=revision))
            for key, revision in requests
        ]
        # only range requests: safe to retry on another endpoint after a timeout
        resp = self._txn(rpc_pb2.TxnRequest(success=ops), "history", read_only=True)
        return [
            _to_kv(r.response_range.kvs[0]) if r.response_range.kvs else None
            for r in resp.responses
        ]

    def current_revision(self) -> int:
        """The store's current revision.

        Read from the header of a one-key Range: a ``count_only`` over the whole
        keyspace would make etcd 3.5 walk every key (the monitor asks every few seconds).
        """
        resp = self._range(rpc_pb2.RangeRequest(key=ALL_KEYS, keys_only=True), "revision")
        return int(resp.header.revision)

    def range_pages(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
        start: bytes | None = None,
    ) -> Iterator[list[KeyValueRecord]]:
        """Every key under ``prefix`` in key order, ``page_size`` per page, at ONE revision.

        Exact ``limit``-sized pages for callers that need them (the sandbox's
        list/continue); whole-prefix scans use :meth:`scan`, which etcd 3.5 serves in
        linear time where this is quadratic (it counts the rest of the range per page).

        The revision is ``revision`` or the first page's; later writes are not seen,
        so the scan is a consistent snapshot. ``start`` (>= ``prefix``) skips keys
        below it. Memory stays at one page; a page too large for one gRPC message is
        fetched again in smaller pages. A compacted revision raises EtcdError.
        An empty range yields nothing.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        range_end = prefix_range_end(prefix)
        key = prefix if prefix else ALL_KEYS
        if start is not None and start > key:
            key = start
        pinned = revision or 0
        limit = page_size
        while True:
            request = rpc_pb2.RangeRequest(
                key=key, range_end=range_end, limit=limit, revision=pinned, keys_only=keys_only
            )
            try:
                resp = self._range(request, "range")
            except EtcdResponseTooLargeError:
                if limit == 1:
                    raise
                limit = max(1, limit // 2)
                log.debug("etcd page too large; retrying with limit %d", limit)
                continue
            if not pinned:
                pinned = int(resp.header.revision)
            if resp.kvs:
                page = [_to_kv(kv) for kv in resp.kvs]
                yield page
                key = next_key(page[-1].key)
            if not resp.more or not resp.kvs:
                return

    def scan(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
    ) -> Iterator[Sequence[KeyValue]]:
        """Every key under ``prefix`` at one revision, in key order (the interface's scan).

        Read by :func:`secretkit.etcd.pages.linear_pages` over :meth:`range_raw`:
        guessed, bounded ranges of about 6 MiB each, whose items are etcd's
        ``mvccpb.KeyValue`` messages as received (never format them). The whole
        keyspace (``prefix`` empty) is paged by ``limit`` (:meth:`range_pages`).
        """
        if not prefix:
            return self.range_pages(
                prefix, revision=revision, page_size=page_size, keys_only=keys_only
            )
        return linear_pages(
            self.range_raw, prefix, revision=revision, page_size=page_size, keys_only=keys_only
        )

    # -- watches ----------------------------------------------------------------------

    def watch(
        self,
        ranges: Sequence[WatchRange],
        *,
        prev_kv: bool = False,
        progress_notify: bool = True,
    ) -> WatchStream:
        """One Watch stream to the current endpoint, with a watch per range.

        Iterate the returned :class:`~secretkit.etcd.watch.WatchStream` for batches of
        events; close it from any thread. The stream asks etcd to end it when its
        member loses the raft leader (a partitioned member would otherwise stay
        silent), and a lost connection moves this client to the next endpoint, so
        watching again from the last revision processed resumes elsewhere.
        """
        conn = self._connection()

        def opener(requests: Iterator[rpc_pb2.WatchRequest]) -> Any:
            metadata = [*(self._metadata(conn) or []), ("hasleader", "true")]
            return conn.watch.Watch(requests, metadata=metadata)

        return WatchStream(
            opener,
            ranges,
            endpoint=conn.endpoint,
            prev_kv=prev_kv,
            progress_notify=progress_notify,
            on_unavailable=lambda: self._rotate(conn),
            on_unauthenticated=lambda: setattr(conn, "token", None),
        )

    # -- writes -----------------------------------------------------------------------

    def put(self, key: bytes, value: bytes) -> int:
        """Write ``value`` unconditionally; return the new revision."""
        timeout = self._config.timeout
        request = rpc_pb2.PutRequest(key=key, value=value)
        resp = self._call("put", lambda c, md: c.kv.Put(request, timeout=timeout, metadata=md))
        return int(resp.header.revision)

    def _txn(
        self, request: rpc_pb2.TxnRequest, operation: str, *, read_only: bool = False
    ) -> rpc_pb2.TxnResponse:
        timeout = self._config.timeout
        resp: rpc_pb2.TxnResponse = self._call(
            operation,
            lambda c, md: c.kv.Txn(request, timeout=timeout, metadata=md),
            read_only=read_only,
        )
        return resp

    @staticmethod
    def _guard(key: bytes, mod_revision: int) -> rpc_pb2.Compare:
        if mod_revision == 0:
            # "must not exist": a missing key has create_revision 0
            return rpc_pb2.Compare(
                key=key,
                target=rpc_pb2.Compare.CREATE,
                result=rpc_pb2.Compare.EQUAL,
                create_revision=0,
            )
        return rpc_pb2.Compare(
            key=key,
            target=rpc_pb2.Compare.MOD,
            result=rpc_pb2.Compare.EQUAL,
            mod_revision=mod_revision,
        )

    def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
        """Write ``value`` only if the key's mod_revision is ``mod_revision`` (0: must not exist).

        Returns False (and writes nothing) when the key changed in between.
        """
        return self.put_if(key, value, mod_revision=mod_revision) > 0

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        """Write every ``(key, value, mod_revision)`` in one transaction, or none of them.

        One raft round trip instead of one per key (etcd allows ``--max-txn-ops``,
        default 128, per transaction). False when any key changed: nothing was written
        and the caller retries key by key, so a concurrent writer still wins.
        """
        return not items or self.put_if_many(items) > 0

    def put_if(self, key: bytes, value: bytes, *, mod_revision: int, lease: int = 0) -> int:
        """Like :meth:`compare_and_swap`, but return the write's revision (0: not written).

        The revision comes from the transaction's own header, so it is exactly the new
        mod_revision of ``key`` (an apiserver's resourceVersion) with no extra read.
        ``lease`` attaches the key to an etcd lease (:meth:`grant_lease`).
        """
        if mod_revision < 0:
            raise ValueError("mod_revision must be >= 0")
        put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value,
                                                               lease=lease))
        request = rpc_pb2.TxnRequest(compare=[self._guard(key, mod_revision)], success=[put])
        resp = self._txn(request, "compare-and-swap")
        return int(resp.header.revision) if resp.succeeded else 0

    def put_if_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> int:
        """Like :meth:`compare_and_swap_many`, but return the write's revision (0: none).

        Every key is written at the one returned revision, or none is.
        """
        if not items:
            raise ValueError("put_if_many needs at least one item")
        if len(items) > MAX_TXN_OPS:
            raise ValueError(f"a batch write takes at most {MAX_TXN_OPS} items")
        if any(mod_revision < 0 for _, _, mod_revision in items):
            raise ValueError("mod_revision must be >= 0")
        request = rpc_pb2.TxnRequest(
            compare=[self._guard(key, mod_revision) for key, _, mod_revision in items],
            success=[
                rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))
                for key, value, _ in items
            ],
        )
        resp = self._txn(request, "compare-and-swap (batch)")
        return int(resp.header.revision) if resp.succeeded else 0

    def grant_lease(self, ttl: int) -> int:
        """Grant an etcd lease of ``ttl`` seconds; return its ID (keys put with it expire)."""
        timeout = self._config.timeout
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl)
        resp = self._call(
            "lease grant", lambda c, md: c.lease.LeaseGrant(request, timeout=timeout, metadata=md)
        )
        if resp.error:
            raise EtcdError(f"etcd refused a lease: {resp.error}", where=self.endpoint)
        return int(resp.ID)

    def delete(self, key: bytes, *, mod_revision: int | None = None) -> bool:
        """Delete one key (only at ``mod_revision`` when given); True when a key was deleted."""
        timeout = self._config.timeout
        delete = rpc_pb2.DeleteRangeRequest(key=key)
        if mod_revision is None:
            resp = self._call(
                "delete", lambda c, md: c.kv.DeleteRange(delete, timeout=timeout, metadata=md)
            )
            return bool(resp.deleted > 0)
        if mod_revision <= 0:
            raise ValueError("mod_revision must be > 0 for a guarded delete")
        request = rpc_pb2.TxnRequest(
            compare=[self._guard(key, mod_revision)],
            success=[rpc_pb2.RequestOp(request_delete_range=delete)],
        )
        resp_txn = self._txn(request, "delete")
        if not resp_txn.succeeded:
            return False
        return any(r.response_delete_range.deleted > 0 for r in resp_txn.responses)

    def delete_prefix(self, prefix: bytes) -> int:
        """Delete every key under ``prefix`` (``b""``: the WHOLE keyspace); return the count."""
        timeout = self._config.timeout
        request = rpc_pb2.DeleteRangeRequest(
            key=prefix if prefix else ALL_KEYS, range_end=prefix_range_end(prefix)
        )
        resp = self._call(
            "delete-prefix", lambda c, md: c.kv.DeleteRange(request, timeout=timeout, metadata=md)
        )
        return int(resp.deleted)

    # -- maintenance ------------------------------------------------------------------

    def compact(self, revision: int, *, physical: bool = True) -> None:
        """Drop history older than ``revision`` (``physical``: wait until it is applied)."""
        timeout = self._config.timeout
        request = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        self._call(
            "compact",
            lambda c, md: c.kv.Compact(request, timeout=timeout, metadata=md),
            revision=revision,
        )

    def status(self) -> EtcdStatus:
        """``Maintenance.Status`` of the member behind the current endpoint."""
        timeout = self._config.timeout

        def invoke(c: _Connection, md: list[tuple[str, str]] | None) -> EtcdStatus:
            resp = c.maintenance.Status(rpc_pb2.StatusRequest(), timeout=timeout, metadata=md)
            return EtcdStatus(
                endpoint=c.endpoint,
                version=resp.version,
                db_size=int(resp.dbSize),
                db_size_in_use=int(resp.dbSizeInUse),
                leader=int(resp.leader),
                member_id=int(resp.header.member_id),
                cluster_id=int(resp.header.cluster_id),
                revision=int(resp.header.revision),
                raft_index=int(resp.raftIndex),
                raft_term=int(resp.raftTerm),
                is_learner=bool(resp.isLearner),
                errors=tuple(resp.errors),
            )

        return self._call("status", invoke, read_only=True)

    def snapshot(self, dest: Path, *, timeout: float = 600.0) -> None:
        """Stream a full backend snapshot into ``dest``, 0600 and atomically.

        Written through :func:`secretkit.fileio.open_private` (temp file, fsync,
        rename); a retry on another endpoint starts a new file. The snapshot holds
        every key, Secrets included: treat the file like the etcd data directory.
        """
        dest = Path(dest)

        def invoke(c: _Connection, md: list[tuple[str, str]] | None) -> int:
            written = 0
            remaining: int | None = None
            with open_private(dest) as out:
                stream = c.maintenance.Snapshot(
                    rpc_pb2.SnapshotRequest(), timeout=timeout, metadata=md
                )
                for chunk in stream:
                    out.write(chunk.blob)
                    written += len(chunk.blob)
                    remaining = int(chunk.remaining_bytes)
                if written == 0 or remaining not in (0, None):
                    raise EtcdError(
                        "the etcd snapshot stream ended early",
                        where=c.endpoint,
                        hint="retry; check etcd's log for snapshot errors",
                    )
            return written

        size = self._call("snapshot", invoke)
        log.info("etcd snapshot written: %s (%d bytes)", dest, size)
