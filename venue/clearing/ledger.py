"""The clearing ledger: one DuckDB file, written by one thread, fed the sequencer's events.

`Ledger.ingest(events)` takes one or more sequencer batches and writes them in a single
transaction: trades (with fees and clearing members), the positions they change, deposits
and withdrawals as double-entry cash movements, index and mark prices. Book deltas are not
followed (they are most of the stream and would cost matching the GIL): the venue hands the
ledger each book's top when it settles and when it stops (`store_tops`).

Bulk path: each field of the batch's fills is gathered into a column by one list
comprehension, the columns become an Arrow table, and one `INSERT ... SELECT` per table
writes it (DuckDB scans the Arrow table in place; fees, prices as DECIMAL from integer
ticks and clearing members are computed in that statement); never row by row. Positions
(positions.py) are kept in memory and written every POSITIONS_EVERY_S (and before a
settlement run, a reconciliation and a close); a reopen replays the trades written after
them. The Python left per trade is those columns and one pass over the positions, about
3-5 µs a trade on this machine (bench/ledger.py); nothing in it is kept per trade that the
garbage collector would have to walk.

Idempotence: TradeIDs come from a counter in the core, strictly increasing and reproduced
by a journal replay. The ledger keeps the highest TradeID it holds; a Fill at or below it is
a replay and changes nothing (it is checked against the stored trade, and a mismatch, which
means TradeIDs were reused, is logged as a break). Deposits are keyed by (sequence number,
account), marks by sequence number.

Positions use the average-cost method in integer ticks (positions.py says how and why
they are kept in Python rather than summed in SQL).

Not thread-safe: one thread owns a Ledger (venue/clearing/writer.py in the venue process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from venue.clearing import schema
from venue.clearing.formulas import FeeRule, to_cents
from venue.clearing.positions import E9, Position, PositionBook, apply_fills, take_changed
from venue.clearing.settings import ClearingConfig
from venue.events import CollateralChanged, Event, Fill, IndexPriceSet, MarkPriceSet
from venue.instruments import Instrument
from venue.types import Side

log = logging.getLogger(__name__)

_BUY = Side.BUY
POSITIONS_EVERY_S = 5.0  # how often the writer persists changed positions while trades flow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB 2 keeps a
    half-read result open on the connection and refuses the next statement)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> Any:
    row = one(con, sql, params)
    return row[0] if row is not None else None


@contextmanager
def scanning(con: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    """Arrow tables visible to SQL under the given names for the block (DuckDB reads them
    in place, no copy)."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def utc(ts_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ts_us)


def _table(rows: list[tuple[object, ...]], columns: tuple[tuple[str, pa.DataType], ...]) -> pa.Table:
    cols = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(c, t) for c, (_, t) in zip(cols, columns)], names=[n for n, _ in columns])


_I64, _STR = pa.int64(), pa.string()
_TRADE_NAMES = ("trade_id", "seq", "ts_us", "symbol", "price_ticks", "qty", "buy_aggr", "taker_account", "taker_firm",
                "taker_order_id", "taker_exec_id", "maker_account", "maker_firm", "maker_order_id", "maker_exec_id")
FillSides = tuple[Sequence[str], Sequence[int], Sequence[int], Sequence[bool], Sequence[str], Sequence[str]]


def _trade_batch(fills: list[Fill]) -> tuple[pa.Table, FillSides]:
    """The fills as an Arrow table for the INSERT, and the columns `apply_fills` reads
    (symbol, price, qty, buyer aggressed, taker and maker accounts). One list comprehension
    per field, which allocates nothing the garbage collector tracks (zip(*fills) reads each
    fill once, but makes an iterator per fill, a tracked object each, and the young
    collections they set off cost more than the transposition saves). Taker and maker as
    the core reports them; the INSERT turns them into buyer and seller."""
    t_entries, m_entries = [f[7][7] for f in fills], [f[12][7] for f in fills]  # the orders' NewOrder
    symbol, price, qty = [f[3] for f in fills], [f[4] for f in fills], [f[5] for f in fills]
    t_account, m_account = [e.account for e in t_entries], [e.account for e in m_entries]
    buy_aggr = [f[6] is _BUY for f in fills]
    table = pa.Table.from_arrays([
        pa.array([f[2] for f in fills], _I64), pa.array([f[0] for f in fills], _I64), pa.array([f[1] for f in fills], _I64),
        pa.array(symbol, _STR), pa.array(price, _I64), pa.array(qty, _I64), pa.array(buy_aggr, pa.bool_()),
        pa.array(t_account, _STR), pa.array([e.firm for e in t_entries], _STR), pa.array([f[7][0] for f in fills], _I64),
        pa.array([f[8] for f in fills], _I64),
        pa.array(m_account, _STR), pa.array([e.firm for e in m_entries], _STR), pa.array([f[12][0] for f in fills], _I64),
        pa.array([f[13] for f in fills], _I64),
    ], names=_TRADE_NAMES)
    return table, (symbol, price, qty, buy_aggr, t_account, m_account)


_CASH_COLUMNS = (
    ("movement_id", pa.string()), ("account", pa.string()), ("business_date", pa.date32()), ("ts_us", pa.int64()), ("kind", pa.string()),
    ("symbol", pa.string()), ("amount", pa.decimal128(18, 2)), ("currency", pa.string()), ("reference", pa.string()),
)
_INDEX_COLUMNS = (("seq", pa.int64()), ("ts_us", pa.int64()), ("underlying", pa.string()), ("price", pa.decimal128(18, 8)))
_MARK_COLUMNS = (("seq", pa.int64()), ("ts_us", pa.int64()), ("symbol", pa.string()), ("price", pa.decimal128(18, 8)))


def _insert_trades(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> None:
    """One INSERT for the batch. Fees are computed here, in DuckDB, by the same integer rule
    as formulas.FeeRule (half-even of tick-lots x num / den, from the fee_rules table), and
    clearing members by joining the accounts table: no per-trade work in Python."""
    with scanning(con, batch=batch):
        _insert_trades_sql(con)


def _insert_trades_sql(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO trades SELECT b.trade_id, b.seq, b.ts_us, make_timestamp(b.ts_us), b.symbol, b.price_ticks,"
        " CAST(b.price_ticks * i.tick_size AS DECIMAL(18,8)), b.qty, CASE WHEN b.buy_aggr THEN 'BUY' ELSE 'SELL' END,"
        " b.buy_account, b.buy_firm, coalesce(ba.clearing_member, ''), b.buy_order_id, b.buy_exec_id,"
        " fee_cents(b.price_ticks * b.qty, CASE WHEN b.buy_aggr THEN f.taker_num ELSE f.maker_num END,"
        "           CASE WHEN b.buy_aggr THEN f.taker_den ELSE f.maker_den END),"
        " b.sell_account, b.sell_firm, coalesce(sa.clearing_member, ''), b.sell_order_id, b.sell_exec_id,"
        " fee_cents(b.price_ticks * b.qty, CASE WHEN b.buy_aggr THEN f.maker_num ELSE f.taker_num END,"
        "           CASE WHEN b.buy_aggr THEN f.maker_den ELSE f.taker_den END)"
        " FROM (SELECT trade_id, seq, ts_us, symbol, price_ticks, qty, buy_aggr,"
        "       CASE WHEN buy_aggr THEN taker_account ELSE maker_account END AS buy_account,"
        "       CASE WHEN buy_aggr THEN taker_firm ELSE maker_firm END AS buy_firm,"
        "       CASE WHEN buy_aggr THEN taker_order_id ELSE maker_order_id END AS buy_order_id,"
        "       CASE WHEN buy_aggr THEN taker_exec_id ELSE maker_exec_id END AS buy_exec_id,"
        "       CASE WHEN buy_aggr THEN maker_account ELSE taker_account END AS sell_account,"
        "       CASE WHEN buy_aggr THEN maker_firm ELSE taker_firm END AS sell_firm,"
        "       CASE WHEN buy_aggr THEN maker_order_id ELSE taker_order_id END AS sell_order_id,"
        "       CASE WHEN buy_aggr THEN maker_exec_id ELSE taker_exec_id END AS sell_exec_id FROM batch) b"
        " JOIN instruments i USING (symbol) JOIN fee_rules f USING (symbol)"
        " LEFT JOIN accounts ba ON ba.account = b.buy_account LEFT JOIN accounts sa ON sa.account = b.sell_account"
    )


def _store_positions(con: duckdb.DuckDBPyConnection, batch: pa.Table, as_of_trade_id: int) -> None:
    with scanning(con, batch=batch):
        con.execute("INSERT OR REPLACE INTO positions SELECT * FROM batch")
    con.execute("UPDATE ledger_state SET positions_trade_id = ?", (as_of_trade_id,))


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
    last_seq: int
    positions_trade_id: int


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
        self.books: dict[str, PositionBook] = {}
        self.max_trade_id = 0
        self.last_seq = 0
        self._checkpointed_at = time.monotonic()
        self.reload()
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
        """Prepare and write a run of events, positions included (the single-threaded path)."""
        return self.write(self.prepare(events, checkpoint=True))

    def prepare(self, events: Iterable[Event], *, checkpoint: bool | None = None) -> Prepared:
        """The Python half of ingest: pick out what the ledger keeps, update positions in
        memory, build Arrow columns. `write` must follow, in the same order; the venue's
        writer runs the two on two threads so that this overlaps DuckDB's work.

        Positions are written with the batch when `checkpoint` says so, or by default once
        `POSITIONS_EVERY_S` has passed: every position is derived from trades, so the table
        only needs to be current as of `positions_trade_id` and a reopen replays the trades
        after it (rewriting 200,000 positions per batch would cost more than the trades)."""
        events = events if isinstance(events, list) else list(events)
        cash: list[tuple[object, ...]] = []
        index: list[tuple[object, ...]] = []
        marks: list[tuple[object, ...]] = []
        fills = [ev for ev in events if type(ev) is Fill]
        hwm = self.max_trade_id
        dups = [f for f in fills if f[2] <= hwm] if fills and fills[0][2] <= hwm else []
        if dups:
            fills = [f for f in fills if f[2] > hwm]
        trades = None
        if fills:
            trades, sides = _trade_batch(fills)
            apply_fills(self.books, *sides)
            hwm = fills[-1][2]
        ev = None
        for ev in events:
            if type(ev) is Fill:
                continue
            if type(ev) is CollateralChanged:
                kind = "DEPOSIT" if ev.amount > 0 else "WITHDRAWAL"
                mid = f"COLL-{ev.seq}-{ev.account}"
                day = utc(ev.ts).date()
                amount = to_cents(ev.amount)  # the cash ledger keeps cents (the core takes any decimal)
                cash.append((mid, ev.account, day, ev.ts, kind, None, amount, ev.currency, ev.reference))
                cash.append((mid, schema.BANK_ACCOUNT, day, ev.ts, kind, None, -amount, ev.currency, ev.reference))
            elif type(ev) is IndexPriceSet:
                index.append((ev.seq, ev.ts, ev.underlying, ev.price))
            elif type(ev) is MarkPriceSet:
                inst = self.instruments.get(ev.symbol)
                if inst is not None:
                    marks.append((ev.seq, ev.ts, ev.symbol, inst.price(ev.price)))
        self.max_trade_id = hwm
        now = time.monotonic()
        due = checkpoint if checkpoint is not None else now - self._checkpointed_at >= POSITIONS_EVERY_S
        positions = None
        if due:
            positions = take_changed(self.books)
            self._checkpointed_at = now
        return Prepared(
            trades=trades,
            n_trades=len(fills),
            positions=positions,
            positions_trade_id=hwm,
            dups=dups, cash=cash, index=index, marks=marks,
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
                _store_positions(con, prep.positions, prep.positions_trade_id)
            if prep.cash:
                with scanning(con, cash=_table(prep.cash, _CASH_COLUMNS)):
                    con.execute("INSERT INTO cash_entries SELECT b.* FROM cash b ANTI JOIN cash_entries c USING (movement_id, account)")
            if prep.index:
                with scanning(con, new_index=_table(prep.index, _INDEX_COLUMNS)):
                    con.execute("INSERT INTO index_prices SELECT * FROM new_index ON CONFLICT DO NOTHING")
            if prep.marks:
                with scanning(con, new_marks=_table(prep.marks, _MARK_COLUMNS)):
                    con.execute("INSERT INTO mark_prices SELECT * FROM new_marks ON CONFLICT DO NOTHING")
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

    def checkpoint(self) -> None:
        """Write every position changed since the last write (own transaction). Only while
        no `prepare` runs: the writer calls it from a job or after its threads stopped."""
        self.con.execute("BEGIN")
        try:
            self.store_positions()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self.reload()
            raise

    def store_positions(self) -> None:
        """Write the changed positions inside the caller's transaction."""
        changed = take_changed(self.books)
        if changed is not None:
            _store_positions(self.con, changed, self.max_trade_id)
            self._checkpointed_at = time.monotonic()

    @property
    def positions(self) -> dict[tuple[str, str], Position]:
        """Every position by (account, symbol), as of now."""
        return {(a, s): Position(*p) for s, book in self.books.items() for a, p in book.held.items()}

    def close_positions(self, symbol: str, price_e9: int) -> None:
        """Close every open position in `symbol` at a final settlement price (1e-9 ticks)."""
        book = self.books.get(symbol)
        if book is None:
            return
        for account, pos in book.held.items():
            if pos[0]:
                book.held[account] = Position(*pos).close(price_e9)
                book.changed.add(account)

    def store_tops(self, tops: Mapping[str, tuple[int | None, int | None]], seq: int) -> None:
        """Each book's best bid and ask (ticks) as the venue holds them, for the settlement
        price's mid rule (and a stopped venue's next settlement run)."""
        rows = [(s, self.instruments[s].price(b) if b is not None else None, self.instruments[s].price(a) if a is not None else None, seq)
                for s, (b, a) in tops.items() if s in self.instruments]
        self.con.executemany("INSERT OR REPLACE INTO book_tops VALUES (?, ?, ?, ?)", rows)

    def reload(self) -> None:
        """Positions and the TradeID high-water mark as stored (at open, and after a failed
        write): the positions table, then the trades written after it, in TradeID order."""
        self.books = {}
        for acct, sym, qty, avg, flow in self.con.execute("SELECT account, symbol, qty, avg_ticks, flow_ticks FROM positions").fetchall():
            book = self.books.get(sym)
            if book is None:
                book = self.books[sym] = PositionBook()
            book.held[acct] = (qty, int(avg * E9), int(flow * E9))
        state = one(self.con, "SELECT last_seq, positions_trade_id FROM ledger_state")
        assert state is not None  # the schema inserts its one row
        self.last_seq, as_of = state
        trades = self.con.execute(
            "SELECT symbol, price_ticks, qty, buy_account, sell_account FROM trades WHERE trade_id > ? ORDER BY trade_id", (as_of,)
        ).fetchall()
        # as buyer-aggressed fills (taker = buyer): the buyer's side is booked first either way
        apply_fills(self.books, [t[0] for t in trades], [t[1] for t in trades], [t[2] for t in trades], [True] * len(trades),
                    [t[3] for t in trades], [t[4] for t in trades])
        self.max_trade_id = int(scalar(self.con, "SELECT coalesce(max(trade_id), 0) FROM trades"))

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

    def load_index_prints(self, prints: Sequence[tuple[int, str, Decimal]]) -> int:
        """Index prints from a price file (time µs, underlying, price), for settling days
        whose index did not come through the venue. Keyed by time: a print is stored with
        seq = -time, so loading a file twice adds nothing. Returns the prints added."""
        before = int(scalar(self.con, "SELECT count(*) FROM index_prices"))
        self.con.execute("BEGIN")
        try:
            with scanning(self.con, prints=_table([(-ts, ts, u, p) for ts, u, p in prints], _INDEX_COLUMNS)):
                self.con.execute("INSERT INTO index_prices SELECT * FROM prints ON CONFLICT DO NOTHING")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return int(scalar(self.con, "SELECT count(*) FROM index_prices")) - before

    # ------------------------------------------------------------------ queries

    def balance(self, account: str) -> Decimal:
        return Decimal(scalar(self.con, "SELECT coalesce(sum(amount), 0) FROM cash_entries WHERE account = ?", (account,)))

