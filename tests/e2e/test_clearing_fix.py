"""The clearing scenario (clearing_scenario.py) end to end: orders over FIX order-entry
sessions, index and mark prices and the settlement runs through the operator channel
(`venue admin index|mark|eod`), the venue's clock moved across three days; the settlement
files checked field by field after each day, then `venue clearing reconcile` and an index
price file through the channel, and the same commands on the stopped venue's files."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from clearing_scenario import DAY1, DAY3, at, play
from fixclient import FixClient, get
from venue_harness import VenueThread, write_config

from venue import admin
from venue.cli import main
from venue.config import load_config
from venue.types import TradingPhase

TIMEOUT = 30.0


class FixDriver:
    def __init__(self, v: VenueThread) -> None:
        self.v = v
        self.var = v.cfg.var_path()
        self.out_dir = self.var / v.cfg.clearing.settlement_dir
        self.clients = {f: v.logged_on(f) for f in ("FIRM1", "FIRM2")}
        self.ids = itertools.count(1)
        self.now = at(DAY1, 0)
        assert v.venue is not None
        seq = v.venue.sequencer
        v.call(lambda: setattr(seq, "clock", lambda: self.now))

    def set_time(self, ts_us: int) -> None:
        self.now = ts_us

    async def _admin(self, *args: str) -> str:
        ok, out = await asyncio.to_thread(admin.request, self.var, args[0], list(args[1:]), 120.0)
        assert ok, out
        return out

    async def index(self, underlying: str, price: str) -> None:
        await self._admin("index", underlying, price)

    async def mark(self, symbol: str, price: str) -> None:
        await self._admin("mark", symbol, price)

    async def trade(self, maker: str, side: str, taker: str, symbol: str, qty: int, price: str) -> None:
        m, t = self.clients[maker], self.clients[taker]
        mid, tid = f"M{next(self.ids)}", f"T{next(self.ids)}"
        m_side, t_side = (1, 2) if side == "buy" else (2, 1)
        await asyncio.to_thread(self._cross, m, mid, t, tid, symbol, qty, price, m_side, t_side, maker, taker)

    @staticmethod
    def _cross(m: FixClient, mid: str, t: FixClient, tid: str, symbol: str, qty: int, price: str, ms: int, ts: int, maker: str, taker: str) -> None:
        m.new_order(mid, symbol, ms, qty, price, account=f"{maker}-A")
        m.expect_type("8", t11=mid, t150="0")
        t.new_order(tid, symbol, ts, qty, price, account=f"{taker}-A")
        fill = t.expect_type("8", t11=tid, t150="F")
        assert get(fill, 32) == str(qty) and get(fill, 39) == "2"
        m.expect_type("8", t11=mid, t150="F")

    async def eod(self, day: date) -> str:
        return await self._admin("eod", "--date", str(day))

    async def ledger(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.v.ledger, sql, params)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def venue(config: Path) -> Iterator[VenueThread]:
    v = VenueThread(config).start()
    try:
        yield v
    finally:
        v.stop()


@pytest.mark.slow
async def test_three_days_over_fix(venue: VenueThread, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driver = FixDriver(venue)
    messages = await play(driver)
    assert messages[0].startswith("2026-12-24 settled: 4 trades")
    assert "nothing changed" in await driver.eod(DAY3)
    assert "no breaks" in await driver._admin("reconcile")
    prices = config.parent / "index.csv"
    prices.write_text("time,underlying,price\n2026-12-27T09:00:00Z,BTC-USD,103000\n")
    assert "1 index prints, 1 new" in await driver._admin("index-file", str(prices))
    assert "0 new, 1 already held" in await driver._admin("index-file", str(prices))
    ok, out = await asyncio.to_thread(admin.request, driver.var, "eod", ["--date", "2026-02-30"], 30.0)
    assert not ok and "--date: expected YYYY-MM-DD" in out
    # refusals raised where the ledger is (the drop-copy process) reach the operator as they were
    ok, out = await asyncio.to_thread(admin.request, driver.var, "eod", ["--date", "2027-01-30"], 30.0)
    assert not ok and "has not ended" in out, out
    ok, out = await asyncio.to_thread(admin.request, driver.var, "index-file", [str(config.parent / "missing.csv")], 30.0)
    assert not ok and "missing.csv: cannot read" in out, out
    await asyncio.to_thread(venue.stop)
    # the venue stopped: the CLI opens the ledger itself
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["clearing", "reconcile", "--config", str(config)]) == 0
    assert "no breaks" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["eod", "--date", str(DAY3), "--config", str(config)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["clearing", "index-file", str(prices), "--config", str(config)]) == 0
    assert "0 new, 1 already held" in capsys.readouterr().out


def test_a_venue_without_clearing_members_still_keeps_its_ledger(tmp_path: Path) -> None:
    """The drop-copy process holds the ledger whether or not any member is configured; with
    none it runs the ledger alone and listens for no drop-copy session."""
    v = VenueThread(write_config(tmp_path, lambda data: data.update(clearing_members=[]))).start()
    try:
        a, b = v.logged_on("FIRM1"), v.logged_on("FIRM2")
        a.new_order("A1", "BTC-PERP", 1, 2, "100000", account="FIRM1-A")
        a.expect_type("8", t11="A1", t150="0")
        b.new_order("B1", "BTC-PERP", 2, 2, "100000", account="FIRM2-A")
        b.expect_type("8", t11="B1", t150="F")
        # a job runs after everything published before it: the trade is there, no waiting
        assert v.ledger("SELECT buy_account, sell_account, qty FROM trades") == [("FIRM1-A", "FIRM2-A", 2)]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", v.cfg.venue.drop_copy.port), timeout=2).close()
        ok, out = admin.request(v.cfg.var_path(), "index", ["BTC-USD", "100500"], 30)
        assert ok, out
        assert v.venue is not None
        last_seq = v.venue.sequencer.next_seq - 1
    finally:
        v.stop()
    # a clean stop tells the process the last seq and waits for it: the file holds everything
    # published (no catch-up needed at the next start) and the books' tops as they stood
    with duckdb.connect(str(v.cfg.var_path() / v.cfg.clearing.ledger_file), read_only=True) as con:
        assert con.execute("SELECT last_seq FROM ledger_state").fetchall() == [(last_seq,)]
        assert con.execute("SELECT count(*) FROM trades").fetchall() == [(1,)]
        assert con.execute("SELECT underlying, price FROM index_prices").fetchall() == [("BTC-USD", Decimal(100500))]
        assert con.execute("SELECT seq FROM book_tops WHERE symbol = 'BTC-PERP'").fetchall() == [(last_seq,)]


def test_a_restarted_venue_stops_trading_what_the_ledger_settled_at_expiry(tmp_path: Path) -> None:
    """Books are built from reference data at start, so a contract the ledger settled at
    expiry would trade again: the venue reads the ledger (read-only, before the drop-copy
    process opens it) and moves such contracts to the expired phase through the sequencer."""
    config = write_config(tmp_path)
    VenueThread(config).start().stop()
    cfg = load_config(config)
    with duckdb.connect(str(cfg.var_path() / cfg.clearing.ledger_file)) as con:  # as `venue eod` leaves it past expiry
        con.execute("UPDATE instruments SET status = 'expired' WHERE symbol = 'BTC-26DEC26'")
    v = VenueThread(config).start()
    try:
        assert v.venue is not None
        assert v.call(lambda: v.venue.engine.books["BTC-26DEC26"].phase) is TradingPhase.EXPIRED  # type: ignore[union-attr]
        assert v.call(lambda: v.venue.engine.books["BTC-PERP"].phase) is not TradingPhase.EXPIRED  # type: ignore[union-attr]
        a = v.logged_on("FIRM1")
        a.new_order("X1", "BTC-26DEC26", 1, 1, "100000", account="FIRM1-A")
        assert get(a.expect_type("8", t11="X1"), 150) == "8"
    finally:
        v.stop()
