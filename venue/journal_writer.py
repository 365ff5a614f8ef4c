"""The journal thread: makes the sequencer's batches durable, in order, off the loop.

The loop frames each batch's commands (Journal.append) and hands the batch over
(`submit`, one SimpleQueue.put); this thread writes everything that queued since its last
write with one Journal.write (one synced write). While a sync is under way the loop goes
on through the core and the batches it fills queue up: the next write carries them all
(group commit across batches), so a slow disk costs latency, not throughput.

The loop learns how far the journal is durable by reading `durable_seq` between batches,
with no hand-off at all; only when it has nothing left to do but wait for the journal
does it set `waiting`, and then each write that completes wakes it through `wake` (which
must be thread-safe: the sequencer passes loop.call_soon_threadsafe). A wake is thus one
per write while the loop waits, none while it is busy.

Fail-stop: the first write that raises is kept in `error` and nothing after it is
written; what was queued behind it is not durable and the sequencer stops the venue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Any, Protocol


class Writable(Protocol):
    def write(self, taken: Sequence[Any]) -> None:
        """Make the taken batches durable, in order (blocking; this thread only)."""


class JournalWriter:
    def __init__(self, journal: Writable, durable_seq: int, wake: Callable[[], object]) -> None:
        self.journal = journal
        # the last seq of the last batch written: set on this thread, or by the loop when it
        # wrote a batch itself while this thread was idle (venue/sequencer.py, step 3)
        self.durable_seq = durable_seq
        self.error: Exception | None = None
        self.waiting = False  # set by the loop while it waits on the journal: wake it per write
        self._wake = wake
        self._queue: SimpleQueue[tuple[int, Any] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="journal")
        self._thread.start()

    def submit(self, last_seq: int, taken: Any) -> None:
        """Queue a batch (what Journal.take handed over, ending at last_seq) to be written."""
        self._queue.put((last_seq, taken))

    def close(self) -> None:
        """Write everything submitted (unless a write failed), then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        queue = self._queue
        while True:
            items = [queue.get()]
            while not queue.empty():  # one consumer: what empty() saw is there to get
                items.append(queue.get_nowait())
            closing = items[-1] is None
            batches = [item for item in items if item is not None]
            if batches:
                try:
                    self.journal.write([taken for _, taken in batches])
                except Exception as exc:  # noqa: BLE001 - any failed write stops the venue (the sequencer logs it critical)
                    self.error = exc
                    self._notify()
                    return
                self.durable_seq = batches[-1][0]
                self._notify()
            if closing:
                return

    def _notify(self) -> None:
        # After durable_seq (or error) is set: the loop sets `waiting` before it re-reads
        # them, so either it sees the new value or this sees `waiting` and wakes it.
        if self.waiting:
            self._wake()
