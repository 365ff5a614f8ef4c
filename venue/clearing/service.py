"""Opening the clearing ledger: where the drop-copy process holds it (venue/clearing/host.py)
or the CLI on a stopped venue (operator.py).

Opening: the DuckDB file under var/, reference data synced into it, then catch-up. The
venue publishes a batch only after it is journaled, but the ledger commits later, in
another process; a crash in between leaves the ledger behind the journal. So on open the
journal is replayed through a fresh core (the same one recovery builds) and every event
after the ledger's last sequence number is ingested. Ingest is idempotent, so a replay
that overlaps what the ledger holds changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb

from venue.clearing.ledger import Ledger
from venue.config import VenueConfig
from venue.events import Event
from venue.instruments import Instrument
from venue.journal import JournalReader
from venue.sequencer import Core

log = logging.getLogger(__name__)

REPLAY_CHUNK = 4096  # journal records per ingest during catch-up
LOCK_RETRY_S = 0.1
OPEN_WAIT_S = 30.0  # a file still held by the drop-copy process of a venue that has just died
T = TypeVar("T")


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


def open_ledger(cfg: VenueConfig, accounts: Mapping[str, tuple[str, str]], instruments: Iterable[Instrument] | None = None,
                *, wait_s: float = 0.0) -> Ledger:
    """The ledger file under the var directory, synced with these instruments (the
    reference database's; the config's by default) and accounts. With `wait_s`, a file
    another process still holds is tried again until then (the drop-copy process of a venue
    that died a moment ago closes it on its way out)."""
    cfg.var_path().mkdir(parents=True, exist_ok=True)
    return _retrying(lambda: Ledger(cfg.var_path() / cfg.clearing.ledger_file, instruments=instruments or cfg.instruments,
                                    accounts=accounts, clearing=cfg.clearing), wait_s)


def expired_contracts(cfg: VenueConfig, *, wait_s: float = 0.0) -> list[str]:
    """The contracts the ledger has settled at expiry (read-only; [] before the first start)."""
    path = cfg.var_path() / cfg.clearing.ledger_file
    if not path.exists():
        return []

    def read() -> list[str]:
        with duckdb.connect(str(path), read_only=True) as con:
            return sorted(s for (s,) in con.execute("SELECT symbol FROM instruments WHERE status = 'expired'").fetchall())

    return _retrying(read, wait_s)


def _retrying(open_: Callable[[], T], wait_s: float) -> T:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return open_()
        except duckdb.IOException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(LOCK_RETRY_S)


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


