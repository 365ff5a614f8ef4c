"""Sending rendered FIX messages off the sequencer's loop, in order per session, with no
session able to hold up another's.

quickfix's `Session.send` is the most expensive step of an acknowledgement: about 70 µs
a message on this machine, most of it the FileStore writing and flushing the message
(and the sequence number) so that a resend can serve it, against 13 µs with persistence
off. Done on the loop thread it serializes every session's sends behind the sequencer.
So the loop only renders (a few µs) and posts to the session's `Outbox`; sender threads
do the sends.

Order and fairness. An outbox with messages waiting is in the ready queue once; a sender
thread takes it, sends what it holds, and puts it back at the end of the queue if more
came meanwhile. So a session's messages leave in the order they were posted, from one
thread at a time, and sessions take turns.

A client that stops reading. quickfix's send blocks once the client's socket buffers are
full, and it stays blocked for as long as the client keeps its connection open. The
thread sending to it is then lost to the others, so a watchdog starts another thread
when every sender has been inside one send for `stuck_s` (up to one per session): the
other sessions go on, and the stuck session's messages wait in its outbox, in order,
until quickfix returns (the client reads again, or its connection drops).

The venue runs one sender thread unless configured otherwise (`venue.send_threads`):
each is one more thread to wake per batch and one more contender for the interpreter
lock, and parallel I/O pays only with cores to spare. Measured on this project's 2-core
machine (bench/fix_e2e.py's load, 4 sessions, 5,000 orders/s, four runs each, with four
threads each serving a fixed share of the sessions): trading, ack p99 7.1-10.1 ms with
one thread against 9.9-18.2 ms with four, the venue at 96-97% of a core against 102-104%;
resting, p99 2.4-3.7 ms against 1.8-5.2 ms; the most orders/s, resting, 15,831-16,161
against 16,242-16,437 (two runs each).

Durability is unchanged: messages are posted only for events already journaled.
`close()` sends everything posted before it returns (but for a session still stuck), so
a venue that stops still stores its last reports (cancel-on-disconnect ones included)
for resend.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable

import quickfix as fix

log = logging.getLogger(__name__)

STUCK_S = 1.0  # a send this long means the client is not reading: another thread takes the rest


def to_message(raw: str, dd: fix.DataDictionary) -> fix.Message:
    """Parse a rendered message; only messages with repeating groups need the dictionary
    (W, X, y have NoMDEntries 268 or NoRelatedSym 146), and parsing without it is cheaper."""
    return fix.Message(raw, dd, False) if "\x01268=" in raw or "\x01146=" in raw else fix.Message(raw, False)


class Outbox:
    """One session's messages not yet sent."""

    __slots__ = ("name", "session", "pending", "scheduled")

    def __init__(self, name: str, session: fix.Session) -> None:
        self.name = name
        self.session = session
        self.pending: list[str] = []
        self.scheduled = False  # in the ready queue, or being sent from


class _Busy:
    """What a sender thread is doing, for the watchdog: since when, for whom (None: idle)."""

    __slots__ = ("since", "outbox")

    def __init__(self) -> None:
        self.since = 0.0
        self.outbox: Outbox | None = None


class Sender:
    def __init__(self, dd: fix.DataDictionary, threads: int = 1, *, stuck_s: float = STUCK_S, name: str = "fix-send") -> None:
        self.dd = dd
        self.threads = max(1, threads)
        self.stuck_s = stuck_s
        self.name = name
        self.outboxes: list[Outbox] = []
        self._lock = threading.Lock()
        self._ready: queue.SimpleQueue[Outbox | None] = queue.SimpleQueue()
        self._workers: list[tuple[threading.Thread, _Busy]] = []
        self._closing = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=f"{name}-watchdog", daemon=True)

    def outbox(self, name: str, session: fix.Session) -> Outbox:
        """The outbox of a session (before start)."""
        box = Outbox(name, session)
        self.outboxes.append(box)
        return box

    def start(self) -> None:
        for _ in range(self.threads):
            self._add_worker()
        self._watchdog.start()

    def post(self, box: Outbox, raws: Iterable[str]) -> None:
        """Queue messages for a session, in order (from any thread)."""
        self.post_many({box: list(raws)})

    def post_many(self, batch: dict[Outbox, list[str]]) -> None:
        """`post` for several sessions at once (the loop, once per published batch)."""
        with self._lock:
            for box, raws in batch.items():
                box.pending.extend(raws)
                if box.pending and not box.scheduled:
                    box.scheduled = True
                    self._ready.put(box)

    def close(self, timeout: float) -> None:
        """Send what is queued, then stop. A thread that stays inside one send to a client that
        does not read is not waited for past stuck_s more (the venue closes its connections
        before this, which ends such a send: then the rest goes to quickfix's store, for
        resend); one that gets going again is, so that it never sends on a released session."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                stuck = self._stuck(time.monotonic())
                waiting = any(b.scheduled and b not in stuck for b in self.outboxes)
                workers = list(self._workers)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        for _ in workers:
            self._ready.put(None)
        for t, busy in workers:
            while t.is_alive() and (left := deadline - time.monotonic()) > 0:
                since = busy.since
                t.join(min(left, self.stuck_s))
                if t.is_alive() and busy.outbox is not None and busy.since == since and time.monotonic() - since >= self.stuck_s:
                    break  # still inside the send it was stuck in: not waited for
        self._watchdog.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ threads

    def _add_worker(self) -> None:
        busy = _Busy()
        t = threading.Thread(target=self._run, args=(busy,), name=f"{self.name}-{len(self._workers)}", daemon=True)
        self._workers.append((t, busy))
        t.start()

    def _run(self, busy: _Busy) -> None:
        ready, dd, lock = self._ready, self.dd, self._lock
        while True:
            box = ready.get()
            if box is None:
                return
            while box is not None:
                with lock:
                    raws, box.pending = box.pending, []
                session = box.session
                for raw in raws:
                    busy.since, busy.outbox = time.monotonic(), box
                    try:
                        session.send(to_message(raw, dd))
                    except Exception:  # never lose the thread: the next message may be fine
                        log.exception("could not send %r", raw)
                busy.outbox = None
                with lock:
                    if not box.pending:
                        box.scheduled = False
                        box = None
                    elif not self._closing.is_set():
                        ready.put(box)  # more came meanwhile: to the back of the queue, the others first
                        box = None
                    # closing: the stop tokens may be queued already, so this thread sends the rest

    def _stuck(self, now: float) -> list[Outbox]:
        """The outboxes whose sender has been inside one send for stuck_s or more (under the lock)."""
        return [box for _, b in self._workers if (box := b.outbox) is not None and now - b.since >= self.stuck_s]

    def _watch(self) -> None:
        """Start another sender when all of them are stuck."""
        while not self._closing.wait(self.stuck_s / 4):
            with self._lock:
                stuck = self._stuck(time.monotonic())
                if len(stuck) < len(self._workers) or len(self._workers) >= self.threads + len(self.outboxes):
                    continue
                self._add_worker()
            log.warning("sends to %s have blocked for %.1f s or more (not reading?): started sender thread %d",
                        ", ".join(sorted(b.name for b in stuck)), self.stuck_s, len(self._workers))

