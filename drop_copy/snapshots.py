"""The venue's periodic restart snapshots, taken from the drop-copy process's replica.

The replica (drop_copy/process.py) holds the venue's core state at every sequence number the
venue has published, and the venue publishes a batch only once it is journaled: a snapshot
of the replica is the very file the venue would write, at a seq already durable. Taken
here, it costs the venue's acknowledgements nothing. Taken by the venue, its fork paused
the loop 10-11 ms and every page the venue wrote while the child lived (0.7 s with 100,000
resting orders) was copied first: resting ack p99 at 5,000 orders/s was 5.5-6.1 ms with a
snapshot in the run against 1.5-1.9 ms without (bench/snapshot.py, session 4). Here the
same forked child (venue/snapshot_fork.py) is a copy of this process, and the copies to
members, not the venue's acks, wait out the fork.

The child's file is installed as soon as it is written (no journal to wait for). One
snapshot at a time; a failed one is logged and retried `every` commands later. The venue
still writes the last snapshot itself when it stops (venue/recovery.py), and takes the
periodic ones itself when the platform cannot fork, or when the config says
`snapshots.taken_by: venue`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from venue import snapshot_fork
from venue.snapshot import SnapshotConfig, SnapshotError, SnapshotTaker, check, install, snapshot_paths

log = logging.getLogger(__name__)


def taken_by_drop_copy(config: SnapshotConfig) -> bool:
    """Whether a running drop-copy process takes the periodic snapshots (both processes ask)."""
    return bool(config.every) and config.taken_by is SnapshotTaker.DROP_COPY and config.fork and snapshot_fork.available()


class ReplicaSnapshots:
    """Every `config.every` commands past the newest snapshot on disk, the replica's state
    written as a snapshot by a forked child, installed by a thread that waits for it."""

    def __init__(self, directory: Path, config: SnapshotConfig) -> None:
        self.dir = directory
        self.config = config
        newest = next(snapshot_paths(directory), None)
        self.last_seq = newest[0] if newest is not None else 0
        self.written: list[Path] = []
        self._waiter: threading.Thread | None = None
        self._child: snapshot_fork.Child | None = None  # the last one forked
        self._broken = False

    def after(self, core: object, seq: int, ts: int) -> None:
        """Called by the follower once the replica has applied the records up to `seq` (the
        last at `ts`): on its thread, the replica's only writer, so the fork sees the state
        at `seq` exactly."""
        if self._broken or seq - self.last_seq < self.config.every:
            return
        if self._waiter is not None and self._waiter.is_alive():
            return  # the previous one is still being written: try after the next advance
        try:
            check(core)
        except SnapshotError:
            log.exception("cannot snapshot the replica; no periodic snapshots until the venue restarts")
            self._broken = True
            return
        self.last_seq = seq
        try:
            child = snapshot_fork.start(core, seq, ts, self.dir, self.config.cpu_share)
        except OSError as exc:
            log.error("cannot fork to snapshot at seq %d: %r", seq, exc)
            return
        self._child = child
        self._waiter = threading.Thread(target=self._install, args=(child,), name="snapshot-wait", daemon=True)
        self._waiter.start()

    def _install(self, child: snapshot_fork.Child) -> None:
        try:
            failure = snapshot_fork.wait(child)
            if failure is not None:
                snapshot_fork.discard(child, failure)
                return
            path = install(child.tmp, self.config.keep)
        except OSError as exc:  # a restarted venue's recovery may have deleted the tmp file
            log.error("snapshot at seq %d not installed: %r", child.seq, exc)
            return
        self.written.append(path)
        log.info("snapshot %s written from the drop-copy replica", path.name)

    def close(self, timeout: float) -> None:
        """Wait for a snapshot in progress (its file is installed, or deleted if it failed),
        which finishes at full speed now that this process is stopping."""
        if self._child is not None:
            self._child.hurry()
        if self._waiter is not None:
            self._waiter.join(timeout)
