"""A naive price-time order book for differential tests of the engine (exchange-core's
manner): one list of resting orders, searched afresh for the best maker on every fill.
It does limit (GTC or IOC) and market orders, cancels, and self-trade prevention on the
account, and says what happened as plain tuples:

    ("fill", price, qty, taker_order_id, maker_order_id)
    ("cancel", order_id)            an order ended with quantity unfilled
    ("reject", cl_ord_id)           a cancel that found no live order

Order ids are given to orders in arrival order from 1, as the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass

from venue.types import Side, StpMode, TimeInForce


@dataclass
class RefOrder:
    order_id: int
    account: str
    side: Side
    price: int | None  # None: market
    leaves: int
    arrival: int


class ReferenceBook:
    def __init__(self) -> None:
        self.resting: list[RefOrder] = []
        self.by_cl_ord_id: dict[str, RefOrder] = {}
        self.next_id = 1

    def new(self, cl_ord_id: str, account: str, side: Side, qty: int, price: int | None, tif: TimeInForce, stp: StpMode) -> list[tuple]:
        taker = RefOrder(self.next_id, account, side, price, qty, self.next_id)
        self.next_id += 1
        self.by_cl_ord_id[cl_ord_id] = taker
        out: list[tuple] = []
        while taker.leaves:
            makers = [r for r in self.resting if r.side is not side and self._crosses(taker, r)]
            if not makers:
                break
            maker = min(makers, key=lambda r: (r.price if side is Side.BUY else -r.price, r.arrival))
            if maker.account == account:
                if stp is not StpMode.CANCEL_AGGRESSING:
                    self.resting.remove(maker)
                    out.append(("cancel", maker.order_id))
                if stp is not StpMode.CANCEL_RESTING:
                    out.append(("cancel", taker.order_id))
                    return out
                continue
            q = min(taker.leaves, maker.leaves)
            taker.leaves -= q
            maker.leaves -= q
            out.append(("fill", maker.price, q, taker.order_id, maker.order_id))
            if maker.leaves == 0:
                self.resting.remove(maker)
        if taker.leaves:
            if price is None or tif is TimeInForce.IOC:
                out.append(("cancel", taker.order_id))
            else:
                self.resting.append(taker)
        return out

    def cancel(self, orig_cl_ord_id: str) -> list[tuple]:
        o = self.by_cl_ord_id.get(orig_cl_ord_id)
        if o is None or o not in self.resting:
            return [("reject", orig_cl_ord_id)]
        self.resting.remove(o)
        return [("cancel", o.order_id)]

    def depth(self, side: Side) -> list[tuple[int, int]]:
        """(price, qty) best first."""
        levels: dict[int, int] = {}
        for r in self.resting:
            if r.side is side:
                assert r.price is not None
                levels[r.price] = levels.get(r.price, 0) + r.leaves
        return sorted(levels.items(), reverse=side is Side.BUY)

    @staticmethod
    def _crosses(taker: RefOrder, maker: RefOrder) -> bool:
        assert maker.price is not None
        if taker.price is None:
            return True
        return maker.price <= taker.price if taker.side is Side.BUY else maker.price >= taker.price
