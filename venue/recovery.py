"""Startup recovery and periodic snapshots: the journal's two jobs outside the sequencer.

Recovery (`recover`, at startup, before any acceptor listens):
    1. open the journal for appending: a torn tail is reported and cut (venue/journal.py)
    2. restore the newest usable snapshot at or before the journal's end into a fresh core;
       its seq's journal record must carry the snapshot's ts (else the snapshot belongs to
       another journal and is not used)
    3. replay the records after it through core.apply, exactly as the sequencer applied them
    4. hand back the journal, the core and where the sequencer resumes (next seq, last ts)
A snapshot that fails any check is skipped for an older one, then for a full replay from a
freshly built core: snapshots only save time, the journal decides.

Snapshots (`Snapshotter`, a sequencer subscriber): after a batch that takes the sequence
`every` commands past the last snapshot, at that batch boundary (the core's batches applied,
the next not started), fork a child that captures the state and writes the file
(venue/snapshot_fork.py), or, without fork, capture the state on the loop thread and write
the file in a worker thread. The file is renamed into place only once the journal is durable
at its seq. One at a time; a failure is logged and the venue goes on (the journal has it all).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from venue import snapshot_fork
from venue.config import VenueConfig
from venue.events import Event
from venue.journal import Journal, JournalConfig, JournalReader, Record
from venue.sequencer import Core, Sequencer
from venue.snapshot import Captured, Loaded, SnapshotConfig, SnapshotError, capture, check, install, load_latest, restore, uncovered, write

log = logging.getLogger(__name__)


@dataclass
class Recovered:
    journal: Journal
    core: Core
    next_seq: int
    last_ts: int
    snapshot: Path | None  # the snapshot restored, if any
    replayed: int  # journal records applied after it
    seconds: float


def replay(core: Core, records: Iterable[Record], *, to_seq: int | None = None, to_ts: int | None = None) -> tuple[int, int, int]:
    """Apply records in order (up to a seq or a time, inclusive); return (count, last seq, last ts)."""
    n, seq, ts = 0, 0, 0
    apply = core.apply
    for rec in records:
        if (to_seq is not None and rec.seq > to_seq) or (to_ts is not None and rec.ts > to_ts):
            break
        apply(rec.seq, rec.ts, rec.cmd)
        n, seq, ts = n + 1, rec.seq, rec.ts
    core.drain_book_deltas(seq, ts)  # market data restarts from full books, not from deltas
    return n, seq, ts


def recover(new_core: Callable[[], Core], journal_dir: Path, snapshot_dir: Path, journal_config: JournalConfig | None = None) -> Recovered:
    """Rebuild a core (built by `new_core`, empty) from the newest usable snapshot and the
    journal after it. A snapshot that fails half way through its restore leaves that core
    spoiled: the next attempt starts from a new one.

    The cyclic garbage collector is paused meanwhile: recovery only builds objects that stay
    alive, and with collections on, every few thousand of them trigger a scan of all the
    ones before (a 200,000-order restore took three times as long)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _recover(new_core, journal_dir, snapshot_dir, journal_config or JournalConfig())
    finally:
        if enabled:
            gc.enable()


def _recover(new_core: Callable[[], Core], journal_dir: Path, snapshot_dir: Path, journal_config: JournalConfig) -> Recovered:
    t0 = time.perf_counter()
    journal = Journal.open(journal_dir, journal_config)
    for stale in snapshot_dir.glob("*.snap.tmp"):  # a write the last run did not finish
        stale.unlink()
    end = journal.last_seq
    reader = JournalReader(journal_dir)
    core = new_core()
    for snap in load_latest(snapshot_dir, end):
        try:
            restore(core, snap)
            n = _replay_after(core, reader, snap)
        except SnapshotError as exc:
            log.warning("not using snapshot: %s", exc)
            core = new_core()
            continue
        return _done(journal, core, end, snap.path, n, t0)
    n = replay(core, reader.records(1))[0]
    return _done(journal, core, end, None, n, t0)


def _replay_after(core: Core, reader: JournalReader, snap: Loaded) -> int:
    records = reader.records(snap.seq)
    first = next(records, None)
    if first is None or first.seq != snap.seq or first.ts != snap.ts:
        found = "no record" if first is None else f"seq {first.seq} ts {first.ts}"
        raise SnapshotError(f"{snap.path}: taken at seq {snap.seq} ts {snap.ts}, the journal has {found} there")
    return replay(core, records)[0]


def _done(journal: Journal, core: Core, end: int, snap: Path | None, n: int, t0: float) -> Recovered:
    took = time.perf_counter() - t0
    log.info("recovered to seq %d: snapshot %s + %d journal records in %.2f s", end, snap.name if snap else "none", n, took)
    return Recovered(journal, core, end + 1, journal.last_ts, snap, n, took)


class Snapshotter:
    """Sequencer subscriber that writes a snapshot every `config.every` commands: in a forked
    child where the platform can (venue/snapshot_fork.py), else captured on the loop thread
    and written in a worker thread. One snapshot at a time. Not `periodic`: only the last
    one, at close (the drop-copy process takes the others: drop_copy/snapshots.py)."""

    def __init__(self, sequencer: Sequencer, directory: Path, config: SnapshotConfig, last_seq: int | None = None, *, periodic: bool = True) -> None:
        self.sequencer = sequencer
        self.periodic = periodic
        self.dir = directory
        self.config = config
        self.fork = config.fork and snapshot_fork.available()
        self.last_seq = sequencer.next_seq - 1 if last_seq is None else last_seq  # of the newest snapshot
        self.written: list[Path] = []
        self._writing: asyncio.Future[Path] | None = None
        self._waiting: Captured | None = None  # captured ahead of the journal: written once it is durable
        self._child: snapshot_fork.Child | None = None  # forked, its file not yet installed
        self._child_exit: asyncio.Future[str | None] | None = None  # why it failed, or None
        self._broken = False

    @property
    def busy(self) -> bool:
        """A snapshot is being taken: a child at work, or a file not yet installed."""
        return self._child is not None or self._waiting is not None or (self._writing is not None and not self._writing.done())

    def __call__(self, events: Sequence[Event]) -> None:
        """After a published batch. The core may already have run later batches, whose
        journal write is still under way (the sequencer runs ahead of the journal): a
        snapshot is taken at the core's seq but becomes visible only once the journal is
        durable that far, or a crash could recover orders no client was ever told of."""
        if self._child is not None:
            self._settle_child()
            return
        if self._waiting is not None:
            if self.sequencer.durable_seq >= self._waiting.seq:
                self._write(self._waiting)
                self._waiting = None
            return
        seq = self.sequencer.next_seq - 1
        if self._broken or not self.periodic or not self.config.every or seq - self.last_seq < self.config.every:
            return
        if self._writing is not None and not self._writing.done():
            return  # the previous one is still being written: try after the next batch
        try:
            if self.fork:
                check(self.sequencer.core)
                self._start_child(seq)
                return
            snap = capture(self.sequencer.core, seq, self.sequencer.last_ts)
        except SnapshotError:
            log.exception("cannot snapshot this core; the venue goes on without snapshots")
            self._broken = True
            return
        self.last_seq = seq
        if self.sequencer.durable_seq >= seq:
            self._write(snap)
        else:
            self._waiting = snap

    def _start_child(self, seq: int) -> None:
        self.last_seq = seq  # a failure is retried `every` commands later, as a failed write
        try:
            child = snapshot_fork.start(self.sequencer.core, seq, self.sequencer.last_ts, self.dir, self.config.cpu_share)
        except OSError as exc:
            log.error("cannot fork to snapshot at seq %d: %r", seq, exc)
            return
        self._child = child
        self._child_exit = asyncio.get_running_loop().run_in_executor(None, snapshot_fork.wait, child)
        self._child_exit.add_done_callback(lambda _: self._settle_child())

    def _settle_child(self) -> None:
        """Once the child has exited: if it failed, log it and delete what it left; else, once
        the journal is durable at its seq, install its file."""
        child, done = self._child, self._child_exit
        if child is None or done is None or not done.done():
            return
        failure = "its wait was cancelled" if done.cancelled() else repr(done.exception()) if done.exception() else done.result()
        if failure is None and self.sequencer.durable_seq < child.seq:
            return  # written; the rename waits for the journal
        self._child = self._child_exit = None
        if failure is not None:
            snapshot_fork.discard(child, failure)
            return
        self._writing = asyncio.get_running_loop().run_in_executor(None, install, child.tmp, self.config.keep)
        self._writing.add_done_callback(self._written)

    def _write(self, snap: Captured) -> None:
        self._writing = asyncio.get_running_loop().run_in_executor(None, write, self.dir, snap, self.config.keep)
        self._writing.add_done_callback(self._written)

    def _written(self, fut: asyncio.Future[Path]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("snapshot write failed: %r", exc)
        else:
            self.written.append(fut.result())
            log.info("snapshot %s written", fut.result().name)

    async def close(self, final: bool = True) -> None:
        """Wait for a snapshot in progress; then, if asked and there is news, snapshot the
        stopped sequencer's state so the next start replays nothing."""
        if self._child is not None and self._child_exit is not None:
            self._child.hurry()  # no acks left to protect: the child need not pace itself
            await asyncio.wait([self._child_exit])
            self._settle_child()
        if self._child is not None:  # its seq never became durable: the final snapshot takes its place
            self._child.tmp.unlink(missing_ok=True)
            self.last_seq = min(self.last_seq, self._child.seq - 1)
            self._child = self._child_exit = None
        if self._writing is not None:
            await asyncio.wait([self._writing])
        if self._waiting is not None:  # never written: the final snapshot below takes its place
            self.last_seq = min(self.last_seq, self._waiting.seq - 1)
            self._waiting = None
        seq = self.sequencer.next_seq - 1
        if final and not self._broken and seq > self.last_seq:
            try:
                snap = capture(self.sequencer.core, seq, self.sequencer.last_ts)
                self.written.append(await asyncio.get_running_loop().run_in_executor(None, write, self.dir, snap, self.config.keep))
                self.last_seq = seq
            except (SnapshotError, OSError) as exc:
                log.error("final snapshot failed: %r", exc)


class Durable:
    """The venue's journal and snapshots, from recovery at startup to close at shutdown."""

    def __init__(self, recovered: Recovered, snapshot_dir: Path, config: SnapshotConfig) -> None:
        self.recovered = recovered
        self.core = recovered.core
        self.journal = recovered.journal
        self.snapshot_dir = snapshot_dir
        self.config = config
        self.snapshotter: Snapshotter | None = None

    @classmethod
    def open(cls, cfg: VenueConfig, new_core: Callable[[], Core]) -> Durable:
        """Recover a core (built by `new_core`) from the journal and snapshots under cfg's var dir."""
        var = cfg.var_path()
        snapshot_dir = var / cfg.snapshots.dir
        rec = recover(new_core, var / cfg.journal.dir, snapshot_dir, cfg.journal)
        config = cfg.snapshots
        missing = uncovered(rec.core)
        if missing and config.every:
            log.warning("snapshots off: %s hold state no snapshot carries; a restart replays the whole journal", ", ".join(missing))
            config = dataclasses.replace(config, every=0)
        return cls(rec, snapshot_dir, config)

    def sequencer(self, *, periodic: bool = True) -> Sequencer:
        """The sequencer, resuming the journal's numbering, with snapshots: periodic ones
        unless another process takes them, and the last one when it stops."""
        rec = self.recovered
        seq = Sequencer(rec.core, journal=rec.journal, next_seq=rec.next_seq, last_ts=rec.last_ts)
        if self.config.every:
            # counting from the snapshot recovery used: a long replayed tail (crash after crash
            # before a new snapshot was written) is snapshotted after the first batch
            self.snapshotter = Snapshotter(seq, self.snapshot_dir, self.config, rec.next_seq - 1 - rec.replayed, periodic=periodic)
            seq.subscribers.append(self.snapshotter)
        return seq

    async def close(self, final: bool = True) -> None:
        """After the sequencer has stopped: a last snapshot (if `final`), then close the journal."""
        if self.snapshotter is not None:
            await self.snapshotter.close(final)
        self.journal.close()
