"""The order book on its own: FIFO levels, best-price caches, emptied levels dropped,
dirty marks, the ladder drawing, and validate() catching each kind of damage.
A hypothesis test runs random add/remove streams against a naive model of the book."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_support import BTC, BUY, SELL, instrument, order

from venue.book import Book, Order
from venue.events import OrderView
from venue.types import OrdType, Side, TradingPhase


def mk(oid: int, side: Side, price: int, qty: int, display: int | None = None) -> Order:
    entry = order(f"o{oid}", side, qty, price, display_qty=display)
    return Order(OrderView(oid, f"o{oid}", None, qty, price, None, OrdType.LIMIT, entry), side, price, qty, display, "A1")


@pytest.fixture
def book() -> Book:
    return Book(instrument(BTC))


def test_orders_queue_in_arrival_order_and_levels_sum_their_shown_quantity(book: Book) -> None:
    """A level is a FIFO of its orders whose qty is the sum of what they show; unlinking
    the middle order relinks its neighbours and clears its own links."""
    a, b, c = mk(1, BUY, 99, 5), mk(2, BUY, 99, 3), mk(3, BUY, 99, 10, display=2)
    for o in (a, b, c):
        book.add(o)
    level = book.bids[99]
    assert [o.order_id for o in level.orders()] == [1, 2, 3]
    assert (level.head, level.tail, level.qty, level.count) == (a, c, 10, 3)
    book.remove(b)
    assert [o.order_id for o in level.orders()] == [1, 3]
    assert (a.next, c.prev, b.level, b.prev, b.next) == (c, a, None, None, None)
    book.validate()


def test_best_prices_follow_adds_and_removes_on_both_sides(book: Book) -> None:
    """The cached best bid and ask move to the next live price as the best levels empty,
    and to None when a side is empty."""
    orders = [mk(1, BUY, 98, 1), mk(2, BUY, 99, 1), mk(3, SELL, 102, 1), mk(4, SELL, 101, 1)]
    for o in orders:
        book.add(o)
    assert (book.best_bid, book.best_ask) == (99, 101)
    book.remove(orders[1])
    book.remove(orders[3])
    assert (book.best_bid, book.best_ask) == (98, 102)
    book.remove(orders[0])
    book.remove(orders[2])
    assert (book.best_bid, book.best_ask) == (None, None)
    book.validate()


@pytest.mark.parametrize("side", [BUY, SELL])
def test_an_emptied_level_is_dropped_and_the_next_becomes_best(book: Book, side: Side) -> None:
    """Emptying levels one by one from the top leaves no trace of them in the price index,
    and the best price always moves to the next level that has orders."""
    orders = [mk(i, side, 100 + i, 1) for i in range(1, 41)]
    for o in orders:
        book.add(o)
    ranked = orders[::-1] if side is BUY else orders  # best first
    for i, o in enumerate(ranked[:-1]):
        book.remove(o)
        book.validate()
        prices = book.bid_prices if side is BUY else book.ask_prices
        levels = book.bids if side is BUY else book.asks
        assert o.price not in levels and o.price not in prices
        assert (book.best_bid if side is BUY else book.best_ask) == ranked[i + 1].price
    assert book.depth(side) == [(ranked[-1].price, 1)]


def test_every_change_to_a_level_marks_it_dirty(book: Book) -> None:
    """Adding or removing an order marks its price dirty on its own side only."""
    a, s = mk(1, BUY, 99, 1), mk(2, SELL, 101, 1)
    book.add(a)
    book.add(s)
    assert (book.dirty_bids, book.dirty_asks) == ({99}, {101})
    book.dirty_bids.clear()
    book.dirty_asks.clear()
    book.remove(a)
    assert (book.dirty_bids, book.dirty_asks) == ({99}, set())


def test_ladder_draws_asks_above_bids_with_each_orders_shown_and_left_quantity(book: Book) -> None:
    """The failure-message ladder: header, asks best-last above the rule, bids best-
    first below, each order as #id:shown/leaves."""
    for o in (mk(1, BUY, 99, 5), mk(2, BUY, 99, 10, display=2), mk(3, SELL, 101, 4), mk(4, SELL, 103, 1)):
        book.add(o)
    lines = book.ladder().splitlines()
    assert lines[0] == "BTC-PERP (OPEN, last 100)"
    assert [line.split("|")[0].split()[-1] for line in lines[1:3]] == ["103", "101"]
    assert "#3:4/4" in lines[2] and set(lines[3]) <= {"-", "+", " "}
    assert lines[4].split() == ["#1:5/5", "#2:2/10", "99", "|", "7"]


def _misfile(book: Book) -> None:
    book.bids[99].head.price = 98  # type: ignore[union-attr]


DAMAGE: list[tuple[str, Callable[[Book], None], str]] = [
    ("level-qty", lambda b: setattr(b.bids[99], "qty", 99), "level qty off"),
    ("count", lambda b: setattr(b.bids[99], "count", 7), "count 7 != 2"),
    ("best-bid", lambda b: setattr(b, "best_bid", 98), "best bid cache"),
    ("best-ask", lambda b: setattr(b, "best_ask", None), "best ask cache"),
    ("crossed", lambda b: b.add(mk(9, SELL, 99, 1)), "crossed book"),
    ("misfiled", _misfile, "misfiled"),
    ("hidden-without-display", lambda b: setattr(b.bids[99].tail, "leaves", 50), "hidden qty without display"),
    ("price-index", lambda b: b.bid_prices.remove(99), "price index != levels"),
]


@pytest.mark.parametrize(("damage", "message"), [(d, m) for _, d, m in DAMAGE], ids=[n for n, _, _ in DAMAGE])
def test_validate_names_each_kind_of_damage(book: Book, damage: Callable[[Book], None], message: str) -> None:
    """Each kind of corruption makes validate() fail with a message that names it."""
    for o in (mk(1, BUY, 99, 5), mk(2, BUY, 99, 3), mk(3, SELL, 101, 4)):
        book.add(o)
    book.validate()
    damage(book)
    with pytest.raises(AssertionError, match=message):
        book.validate()


def test_a_crossed_book_is_valid_outside_open(book: Book) -> None:
    """Only OPEN matches, so a book crossed in pre-open stays valid through PRE_OPEN,
    HALTED and CLOSED."""
    book.add(mk(1, BUY, 101, 1))
    book.add(mk(2, SELL, 99, 1))
    for phase in (TradingPhase.PRE_OPEN, TradingPhase.HALTED, TradingPhase.CLOSED):
        book.phase = phase
        book.validate()


book_op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from([BUY, SELL]), st.integers(min_value=1, max_value=150), st.integers(min_value=1, max_value=9)),
    st.tuples(st.just("remove"), st.integers(min_value=0, max_value=10**6)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(book_op, max_size=400))
def test_book_agrees_with_a_naive_model_under_random_adds_and_removes(ops: list[tuple[Any, ...]]) -> None:
    """Bids below 76 and asks from 76 up, so the book never crosses; the model is a plain
    list of live orders in arrival order."""
    book = Book(instrument(BTC))
    live: list[Order] = []
    for i, op in enumerate(ops):
        if op[0] == "add":
            _, side, price, qty = op
            price = price // 2 if side is BUY else 75 + price
            o = mk(i + 1, side, price, qty)
            book.add(o)
            live.append(o)
        elif live:
            book.remove(live.pop(op[1] % len(live)))
        book.validate()
        for side in (BUY, SELL):
            want: dict[int, list[int]] = {}
            for o in live:
                if o.side is side:
                    want.setdefault(o.price, []).append(o.order_id)  # type: ignore[arg-type]
            got = {lv.price: [o.order_id for o in lv.orders()] for lv in book.levels(side)}
            assert got == want, book.ladder()
        assert book.best_bid == max((o.price for o in live if o.side is BUY and o.price is not None), default=None)
        assert book.best_ask == min((o.price for o in live if o.side is SELL and o.price is not None), default=None)
