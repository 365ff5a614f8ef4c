"""The clearing ledger as the venue (or the CLI on a stopped venue) opens and uses it.

Opening: the DuckDB file under var/, reference data synced into it, then catch-up. The
sequencer publishes a batch only after it is journaled, but the ledger commits later, on
its own thread; a crash in between leaves the ledger behind the journal. So on open the
journal is replayed through a fresh core (the same one recovery builds) and every event
after the ledger's last sequence number is ingested. Ingest is idempotent, so a replay
that overlaps what the ledger holds changes nothing.

Settlement (`settle`) runs the EOD and writes the members' files; `check` reconciles the
ledger with the journal. Both run wherever the ledger's one connection lives: on the
writer thread inside the venue, or directly when the venue is stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Protocol

from venue.book import Book
from venue.clearing.eod import EodResult, MarginRun, run_eod
from venue.clearing.files import write_statements
from venue.clearing.ledger import Ledger
from venue.clearing.reconcile import Report, reconcile
from venue.clearing.writer import LedgerWriter
from venue.commands import SetPhase
from venue.config import VenueConfig
from venue.events import Event
from venue.instruments import Instrument
from venue.journal import JournalReader
from venue.sequencer import Core
from venue.snapshot import find_engine
from venue.types import TradingPhase

log = logging.getLogger(__name__)

REPLAY_CHUNK = 4096  # journal records per ingest during catch-up


class Member(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def firms(self) -> Iterable[str]: ...

    @property
    def accounts(self) -> Iterable[str]: ...


def account_map(accounts: Mapping[str, str], members: Iterable[Member]) -> dict[str, tuple[str, str]]:
    """account -> (firm, clearing member). A member listing the account itself wins over
    one entitled to its whole firm; an account no member clears maps to ''."""
    by_firm: dict[str, str] = {}
    by_account: dict[str, str] = {}
    for m in members:
        for f in m.firms:
            by_firm.setdefault(f, m.id)
        for a in m.accounts:
            by_account.setdefault(a, m.id)
    return {a: (f, by_account.get(a, by_firm.get(f, ""))) for a, f in accounts.items()}


def open_ledger(cfg: VenueConfig, accounts: Mapping[str, tuple[str, str]], instruments: Iterable[Instrument] | None = None) -> Ledger:
    """The ledger file under the var directory, synced with these instruments (the
    reference database's; the config's by default) and accounts."""
    cfg.var_path().mkdir(parents=True, exist_ok=True)
    return Ledger(cfg.var_path() / cfg.clearing.ledger_file, instruments=instruments or cfg.instruments,
                  accounts=accounts, clearing=cfg.clearing)


def replay_batches(core: Core, journal_dir: Path, *, after_seq: int = 0, upto_seq: int | None = None) -> Iterator[list[Event]]:
    """The events a replay of the journal publishes, in chunks, skipping those at or before
    `after_seq` (the core still applies every record: its state needs them)."""
    if not journal_dir.is_dir():
        return
    chunk: list[Event] = []
    n, seq, ts = 0, 0, 0
    for rec in JournalReader(journal_dir).records(1):
        if upto_seq is not None and rec.seq > upto_seq:
            break
        seq, ts = rec.seq, rec.ts
        out = core.apply(rec.seq, rec.ts, rec.cmd)
        if rec.seq > after_seq:
            chunk.extend(out)
        n += 1
        if n % REPLAY_CHUNK == 0:
            chunk.extend(d for d in core.drain_book_deltas(seq, ts) if seq > after_seq)
            if chunk:
                yield chunk
                chunk = []
    if n:
        chunk.extend(d for d in core.drain_book_deltas(seq, ts) if seq > after_seq)
    if chunk:
        yield chunk


def catch_up(ledger: Ledger, core_factory: Callable[[], Core], journal_dir: Path, upto_seq: int | None = None) -> int:
    """Ingest what the journal holds past the ledger's last sequence number; return the
    number of trades added."""
    if upto_seq is not None and ledger.last_seq >= upto_seq:
        return 0
    added = 0
    for batch in replay_batches(core_factory(), journal_dir, after_seq=ledger.last_seq, upto_seq=upto_seq):
        added += ledger.ingest(batch).trades
    if added:
        log.info("clearing ledger caught up from the journal: %d trades", added)
    return added


def settle(ledger: Ledger, day: date, *, now_us: int, out_dir: Path, comp_id: str, margin_run: MarginRun | None = None) -> tuple[EodResult, list[Path]]:
    """Run `day`'s settlement (once) and write any member file not yet written."""
    result = run_eod(ledger, day, now_us=now_us, margin_run=margin_run)
    files = write_statements(ledger.con, day, out_dir, currency=ledger.cfg.currency, comp_id=comp_id)
    return result, files


def check(ledger: Ledger, core: Core, journal_dir: Path, upto_seq: int | None = None) -> Report:
    """Reconcile the ledger with a replay of the journal (up to `upto_seq`)."""
    ledger.checkpoint()
    batches = replay_batches(core, journal_dir, upto_seq=upto_seq)
    return reconcile(ledger.con, batches, lambda: dict(find_engine(core).positions))


class Clearing:
    """The ledger inside the running venue: the file, its writer threads, and what the
    operator's eod and reconcile commands need."""

    def __init__(self, cfg: VenueConfig, ledger: Ledger, core_factory: Callable[[], Core]) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.core_factory = core_factory
        self.journal_dir = cfg.var_path() / cfg.journal.dir
        self.out_dir = cfg.var_path() / cfg.clearing.settlement_dir
        self.writer = LedgerWriter(ledger)
        self.books: Mapping[str, Book] = {}

    @classmethod
    def open(cls, cfg: VenueConfig, ledger: Ledger, core_factory: Callable[[], Core], upto_seq: int) -> Clearing:
        """Catch the ledger up with the journal (blocking: run before the sequencer starts)."""
        catch_up(ledger, core_factory, cfg.var_path() / cfg.journal.dir, upto_seq)
        return cls(cfg, ledger, core_factory)

    async def settle(self, day: date, now_us: int, timeout: float) -> tuple[EodResult, list[Path]]:
        """Run on the loop thread: the books' tops are taken here, between batches."""
        tops = self.tops()

        def job(led: Ledger) -> tuple[EodResult, list[Path]]:
            led.store_tops(tops, led.last_seq)
            return settle(led, day, now_us=now_us, out_dir=self.out_dir, comp_id=self.cfg.venue.comp_id)

        return await self.writer.run(job, timeout)

    async def check(self, timeout: float) -> Report:
        return await self.writer.run(lambda led: check(led, self.core_factory(), self.journal_dir, led.last_seq), timeout)

    def sync_books(self, books: Mapping[str, Book]) -> None:
        """The venue's books, read for their tops (the settlement price's mid rule) on the
        loop thread when a settlement run is asked for, and when the venue stops."""
        self.books = books

    def tops(self) -> dict[str, tuple[int | None, int | None]]:
        """Best bid and ask per book now: call between batches (loop thread) or once the
        sequencer has stopped."""
        return {s: (b.best_bid, b.best_ask) for s, b in self.books.items()}

    def expire_settled(self, books: Mapping[str, Book], submit: Callable[[SetPhase], None]) -> list[str]:
        """Contracts the ledger has settled at expiry but the core still trades (a restart
        builds books from reference data): move them to the expired phase, through the
        sequencer so it is journaled."""
        expired = [s for (s,) in self.ledger.con.execute("SELECT symbol FROM instruments WHERE status = 'expired'").fetchall()]
        stale = [s for s in sorted(expired) if s in books and books[s].phase is not TradingPhase.EXPIRED]
        for symbol in stale:
            submit(SetPhase(symbol=symbol, phase=TradingPhase.EXPIRED))
        return stale

    def close(self, timeout: float) -> None:
        """After the sequencer stopped: the books' tops for the next (offline) settlement
        run, then everything queued written and the file closed."""
        tops = self.tops()
        self.writer.submit(lambda led: led.store_tops(tops, led.last_seq))
        self.writer.close(timeout)
