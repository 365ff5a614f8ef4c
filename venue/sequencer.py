"""The sequencer: the only writer of venue state, and the one place the pipeline is drawn.

Edges hand commands in (`submit` on the loop, `submit_threadsafe` from quickfix's
threads); one asyncio task takes them in batches and, for each batch:

    1. stamps each command: the next sequence number and UTC time in µs (never going back)
    2. runs the core (pre-trade risk, then matching): command -> [Event]
    3. journals the commands and makes the batch durable (group commit: one synced write
       per batch, or for all the batches that queued during the last one, on the journal
       thread: venue/journal_writer.py; a journal that does not sync, or a quiet spell's
       lone batch while that thread is idle, is written right here)
    4. appends the book deltas the batch left (conflated per level)
    5. publishes the batch's events, in sequence order, to every subscriber, once its
       journal write has completed

The trading day ends at 00:00 UTC. The first command stamped at or past that moment
is preceded by an EndOfDay, sequenced and journaled like any command (DAY orders expire,
the ClOrdIDs of done orders are forgotten); a timer submits one at the moment itself, so a
quiet venue rolls on time too, and one that finds the roll already made is dropped. A
venue restarted after a midnight it was down for rolls as it starts.

Step 2 runs before step 3 so that a command the core cannot process (a broken invariant,
which stops the venue) is never journaled and cannot poison a replay; nothing is published
before its step 3 completes, so no client hears of a command that is not durable. While
one write is under way the loop goes on running batches through the core (up to
`max_unpublished` commands ahead of the journal), so the sync costs latency, not
throughput; batches are written and published strictly in order.

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
from typing import Any, NamedTuple, Protocol

from venue.commands import Command, EndOfDay, ExpireOrders
from venue.events import BookDelta, Event
from venue.journal_writer import JournalWriter

log = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[Event]], None]


class Core(Protocol):
    """What the sequencer drives: the matching engine, or risk wrapped around it."""

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]: ...

    def next_expiry(self) -> int | None: ...

    def drain_book_deltas(self, seq: int, ts: int) -> list[BookDelta]: ...


class Journal(Protocol):
    """The durable command log (venue/journal.py)."""

    syncs: bool  # whether write() waits for the disk: then it runs on the journal thread

    def append_batch(self, first_seq: int, stamps: Sequence[int], cmds: Sequence[Command]) -> None:
        """Queue stamped commands, seqs first_seq on (loop thread, no I/O): all, or none and raise."""

    def take(self) -> Any:
        """Hand over everything appended so far (loop thread)."""

    def write(self, taken: Sequence[Any]) -> None:
        """Make what take() handed over durable, several takes at once, in order: blocking,
        on the journal thread."""


DAY_US = 86_400_000_000


def utc_micros() -> int:
    return time.time_ns() // 1000


def day_end_after(ts: int) -> int:
    """The first 00:00 UTC after `ts` (µs): where the trading day of `ts` ends."""
    return (ts // DAY_US + 1) * DAY_US


class _Batch(NamedTuple):
    seq: int  # the last command's
    applied: int  # commands run through the core
    events: list[Event]
    waiters: list[tuple[asyncio.Future[list[Event]], list[Event]]]


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
        max_unpublished: int = 2048,
    ) -> None:
        self.core = core
        self.journal = journal
        self.subscribers: list[Subscriber] = list(subscribers)
        self.clock = clock
        self.next_seq = next_seq
        self.last_ts = last_ts
        self._day_end = day_end_after(last_ts) if last_ts else 0  # 0: set by the first stamp
        self._day_timer: asyncio.TimerHandle | None = None
        self._day_check = EndOfDay()  # what the timer submits: the roll if it is due, else nothing
        self.max_batch = max_batch
        # commands run through the core but not yet durable: how far the core may run ahead
        # of a slow sync (memory: their events wait), and so how big one write can get
        self.max_unpublished = max_unpublished
        self.failed: BaseException | None = None
        self.durable_seq = next_seq - 1  # the last seq the journal has made durable (and published)
        self._pending: deque[tuple[Command, asyncio.Future[list[Event]] | None]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._room = True  # whether run() takes a new command now (else a submit need not wake it)
        self._unpublished = 0  # commands in batches not yet published
        self._unsubmitted = 0  # commands framed in the journal, not yet handed to its thread
        self._framed_seq = next_seq - 1  # the last of them
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
        if self._room:
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
        if self._room:
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
        if self.last_ts:  # a restart: the day may have ended while the venue was down
            self._pending.append((self._day_check, None))
        writer = None
        if self.journal is not None and self.journal.syncs:
            writer = JournalWriter(self.journal, self.durable_seq, lambda: loop.call_soon_threadsafe(self._wake))
        inflight: deque[_Batch] = deque()  # processed, in journal order, not yet published
        try:
            while True:
                self._room = self.failed is None and self._unpublished < self.max_unpublished
                if self._pending and self._room:
                    batch = self._process_batch(loop, writer)
                    if batch is not None:
                        inflight.append(batch)
                    self._publish_durable(inflight, writer)
                    await asyncio.sleep(0)  # let the edges hand in more before the next batch
                    continue
                if inflight:  # the journal is behind: wait for a write (or for commands, if there is room)
                    assert writer is not None
                    if self._unsubmitted:
                        self._hand_over(writer)
                    writer.waiting = True
                    self._publish_durable(inflight, writer)  # after `waiting`: see JournalWriter._notify
                    if inflight:
                        await self._new_wakeup(loop)
                        self._wakeup = None
                    writer.waiting = False
                    continue
                if self._stopping or self.failed is not None:
                    break
                await self._new_wakeup(loop)
                self._wakeup = None
        finally:
            self._closed = True
            self._room = False
            if writer is not None:
                writer.close()
        for timer in (self._expiry_timer, self._day_timer):
            if timer is not None:
                timer.cancel()
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

    def _process_batch(self, loop: asyncio.AbstractEventLoop, writer: JournalWriter | None) -> _Batch | None:
        """Steps 1-4 for up to max_batch queued commands; step 3's write runs on the journal
        thread while the loop goes on to the next batch. None if the journal could not take
        or write the batch: then nothing of it is published, and the venue stops."""
        pending, core, journal = self._pending, self.core, self.journal
        n = min(len(pending), self.max_batch)
        events: list[Event] = []
        waiters: list[tuple[asyncio.Future[list[Event]], list[Event]]] = []
        stamps: list[int] = []
        applied: list[Command] = []
        first = self.next_seq
        seq, ts = first - 1, self.last_ts
        for _ in range(n):
            cmd, fut = pending.popleft()
            # 1. stamp
            now = self.clock()
            ts = now if now > ts else ts
            if ts >= self._day_end or cmd is self._day_check:
                rolled = self._day_roll(ts, cmd, fut)
                if rolled is None:
                    continue
                cmd, fut = rolled
            seq += 1
            # 2. core: risk, then matching
            try:
                out = core.apply(seq, ts, cmd)
            except Exception as exc:  # a broken invariant: stop rather than go on
                log.critical("core failed on seq %d %r; stopping the venue", seq, cmd, exc_info=True)
                self.failed = exc
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                seq -= 1
                break
            stamps.append(ts)
            applied.append(cmd)
            events.extend(out)
            if fut is not None:
                waiters.append((fut, out))
        self.next_seq, self.last_ts = seq + 1, ts
        # 3. journal: framed here; synced on the journal thread with what else queues meanwhile,
        # or, for a journal that does not sync, written here (a copy into the page cache: a
        # hand-off to the thread would cost more, and hold the batch's events longer)
        written = False
        if journal is not None and applied:
            try:
                journal.append_batch(first, stamps, applied)
                if writer is None or (not pending and writer.durable_seq == self._framed_seq):
                    # No sync to wait for, or the last batch of a quiet spell with the thread
                    # idle (all framed before it durable): writing here costs the loop the sync
                    # (the edges' threads run meanwhile: the write releases the GIL) instead of
                    # two interpreter-lock hand-offs to the thread and back, which on a busy
                    # machine cost more than the sync.
                    journal.write((journal.take(),))
                    written = True
            except Exception as exc:  # a command the journal cannot carry, or a failed write
                log.critical("journal failed on seqs %d-%d; stopping the venue", first, seq, exc_info=True)
                self.failed = exc
                for fut, _ in waiters:
                    if not fut.done():
                        fut.set_exception(exc)
                return None
            if writer is not None:
                self._framed_seq = seq
                if written:
                    writer.durable_seq = seq  # the thread is idle: it writes durable_seq only after a submit
                else:
                    self._unsubmitted += len(applied)
                    if self._unsubmitted >= self.max_unpublished // 4 or not self._pending:
                        self._hand_over(writer)
        # 4. book deltas
        events.extend(core.drain_book_deltas(seq, ts))
        self._schedule_expiry(loop)
        self._schedule_day_end(loop)
        self._unpublished += len(applied)
        return _Batch(seq, len(applied), events, waiters)

    def _hand_over(self, writer: JournalWriter) -> None:
        """Give the journal thread what was framed since the last hand-off. While commands
        keep coming this waits for a quarter of max_unpublished: each hand-off wakes that
        thread, which must then take the interpreter lock from the busy loop (the loop stalls
        until the OS runs it), so fewer, larger writes cost the loop less. Once the queue is
        empty, or the loop would wait on the journal, it hands over at once."""
        assert self.journal is not None
        writer.submit(self._framed_seq, self.journal.take())
        self._unsubmitted = 0

    def _publish_durable(self, inflight: deque[_Batch], writer: JournalWriter | None) -> None:
        """5. publish, in order, every batch at the head whose write has completed. A failed
        write stops the venue: what it held is not durable, so nobody hears of it."""
        durable = writer.durable_seq if writer is not None else self.next_seq - 1
        while inflight and inflight[0].seq <= durable:
            batch = inflight.popleft()
            self._unpublished -= batch.applied
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
        exc = writer.error if writer is not None else None
        if exc is not None and inflight:
            if self.failed is None:
                log.critical("journal write failed after seq %d; stopping the venue", durable, exc_info=exc)
                self.failed = exc
            while inflight:
                batch = inflight.popleft()
                self._unpublished -= batch.applied
                for fut, _ in batch.waiters:
                    if not fut.done():
                        fut.set_exception(exc)

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

    def _day_roll(self, ts: int, cmd: Command, fut: asyncio.Future[list[Event]] | None) -> tuple[Command, asyncio.Future[list[Event]] | None] | None:
        """A command stamped `ts` at or past the day's end, or the timer's check: what to
        apply now. Past the end, an EndOfDay (the command waits at the head of the queue
        until it has run; an EndOfDay itself is the roll); the check before the end (the
        roll already made, or a timer early) is dropped: None. The first stamp of a fresh
        venue only sets the day's end. An EndOfDay submitted before the end runs as given."""
        if not self._day_end:
            self._day_end = day_end_after(ts)
        elif ts >= self._day_end:
            self._day_end = day_end_after(ts)
            if type(cmd) is EndOfDay:
                return cmd, fut
            self._pending.appendleft((cmd, fut))
            return EndOfDay(), None
        return None if cmd is self._day_check else (cmd, fut)

    def _schedule_day_end(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the timer for the day's end, counted from the last stamp (a batch just ran, so
        that is now). A timer still armed for a day a command already rolled fires a check
        that is dropped, and the batch after it arms the timer for the next day."""
        if self._day_end and self._day_timer is None:
            self._day_timer = loop.call_later(max(0.0, (self._day_end - self.last_ts) / 1e6), self._day_end_due)

    def _day_end_due(self) -> None:
        self._day_timer = None
        self.submit(self._day_check)

    def _expire_due(self) -> None:
        self._expiry_timer = None
        self._expiry_at = None
        self.submit(ExpireOrders())
