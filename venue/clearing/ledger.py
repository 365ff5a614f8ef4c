"""The clearing ledger: one DuckDB file, written by one thread, fed the sequencer's events.

`Ledger.ingest(events)` takes one or more sequencer batches and writes them in a single
transaction: trades (with fees and clearing members), the positions they change, deposits
and withdrawals as double-entry cash movements, index and mark prices. Book deltas are not
followed (they are most of the stream and would cost matching the GIL): the venue hands the
ledger each book's top when it settles and when it stops (`store_tops`).

Bulk path: each field of the batch's fills is gathered into a column by one list
comprehension, Arrow compute derives the rest by columns (fees, prices as DECIMAL from
integer ticks, clearing members: `_trade_batch`), and one `INSERT ... SELECT` per table
writes it (DuckDB scans the Arrow table in place); never row by row. Positions
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
import pyarrow.compute as pc

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
_PRICE, _FEE = pa.decimal128(18, 8), pa.decimal128(18, 2)
_CENT = pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))
_TRADE_NAMES = ("trade_id", "seq", "ts_us", "ts", "symbol", "price_ticks", "price", "qty", "aggressor",
                "buy_account", "buy_firm", "buy_member", "buy_order_id", "buy_exec_id", "buy_fee",
                "sell_account", "sell_firm", "sell_member", "sell_order_id", "sell_exec_id", "sell_fee")
FillSides = tuple[Sequence[str], Sequence[int], Sequence[int], Sequence[bool], Sequence[str], Sequence[str]]


class TradeTerms:
    """What turns a fill into a trades row beside the fill itself, as Arrow lookup tables:
    each instrument's tick size and fee rules, each account's clearing member."""

    def __init__(self, instruments: Iterable[Instrument], accounts: Mapping[str, tuple[str, str]], clearing: ClearingConfig) -> None:
        insts = list(instruments)
        self.symbols = pa.array([i.symbol for i in insts], _STR)
        self.tick = pa.array([i.tick_size for i in insts], _PRICE)
        rules = []
        for i in insts:
            rates = clearing.fee_rates(i.symbol)
            per_tick_lot = i.tick_size * i.lot_size * i.multiplier
            rules.append((FeeRule(per_tick_lot, rates.maker), FeeRule(per_tick_lot, rates.taker)))
        self.rules = {i.symbol: r for i, r in zip(insts, rules)}
        try:  # the rules as 64-bit integers, if they fit; else every fee is taken the exact Python way
            self.num_den: tuple[pa.Array, ...] | None = tuple(pa.array(col, _I64) for col in zip(*((m.num, m.den, t.num, t.den) for m, t in rules)))
        except OverflowError:
            self.num_den = None
        self.accounts = pa.array(list(accounts), _STR)
        self.members = pa.array([member for _, member in accounts.values()], _STR)

    def member(self, account: pa.Array) -> pa.Array:
        """Each account's clearing member, '' for an account no member clears."""
        return pc.fill_null(pc.take(self.members, pc.index_in(account, value_set=self.accounts)), "")


def _half_even_div(num: pa.Array, den: pa.Array) -> pa.Array:
    """num / den rounded half to even, elementwise (formulas.div_half_even, vectorized; den > 0).
    On the magnitude, then signed: half-even is symmetric about zero. An overflow raises."""
    mag = pc.abs_checked(num)
    q = pc.divide(mag, den)  # integers, both >= 0: the floor
    twice_r = pc.multiply(pc.subtract(mag, pc.multiply(q, den)), 2)
    up = pc.or_(pc.greater(twice_r, den), pc.and_(pc.equal(twice_r, den), pc.equal(pc.bit_wise_and(q, 1), 1)))
    return pc.multiply(pc.add(q, pc.cast(up, _I64)), pc.cast(pc.sign(num), _I64))


def _fees(terms: TradeTerms, at: pa.Array, ticks: pa.Array, lots: pa.Array, buy: pa.Array,
          columns: tuple[list[str], list[int], list[int], list[bool]]) -> tuple[pa.Array, pa.Array]:
    """Buyer's and seller's fees in cents: the taker's rule for the aggressor, the maker's for
    the other. In 64-bit Arrow arithmetic; a batch where that would overflow (huge prices in
    ticks, or rules whose integers are large) takes formulas.FeeRule's exact Python integers."""
    if terms.num_den is not None:
        try:
            maker_num, maker_den, taker_num, taker_den = (pc.take(col, at) for col in terms.num_den)
            tick_lots = pc.multiply_checked(ticks, lots)
            return (_half_even_div(pc.multiply_checked(tick_lots, pc.if_else(buy, taker_num, maker_num)), pc.if_else(buy, taker_den, maker_den)),
                    _half_even_div(pc.multiply_checked(tick_lots, pc.if_else(buy, maker_num, taker_num)), pc.if_else(buy, maker_den, taker_den)))
        except pa.ArrowInvalid:
            pass
    rules = terms.rules
    buyer: list[int] = []
    seller: list[int] = []
    for symbol, price, qty, buy_aggr in zip(*columns):
        maker, taker = rules[symbol]
        buyer.append((taker if buy_aggr else maker).cents(price * qty))
        seller.append((maker if buy_aggr else taker).cents(price * qty))
    return pa.array(buyer, _I64), pa.array(seller, _I64)


def _fee(cents: pa.Array) -> pa.Array:
    return pc.cast(pc.multiply(pc.cast(cents, pa.decimal128(19, 0)), _CENT), _FEE)


def _trade_batch(fills: list[Fill], terms: TradeTerms) -> tuple[pa.Table, FillSides]:
    """The fills as the trades table's rows, and the columns `apply_fills` reads (symbol,
    price, qty, buyer aggressed, taker and maker accounts). Python gathers each field of the
    fills into a column by one list comprehension, which allocates nothing the garbage
    collector tracks (zip(*fills) reads each fill once, but makes an iterator per fill, a
    tracked object each, and the young collections they set off cost more than the
    transposition saves). The rest is Arrow compute, a few calls per batch whatever its
    size: buyer and seller from taker and maker, prices as DECIMAL from integer ticks, fees
    by the same integer rule as formulas.FeeRule, clearing members. So the INSERT is a plain
    copy: computed in SQL (joins, CASEs, the fee macro), its planning alone cost DuckDB 8 ms
    per ingest, on another core but every 50 ms under load."""
    t_entries, m_entries = [f[7][7] for f in fills], [f[12][7] for f in fills]  # the orders' NewOrder
    symbol, price, qty = [f[3] for f in fills], [f[4] for f in fills], [f[5] for f in fills]
    t_account, m_account = [e.account for e in t_entries], [e.account for e in m_entries]
    buy_aggr = [f[6] is _BUY for f in fills]
    sym, ticks, lots = pa.array(symbol, _STR), pa.array(price, _I64), pa.array(qty, _I64)
    buy = pa.array(buy_aggr, pa.bool_())
    taker = (pa.array(t_account, _STR), pa.array([e.firm for e in t_entries], _STR),
             pa.array([f[7][0] for f in fills], _I64), pa.array([f[8] for f in fills], _I64))
    maker = (pa.array(m_account, _STR), pa.array([e.firm for e in m_entries], _STR),
             pa.array([f[12][0] for f in fills], _I64), pa.array([f[13] for f in fills], _I64))
    buyer = [pc.if_else(buy, t, m) for t, m in zip(taker, maker)]
    seller = [pc.if_else(buy, m, t) for t, m in zip(taker, maker)]
    at = pc.index_in(sym, value_set=terms.symbols)
    buy_fee, sell_fee = _fees(terms, at, ticks, lots, buy, (symbol, price, qty, buy_aggr))
    ts_us = pa.array([f[1] for f in fills], _I64)
    table = pa.Table.from_arrays([
        pa.array([f[2] for f in fills], _I64), pa.array([f[0] for f in fills], _I64), ts_us, pc.cast(ts_us, pa.timestamp("us")),
        sym, ticks, pc.cast(pc.multiply(pc.cast(ticks, pa.decimal128(19, 0)), pc.take(terms.tick, at)), _PRICE), lots,
        pc.if_else(buy, "BUY", "SELL"),
        buyer[0], buyer[1], terms.member(buyer[0]), buyer[2], buyer[3], _fee(buy_fee),
        seller[0], seller[1], terms.member(seller[0]), seller[2], seller[3], _fee(sell_fee),
    ], names=_TRADE_NAMES)
    return table, (symbol, price, qty, buy_aggr, t_account, m_account)


_CASH_COLUMNS = (
    ("movement_id", pa.string()), ("account", pa.string()), ("business_date", pa.date32()), ("ts_us", pa.int64()), ("kind", pa.string()),
    ("symbol", pa.string()), ("amount", pa.decimal128(18, 2)), ("currency", pa.string()), ("reference", pa.string()),
)
_INDEX_COLUMNS = (("seq", pa.int64()), ("ts_us", pa.int64()), ("underlying", pa.string()), ("price", pa.decimal128(18, 8)))
_MARK_COLUMNS = (("seq", pa.int64()), ("ts_us", pa.int64()), ("symbol", pa.string()), ("price", pa.decimal128(18, 8)))


def _insert_trades(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> None:
    with scanning(con, batch=batch):
        con.execute("INSERT INTO trades SELECT * FROM batch")


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
        self.terms = TradeTerms(self.instruments.values(), self.accounts, clearing)
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
            maker, taker = self.terms.rules[inst.symbol]
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
            trades, sides = _trade_batch(fills, self.terms)
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

