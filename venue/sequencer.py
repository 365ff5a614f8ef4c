"""The sequencer: the only writer of venue state, and the one place the pipeline is drawn.

Edges hand commands in (`submit` on the loop, `submit_threadsafe` from quickfix's
threads); one asyncio task takes them in batches and, for each batch:

    1. stamps each command: the next sequence number and UTC time in µs (never going back)
    2. runs the core (pre-trade risk, then matching): command -> [Event]
    3. journals the commands and makes the batch durable (group commit: one flush per batch)
    4. appends the book deltas the batch left (conflated per level)
    5. publishes the batch's events, in sequence order, to every subscriber

Step 2 runs before step 3 so that a command the core cannot process (a broken invariant,
which stops the venue) is never journaled and cannot poison a replay; nothing is published
before step 3, so no client hears of a command that is not durable.

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
from typing import Protocol

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

    def append(self, seq: int, ts: int, cmd: Command) -> None: ...

    def flush(self) -> None:
        """Make every appended record durable (blocking; run off the loop)."""


def utc_micros() -> int:
    return time.time_ns() // 1000


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
        """Process commands until stop(); raises if the core broke an invariant."""
        self._loop = asyncio.get_running_loop()
        loop = self._loop
        while self.failed is None:  # fail-stop: nothing runs on the state a broken invariant left
            if not self._pending:
                if self._stopping:
                    break
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            await self._process_batch(loop)
            await asyncio.sleep(0)  # let the edges hand in more before the next batch
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        while self._pending:  # only after a failure: never applied, never journaled, never answered
            cmd, fut = self._pending.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(f"sequencer stopped on a core failure before {cmd!r}"))
        if self.failed is not None:
            raise self.failed

    def stop(self) -> None:
        """Finish what is queued, then end run()."""
        self._stopping = True
        self._wake()

    async def _process_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        pending, core, journal = self._pending, self.core, self.journal
        n = min(len(pending), self.max_batch)
        events: list[Event] = []
        waiters: list[tuple[asyncio.Future[list[Event]], list[Event]]] = []
        stamped: list[tuple[int, int, Command]] = []
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
            except Exception as exc:  # a broken invariant: stop rather than trade on bad state
                log.critical("core failed on seq %d %r; stopping the venue", seq, cmd, exc_info=True)
                self.failed = exc
                self._stopping = True
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                seq -= 1
                break
            stamped.append((seq, ts, cmd))
            events.extend(out)
            if fut is not None:
                waiters.append((fut, out))
        self.next_seq, self.last_ts = seq + 1, ts
        # 3. journal, one flush for the batch
        if journal is not None and stamped:
            for s, t, c in stamped:
                journal.append(s, t, c)
            await loop.run_in_executor(None, journal.flush)
        # 4. book deltas
        events.extend(core.drain_book_deltas(seq, ts))
        # 5. publish
        if events:
            for sub in self.subscribers:
                try:
                    sub(events)
                except Exception:
                    log.exception("subscriber %r failed on a batch ending at seq %d", sub, seq)
        for fut, out in waiters:
            if not fut.done():
                fut.set_result(out)
        self._schedule_expiry(loop)

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
