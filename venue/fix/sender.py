"""Sending rendered FIX messages off the sequencer's loop, in order per session.

quickfix's `Session.send` is the most expensive step of an acknowledgement: about 70 µs
a message on this machine, most of it the FileStore writing and flushing the message
(and the sequence number) so that a resend can serve it, against 13 µs with persistence
off. Done on the loop thread it serializes every session's sends behind the sequencer.
So the loop only renders (a few µs) and posts; sender threads ("lanes") do the sends. A
session always uses the same lane, so its messages go out in the order the loop posted
them; with several lanes, different sessions' I/O runs in parallel (the FileStore and
socket writes release the GIL).

The venue runs one lane unless configured otherwise (`venue.send_threads`): each lane is
one more thread to wake per batch and one more contender for the interpreter lock, and
parallel I/O pays only with cores to spare. Measured on this project's 2-core machine
(bench/fix_e2e.py's load, 4 sessions, 5,000 orders/s, four runs each): trading, ack p99
7.1-10.1 ms with one lane against 9.9-18.2 ms with four, the venue at 96-97% of a core
against 102-104%; resting, p99 2.4-3.7 ms against 1.8-5.2 ms; the most orders/s, resting,
15,831-16,161 against 16,242-16,437 (two runs each).

Durability is unchanged: messages are posted only for events already journaled.
`close()` sends everything posted before it returns, so a venue that stops still stores
its last reports (cancel-on-disconnect ones included) for resend.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

import quickfix as fix

log = logging.getLogger(__name__)

Item = tuple[fix.Session, str]


def to_message(raw: str, dd: fix.DataDictionary) -> fix.Message:
    """Parse a rendered message; only messages with repeating groups need the dictionary
    (W, X, y have NoMDEntries 268 or NoRelatedSym 146), and parsing without it is cheaper."""
    return fix.Message(raw, dd, False) if "\x01268=" in raw or "\x01146=" in raw else fix.Message(raw, False)


class SendLanes:
    def __init__(self, dd: fix.DataDictionary, lanes: int, name: str = "fix-send") -> None:
        self.dd = dd
        self.queues: list[queue.SimpleQueue[Sequence[Item] | None]] = [queue.SimpleQueue() for _ in range(max(1, lanes))]
        self.threads = [threading.Thread(target=self._run, args=(q,), name=f"{name}-{i}", daemon=True) for i, q in enumerate(self.queues)]
        self._next = 0

    def lane(self) -> int:
        """A lane for a new session (round robin)."""
        n = self._next % len(self.queues)
        self._next += 1
        return n

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def post(self, lane: int, items: Sequence[Item]) -> None:
        """Queue messages for sending, in order (from any thread)."""
        self.queues[lane].put(items)

    def close(self, timeout: float) -> None:
        """Send what is queued, then stop the lanes."""
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            if t.is_alive():
                t.join(timeout)

    def _run(self, q: queue.SimpleQueue[Sequence[Item] | None]) -> None:
        dd = self.dd
        while True:
            items = q.get()
            if items is None:
                return
            for session, raw in items:
                try:
                    session.send(to_message(raw, dd))
                except Exception:  # never lose the lane: the next message may be fine
                    log.exception("could not send %r", raw)
