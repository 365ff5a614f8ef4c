"""Positions per account and instrument, kept in memory by the ledger and written lazily.

Average-cost method in integer ticks: the average entry price is kept in units of 1e-9 tick
(rounded half-even when a position grows), `flow` is the sum of -signed qty x price, and
realised P&L = flow + qty x average. Reducing a position leaves the average unchanged;
crossing through zero re-opens at the trade price.

Why in Python and not a GROUP BY in DuckDB: quantity and flow are sums, but the average is
rounded at every fill that grows the position, so it depends on the order of the fills and
no aggregate reproduces it exactly. `apply_fills` is the one per-trade loop left in ingest;
`Position.apply` is the plain statement of the same rule that tests hold it to.

Layout: per instrument, account -> (qty, avg_e9, flow_e9) as a plain tuple, replaced on
each fill, and the set of accounts changed since the positions table was last written. A
tuple of ints is dropped from the garbage collector's tracking at its first collection, so
200,000 positions add nothing to the full collections of the venue process (as many
mutable objects made them slower, and ingest with them), and a replaced tuple is freed at
once, so updates trigger no collections either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa

E9 = 1_000_000_000

State = tuple[int, int, int]  # (qty, avg_e9, flow_e9), as Position


class Position(NamedTuple):
    qty: int = 0  # signed lots
    avg_e9: int = 0  # average entry price in 1e-9 ticks
    flow_e9: int = 0  # sum of -signed qty x price, 1e-9 tick-lots

    def apply(self, d: int, price_e9: int) -> Position:
        """The position after a fill of signed `d` lots at `price_e9` (1e-9 ticks).
        `apply_fills` inlines the same steps for speed; tests hold the two to the same answers."""
        n, avg = self.qty, self.avg_e9
        total = n + d
        if n == 0:
            avg = price_e9
        elif (n > 0) is (d > 0):  # adding: a new average, rounded half-even
            den = total if total > 0 else -total
            q, r = divmod(avg * (n if n > 0 else -n) + price_e9 * (d if d > 0 else -d), den)
            avg = q + 1 if 2 * r > den or (2 * r == den and q & 1) else q
        elif total == 0:
            avg = 0
        elif (total > 0) is not (n > 0):  # through zero: the rest opens at the trade price
            avg = price_e9
        return Position(total, avg, self.flow_e9 - d * price_e9)

    def close(self, price_e9: int) -> Position:
        """The whole position closed at a (final settlement) price in 1e-9 ticks."""
        return Position(0, 0, self.flow_e9 + self.qty * price_e9)


class PositionBook:
    """One instrument's positions, and the accounts whose position changed since the
    positions table was written."""

    __slots__ = ("changed", "held")

    def __init__(self) -> None:
        self.held: dict[str, State] = {}
        self.changed: set[str] = set()


def apply_fills(books: dict[str, PositionBook], symbols: Sequence[str], prices: Sequence[int], qtys: Sequence[int],
                buy_aggr: Sequence[bool], takers: Sequence[str], makers: Sequence[str]) -> None:
    """Both sides of each trade, in TradeID order, into `books` (symbol -> positions).

    `Position.apply` with the sign of the fill known: the buyer's side (+qty) then the
    seller's (-qty), each with its own branches, so no sign test or divmod result is built
    (this loop is most of ingest's Python time)."""
    for sym, price, qty, aggr, taker, maker in zip(symbols, prices, qtys, buy_aggr, takers, makers):
        book = books.get(sym)
        if book is None:
            book = books[sym] = PositionBook()
        held = book.held
        if aggr:
            buyer, seller = taker, maker
        else:
            buyer, seller = maker, taker
        p = price * E9
        v = qty * p
        pos = held.get(buyer)
        if pos is None:
            held[buyer] = (qty, p, -v)
        else:
            n, a, f = pos
            t = n + qty
            if n > 0:  # a long grows: new average, rounded half-even
                num = a * n + v
                a = num // t
                r = 2 * (num - a * t)
                if r > t or (r == t and a & 1):
                    a += 1
            elif t > 0:  # opens, or a short goes through zero: at the trade price
                a = p
            elif t == 0:
                a = 0
            held[buyer] = (t, a, f - v)  # (a short that shrinks keeps its average)
        pos = held.get(seller)
        if pos is None:
            held[seller] = (-qty, p, v)
        else:
            n, a, f = pos
            t = n - qty
            if n < 0:  # a short grows
                num = v - a * n
                a = num // -t
                r = 2 * (num + a * t)
                if r > -t or (r == -t and a & 1):
                    a += 1
            elif t < 0:
                a = p
            elif t == 0:
                a = 0
            held[seller] = (t, a, f + v)
        changed = book.changed
        changed.add(buyer)
        changed.add(seller)


def take_changed(books: dict[str, PositionBook]) -> pa.Table | None:
    """The changed positions as a table for the positions table (None if none changed);
    they count as written from here on. Column by column, with no tuple per position: a
    checkpoint writes up to every position, and 200,000 new tuples living a few
    milliseconds would set off the garbage collector's full collections."""
    accounts: list[str] = []
    symbols: list[str] = []
    states: list[State] = []
    for sym, book in books.items():
        if book.changed:
            changed = list(book.changed)
            accounts += changed
            symbols += [sym] * len(changed)
            states += map(book.held.__getitem__, changed)
            book.changed = set()
    if not accounts:
        return None
    return pa.table({
        "account": pa.array(accounts, pa.string()),
        "symbol": pa.array(symbols, pa.string()),
        "qty": pa.array([s[0] for s in states], pa.int64()),
        "avg_ticks": decimal_column([s[1] for s in states], 9),
        "flow_ticks": decimal_column([s[2] for s in states], 9),
    })


def decimal_column(unscaled: Sequence[int], scale: int, precision: int = 38) -> pa.Array:
    """An Arrow decimal128 column from integers already in units of 10^-scale: exact, and
    far cheaper than building Decimal objects. Values that fit 64 bits (nearly all) go
    through Arrow's integer cast, in C; the rest byte by byte."""
    decimal = pa.decimal128(precision, scale)
    try:
        whole = pa.array(unscaled, pa.int64()).cast(pa.decimal128(precision, 0))
    except OverflowError:
        raw = b"".join(v.to_bytes(16, "little", signed=True) for v in unscaled)
        return pa.Array.from_buffers(decimal, len(unscaled), [None, pa.py_buffer(raw)])
    # the same 128-bit integers, read with the scale: value x 10^-scale
    return pa.Array.from_buffers(decimal, len(whole), [None, whole.buffers()[1]], offset=whole.offset)
