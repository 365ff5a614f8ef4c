"""The ledger's intake and the threads that write it, in the drop-copy process
(venue/clearing/host.py): the follower hands over each batch its replica regenerates.

The intake runs on the follower's thread and only queues the batch's fills, deposits and
prices (the rest of the batch is left to die at once). Two threads do the work, a
pipeline of two stages so that Python and DuckDB overlap (DuckDB releases the GIL):

    follower ──batches──► prepare thread ──Prepared──► write thread ──► DuckDB file
                          (Ledger.prepare:             (Ledger.write: one
                           positions, Arrow)            transaction per ingest)

The prepare thread wakes once per COALESCE_S under load and takes every batch waiting (up to
MAX_COALESCE events) into one ingest: few, large transactions, and no thread woken per batch
(a woken thread takes the GIL from the thread handing over: waking one per batch alone cost
matching a third of its throughput in bench/ledger.py, which subscribes the writer to a
sequencer). With a backlog (the last ingest was full) it goes straight on: a sleep per
ingest idled the stage that bounds the ingest rate (50 ms per 20,000 events, 2.5 µs a trade).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from typing import Any, TypeVar

from venue.clearing.ledger import Ledger, Prepared
from venue.events import CollateralChanged, Event, Fill, IndexPriceSet, MarkPriceSet

log = logging.getLogger(__name__)

T = TypeVar("T")

# events per ingest at most: bounded transactions, and the two stages overlap. Each ingest
# costs DuckDB ~20 ms whatever its size (statements, the WAL sync): 20,000 events made that
# 1 µs a trade and DuckDB the slower stage (bench/ledger.py's day: ~170k trades/s; ~245k at 100,000)
MAX_COALESCE = 100_000
# Under load the prepare thread wakes this often (it sleeps, so batches handed over meanwhile
# wake no one); the ledger is this far behind the journal at most, plus one ingest.
COALESCE_S = 0.05


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Ledger], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


_STOP = object()
_KEPT = frozenset({Fill, CollateralChanged, IndexPriceSet, MarkPriceSet})  # what Ledger.prepare reads


class LedgerWriter:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.failed: BaseException | None = None
        self.trades = 0
        self._in: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._mid: queue.Queue[object] = queue.Queue(maxsize=4)
        self._prep = threading.Thread(target=self._prepare_loop, name="ledger-prepare", daemon=True)
        self._write = threading.Thread(target=self._write_loop, name="ledger-write", daemon=True)
        self._prep.start()
        self._write.start()

    def __call__(self, events: Sequence[Event]) -> None:
        """The intake (the thread that feeds events): hand over the events the ledger keeps.
        Only those: holding every ExecReport and BookDelta until the next ingest kept so many
        objects alive that Python's garbage collector cost the feeding thread a quarter of
        its throughput (bench/ledger.py, then in the venue process); filtering here costs
        ~40 ns an event."""
        kept = [ev for ev in events if type(ev) in _KEPT]
        if kept:
            self._in.put(kept)

    def submit(self, fn: Callable[[Ledger], T]) -> Future[T]:
        """Run fn(ledger) on the write thread after every batch already handed over."""
        job = _Job(fn)
        self._in.put(job)
        return job.future

    def flush(self, timeout: float) -> None:
        """Block until everything handed over so far is committed."""
        self.submit(lambda ledger: None).result(timeout)

    def close(self, timeout: float) -> None:
        """Write what is queued and the positions, stop both threads, close the file."""
        self._in.put(_STOP)
        self._prep.join(timeout)
        self._write.join(timeout)
        if self._write.is_alive():
            log.error("ledger writer did not stop within %.0f s; the file is closed when the process exits", timeout)
            return
        if self.failed is None:
            self.ledger.checkpoint()
        self.ledger.close()

    # ------------------------------------------------------------------ threads

    def _prepare_loop(self) -> None:
        backlog = False
        while True:
            item: object = self._in.get()
            if isinstance(item, list) and not backlog:
                # sleep rather than wait on the queue: a put then wakes no one, so the loop
                # thread hands over batches without a GIL handoff each time (not with a
                # backlog: those batches are waiting already)
                time.sleep(COALESCE_S)
            events: list[Event] = []
            while isinstance(item, list):
                events.extend(item)
                item = None
                if len(events) < MAX_COALESCE:
                    try:
                        item = self._in.get_nowait()
                    except queue.Empty:
                        pass
            backlog = len(events) >= MAX_COALESCE
            self._hand_on(events)
            if item is None:
                continue
            self._mid.put(item)
            if item is _STOP:
                return
            if isinstance(item, _Job):
                wait([item.future])  # a job sees the ledger still: no prepare runs beside it

    def _hand_on(self, events: list[Event]) -> None:
        if not events or self.failed is not None:
            return
        try:
            self._mid.put(self.ledger.prepare(events))
        except Exception as exc:  # noqa: BLE001 - any failure stops the ledger (logged critical); the venue goes on
            self._fail(exc)

    def _write_loop(self) -> None:
        while True:
            item = self._mid.get()
            if item is _STOP:
                return
            if isinstance(item, _Job):
                if not item.future.set_running_or_notify_cancel():
                    continue  # its caller gave up waiting (a timeout) before it started
                try:
                    item.future.set_result(item.fn(self.ledger))
                except BaseException as exc:  # noqa: BLE001 - the job's caller gets whatever it raised
                    item.future.set_exception(exc)
                continue
            assert isinstance(item, Prepared)
            if self.failed is not None:
                continue
            try:
                self.trades += self.ledger.write(item).trades
            except Exception as exc:  # noqa: BLE001 - as in _hand_on
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
            log.critical("clearing ledger stopped taking events: %s (the journal keeps them; restart to replay)", exc, exc_info=exc)
