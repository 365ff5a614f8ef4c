"""The sequencer: the only writer of venue state, and the one place the pipeline is drawn.

Edges hand commands in (`submit` on the loop, `submit_threadsafe` from quickfix's
threads); one asyncio task takes them in batches and, for each batch:

    1. stamps each command: the next sequence number and UTC time in µs (never going back)
    2. runs the core (pre-trade risk, then matching): command -> [Event]
    3. journals the commands and makes the batch durable (group commit: one write and one
       sync per batch, on a dedicated journal thread)
    4. appends the book deltas the batch left (conflated per level)
    5. publishes the batch's events, in sequence order, to every subscriber, once its
       journal write has completed

Step 2 runs before step 3 so that a command the core cannot process (a broken invariant,
which stops the venue) is never journaled and cannot poison a replay; nothing is published
before its step 3 completes, so no client hears of a command that is not durable. While
one batch is being written the loop already runs the next through the core (at most
MAX_INFLIGHT batches ahead), so the sync costs latency, not throughput; batches are
written and published strictly in order.

Subscribers are called on the loop thread with the whole batch and must not block: the
gateway renders and sends, drop copy and the ledger queue for their own writers. A
subscriber that raises is logged and kept; matching never waits for a consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

from venue.commands import Command, ExpireOrders
from venue.events import BookDelta, Event

log = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[Event]], None]


class Core(Protocol):
    """What the sequencer drives: the matching engine, or risk wrapped around it."""

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]: ...

    def next_expiry(self) -> int | None: ...

    def drain_book_deltas(self, seq: int, ts: int) -> list[BookDelta]: ...


class Journal(Protocol):
    """The durable command log (venue/journal.py)."""

    def append(self, seq: int, ts: int, cmd: Command) -> None:
        """Queue a stamped command (loop thread, no I/O)."""

    def take(self) -> Any:
        """Hand over everything appended so far (loop thread)."""

    def write(self, taken: Any) -> None:
        """Make what take() handed over durable: blocking, on the journal thread, in order."""


def utc_micros() -> int:
    return time.time_ns() // 1000


MAX_INFLIGHT = 2  # batches processed ahead of their journal write: one writing, one next


class _Batch(NamedTuple):
    seq: int  # the last command's
    events: list[Event]
    waiters: list[tuple[asyncio.Future[list[Event]], list[Event]]]
    durable: asyncio.Future[None] | None  # the journal write; None without a journal


class Sequencer:
    def __init__(
        self,
        core: Core,
        *,
        journal: Journal | None = None,
        subscribers: Iterable[Subscriber] = (),
        clock: Callable[[], int] = utc_micros,
        next_seq: int = 1,
        last_ts: int = 0,
        max_batch: int = 512,
    ) -> None:
        self.core = core
        self.journal = journal
        self.subscribers: list[Subscriber] = list(subscribers)
        self.clock = clock
        self.next_seq = next_seq
        self.last_ts = last_ts
        self.max_batch = max_batch
        self.failed: BaseException | None = None
        self.durable_seq = next_seq - 1  # the last seq the journal has made durable (and published)
        self._pending: deque[tuple[Command, asyncio.Future[list[Event]] | None]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._closed = False  # run() has ended: nothing more is taken
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at: int | None = None

    # ------------------------------------------------------------------ hand-off

    def submit(self, cmd: Command) -> None:
        """Queue a command (on the loop thread)."""
        self._check_open()
        self._pending.append((cmd, None))
        self._wake()

    def submit_threadsafe(self, cmd: Command) -> None:
        """Queue a command from another thread (a quickfix callback)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("sequencer is not running")
        loop.call_soon_threadsafe(self.submit, cmd)

    async def call(self, cmd: Command) -> list[Event]:
        """Submit and wait for the command's own events, once they are durable and published
        (for the operator channel and tests)."""
        self._check_open()
        fut: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._pending.append((cmd, fut))
        self._wake()
        return await fut

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("sequencer is not running" if self.failed is None else f"sequencer stopped on a core failure: {self.failed!r}")

    def _wake(self) -> None:
        w = self._wakeup
        if w is not None and not w.done():
            w.set_result(None)

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """Process commands until stop(); raises if the core broke an invariant or the
        journal could not be written."""
        self._loop = loop = asyncio.get_running_loop()
        writer = ThreadPoolExecutor(1, thread_name_prefix="journal") if self.journal is not None else None
        inflight: deque[_Batch] = deque()  # processed, in journal order, not yet published
        try:
            while True:
                if self._pending and self.failed is None and len(inflight) < MAX_INFLIGHT:
                    inflight.append(self._process_batch(loop, writer))
                    self._publish_durable(inflight)
                    await asyncio.sleep(0)  # let the edges hand in more before the next batch
                    continue
                if inflight:  # wait for the oldest write, or for commands to run meanwhile
                    durable = inflight[0].durable
                    if durable is not None and not durable.done():
                        waits: list[asyncio.Future[Any]] = [durable]
                        if self.failed is None and len(inflight) < MAX_INFLIGHT:
                            waits.append(self._new_wakeup(loop))
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                        self._wakeup = None
                    self._publish_durable(inflight)
                    continue
                if self._stopping or self.failed is not None:
                    break
                await self._new_wakeup(loop)
                self._wakeup = None
        finally:
            self._closed = True
            if writer is not None:
                writer.shutdown(wait=True)
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        while self._pending:  # only after a failure: never applied, never journaled, never answered
            cmd, fut = self._pending.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(f"sequencer stopped on a failure before {cmd!r}"))
        if self.failed is not None:
            raise self.failed

    def stop(self) -> None:
        """Finish what is queued, then end run()."""
        self._stopping = True
        self._wake()

    def _new_wakeup(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        self._wakeup = loop.create_future()
        return self._wakeup

    def _process_batch(self, loop: asyncio.AbstractEventLoop, writer: ThreadPoolExecutor | None) -> _Batch:
        """Steps 1-4 for up to max_batch queued commands; step 3's write runs on the journal
        thread while the loop goes on to the next batch."""
        pending, core, journal = self._pending, self.core, self.journal
        n = min(len(pending), self.max_batch)
        events: list[Event] = []
        waiters: list[tuple[asyncio.Future[list[Event]], list[Event]]] = []
        seq, ts = self.next_seq - 1, self.last_ts
        for _ in range(n):
            cmd, fut = pending.popleft()
            # 1. stamp
            seq += 1
            now = self.clock()
            ts = now if now > ts else ts
            # 2. core: risk, then matching
            try:
                out = core.apply(seq, ts, cmd)
                if journal is not None:
                    journal.append(seq, ts, cmd)
            except Exception as exc:  # a broken invariant (or an unjournalable command): stop rather than go on
                log.critical("core or journal failed on seq %d %r; stopping the venue", seq, cmd, exc_info=True)
                self.failed = exc
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                seq -= 1
                break
            events.extend(out)
            if fut is not None:
                waiters.append((fut, out))
        self.next_seq, self.last_ts = seq + 1, ts
        # 3. journal: one write and one sync for the batch, on the journal thread
        durable = None
        if journal is not None and writer is not None:
            durable = loop.run_in_executor(writer, journal.write, journal.take())
        # 4. book deltas
        events.extend(core.drain_book_deltas(seq, ts))
        self._schedule_expiry(loop)
        return _Batch(seq, events, waiters, durable)

    def _publish_durable(self, inflight: deque[_Batch]) -> None:
        """5. publish, in order, every batch at the head whose write has completed. A failed
        write stops the venue: what it held is not durable, so nobody hears of it."""
        while inflight:
            batch = inflight[0]
            if batch.durable is not None:
                if not batch.durable.done():
                    return
                exc = batch.durable.exception()
                if exc is not None:
                    if self.failed is None:
                        log.critical("journal write failed for the batch ending at seq %d; stopping the venue", batch.seq, exc_info=exc)
                        self.failed = exc
                    for fut, _ in batch.waiters:
                        if not fut.done():
                            fut.set_exception(exc)
                    inflight.popleft()
                    continue
            inflight.popleft()
            self.durable_seq = batch.seq
            if batch.events:
                for sub in self.subscribers:
                    try:
                        sub(batch.events)
                    except Exception:
                        log.exception("subscriber %r failed on a batch ending at seq %d", sub, batch.seq)
            for fut, out in batch.waiters:
                if not fut.done():
                    fut.set_result(out)

    def _schedule_expiry(self, loop: asyncio.AbstractEventLoop) -> None:
        due = self.core.next_expiry()
        if due == self._expiry_at:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_at = due
        self._expiry_timer = None
        if due is not None:
            delay = max(0.0, (due - self.clock()) / 1e6)
            self._expiry_timer = loop.call_later(delay, self._expire_due)

    def _expire_due(self) -> None:
        self._expiry_timer = None
        self._expiry_at = None
        self.submit(ExpireOrders())
