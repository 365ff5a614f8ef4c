"""The clearing ledger where it lives while the venue runs: in the drop-copy process.

Why not in the venue's process. The ledger's two writer threads (writer.py) share the
venue's interpreter lock: preparing an ingest is Python, and DuckDB's Python API gives the
lock up and takes it back about 20 times per INSERT and COMMIT. At 5,000 trading orders a
second that was 20 ingests a second of 5-11 ms each, and the venue's ack p99 with the ledger
was 4.2-5.5 ms against 3.5-5.0 ms with the same ledger here (bench/fix_e2e.py's trading
load, five paired runs, session 9). Here it costs the venue nothing: the drop-copy
process's replica already regenerates every event the venue publishes, in order, from the
journal (drop_copy/process.py), and the ledger takes them from there.

The host feeds the replica's events to a LedgerWriter and runs the venue's jobs
(venue/clearing/jobs.py) on its write thread, each with the replica's book tops as they
stood when the job arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from venue.clearing.jobs import Job, LedgerContext, Tops, underlyings
from venue.clearing.ledger import Ledger
from venue.clearing.service import OPEN_WAIT_S, account_map, catch_up, open_ledger
from venue.clearing.writer import LedgerWriter
from venue.config import VenueConfig
from venue.events import Event
from venue.refdata import ReferenceData
from venue.sequencer import Core

T = TypeVar("T")

class LedgerHost:
    def __init__(self, ledger: Ledger, *, core_factory: Callable[[], Core], journal_dir: Path, out_dir: Path, comp_id: str,
                 tops: Callable[[], Tops]) -> None:
        self.ledger = ledger
        self.writer = LedgerWriter(ledger)
        self.tops = tops
        self._context = LedgerContext(ledger=ledger, tops=None, core_factory=core_factory, journal_dir=journal_dir, out_dir=out_dir,
                                      comp_id=comp_id, underlyings=underlyings(ledger.instruments.values()))

    @classmethod
    def open(cls, cfg: VenueConfig, ref: ReferenceData, core_factory: Callable[[], Core], published: int,
             tops: Callable[[], Tops]) -> LedgerHost:
        """The ledger caught up with the journal to `published` (blocking): the events
        after it come from the replica."""
        ledger = open_ledger(cfg, account_map(ref.accounts(), ref.clearing_members), ref.instruments, wait_s=OPEN_WAIT_S)
        journal_dir = cfg.var_path() / cfg.journal.dir
        catch_up(ledger, core_factory, journal_dir, published)
        return cls(ledger, core_factory=core_factory, journal_dir=journal_dir, out_dir=cfg.var_path() / cfg.clearing.settlement_dir,
                   comp_id=cfg.venue.comp_id, tops=tops)

    def __call__(self, events: Sequence[Event]) -> None:
        """The follower's subscriber: a batch of the replica's events, in sequence order."""
        self.writer(events)

    def submit(self, job: Job[T]) -> Future[T]:
        """Run `job` after every batch handed over so far; call on the thread that feeds
        the events (the tops are read there, between batches)."""
        ctx = replace(self._context, tops=self.tops())
        return self.writer.submit(lambda led: job(ctx))

    def close(self, timeout: float) -> None:
        """After the last batch: the books' tops for the next (offline) settlement run, then
        everything queued written and the file closed."""
        tops = self.tops()
        self.writer.submit(lambda led: led.store_tops(tops, led.last_seq))
        self.writer.close(timeout)
