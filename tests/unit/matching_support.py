"""Helpers for the matching-core tests: a driver that stamps commands and validates the
engine after each one, order builders, a readable projection of events, and a deep
snapshot of the engine's state for "an illegal command changes nothing" checks.

Test instruments use a tick of 1 and a reference (last) price of 100, so prices in the
tests read as plain integers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venue.book import Book, Order
from venue.commands import CancelOrder, Command, NewOrder, ReplaceOrder
from venue.events import CancelRejected, CommandRejected, Event, ExecReport, Fill, MassCancelDone, PhaseChanged
from venue.instruments import Instrument
from venue.matching import MatchingEngine
from venue.types import InstrumentKind, OrdType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
BTC, ETH = "BTC-PERP", "ETH-PERP"
T0 = 1_790_000_000_000_000  # µs since the epoch: the first command's time is T0 + 1
# account -> firm: F1 has two accounts (firm-scope STP tests), F2 and F3 one each.
ACCOUNTS = {"A1": "F1", "A2": "F1", "B1": "F2", "C1": "F3"}


def instrument(symbol: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        kind=InstrumentKind.PERPETUAL,
        underlying=symbol.split("-")[0] + "-USD",
        quote_currency="USD",
        tick_size=Decimal(1),
        lot_size=Decimal(1),
        multiplier=Decimal("0.001"),
        reference_price=Decimal(100),
        funding_interval_s=28800,
    )


def order(
    cl_ord_id: str,
    side: Side,
    qty: int,
    price: int | None = None,
    *,
    account: str = "A1",
    symbol: str = BTC,
    ord_type: OrdType | None = None,
    stop_px: int | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    session: str | None = None,
    firm: str | None = None,
    **flags: Any,
) -> NewOrder:
    """A NewOrder with defaults: the type follows from price and stop_px unless given; the
    session is the account's firm's ("S-F1"), the firm the account's owner."""
    if ord_type is None:
        if stop_px is None:
            ord_type = OrdType.MARKET if price is None else OrdType.LIMIT
        else:
            ord_type = OrdType.STOP if price is None else OrdType.STOP_LIMIT
    firm = firm if firm is not None else ACCOUNTS.get(account, "F9")
    return NewOrder(
        session=session if session is not None else f"S-{firm}",
        firm=firm,
        account=account,
        cl_ord_id=cl_ord_id,
        symbol=symbol,
        side=side,
        ord_type=ord_type,
        qty=qty,
        price=price,
        stop_px=stop_px,
        tif=tif,
        **flags,
    )


def cancel(cl_ord_id: str, orig: str | None = None, *, order_id: int | None = None, firm: str = "F1") -> CancelOrder:
    return CancelOrder(session=f"S-{firm}", firm=firm, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig, order_id=order_id)


def replace(
    cl_ord_id: str,
    orig: str | None,
    qty: int,
    price: int | None = None,
    *,
    stop_px: int | None = None,
    order_id: int | None = None,
    firm: str = "F1",
) -> ReplaceOrder:
    return ReplaceOrder(session=f"S-{firm}", firm=firm, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig, order_id=order_id, qty=qty, price=price, stop_px=stop_px)


def reports(events: list[Event]) -> list[ExecReport]:
    """The ExecReports among the events, in order."""
    return [e for e in events if isinstance(e, ExecReport)]


def brief(events: list[Event]) -> list[tuple[Any, ...]]:
    """The fields of each event a test reasons about, as short tuples:
    ExecReport  -> (exec type, ClOrdID, status, leaves, cum, reject reason or None)
    Fill        -> ("FILL", price, qty, aggressor, taker ClOrdID, taker leaves, maker ClOrdID, maker leaves)
    and similar for the rest."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, ExecReport):
            out.append((e.exec_type.name, e.order.cl_ord_id, e.status.name, e.leaves_qty, e.cum_qty, e.reason.name if e.reason else None))
        elif isinstance(e, Fill):
            out.append(("FILL", e.price, e.qty, e.aggressor.name, e.taker.cl_ord_id, e.taker_leaves, e.maker.cl_ord_id, e.maker_leaves))
        elif isinstance(e, CancelRejected):
            out.append(("CXL_REJECT", e.cl_ord_id, e.is_replace, e.status.name, e.reason.name))
        elif isinstance(e, MassCancelDone):
            out.append(("MASS_CANCEL", e.cl_ord_id, e.canceled, e.reason.name if e.reason else None))
        elif isinstance(e, PhaseChanged):
            out.append(("PHASE", e.symbol, e.phase.name))
        elif isinstance(e, CommandRejected):
            out.append(("CMD_REJECT", e.reason.name))
        else:
            out.append((type(e).__name__, *e))
    return out


class Driver:
    """Feeds commands to an engine as the sequencer would (seq +1, time +1 µs unless told),
    checks every invariant after each command and keeps the stamped log for replays."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.seq = 0
        self.ts = T0
        self.log: list[tuple[int, int, Command, list[Event]]] = []

    def __call__(self, cmd: Command, *, at: int | None = None) -> list[Event]:
        self.seq += 1
        self.ts = at if at is not None else self.ts + 1
        events = self.engine.apply(self.seq, self.ts, cmd)
        self.log.append((self.seq, self.ts, cmd, events))
        try:
            self.engine.validate()
        except AssertionError as exc:
            raise AssertionError(f"after {cmd!r}: {exc}\n{self.ladders()}") from exc
        return events

    def all(self, *cmds: Command) -> list[Event]:
        """Apply several commands; return all their events."""
        return [e for c in cmds for e in self(c)]

    def book(self, symbol: str = BTC) -> Book:
        return self.engine.books[symbol]

    def ladders(self) -> str:
        return "\n\n".join(b.ladder() for b in self.engine.books.values())

    def live(self, cl_ord_id: str, firm: str = "F1") -> Order:
        order = self.engine.by_cl_ord_id.get(firm, cl_ord_id)
        assert order is not None, f"no order {cl_ord_id} of {firm}"
        return order

    def position(self, account: str, symbol: str = BTC) -> int:
        return self.engine.positions.get((account, symbol), 0)

    def assert_book(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], symbol: str = BTC) -> None:
        """Displayed depth, best first, as (price, qty); the ladder is the failure message."""
        book = self.book(symbol)
        got = (book.depth(BUY), book.depth(SELL))
        assert got == (bids, asks), f"expected bids {bids} asks {asks}, book is:\n{book.ladder()}"

    def queue(self, side: Side, price: int, symbol: str = BTC) -> list[str]:
        """ClOrdIDs resting at one level, front of the queue first."""
        levels = self.book(symbol).bids if side is BUY else self.book(symbol).asks
        return [o.view.cl_ord_id for o in levels[price].orders()] if price in levels else []


def new_engine(**kw: Any) -> MatchingEngine:
    return MatchingEngine([instrument(BTC), instrument(ETH)], ACCOUNTS, **kw)


def _order_state(o: Order) -> tuple[Any, ...]:
    return (
        o.view, o.order_id, o.side, o.price, o.leaves, o.cum, o.cost, o.visible, o.display, o.status, o.stp_key,
        None if o.level is None else (o.side, o.level.price),
        None if o.prev is None else o.prev.order_id,
        None if o.next is None else o.next.order_id,
    )


def snapshot(engine: MatchingEngine) -> dict[str, Any]:
    """Every piece of engine state as plain comparable data, except `next_exec_id` (a
    refused request still consumes an ExecID for its reject report)."""
    books = {}
    for symbol, b in engine.books.items():
        books[symbol] = (
            b.phase, b.last_px, b.best_bid, b.best_ask, list(b.bid_prices), list(b.ask_prices),
            [(lv.price, lv.qty, lv.count, [_order_state(o) for o in lv.orders()]) for side in (BUY, SELL) for lv in b.levels(side)],
            list(b.buy_stops), list(b.sell_stops), sorted(b.dirty_bids), sorted(b.dirty_asks),
        )
    return {
        "books": books,
        "orders": {oid: _order_state(o) for oid, o in engine.orders.items()},
        "by_cl_ord_id": {k: _order_state(o) for k, o in engine.by_cl_ord_id.items()},
        "positions": dict(engine.positions),
        "reduce_only": {k: sorted(v) for k, v in engine.reduce_only.items()},
        "gtd": sorted(engine.gtd),
        "accounts": dict(engine.accounts),
        "counters": (engine.next_order_id, engine.next_trade_id),
    }


def exec_ids(events: list[Event]) -> list[int]:
    """Every ExecID the events carry, in order (a Fill carries two)."""
    out: list[int] = []
    for e in events:
        if isinstance(e, ExecReport):
            out.append(e.exec_id)
        elif isinstance(e, Fill):
            out += [e.taker_exec_id, e.maker_exec_id]
    return out

