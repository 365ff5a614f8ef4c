"""A naive price-time order book for differential tests of the engine (exchange-core's
manner): one list of resting orders, searched afresh for the best maker on every fill.

It does limit and market orders with GTC, IOC and FOK, stop and stop-limit orders
(triggered by the last trade price once the command's own trading is done, lowest buy
stop / highest sell stop first), icebergs, post-only, cancel, cancel/replace and
self-trade prevention on the account, in the plainest way each can be written: FOK is
tried on a copy of the book and kept only if it filled completely; an iceberg's next
slice gets a new arrival number, which puts it at the back.
It says what happened as plain tuples:

    ("fill", price, qty, taker_order_id, maker_order_id)
    ("cancel", order_id)            an order ended with quantity unfilled
    ("replaced", order_id)
    ("triggered", order_id)
    ("reject", cl_ord_id)           a refused order, or a cancel/replace naming no live order

Order ids are given to accepted orders in arrival order from 1, as the engine does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from venue.types import Side, StpMode, TimeInForce

Outcome = tuple[Any, ...]  # one of the tuples in the module docstring


@dataclass
class RefOrder:
    order_id: int
    cl_ord_id: str
    account: str
    side: Side
    price: int | None  # None: market
    qty: int
    leaves: int
    display: int | None
    visible: int
    arrival: int
    tif: TimeInForce
    stp: StpMode
    post_only: bool
    stop_px: int | None = None
    cum: int = 0
    stp_canceled: bool = False


class ReferenceBook:
    def __init__(self) -> None:
        self.resting: list[RefOrder] = []
        self.by_cl_ord_id: dict[str, RefOrder] = {}
        self.stops: list[RefOrder] = []  # parked, untriggered
        self.next_id = 1
        self.clock = 0
        self.last = 100  # last trade price (the test instruments' reference price)

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def new(self, cl_ord_id: str, account: str, side: Side, qty: int, price: int | None, tif: TimeInForce, stp: StpMode,
            display: int | None = None, post_only: bool = False, stop_px: int | None = None) -> list[Outcome]:
        if post_only and self._opposite(side, price):
            return [("reject", cl_ord_id)]
        if stop_px is not None and (stop_px <= self.last if side is Side.BUY else stop_px >= self.last):
            return [("reject", cl_ord_id)]
        o = RefOrder(self.next_id, cl_ord_id, account, side, price, qty, qty, display, min(display or qty, qty), self._tick(), tif, stp, post_only, stop_px)
        self.next_id += 1
        self.by_cl_ord_id[cl_ord_id] = o
        if stop_px is not None:
            self.stops.append(o)
            return []
        return self._enter(o) + self._trigger()

    def _enter(self, o: RefOrder) -> list[Outcome]:
        """Trade an order that has just arrived (or triggered): FOK all or nothing."""
        if o.tif is TimeInForce.FOK:
            trial = copy.deepcopy(self)
            out = trial._take(trial.by_cl_ord_id[o.cl_ord_id])
            if trial.by_cl_ord_id[o.cl_ord_id].leaves == 0:
                self.__dict__.update(trial.__dict__)
                return out
            return [("cancel", o.order_id)]
        return self._take(o) + self._rest_or_end(o)

    def _trigger(self) -> list[Outcome]:
        out: list[Outcome] = []
        while True:
            buys = [o for o in self.stops if o.side is Side.BUY and o.stop_px is not None and o.stop_px <= self.last]
            sells = [o for o in self.stops if o.side is Side.SELL and o.stop_px is not None and o.stop_px >= self.last]
            if buys:
                o = min(buys, key=lambda r: (r.stop_px, r.order_id))
            elif sells:
                o = min(sells, key=lambda r: (-(r.stop_px or 0), r.order_id))
            else:
                return out
            self.stops.remove(o)
            o.arrival = self._tick()
            out.append(("triggered", o.order_id))
            out += self._enter(o)

    def cancel(self, orig_cl_ord_id: str) -> list[Outcome]:
        o = self._live(orig_cl_ord_id)
        if o is None:
            return [("reject", orig_cl_ord_id)]
        (self.resting if o in self.resting else self.stops).remove(o)
        return [("cancel", o.order_id)]

    def replace(self, orig_cl_ord_id: str, cl_ord_id: str, qty: int, price: int) -> list[Outcome]:
        """A quantity down at the same price keeps the place (and what is left of the shown
        slice); anything else is a new arrival that may trade. Resting orders only (not
        parked stops)."""
        o = self._live(orig_cl_ord_id)
        if o is None:
            return [("reject", orig_cl_ord_id)]
        assert o in self.resting, "replace of a parked stop is not modelled"
        if qty <= o.cum or (o.post_only and self._opposite(o.side, price)):
            return [("reject", orig_cl_ord_id)]
        o.cl_ord_id = cl_ord_id
        self.by_cl_ord_id[cl_ord_id] = o
        leaves = qty - o.cum
        if price == o.price and qty <= o.qty:
            o.qty, o.leaves = qty, leaves
            o.visible = min(o.visible, leaves)
            return [("replaced", o.order_id)]
        self.resting.remove(o)
        o.qty, o.leaves, o.price = qty, leaves, price
        o.visible = min(o.display or leaves, leaves)
        o.arrival = self._tick()
        return [("replaced", o.order_id)] + self._take(o) + self._rest_or_end(o) + self._trigger()

    def depth(self, side: Side) -> list[tuple[int, int]]:
        """(price, displayed qty) best first."""
        levels: dict[int, int] = {}
        for r in self.resting:
            if r.side is side:
                assert r.price is not None
                levels[r.price] = levels.get(r.price, 0) + r.visible
        return sorted(levels.items(), reverse=side is Side.BUY)

    def _live(self, cl_ord_id: str) -> RefOrder | None:
        o = self.by_cl_ord_id.get(cl_ord_id)
        return o if o is not None and (o in self.resting or o in self.stops) and o.cl_ord_id == cl_ord_id else None

    def _opposite(self, side: Side, price: int | None) -> bool:
        """Does any resting order on the other side cross `price`?"""
        probe = RefOrder(0, "", "", side, price, 1, 1, None, 1, 0, TimeInForce.GTC, StpMode.CANCEL_AGGRESSING, False)
        return any(r.side is not side and _crosses(probe, r) for r in self.resting)

    def _take(self, taker: RefOrder) -> list[Outcome]:
        out: list[Outcome] = []
        buy = taker.side is Side.BUY
        while taker.leaves:
            makers = [r for r in self.resting if r.side is not taker.side and _crosses(taker, r)]
            if not makers:
                break
            maker = min(makers, key=lambda r: (r.price if buy else -r.price, r.arrival))  # type: ignore[operator]
            if maker.account == taker.account:
                if taker.stp is not StpMode.CANCEL_AGGRESSING:
                    self.resting.remove(maker)
                    out.append(("cancel", maker.order_id))
                if taker.stp is not StpMode.CANCEL_RESTING:
                    taker.stp_canceled = True
                    out.append(("cancel", taker.order_id))
                    return out
                continue
            q = min(taker.leaves, maker.visible)
            for o in (taker, maker):
                o.leaves -= q
                o.cum += q
            maker.visible -= q
            out.append(("fill", maker.price, q, taker.order_id, maker.order_id))
            assert maker.price is not None
            self.last = maker.price
            if maker.leaves == 0:
                self.resting.remove(maker)
            elif maker.visible == 0:
                maker.visible = min(maker.display or maker.leaves, maker.leaves)
                maker.arrival = self._tick()
        return out

    def _rest_or_end(self, o: RefOrder) -> list[Outcome]:
        if o.leaves == 0 or o.stp_canceled:
            return []
        if o.price is None or o.tif in (TimeInForce.IOC, TimeInForce.FOK):
            return [("cancel", o.order_id)]
        o.visible = min(o.display or o.leaves, o.leaves)
        self.resting.append(o)
        return []


def _crosses(taker: RefOrder, maker: RefOrder) -> bool:
    assert maker.price is not None
    if taker.price is None:
        return True
    return maker.price <= taker.price if taker.side is Side.BUY else maker.price >= taker.price
