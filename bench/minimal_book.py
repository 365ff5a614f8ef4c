"""The engine bench's baseline: a minimal price-time book that does nothing but match (no
events, no checks, no ids). Typed, so that bench/engine.py can also run it compiled by mypyc,
as the venue's core is (setup.py): the ratio is then like for like."""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from venue.types import Side

_BUY = Side.BUY
_SELL = Side.SELL


class MinimalBook:
    """Levels are deques of [order id, quantity, price] in dicts by price, with a SortedList
    of the prices per side; orders are found by id for cancels."""

    def __init__(self) -> None:
        self.levels: dict[Side, dict[int, deque[list[int]]]] = {_BUY: {}, _SELL: {}}
        self.prices: dict[Side, SortedList] = {_BUY: SortedList(), _SELL: SortedList()}
        self.sides: dict[int, Side] = {}
        self.orders: dict[int, list[int]] = {}
        self.trades = 0

    def add(self, oid: int, side: Side, price: int, qty: int) -> None:
        buy = side is _BUY
        opp = _SELL if buy else _BUY
        prices, levels = self.prices[opp], self.levels[opp]
        while qty and prices:
            best: int = prices[0] if buy else prices[-1]
            if (best > price) if buy else (best < price):
                break
            q = levels[best]
            while q and qty:
                o = q[0]
                take = min(qty, o[1])
                o[1] -= take
                qty -= take
                self.trades += 1
                if o[1] == 0:
                    q.popleft()
                    del self.orders[o[0]]
            if not q:
                del levels[best]
                prices.remove(best)
        if qty:
            o = [oid, qty, price]
            mine = self.levels[side]
            lv = mine.get(price)
            if lv is None:
                lv = mine[price] = deque()
                self.prices[side].add(price)
            lv.append(o)
            self.orders[oid] = o
            self.sides[oid] = side

    def cancel(self, oid: int) -> None:
        o = self.orders.pop(oid, None)
        if o is not None:
            side = self.sides.pop(oid)
            price = o[2]
            lv = self.levels[side][price]
            lv.remove(o)
            if not lv:
                del self.levels[side][price]
                self.prices[side].remove(price)

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "C":
            self.cancel(op[1])
        elif kind == "X":
            self.add(op[1], op[2], op[3], op[4])
            self.cancel(op[1])  # IOC: the remainder does not rest
        else:
            self.add(op[1], op[2], op[3], op[4])
