"""One instrument's order book: price levels of FIFO queues, and its parked stop orders.

Rules this file keeps (it does no I/O, reads no clock, and knows nothing of FIX):

1. Layout. Each side is a dict price -> Level plus a SortedList of the prices that have a
   level; `best_bid`/`best_ask` cache the ends so the hot path never asks the SortedList.
   A Level is an intrusive doubly-linked FIFO of Orders (O(1) append, unlink and pop), and
   keeps `qty`, the sum of its orders' *displayed* quantity. A level that empties is
   dropped at once: keeping emptied levels for reuse was tried and measured slower (the
   scan past them to the next best level costs more than the SortedList updates saved).
2. Priority. Price, then time: an order joins the tail of its level. An iceberg whose shown
   slice is consumed is replenished at the tail, so its hidden quantity never keeps the
   place its shown slice earned.
3. Market data. Every change to a level's displayed quantity marks its price dirty (one
   int set per side: hashing an IntEnum runs Python code); the engine drains the marks
   once per batch into BookDelta events.
4. Stops wait in `buy_stops` (ascending stop price) and `sell_stops` (descending), with the
   order id as the time tie-break, so both trigger from the front.

Cost: joining or leaving an existing level is O(1); creating or emptying a level is
O(log n) in the number of levels on that side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from venue.events import OrderView
from venue.instruments import Instrument
from venue.types import OrdStatus, Side, TradingPhase

if TYPE_CHECKING:
    from venue.risk_state import Exposure


_BUY: Final = Side.BUY
_PARTIAL: Final = OrdStatus.PARTIALLY_FILLED
_FILLED: Final = OrdStatus.FILLED


class Order:
    """A live order inside the core (mutable; never leaves it: events carry `view`)."""

    __slots__ = (
        "view", "order_id", "side", "price", "leaves", "cum", "cost", "visible", "display",
        "status", "stp_key", "prev", "next", "level", "risk",
    )

    def __init__(self, view: OrderView, side: Side, price: int | None, qty: int, display: int | None, stp_key: str) -> None:
        self.view = view
        self.order_id = view.order_id
        self.side = side
        self.price = price
        self.leaves = qty
        self.cum = 0
        self.cost = 0  # sum of fill price x fill qty, ticks x lots
        self.display = display
        self.visible = qty if display is None or display > qty else display
        self.status = OrdStatus.NEW
        self.stp_key = stp_key
        self.prev: Order | None = None
        self.next: Order | None = None
        self.level: Level | None = None
        self.risk: Exposure | None = None  # the pre-trade check's own record for the order's account and instrument


class Level:
    __slots__ = ("price", "head", "tail", "qty", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: Order | None = None
        self.tail: Order | None = None
        self.qty = 0
        self.count = 0

    def orders(self) -> list[Order]:
        out, o = [], self.head
        while o is not None:
            out.append(o)
            o = o.next
        return out


class Book:
    __slots__ = (
        "instrument", "symbol", "bids", "asks", "bid_prices", "ask_prices", "best_bid", "best_ask",
        "buy_stops", "sell_stops", "last_px", "phase", "dirty_bids", "dirty_asks",
    )

    def __init__(self, instrument: Instrument, phase: TradingPhase = TradingPhase.OPEN) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_prices = SortedList()
        self.ask_prices = SortedList()
        self.best_bid: int | None = None
        self.best_ask: int | None = None
        self.buy_stops = SortedList()  # (stop_px, order_id)
        self.sell_stops = SortedList()  # (-stop_px, order_id)
        self.last_px = instrument.reference_ticks  # stops trigger on the last trade price
        self.phase = phase
        self.dirty_bids: set[int] = set()
        self.dirty_asks: set[int] = set()

    def add(self, order: Order) -> None:
        """Append a priced order to the tail of its level."""
        price = order.price
        assert price is not None
        if order.side is _BUY:
            level = self.bids.get(price)
            if level is None:
                level = self.bids[price] = Level(price)
                self.bid_prices.add(price)
                if self.best_bid is None or price > self.best_bid:
                    self.best_bid = price
            self.dirty_bids.add(price)
        else:
            level = self.asks.get(price)
            if level is None:
                level = self.asks[price] = Level(price)
                self.ask_prices.add(price)
                if self.best_ask is None or price < self.best_ask:
                    self.best_ask = price
            self.dirty_asks.add(price)
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.qty += order.visible
        level.count += 1
        order.level = level

    def remove(self, order: Order) -> None:
        """Unlink an order from its level, dropping the level when it empties."""
        level = order.level
        assert level is not None
        prev, nxt = order.prev, order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = order.level = None
        level.qty -= order.visible
        level.count -= 1
        price = level.price
        if order.side is _BUY:
            self.dirty_bids.add(price)
            if level.count == 0:
                del self.bids[price]
                self.bid_prices.remove(price)
                if price == self.best_bid:
                    self.best_bid = self.bid_prices[-1] if self.bid_prices else None
        else:
            self.dirty_asks.add(price)
            if level.count == 0:
                del self.asks[price]
                self.ask_prices.remove(price)
                if price == self.best_ask:
                    self.best_ask = self.ask_prices[0] if self.ask_prices else None

    def fill(self, order: Order, qty: int, price: int) -> None:
        """A resting order trades `qty` of its shown slice at `price`: it leaves the book
        once done, and an iceberg whose slice is used up is replenished (rule 2)."""
        order.visible -= qty
        order.leaves -= qty
        order.cum += qty
        order.cost += price * qty
        level = order.level
        assert level is not None
        level.qty -= qty
        (self.dirty_bids if order.side is _BUY else self.dirty_asks).add(level.price)
        if order.visible:
            order.status = _PARTIAL
        elif order.leaves:
            order.status = _PARTIAL
            self.replenish(order)
        else:
            order.status = _FILLED
            self.remove(order)

    def replenish(self, order: Order) -> None:
        """Rule 2: an iceberg whose shown slice is used up shows its next slice from the
        tail of its level."""
        shown = order.display
        assert shown is not None and order.visible == 0 < order.leaves  # only an iceberg shows less than it leaves
        self.remove(order)
        order.visible = shown if shown < order.leaves else order.leaves
        self.add(order)

    def levels(self, side: Side) -> list[Level]:
        """Levels best first."""
        if side is Side.BUY:
            return [self.bids[p] for p in reversed(self.bid_prices)]
        return [self.asks[p] for p in self.ask_prices]

    def depth(self, side: Side, n: int | None = None) -> list[tuple[int, int]]:
        """(price, displayed qty) best first: what market data shows."""
        return [(lv.price, lv.qty) for lv in self.levels(side)[:n]]

    def ladder(self, n: int = 10) -> str:
        """The book drawn as a price ladder, asks above bids: for failure messages."""
        lines = [f"{self.symbol} ({self.phase.name}, last {self.last_px})"]
        for lv in reversed(self.levels(Side.SELL)[:n]):
            lines.append(f"{'':>24} {lv.price:>10} | {lv.qty:<8} " + " ".join(f"#{o.order_id}:{o.visible}/{o.leaves}" for o in lv.orders()))
        lines.append(f"{'-' * 24} {'-' * 10}-+-{'-' * 8}")
        for lv in self.levels(Side.BUY)[:n]:
            lines.append(" ".join(f"#{o.order_id}:{o.visible}/{o.leaves}" for o in lv.orders()).rjust(24) + f" {lv.price:>10} | {lv.qty:<8}")
        return "\n".join(lines)

    def validate(self) -> None:
        """Check every structural invariant; raise AssertionError naming the broken one."""
        for side, levels, prices in ((Side.BUY, self.bids, self.bid_prices), (Side.SELL, self.asks, self.ask_prices)):
            assert list(prices) == sorted(levels), f"{self.symbol} {side.name}: price index != levels\n{self.ladder()}"
            for price, lv in levels.items():
                orders = lv.orders()
                assert orders, f"{self.symbol} {side.name} {price}: empty level kept"
                assert lv.count == len(orders), f"{self.symbol} {side.name} {price}: count {lv.count} != {len(orders)}"
                assert lv.qty == sum(o.visible for o in orders), f"{self.symbol} {side.name} {price}: level qty off\n{self.ladder()}"
                assert lv.tail is orders[-1], f"{self.symbol} {side.name} {price}: tail off"
                for o in orders:
                    assert o.side is side and o.price == price and o.level is lv, f"order {o.order_id} misfiled"
                    assert 0 < o.visible <= o.leaves, f"order {o.order_id}: visible {o.visible} leaves {o.leaves}"
                    assert o.display is not None or o.visible == o.leaves, f"order {o.order_id}: hidden qty without display"
        bids, asks = self.levels(Side.BUY), self.levels(Side.SELL)
        assert self.best_bid == (bids[0].price if bids else None), f"{self.symbol}: best bid cache\n{self.ladder()}"
        assert self.best_ask == (asks[0].price if asks else None), f"{self.symbol}: best ask cache\n{self.ladder()}"
        # Only OPEN matches: what pre-open collected may stay crossed through HALTED or CLOSED until the next open.
        if self.phase is TradingPhase.OPEN and self.best_bid is not None and self.best_ask is not None:
            assert self.best_bid < self.best_ask, f"crossed book\n{self.ladder()}"

