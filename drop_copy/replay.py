"""Regenerating a day's executions from the journal, never from memory.

The journal holds commands, not events; the core is pure, so running the same commands
through a fresh core gives the same events with the same ExecIDs and TradeIDs (DESIGN.md).
A `Replay` owns one such core and the position it has reached, so a member that falls
behind is caught up by reading on from where its replay stopped, not from the start again.

Where the records come from is a `RecordSource` (the journal directory in the venue; a
list in unit tests). A replay reads through the source's incremental reader
(drop_copy/tail.py's JournalTail for the journal): each `advance` reads only what was
appended since the last, so a member catching up while the venue trades pays for the new
records, not for rescanning the segment at every pass. Reading runs on a drop-copy writer
thread or a request worker, never on the sequencer's loop: the journal file is appended to
while it is read, and the reader stops at the last whole record.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from drop_copy.tail import JournalTail
from venue.commands import Command
from venue.events import Event
from venue.sequencer import Core
from venue.snapshot import SnapshotError, load_latest, restore

log = logging.getLogger(__name__)


class RecordReader(Protocol):
    position: int  # the last seq read

    def read(self, until_seq: int) -> list[tuple[int, int, Command]]:
        """The records after `position`, up to `until_seq`, that are there now."""


class RecordSource(Protocol):
    def records(self, from_seq: int = 1) -> Iterable[tuple[int, int, Command]]:
        """Journal records (seq, ts, command) with seq >= from_seq, in order."""

    def follow(self, after_seq: int) -> RecordReader:
        """A reader of the records after `after_seq`, each call reading on from the last."""


CoreFactory = Callable[[], Core]
READ_STEP = 50_000  # records decoded per read during a replay


class JournalSource:
    """The venue's journal directory, opened afresh for each read (segments roll and grow)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def records(self, from_seq: int = 1) -> Iterator[tuple[int, int, Command]]:
        from venue.journal import JournalReader

        if not self.directory.is_dir():
            return iter(())
        return iter(JournalReader(self.directory).records(from_seq))

    def follow(self, after_seq: int) -> JournalTail:
        return JournalTail(self.directory, after_seq)


class Replay:
    """A fresh core driven by the journal: `advance()` returns the events of the records
    past its position, in order, as (seq, events) batches. With the venue's snapshot
    directory it can start from a snapshot instead of the first record (`start_near`)."""

    def __init__(self, source: RecordSource, core_factory: CoreFactory, snapshots: Path | None = None) -> None:
        self.source = source
        self.core_factory = core_factory
        self.snapshots = snapshots
        self.core = core_factory()
        self.position = 0  # the last seq applied
        self.last_ts = 0  # its timestamp (a snapshot of the core is checked against it)
        self._reader: RecordReader | None = None

    def start_near(self, seq: int) -> None:
        """Before the first advance: restore the newest usable snapshot taken before `seq`
        (so the events of `seq` on are still regenerated), checked against the journal as
        recovery checks it: the record at its seq must carry its ts."""
        if self.position or self.snapshots is None or seq <= 1:
            return
        for snap in load_latest(self.snapshots, seq - 1):
            record = next(iter(self.source.records(snap.seq)), None)
            if record is None or record[0] != snap.seq or record[1] != snap.ts:
                log.warning("snapshot %s does not match the journal: not used", snap.path)
                continue
            core = self.core_factory()
            try:
                restore(core, snap)
            except SnapshotError as exc:
                log.warning("snapshot not used: %s", exc)
                continue
            self.core, self.position, self.last_ts = core, snap.seq, snap.ts
            return

    def advance(self, until_seq: int | None = None) -> Iterator[tuple[int, list[Event]]]:
        """Apply every record after `position` (up to `until_seq` if given), yielding each
        command's events. Reads at most READ_STEP records at a time, so a long catch-up never
        holds a whole journal of decoded commands."""
        reader = self._reader
        if reader is None or reader.position != self.position:
            reader = self._reader = self.source.follow(self.position)
        end = sys.maxsize if until_seq is None else until_seq
        core = self.core
        while self.position < end:
            records = reader.read(min(end, self.position + READ_STEP))
            if not records:
                return
            for seq, ts, cmd in records:
                if seq != self.position + 1:
                    raise ValueError(f"journal skips from seq {self.position} to {seq}")
                self.position, self.last_ts = seq, ts
                yield seq, core.apply(seq, ts, cmd)
