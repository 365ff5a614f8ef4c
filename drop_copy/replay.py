"""Regenerating a day's executions from the journal, never from memory.

The journal holds commands, not events; the core is pure, so running the same commands
through a fresh core gives the same events with the same ExecIDs and TradeIDs (DESIGN.md).
A `Replay` owns one such core and the position it has reached, so a member that falls
behind is caught up by reading on from where its replay stopped, not from the start again.

Where the records come from is a `RecordSource` (venue/journal.py's JournalReader in the
venue; a list in unit tests). Reading runs on a drop-copy writer thread or a request
worker, never on the sequencer's loop: the journal file is appended to while it is read,
and the reader stops at the last whole record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from venue.commands import Command
from venue.events import Event
from venue.sequencer import Core


class RecordSource(Protocol):
    def records(self, from_seq: int = 1) -> Iterable[tuple[int, int, Command]]:
        """Journal records (seq, ts, command) with seq >= from_seq, in order."""


CoreFactory = Callable[[], Core]


class JournalSource:
    """The venue's journal directory, opened afresh for each read (segments roll and grow)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def records(self, from_seq: int = 1) -> Iterator[tuple[int, int, Command]]:
        from venue.journal import JournalReader

        if not self.directory.is_dir():
            return iter(())
        return iter(JournalReader(self.directory).records(from_seq))


class Replay:
    """A fresh core driven by the journal: `advance()` returns the events of the records
    past its position, in order, as (seq, events) batches."""

    def __init__(self, source: RecordSource, core_factory: CoreFactory) -> None:
        self.source = source
        self.core = core_factory()
        self.position = 0  # the last seq applied

    def advance(self, until_seq: int | None = None) -> Iterator[tuple[int, list[Event]]]:
        """Apply every record after `position` (up to `until_seq` if given), yielding each
        command's events."""
        core = self.core
        for seq, ts, cmd in self.source.records(self.position + 1):
            if until_seq is not None and seq > until_seq:
                break
            if seq != self.position + 1:
                raise ValueError(f"journal skips from seq {self.position} to {seq}")
            self.position = seq
            yield seq, core.apply(seq, ts, cmd)
