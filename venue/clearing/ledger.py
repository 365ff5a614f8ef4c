"""The clearing ledger: one DuckDB file, written by one thread, fed the sequencer's events.

`Ledger.ingest(events)` takes one or more sequencer batches and writes them in a single
transaction: trades (with fees and clearing members), the positions they change, deposits
and withdrawals as double-entry cash movements, index and mark prices, and the top of each
book (for the settlement price's mid rule when the venue is stopped).

Bulk path: rows are gathered as tuples, turned into Arrow columns, and inserted with one
`INSERT ... SELECT` per table (DuckDB scans the Arrow table in place); never row by row.

Idempotence: TradeIDs come from a counter in the core, strictly increasing and reproduced
by a journal replay. The ledger keeps the highest TradeID it holds; a Fill at or below it is
a replay and changes nothing (it is checked against the stored trade, and a mismatch, which
means TradeIDs were reused, is logged as a break). Deposits are keyed by (sequence number,
account), marks by sequence number.

Positions use the average-cost method in integer ticks: the average entry price is kept in
units of 1e-9 tick (rounded half-even when a position grows), `flow` is the sum of
-signed qty x price, and realised P&L = flow + qty x average. Reducing a position leaves
the average unchanged; crossing through zero re-opens at the trade price.

Not thread-safe: one thread owns a Ledger (venue/clearing/writer.py in the venue process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from venue.clearing import schema
from venue.clearing.formulas import FeeRule
from venue.clearing.settings import ClearingConfig
from venue.events import CollateralChanged, Event, Fill, IndexPriceSet, MarkPriceSet, BookDelta
from venue.instruments import Instrument
from venue.types import Side

log = logging.getLogger(__name__)

_BUY = Side.BUY

E9 = 1_000_000_000


def decimal_column(unscaled: Sequence[int], scale: int, precision: int = 38) -> pa.Array:
    """An Arrow decimal128 column from integers already in units of 10^-scale (cents for
    scale 2): exact, and far cheaper than building Decimal objects."""
    raw = b"".join(v.to_bytes(16, "little", signed=True) for v in unscaled)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(unscaled), [None, pa.py_buffer(raw)])


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB 2 keeps a
    half-read result open on the connection and refuses the next statement)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> Any:
    row = one(con, sql, params)
    return row[0] if row is not None else None


def utc(ts_us: int) -> datetime:
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=timezone.utc)


@dataclass(slots=True)
class Position:
    qty: int = 0
    avg_e9: int = 0  # average entry price in 1e-9 ticks
    flow_e9: int = 0  # sum of -signed qty x price, 1e-9 tick-lots
    trades: int = 0
    last_trade_id: int = 0

    def apply(self, d: int, price_e9: int, trade_id: int) -> None:
        """Book a fill of signed `d` lots at `price_e9` (1e-9 ticks)."""
        n = self.qty
        self.flow_e9 -= d * price_e9
        self.trades += 1
        self.last_trade_id = trade_id
        total = n + d
        if n == 0 or (n > 0) is (d > 0):  # opening or adding: a new average, rounded half-even
            if n:
                den = total if total > 0 else -total
                q, r = divmod(self.avg_e9 * (n if n > 0 else -n) + price_e9 * (d if d > 0 else -d), den)
                self.avg_e9 = q + 1 if 2 * r > den or (2 * r == den and q & 1) else q
            else:
                self.avg_e9 = price_e9
        elif total == 0:
            self.avg_e9 = 0
        elif (total > 0) is not (n > 0):  # through zero: the rest opens at the trade price
            self.avg_e9 = price_e9
        self.qty = total

    def close(self, price_e9: int) -> None:
        """Close the whole position at a (final settlement) price in 1e-9 ticks."""
        self.flow_e9 += self.qty * price_e9
        self.qty = 0
        self.avg_e9 = 0


_TRADE_COLUMNS = (
    ("trade_id", pa.int64()), ("seq", pa.int64()), ("ts_us", pa.int64()), ("symbol", pa.string()), ("price_ticks", pa.int64()),
    ("qty", pa.int64()), ("buy_aggr", pa.bool_()), ("buy_account", pa.string()), ("buy_firm", pa.string()),
    ("buy_order_id", pa.int64()), ("buy_exec_id", pa.int64()), ("sell_account", pa.string()), ("sell_firm", pa.string()),
    ("sell_order_id", pa.int64()), ("sell_exec_id", pa.int64()),
)


def _trade_table(rows: list[tuple[object, ...]]) -> pa.Table:
    cols = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(c, t) for c, (_, t) in zip(cols, _TRADE_COLUMNS)], names=[n for n, _ in _TRADE_COLUMNS])


def _insert_trades(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> None:
    """One INSERT for the batch. Fees are computed here, in DuckDB, by the same integer rule
    as formulas.FeeRule (half-even of tick-lots x num / den, from the fee_rules table), and
    clearing members by joining the accounts table: no per-trade work in Python."""
    con.execute(
        "INSERT INTO trades SELECT b.trade_id, b.seq, b.ts_us, make_timestamp(b.ts_us), b.symbol, b.price_ticks,"
        " CAST(b.price_ticks * i.tick_size AS DECIMAL(18,8)), b.qty, CASE WHEN b.buy_aggr THEN 'BUY' ELSE 'SELL' END,"
        " b.buy_account, b.buy_firm, coalesce(ba.clearing_member, ''), b.buy_order_id, b.buy_exec_id,"
        " fee_cents(b.price_ticks * b.qty, CASE WHEN b.buy_aggr THEN f.taker_num ELSE f.maker_num END,"
        "           CASE WHEN b.buy_aggr THEN f.taker_den ELSE f.maker_den END),"
        " b.sell_account, b.sell_firm, coalesce(sa.clearing_member, ''), b.sell_order_id, b.sell_exec_id,"
        " fee_cents(b.price_ticks * b.qty, CASE WHEN b.buy_aggr THEN f.maker_num ELSE f.taker_num END,"
        "           CASE WHEN b.buy_aggr THEN f.maker_den ELSE f.taker_den END)"
        " FROM batch b JOIN instruments i USING (symbol) JOIN fee_rules f USING (symbol)"
        " LEFT JOIN accounts ba ON ba.account = b.buy_account LEFT JOIN accounts sa ON sa.account = b.sell_account"
    )


@dataclass(slots=True)
class Prepared:
    """One ingest's worth of rows, ready for DuckDB."""

    trades: pa.Table | None
    n_trades: int
    positions: pa.Table | None
    dups: list[Fill]
    cash: list[tuple[object, ...]]
    index: list[tuple[object, ...]]
    marks: list[tuple[object, ...]]
    tops: list[tuple[str, Decimal | None, Decimal | None, int]]
    last_seq: int


@dataclass(slots=True)
class IngestResult:
    trades: int = 0
    duplicates: int = 0
    breaks: int = 0
    movements: int = 0


class Ledger:
    def __init__(self, path: Path | str, *, instruments: Iterable[Instrument], accounts: Mapping[str, tuple[str, str]], clearing: ClearingConfig) -> None:
        """Open (creating if new) the ledger file. `accounts`: account -> (firm, clearing member)."""
        self.path = str(path)
        self.cfg = clearing
        self.con = duckdb.connect(self.path)
        self.con.execute(schema.DDL)
        self.instruments = {i.symbol: i for i in instruments}
        self.accounts = dict(accounts)
        self._sync_reference()
        self.positions: dict[tuple[str, str], Position] = {}
        self.max_trade_id = 0
        self.last_seq = 0
        self.reload()
        self._levels: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self.breaks: list[str] = []

    def _sync_reference(self) -> None:
        """Upsert instruments and accounts from the venue's reference data, keeping each
        instrument's settlement status (an expired contract stays expired)."""
        rows = [
            (i.symbol, i.kind.value, i.underlying, i.quote_currency, i.tick_size, i.lot_size, i.multiplier, i.lot_size * i.multiplier,
             int(i.expiry.timestamp() * 1_000_000) if i.expiry else None, i.strike, i.right.value if i.right else None, i.funding_interval_s)
            for i in self.instruments.values()
        ]
        con = self.con
        con.execute("BEGIN")
        for r in rows:
            con.execute(
                "INSERT INTO instruments (symbol, kind, underlying, currency, tick_size, lot_size, multiplier, contract_size,"
                " expiry_us, strike, option_right, funding_interval_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (symbol) DO UPDATE SET kind = excluded.kind, underlying = excluded.underlying, currency = excluded.currency,"
                " tick_size = excluded.tick_size, lot_size = excluded.lot_size, multiplier = excluded.multiplier,"
                " contract_size = excluded.contract_size, expiry_us = excluded.expiry_us, strike = excluded.strike,"
                " option_right = excluded.option_right, funding_interval_s = excluded.funding_interval_s",
                r,
            )
        for acct, (firm, member) in self.accounts.items():
            con.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)", (acct, firm, member))
        for inst in self.instruments.values():
            rates = self.cfg.fee_rates(inst.symbol)
            per_tick_lot = inst.tick_size * inst.lot_size * inst.multiplier
            maker, taker = FeeRule(per_tick_lot, rates.maker), FeeRule(per_tick_lot, rates.taker)
            con.execute("INSERT OR REPLACE INTO fee_rules VALUES (?, ?, ?, ?, ?)", (inst.symbol, maker.num, maker.den, taker.num, taker.den))
        con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ ingest

    def ingest(self, events: Iterable[Event]) -> IngestResult:
        """Prepare and write a run of events (the single-threaded path)."""
        return self.write(self.prepare(events))

    def prepare(self, events: Iterable[Event]) -> Prepared:
        """The Python half of ingest: pick out what the ledger keeps, update positions in
        memory, build Arrow columns. `write` must follow, in the same order; the venue's
        writer runs the two on two threads so that this overlaps DuckDB's work."""
        trades: list[tuple[object, ...]] = []
        dups: list[Fill] = []
        cash: list[tuple[object, ...]] = []
        index: list[tuple[object, ...]] = []
        marks: list[tuple[object, ...]] = []
        tops: dict[str, int] = {}
        dirty: set[tuple[str, str]] = set()
        positions, hwm, dirty_add = self.positions, self.max_trade_id, dirty.add
        ev = None
        for ev in events:
            if type(ev) is Fill:
                seq, ts, tid, sym, price, qty, aggressor, taker, t_exec, _, _, _, maker, m_exec, _, _, _ = ev
                if tid <= hwm:
                    dups.append(ev)
                    continue
                hwm = tid
                if aggressor is _BUY:
                    b, s, b_exec, s_exec = taker, maker, t_exec, m_exec
                else:
                    b, s, b_exec, s_exec = maker, taker, m_exec, t_exec
                be, se = b[7], s[7]
                ba, sa = be.account, se.account
                trades.append((tid, seq, ts, sym, price, qty, aggressor is _BUY, ba, be.firm, b[0], b_exec, sa, se.firm, s[0], s_exec))
                p_e9 = price * E9
                key = (ba, sym)
                pos = positions.get(key) or positions.setdefault(key, Position())
                pos.apply(qty, p_e9, tid)
                dirty_add(key)
                key = (sa, sym)
                pos = positions.get(key) or positions.setdefault(key, Position())
                pos.apply(-qty, p_e9, tid)
                dirty_add(key)
            elif type(ev) is BookDelta:
                bids, asks = self._levels.setdefault(ev.symbol, ({}, {}))
                side = bids if ev.side is _BUY else asks
                if ev.qty:
                    side[ev.price] = ev.qty
                else:
                    side.pop(ev.price, None)
                tops[ev.symbol] = ev.seq
            elif type(ev) is CollateralChanged:
                kind = "DEPOSIT" if ev.amount > 0 else "WITHDRAWAL"
                mid = f"COLL-{ev.seq}-{ev.account}"
                day = utc(ev.ts).date()
                cash.append((mid, ev.account, day, ev.ts, kind, None, ev.amount, ev.currency, ev.reference))
                cash.append((mid, schema.BANK_ACCOUNT, day, ev.ts, kind, None, -ev.amount, ev.currency, ev.reference))
            elif type(ev) is IndexPriceSet:
                index.append((ev.seq, ev.ts, ev.underlying, ev.price))
            elif type(ev) is MarkPriceSet:
                inst = self.instruments.get(ev.symbol)
                if inst is not None:
                    marks.append((ev.seq, ev.ts, ev.symbol, inst.price(ev.price)))
        self.max_trade_id = hwm
        return Prepared(
            trades=_trade_table(trades) if trades else None,
            n_trades=len(trades),
            positions=self._position_table(dirty) if dirty else None,
            dups=dups, cash=cash, index=index, marks=marks,
            tops=[self._top(sym, seq) for sym, seq in tops.items() if sym in self.instruments],
            last_seq=max(self.last_seq, ev.seq) if ev is not None else self.last_seq,
        )

    def write(self, prep: Prepared) -> IngestResult:
        """The DuckDB half of ingest: one transaction, all or nothing. On failure the
        in-memory positions are reloaded from the file and the error raised."""
        con = self.con
        con.execute("BEGIN")
        try:
            if prep.trades is not None:
                _insert_trades(con, prep.trades)
            if prep.positions is not None:
                batch = prep.positions  # noqa: F841 (scanned by DuckDB)
                con.execute("INSERT OR REPLACE INTO positions SELECT * FROM batch")
            # operator-rate events (a few per batch at most): plain parameterised inserts
            if prep.cash:
                con.executemany(
                    "INSERT INTO cash_entries SELECT ?,?,?,?,?,?,?,?,? WHERE NOT EXISTS"
                    " (SELECT 1 FROM cash_entries WHERE movement_id = ? AND account = ?)", [c + c[:2] for c in prep.cash])
            if prep.index:
                con.executemany("INSERT INTO index_prices VALUES (?,?,?,?) ON CONFLICT DO NOTHING", prep.index)
            if prep.marks:
                con.executemany("INSERT INTO mark_prices VALUES (?,?,?,?) ON CONFLICT DO NOTHING", prep.marks)
            if prep.tops:
                con.executemany("INSERT OR REPLACE INTO book_tops VALUES (?, ?, ?, ?)", prep.tops)
            if prep.last_seq > self.last_seq:
                con.execute("UPDATE ledger_state SET last_seq = ?", (prep.last_seq,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.reload()
            raise
        self.last_seq = max(self.last_seq, prep.last_seq)
        res = IngestResult(trades=prep.n_trades, duplicates=len(prep.dups), movements=len(prep.cash) // 2)
        if prep.dups:
            res.breaks = self._check_duplicates(prep.dups)
        return res

    def _position_table(self, keys: Iterable[tuple[str, str]]) -> pa.Table:
        keys = list(keys)
        ps = [self.positions[k] for k in keys]
        return pa.table({
            "account": pa.array([k[0] for k in keys], pa.string()),
            "symbol": pa.array([k[1] for k in keys], pa.string()),
            "qty": pa.array([p.qty for p in ps], pa.int64()),
            "avg_ticks": decimal_column([p.avg_e9 for p in ps], 9),
            "flow_ticks": decimal_column([p.flow_e9 for p in ps], 9),
            "trades": pa.array([p.trades for p in ps], pa.int64()),
            "last_trade_id": pa.array([p.last_trade_id for p in ps], pa.int64()),
        })

    def _top(self, symbol: str, seq: int) -> tuple[str, Decimal | None, Decimal | None, int]:
        inst = self.instruments[symbol]
        bids, asks = self._levels[symbol]
        return symbol, inst.price(max(bids)) if bids else None, inst.price(min(asks)) if asks else None, seq

    def reload(self) -> None:
        """Positions and the TradeID high-water mark as stored (at open, and after a failed write)."""
        self.positions = {}
        for acct, sym, qty, avg, flow, trades, last in self.con.execute(
            "SELECT account, symbol, qty, avg_ticks, flow_ticks, trades, last_trade_id FROM positions"
        ).fetchall():
            self.positions[(acct, sym)] = Position(qty, int(avg * E9), int(flow * E9), trades, last)
        self.max_trade_id = int(scalar(self.con, "SELECT coalesce(max(trade_id), 0) FROM trades"))
        self.last_seq = int(scalar(self.con, "SELECT last_seq FROM ledger_state"))
    def _check_duplicates(self, dups: list[Fill]) -> int:
        """A replayed Fill must match the trade stored under its TradeID; count and log those
        that do not (TradeIDs reused: the core was restarted without replaying its journal)."""
        stored = {
            r[0]: r[1:]
            for r in self.con.execute(
                "SELECT trade_id, symbol, price_ticks, qty, buy_account, sell_account FROM trades WHERE trade_id BETWEEN ? AND ?",
                (min(f.trade_id for f in dups), max(f.trade_id for f in dups)),
            ).fetchall()
        }
        bad = 0
        for f in dups:
            got = (f.symbol, f.price, f.qty, f.buy.entry.account, f.sell.entry.account)
            if stored.get(f.trade_id) != got:
                bad += 1
                msg = f"trade {f.trade_id} replayed with different terms: ledger {stored.get(f.trade_id)}, event {got}"
                self.breaks.append(msg)
                log.error("ledger break: %s", msg)
        return bad

    # ------------------------------------------------------------------ queries

    def balance(self, account: str) -> Decimal:
        return Decimal(scalar(self.con, "SELECT coalesce(sum(amount), 0) FROM cash_entries WHERE account = ?", (account,)))
