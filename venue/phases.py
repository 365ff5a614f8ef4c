"""Trading phases, the opening auction and the clock's commands, as a part of MatchingEngine.

PhaseControl is a mixin of MatchingEngine (venue/matching.py), split out by concern: it
changes state only through the engine's own helpers and keeps the engine's rules (pure,
no clock, refusals as events). Phases move as PHASE_MOVES allows:

    PRE_OPEN  collects limit and stop orders without matching
    OPEN      uncrosses what pre-open collected at one price (`equilibrium`), then matches
    HALTED    refuses entries and replaces, accepts cancels
    CLOSED    the same, and expires DAY orders
    EXPIRED   cancels every order; final

ExpireOrders (the sequencer issues it when a GTD order falls due) and EndOfDay (the
sequencer issues it when the UTC day ends: DAY orders expire, done orders' ClOrdIDs are
forgotten) are the commands time brings.
"""

from __future__ import annotations

import heapq
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from mypy_extensions import trait

from venue.book import Book, Order
from venue.commands import EndOfDay, ExpireOrders, SetPhase
from venue.events import CommandRejected, Event, Fill, OrderView, PhaseChanged, make
from venue.order_index import ClOrdIndex
from venue.rejects import RejectReason
from venue.types import (
    PH_CLOSED,
    PH_EXPIRED,
    PH_HALTED,
    PH_OPEN,
    PH_PRE_OPEN,
    S_CANCELED,
    S_EXPIRED,
    STP_CANCEL_AGGRESSING,
    STP_CANCEL_RESTING,
    TIF_DAY,
    OrdStatus,
)

if TYPE_CHECKING:
    from venue.matching import PreTradeCheck

PHASE_MOVES = {
    PH_PRE_OPEN: {PH_OPEN, PH_HALTED, PH_CLOSED, PH_EXPIRED},
    PH_OPEN: {PH_HALTED, PH_CLOSED, PH_PRE_OPEN, PH_EXPIRED},
    PH_HALTED: {PH_OPEN, PH_PRE_OPEN, PH_CLOSED, PH_EXPIRED},
    PH_CLOSED: {PH_PRE_OPEN, PH_OPEN, PH_EXPIRED},
    PH_EXPIRED: set(),
}


@trait
class PhaseControl:
    """The phase, auction and expiry commands of MatchingEngine (see the module docstring)."""

    # what the mixin uses of MatchingEngine
    books: dict[str, Book]
    orders: dict[int, Order]
    by_cl_ord_id: ClOrdIndex
    retired: list[ClOrdIndex]
    positions: dict[tuple[str, str], int]
    pre_trade: PreTradeCheck | None
    gtd: list[tuple[int, int]]
    next_exec_id: int
    next_trade_id: int
    @abstractmethod
    def _remove_live(self, book: Book, order: Order) -> None:
        """Take a live order off its book or the stops."""
    @abstractmethod
    def _end(self, seq: int, ts: int, book: Book, order: Order, events: list[Event], status: OrdStatus, text: str, view: OrderView | None = None) -> None:
        """Close an order with a final report."""
    @abstractmethod
    def _ro_room(self, order: Order, symbol: str) -> int | None:
        """How much a reduce-only order may still fill."""
    @abstractmethod
    def _after_trades(self, seq: int, ts: int, book: Book, events: list[Event]) -> None:
        """Trigger the stops that the last trades reached."""
    @abstractmethod
    def cancel_where(self, seq: int, ts: int, pred: Callable[[Order], bool], status: OrdStatus, text: str) -> list[Event]:
        """Cancel every live order `pred` picks."""

    def _set_phase(self, seq: int, ts: int, cmd: SetPhase) -> list[Event]:
        book = self.books.get(cmd.symbol)
        if book is None:
            return [CommandRejected(seq, ts, repr(cmd), RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}")]
        if cmd.phase not in PHASE_MOVES[book.phase]:
            return [CommandRejected(seq, ts, repr(cmd), RejectReason.INVALID_ORDER, f"{cmd.symbol} cannot go from {book.phase.name} to {cmd.phase.name}")]
        book.phase = cmd.phase
        events: list[Event] = [PhaseChanged(seq, ts, cmd.symbol, cmd.phase)]
        if cmd.phase is PH_OPEN:
            self._uncross(seq, ts, book, events)
            self._after_trades(seq, ts, book, events)
        elif cmd.phase is PH_CLOSED:
            events += self.cancel_where(seq, ts, lambda o: o.view.entry.symbol == cmd.symbol and o.view.entry.tif is TIF_DAY, S_EXPIRED, "DAY order expired: instrument closed")
        elif cmd.phase is PH_EXPIRED:
            events += self.cancel_where(seq, ts, lambda o: o.view.entry.symbol == cmd.symbol, S_CANCELED, "instrument expired")
        return events

    def _uncross(self, seq: int, ts: int, book: Book, events: list[Event]) -> None:
        """Open a crossed book at one price: the price that trades the most; then the least
        imbalance; then the nearest the last price. Within it, price-time priority; the
        later order of each pair is the taker, and its STP mode settles a self-match."""
        price = equilibrium(book)
        if price is None:
            return
        while book.best_bid is not None and book.best_ask is not None and book.best_bid >= price >= book.best_ask:
            bid, ask = book.bids[book.best_bid].head, book.asks[book.best_ask].head
            assert bid is not None and ask is not None
            taker, maker = (bid, ask) if bid.order_id > ask.order_id else (ask, bid)
            if bid.stp_key == ask.stp_key:
                mode = taker.view.entry.stp
                for o, cancel in ((maker, mode is not STP_CANCEL_AGGRESSING), (taker, mode is not STP_CANCEL_RESTING)):
                    if cancel:
                        self._remove_live(book, o)
                        self._end(seq, ts, book, o, events, S_CANCELED, "self-trade prevention at the opening auction")
                price = equilibrium(book)  # the canceled order's volume is gone: re-price what still crosses
                if price is None:
                    return
                continue
            flat = [o for o in (bid, ask) if self._ro_room(o, book.symbol) == 0]
            if flat:  # reduce-only orders whose accounts earlier auction fills flattened
                for o in flat:
                    self._remove_live(book, o)
                    self._end(seq, ts, book, o, events, S_CANCELED, f"reduce-only: position now {book.instrument.show_qty(self.positions.get((o.view.entry.account, book.symbol), 0))}")
                price = equilibrium(book)
                if price is None:
                    return
                continue
            self._cross(seq, ts, book, taker, maker, price, events)

    def _cross(self, seq: int, ts: int, book: Book, taker: Order, maker: Order, price: int, events: list[Event]) -> None:
        """One auction fill between the heads of the best bid and best ask, at the auction
        price. An order keeps its place unless its shown slice is used up."""
        qty = min(taker.visible, maker.visible)
        for o in (taker, maker):
            room = self._ro_room(o, book.symbol)
            if room is not None and room < qty:  # a reduce-only order fills only down to flat
                qty = room
        for o in (taker, maker):
            book.fill(o, qty, price)
            if not o.leaves:
                del self.orders[o.order_id]
            key = (o.view.entry.account, book.symbol)
            self.positions[key] = self.positions.get(key, 0) + o.side.sign * qty
        tid = self.next_trade_id
        self.next_trade_id = tid + 1
        eid = self.next_exec_id
        self.next_exec_id = eid + 2
        events.append(make(Fill, (seq, ts, tid, book.symbol, price, qty, taker.side, taker.view, eid, taker.leaves, taker.cum, taker.cost,
                           maker.view, eid + 1, maker.leaves, maker.cum, maker.cost)))
        book.last_px = price
        if self.pre_trade is not None:
            self.pre_trade.traded(book.symbol, price, qty, taker, maker, True)

    def _expire_orders(self, seq: int, ts: int, cmd: ExpireOrders) -> list[Event]:
        events: list[Event] = []
        gtd = self.gtd
        while gtd and gtd[0][0] <= ts:
            _, oid = heapq.heappop(gtd)
            order = self.orders.get(oid)
            if order is not None:
                book = self.books[order.view.entry.symbol]
                self._remove_live(book, order)
                self._end(seq, ts, book, order, events, S_EXPIRED, "GTD order expired")
        return events

    def _end_of_day(self, seq: int, ts: int, cmd: EndOfDay) -> list[Event]:
        """The trading day's end: DAY orders expire, and the ClOrdIDs of orders no longer
        live are forgotten (ClOrdIDs are unique per firm for a trading day), so the index
        holds one day's orders and the live ones, not the process's whole life.

        The new index is built from the live orders (each under its ClOrdID and the one it
        replaced), not by sifting the old one; the old one is retired and shed a few
        entries per command (`apply`). One-off measurement, 1 million done orders and
        100,000 live: sifting took 269 ms and freeing the done orders 493 ms more, all in
        this one command."""
        events = self.cancel_where(seq, ts, lambda o: o.view.entry.tif is TIF_DAY, S_EXPIRED, "DAY order expired: end of day")
        fresh = ClOrdIndex()
        for o in self.orders.values():
            v = o.view
            fresh.put(v.entry.firm, v.cl_ord_id, o)
            if v.orig_cl_ord_id is not None:
                fresh.put(v.entry.firm, v.orig_cl_ord_id, o)
        self.retired.append(self.by_cl_ord_id)
        self.by_cl_ord_id = fresh
        return events


def equilibrium(book: Book) -> int | None:
    """The opening price of a crossed book, or None when it is not crossed."""
    if book.best_bid is None or book.best_ask is None or book.best_bid < book.best_ask:
        return None
    lo, hi = book.best_ask, book.best_bid
    candidates = sorted({p for p, lv in book.bids.items() if p >= lo and lv.count} | {p for p, lv in book.asks.items() if p <= hi and lv.count})
    best: tuple[int, int, int, int] | None = None
    for p in candidates:
        demand = sum(sum(o.leaves for o in lv.orders()) for q, lv in book.bids.items() if q >= p)
        supply = sum(sum(o.leaves for o in lv.orders()) for q, lv in book.asks.items() if q <= p)
        key = (-min(demand, supply), abs(demand - supply), abs(p - book.last_px), p)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[3]
