"""The clearing scenario (clearing_scenario.py) driven through the real sequencer, core,
journal and ledger writer (no FIX), with the sequencer's clock moved across three days;
the settlement files checked field by field after each day, then a second run of a day,
reconciliation with the journal, and a replay of the whole journal into the ledger."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from clearing_scenario import DAY1, DAY3, EXPIRED, FUT, at, play

from venue.clearing import jobs
from venue.clearing.host import LedgerHost
from venue.clearing.jobs import Job, LedgerContext
from venue.clearing.ledger import Ledger
from venue.clearing.operator import _eod_handler
from venue.clearing.service import account_map, catch_up, open_ledger, replay_batches
from venue.commands import AdjustCollateral, NewOrder, SetIndexPrice, SetMarkPrice
from venue.config import VenueConfig, load_config
from venue.core import VenueCore
from venue.events import CommandRejected, ExecReport, Fill
from venue.journal import Journal
from venue.sequencer import Sequencer
from venue.types import OrdType, Side, TradingPhase

TIMEOUT = 30.0
T = TypeVar("T")


class DirectDriver:
    def __init__(self, cfg: VenueConfig) -> None:
        self.cfg = cfg
        self.now = at(DAY1, 0) - 12 * 3600 * 1_000_000
        self.instruments = {i.symbol: i for i in cfg.instruments}
        self.core = self.new_core()
        self.journal = Journal.open(cfg.var_path() / cfg.journal.dir, cfg.journal)
        self.sequencer = Sequencer(self.core, journal=self.journal, clock=lambda: self.now)
        self.host = self.ledger_host(open_ledger(cfg, account_map(cfg.accounts(), cfg.clearing_members)))
        self.sequencer.subscribers.append(self.host)
        self.out_dir = cfg.var_path() / cfg.clearing.settlement_dir
        self.n = 0

    def ledger_host(self, ledger: Ledger) -> LedgerHost:
        """The ledger as the drop-copy process holds it, fed by this sequencer instead of a replica."""
        cfg = self.cfg
        return LedgerHost(ledger, core_factory=self.new_core, journal_dir=cfg.var_path() / cfg.journal.dir,
                          out_dir=cfg.var_path() / cfg.clearing.settlement_dir, comp_id=cfg.venue.comp_id,
                          tops=lambda: jobs.book_tops(self.core))

    async def run(self, job: Job[T], timeout: float) -> T:
        """The LedgerRunner the operator's handlers use (the venue's is its drop-copy link)."""
        return await asyncio.wait_for(asyncio.wrap_future(self.host.submit(job)), timeout)

    def new_core(self) -> VenueCore:
        return VenueCore(self.cfg.instruments, self.cfg.accounts(), self.cfg.risk, stp_scope=self.cfg.venue.stp_scope)

    def set_time(self, ts_us: int) -> None:
        self.now = ts_us

    async def call(self, cmd: Any) -> list[Any]:
        events = await asyncio.wait_for(self.sequencer.call(cmd), TIMEOUT)
        assert not any(isinstance(e, CommandRejected) or (isinstance(e, ExecReport) and e.reason) for e in events), events
        return events

    async def index(self, underlying: str, price: str) -> None:
        await self.call(SetIndexPrice(underlying=underlying, price=Decimal(price)))

    async def mark(self, symbol: str, price: str) -> None:
        ticks = self.instruments[symbol].ticks(Decimal(price))
        assert ticks is not None
        await self.call(SetMarkPrice(symbol=symbol, price=ticks))

    async def trade(self, maker: str, side: str, taker: str, symbol: str, qty: int, price: str) -> None:
        ticks = self.instruments[symbol].ticks(Decimal(price))
        s = Side.BUY if side == "buy" else Side.SELL
        for firm, firm_side in ((maker, s), (taker, s.opposite)):
            self.n += 1
            events = await self.call(NewOrder(session=firm, firm=firm, account=f"{firm}-A", cl_ord_id=f"C{self.n}", symbol=symbol,
                                              side=firm_side, ord_type=OrdType.LIMIT, qty=qty, price=ticks))
        assert [e.qty for e in events if isinstance(e, Fill)] == [qty]

    async def eod(self, day: date) -> str:
        return await _eod_handler(SimpleNamespace(clearing=self, sequencer=self.sequencer), ["--date", str(day)])

    async def ledger(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await self.run(partial(jobs.query, sql, params), TIMEOUT)


async def start_driver(tmp_path: Path) -> tuple[DirectDriver, asyncio.Task[None]]:
    """The demo venue's core, sequencer and ledger under `tmp_path`, running, both demo
    accounts funded."""
    base = load_config()
    cfg = dataclasses.replace(base, venue=dataclasses.replace(base.venue, var_dir=str(tmp_path / "var")))
    d = DirectDriver(cfg)
    task = asyncio.create_task(d.sequencer.run())
    for account in ("FIRM1-A", "FIRM2-A"):
        await d.call(AdjustCollateral(account=account, amount=Decimal(10_000_000), reference="opening"))
    return d, task


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[DirectDriver]:
    d, task = await start_driver(tmp_path)
    try:
        yield d
    finally:
        d.sequencer.stop()
        await asyncio.wait_for(task, TIMEOUT)
        await asyncio.to_thread(d.host.close, TIMEOUT)
        d.journal.close()


@pytest.mark.slow
async def test_three_days_of_clearing(driver: DirectDriver) -> None:
    messages = await play(driver)
    assert messages[0].startswith("2026-12-24 settled: 4 trades")
    assert "expired BTC-26DEC26, BTC-26DEC26-100000-C, BTC-26DEC26-100000-P" in messages[2]
    # the settled contracts stopped trading (SetPhase through the sequencer)
    assert [driver.core.engine.books[s].phase for s in EXPIRED[DAY3]] == [TradingPhase.EXPIRED] * 3
    # a second run of a settled day changes nothing and says so
    before = await driver.ledger("SELECT count(*), sum(amount) FROM cash_entries")
    again = await driver.eod(DAY3)
    assert "was settled at" in again and "nothing changed" in again
    assert await driver.ledger("SELECT count(*), sum(amount) FROM cash_entries") == before
    # the ledger reconciles with the journal
    report = await driver.run(jobs.reconcile_journal, TIMEOUT)
    assert report.breaks == [] and report.journal_trades == report.ledger_trades == 5
    # a replay of the whole journal into the ledger changes nothing
    trades = await driver.ledger("SELECT * FROM trades ORDER BY trade_id")
    positions = await driver.ledger("SELECT * FROM positions ORDER BY ALL")

    def replay_all(ctx: LedgerContext) -> int:
        return sum(ctx.ledger.ingest(b).trades for b in replay_batches(driver.new_core(), ctx.journal_dir))

    assert await driver.run(replay_all, TIMEOUT) == 0
    assert await driver.ledger("SELECT * FROM trades ORDER BY trade_id") == trades
    assert await driver.ledger("SELECT * FROM positions ORDER BY ALL") == positions
    assert await driver.ledger("SELECT count(*), sum(amount) FROM cash_entries") == before
    assert await driver.ledger("SELECT qty FROM positions WHERE symbol = ?", (FUT,)) == [(0,), (0,)]


async def test_a_ledger_behind_the_journal_catches_up_on_open(tmp_path: Path) -> None:
    """A crash after the journal was written but before the ledger committed leaves the
    ledger behind: opening it replays what the journal holds past it, once."""
    d, task = await start_driver(tmp_path)
    cfg = d.cfg
    d.set_time(at(DAY1, 10))
    await d.trade("FIRM2", "sell", "FIRM1", "BTC-PERP", 10, "100000")
    d.sequencer.subscribers.remove(d.host)  # the ledger stops hearing: as if its writes were lost
    await d.trade("FIRM1", "sell", "FIRM2", "BTC-PERP", 4, "100100")
    await d.trade("FIRM2", "sell", "FIRM1", "BTC-26DEC26", 2, "101000")
    d.sequencer.stop()
    await asyncio.wait_for(task, TIMEOUT)
    d.journal.close()
    await asyncio.to_thread(d.host.close, TIMEOUT)
    ledger = open_ledger(cfg, account_map(cfg.accounts(), cfg.clearing_members))
    assert ledger.con.execute("SELECT count(*) FROM trades").fetchall() == [(1,)]
    assert await asyncio.to_thread(catch_up, ledger, d.new_core, cfg.var_path() / cfg.journal.dir, d.sequencer.next_seq - 1) == 2
    d.host = d.ledger_host(ledger)
    try:
        assert ledger.con.execute("SELECT count(*) FROM trades").fetchall() == [(3,)]
        assert ledger.positions[("FIRM1-A", "BTC-PERP")].qty == 6 and ledger.positions[("FIRM1-A", "BTC-26DEC26")].qty == 2
        report = await d.run(jobs.reconcile_journal, TIMEOUT)
        assert report.breaks == [] and report.journal_trades == 3
    finally:
        await asyncio.to_thread(d.host.close, TIMEOUT)
    # and a second open finds nothing more to add
    ledger = open_ledger(cfg, account_map(cfg.accounts(), cfg.clearing_members))
    try:
        assert catch_up(ledger, d.new_core, cfg.var_path() / cfg.journal.dir) == 0
    finally:
        ledger.close()
