"""Every value etcd still holds under a prefix: live ones, older revisions, deleted keys.

A value stays in etcd until compaction removes it, whether or not its key still
exists: an object deleted yesterday still has its older revisions on disk (and in
every snapshot taken since). A safety gate must judge all of them, so this reader
does not start from the live keys (as :class:`~.history.HistoryWalk` does) but from
etcd's history itself:

1. the live values, at a pinned revision ``R``;
2. the compaction point ``C``: the oldest revision etcd still answers reads at, found
   by bisection (a read below it is refused as compacted);
3. the keyspace as of ``C`` (values written before ``C`` that were still current then);
4. every change after ``C`` up to ``R``, replayed by watches (one per segment of
   1,000 revisions, so etcd serves them all in one round: see ``_changes``).

The watches cover the whole keyspace and filter by prefix, because that is what makes
their end certain: each revision was made by some write, so a watch of every key sees
an event at the last revision of its segment (etcd 3.5's answers to progress
requests can come before the events they should follow, so they cannot be trusted to
say "done"). Any error, a compaction racing the read, or a watch that stalls, raises:
callers fail closed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from secretkit.errors import EtcdError
from secretkit.etcd.errors import EtcdCompactedError
from secretkit.etcd.interface import KeyValue, WatchableReader
from secretkit.etcd.model import WatchRange

#: a watch that delivers nothing for this long is given up on (the read fails closed)
STALL_SECONDS = 60.0

#: revisions per watch of the replay (etcd sends a catching-up watch 1,000 per round)
SEGMENT = 1000
#: watches per stream: etcd serves at most 512 catching-up watches per round
WAVE = 256

#: mvccpb.Event.EventType.PUT
_PUT = 0


@dataclass(frozen=True, slots=True)
class Retained:
    """One value etcd holds: the key-value, and whether it is the live one."""

    kv: KeyValue = field(repr=False)  # its value is a stored object
    historic: bool


class RetainedValues:
    """Reads every retained value under ``prefix`` (see the module docstring)."""

    def __init__(self, client: WatchableReader, prefix: bytes, *, page_size: int = 1000) -> None:
        self._client = client
        self._prefix = prefix
        self._page_size = page_size
        #: the pinned revision of the live read (set once it started)
        self.revision: int | None = None
        #: etcd's compaction point (0: never compacted)
        self.compacted_at = 0
        self.live = 0
        self.historic = 0
        self.stall_seconds = STALL_SECONDS

    def pages(self) -> Iterator[Sequence[Retained]]:
        """Pages of live values first, then pages of every older one."""
        # (key, mod_revision) of every value yielded: a value is one revision of one
        # key, however many reads see it
        held: set[tuple[bytes, int]] = set()
        self.revision = revision = int(self._client.current_revision())
        for page in self._client.scan(self._prefix, revision=revision, page_size=self._page_size):
            out = []
            for kv in page:
                held.add((bytes(kv.key), kv.mod_revision))
                out.append(Retained(kv, False))
            self.live += len(out)
            yield out
        if revision <= 1:
            return  # an empty store: no history
        start = self._compaction_point()
        older: Iterator[Sequence[KeyValue]] = self._changes(start + 1, revision)
        if 1 < start < revision:
            # what was current at the compaction point is still held
            at_start = self._client.scan(self._prefix, revision=start, page_size=self._page_size)
            older = itertools.chain(at_start, older)
        for batch in older:
            out = []
            for kv in batch:
                ident = (bytes(kv.key), kv.mod_revision)
                if ident not in held:
                    held.add(ident)
                    out.append(Retained(kv, True))
            self.historic += len(out)
            if out:
                yield out

    def _compaction_point(self) -> int:
        """The oldest revision etcd still reads (1 when it never compacted)."""
        assert self.revision is not None
        low, high = 1, self.revision
        while low < high:
            middle = (low + high) // 2
            try:
                self._client.get(self._prefix, revision=middle)
            except EtcdCompactedError:
                low = middle + 1
            else:
                high = middle
        self.compacted_at = low if low > 1 else 0
        return low

    def _changes(self, start: int, end: int) -> Iterator[list[KeyValue]]:
        """Values PUT under the prefix in revisions ``start..end`` (watch replay).

        etcd serves a watch that is catching up at most 1,000 revisions per round
        (every 100 ms), and each round reads everything not sent yet: one watch over
        n revisions costs n²/1,000 revisions read (227 s for 400,000 revisions of
        2 KB). So each segment of :data:`SEGMENT` revisions gets its own watch on one
        stream: etcd serves up to 512 of them in the same round, from one read.
        """
        for wave in range(start, end + 1, SEGMENT * WAVE):
            yield from self._replay(wave, min(wave + SEGMENT * WAVE - 1, end))

    def _replay(self, start: int, end: int) -> Iterator[list[KeyValue]]:
        """One stream, one watch per segment of ``start..end``; ends when all are read."""
        prefix = self._prefix
        starts = list(range(start, end + 1, SEGMENT))
        # the last revision each watch is responsible for (the next one reads on)
        last_of = [s - 1 for s in starts[1:]] + [end]
        unfinished = set(range(len(starts)))
        stream = self._client.watch(
            [WatchRange(b"\0", b"\0", s) for s in starts], progress_notify=False
        )
        watchdog = _Watchdog(stream.close, self.stall_seconds)
        try:
            for batch in stream:
                index = batch.watch
                if index is None or index not in unfinished:
                    # a notice, or a finished segment's watch passing on live writes:
                    # not progress (on a busy cluster it would hide a stalled segment)
                    continue
                if batch.events:
                    watchdog.feed()
                found = []
                last = 0
                for event in batch.events:
                    kv = event.kv
                    revision = int(kv.mod_revision)
                    last = max(last, revision)
                    if revision > last_of[index]:
                        continue
                    if event.type == _PUT and bytes(kv.key).startswith(prefix):
                        found.append(kv)
                if found:
                    yield found
                # every revision was made by some write, so a watch of every key sees
                # an event at the last revision of its segment
                if last >= last_of[index]:
                    unfinished.discard(index)
                    if not unfinished:
                        return
        finally:
            watchdog.stop()
            stream.close()
        raise EtcdError(
            f"etcd's history could not be read up to revision {end}",
            hint="the watch replay stalled or ended early; run again, or pass "
            "--ignore-history to judge current values only",
        )


class _Watchdog:
    """Calls ``expire`` when :meth:`feed` was not called for ``seconds``."""

    def __init__(self, expire: Callable[[], None], seconds: float) -> None:
        self._expire = expire
        self._seconds = seconds
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.feed()

    def feed(self) -> None:
        """Start the countdown again."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def stop(self) -> None:
        """Cancel the countdown for good."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
