"""Work on the clearing ledger as data: what the venue's operator commands ask of it.

DuckDB admits one writing process. While the venue runs, that is the drop-copy process
(drop_copy/process.py), which feeds the ledger the events its replica regenerates; the
venue's `eod`, `reconcile` and `index-file` reach the ledger as jobs sent down that
process's pipe (drop_copy/link.py). So a job must pickle: it is a module-level function
below, partially applied to its arguments (`functools.partial(settle_day, day, now_us)`),
and runs as `job(ctx)` on the ledger's write thread, after every batch the process had
been told of when the job arrived. On a stopped venue the CLI runs the same functions on
the file itself (operator.py), with no book tops in the context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TypeVar

from venue.clearing.eod import EodResult, run_eod
from venue.clearing.files import write_statements
from venue.clearing.ledger import Ledger
from venue.clearing.price_file import read_price_file
from venue.clearing.reconcile import Report, reconcile
from venue.clearing.service import replay_batches
from venue.instruments import Instrument
from venue.sequencer import Core
from venue.snapshot import find_engine

T = TypeVar("T")

Tops = dict[str, tuple[int | None, int | None]]  # symbol -> best bid, best ask (ticks)


@dataclass(frozen=True, slots=True)
class LedgerContext:
    """What a job may use: the ledger, and what the process around it knows."""

    ledger: Ledger
    # each book's best bid and ask where the job stands in the event stream (the replica's
    # books, at the ledger's last seq); None on a stopped venue: the tops stored at its stop
    tops: Tops | None
    core_factory: Callable[[], Core]
    journal_dir: Path
    out_dir: Path
    comp_id: str
    underlyings: frozenset[str]


Job = Callable[[LedgerContext], T]


class LedgerUnavailable(Exception):
    """The process that holds the ledger is not there to run a job."""


class LedgerRunner(Protocol):
    """Where the ledger is held: runs a job there, after what has been published so far."""

    async def run(self, job: Job[T], timeout: float) -> T: ...


def book_tops(core: Core) -> Tops:
    """Best bid and ask of every book in `core` (call on the thread that applies to it)."""
    return {s: (b.best_bid, b.best_ask) for s, b in find_engine(core).books.items()}


def settle_day(day: date, now_us: int, ctx: LedgerContext) -> tuple[EodResult, list[Path]]:
    """Run `day`'s settlement (once) and write any member file not yet written."""
    led = ctx.ledger
    if ctx.tops is not None:  # the settlement price's mid rule reads the books as they stand
        led.store_tops(ctx.tops, led.last_seq)
    result = run_eod(led, day, now_us=now_us)
    return result, write_statements(led.con, day, ctx.out_dir, currency=led.cfg.currency, comp_id=ctx.comp_id)


def reconcile_journal(ctx: LedgerContext) -> Report:
    """The ledger against a replay of the journal up to the ledger's last seq."""
    led = ctx.ledger
    led.checkpoint()
    core = ctx.core_factory()
    return reconcile(led.con, replay_batches(core, ctx.journal_dir, upto_seq=led.last_seq), lambda: dict(find_engine(core).positions))


def load_index_file(path: str, ctx: LedgerContext) -> tuple[int, int]:
    """An index price file's prints into the ledger: (prints in the file, new ones). Read
    here, where the ledger is (the venue's pipe carries the path, not the file)."""
    prints = read_price_file(Path(path), set(ctx.underlyings))
    return len(prints), ctx.ledger.load_index_prints(prints)


def query(sql: str, params: tuple[Any, ...], ctx: LedgerContext) -> list[tuple[Any, ...]]:
    """Rows of a SQL query on the live ledger (risk desks' and tests' reads)."""
    return ctx.ledger.con.execute(sql, params).fetchall()


def index_prints_message(path: str, n: int, added: int) -> str:
    return f"{path}: {n} index prints, {added} new, {n - added} already held"


def underlyings(instruments: Iterable[Instrument]) -> frozenset[str]:
    """The index names the instruments track (what a price file may name)."""
    return frozenset(i.underlying for i in instruments)
