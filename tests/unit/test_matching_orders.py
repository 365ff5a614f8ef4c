"""Order types and times in force: each test drives the pure engine and checks the exact
events (whole tuples where ids matter, `brief` projections elsewhere) and the book left."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from typing import Any

import pytest
from matching_support import ACCOUNTS, BTC, BUY, ETH, SELL, T0, Driver, brief, cancel, instrument, order, replace, reports

from venue.commands import EndOfDay, ExpireOrders, SetPhase
from venue.events import ExecReport, Fill, OrderView
from venue.matching import MatchingEngine
from venue.types import ExecType, OrdStatus, OrdType, Side, StpMode, TimeInForce, TradingPhase

GTC, DAY, GTD, IOC, FOK = TimeInForce.GTC, TimeInForce.DAY, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK


# ---------------------------------------------------------------- limit and market


def test_limit_order_rests_then_trades_with_exact_events(venue: Driver) -> None:
    """Whole event tuples: ids from the engine's counters, seq/ts from the command, both
    orders' state after the fill, cost as price x qty."""
    sell = order("s1", SELL, 5, 101, account="B1")
    sview = OrderView(1, "s1", None, 5, 101, None, OrdType.LIMIT, sell)
    assert venue(sell) == [ExecReport(1, T0 + 1, 1, ExecType.NEW, OrdStatus.NEW, sview, 5, 0, 0, None, "")]

    buy = order("b1", BUY, 3, 102)
    bview = OrderView(2, "b1", None, 3, 102, None, OrdType.LIMIT, buy)
    assert venue(buy) == [
        ExecReport(2, T0 + 2, 2, ExecType.NEW, OrdStatus.NEW, bview, 3, 0, 0, None, ""),
        Fill(2, T0 + 2, 1, BTC, 101, 3, BUY, bview, 3, 0, 3, 303, sview, 4, 2, 3, 303),
    ]
    venue.assert_book([], [(101, 2)])
    assert venue.live("s1", "F2").status is OrdStatus.PARTIALLY_FILLED
    assert (venue.position("A1"), venue.position("B1")) == (3, -3)


def test_limit_sweeps_levels_in_price_then_time_order_and_rests_the_rest(venue: Driver) -> None:
    """An aggressive limit takes the best price first and, within a price, the oldest
    order first; it stops at its limit and rests what is left at its own price."""
    venue.all(
        order("s1", SELL, 2, 102, account="B1"),
        order("s2", SELL, 2, 101, account="B1"),
        order("s3", SELL, 2, 101, account="C1"),
        order("s4", SELL, 2, 103, account="C1"),
    )
    assert brief(venue(order("b1", BUY, 7, 102))) == [
        ("NEW", "b1", "NEW", 7, 0, None),
        ("FILL", 101, 2, "BUY", "b1", 5, "s2", 0),
        ("FILL", 101, 2, "BUY", "b1", 3, "s3", 0),
        ("FILL", 102, 2, "BUY", "b1", 1, "s1", 0),
    ]
    venue.assert_book([(102, 1)], [(103, 2)])
    assert venue.book().last_px == 102


def test_market_order_sweeps_and_cancels_what_the_book_cannot_fill(venue: Driver) -> None:
    """A market order trades at any price and never rests."""
    venue.all(order("s1", SELL, 2, 101, account="B1"), order("s2", SELL, 3, 105, account="C1"))
    assert brief(venue(order("m1", BUY, 10))) == [
        ("NEW", "m1", "NEW", 10, 0, None),
        ("FILL", 101, 2, "BUY", "m1", 8, "s1", 0),
        ("FILL", 105, 3, "BUY", "m1", 5, "s2", 0),
        ("CANCELED", "m1", "CANCELED", 0, 5, None),
    ]
    venue.assert_book([], [])
    assert venue.live("m1").status is OrdStatus.CANCELED


def test_market_order_on_an_empty_side_is_accepted_then_canceled(venue: Driver) -> None:
    """A market order with nothing to trade against is acknowledged, then canceled with
    the reason in its text."""
    events = venue(order("m1", SELL, 4))
    assert brief(events) == [("NEW", "m1", "NEW", 4, 0, None), ("CANCELED", "m1", "CANCELED", 0, 0, None)]
    assert reports(events)[1].text == "market order: unfilled quantity canceled"
    assert venue.engine.orders == {}


# ---------------------------------------------------------------- stops


def test_stop_parks_off_the_book_and_triggers_on_the_last_trade_price(venue: Driver) -> None:
    """A buy stop waits until a trade prints at or above its stop price; its trigger report
    follows the trade that caused it, and as a market order it then trades at once."""
    venue.all(order("s1", SELL, 1, 104, account="B1"), order("s2", SELL, 5, 105, account="C1"))
    assert brief(venue(order("st", BUY, 3, stop_px=104, account="A2"))) == [("NEW", "st", "NEW", 3, 0, None)]
    venue.assert_book([], [(104, 1), (105, 5)])
    events = venue(order("b1", BUY, 1, 104))
    assert brief(events) == [
        ("NEW", "b1", "NEW", 1, 0, None),
        ("FILL", 104, 1, "BUY", "b1", 0, "s1", 0),
        ("TRIGGERED", "st", "NEW", 3, 0, None),
        ("FILL", 105, 3, "BUY", "st", 0, "s2", 2),
    ]
    assert reports(events)[1].text == "stop triggered at 104"
    venue.assert_book([], [(105, 2)])
    assert venue.book().buy_stops == []


def test_sell_stop_limit_triggers_and_rests_its_limit(venue: Driver) -> None:
    """A sell stop-limit triggers at last <= stop and becomes a limit order: what its
    limit cannot fill rests on the book."""
    venue.all(order("b1", BUY, 1, 98, account="B1"), order("sl", SELL, 4, 97, stop_px=98))
    events = venue(order("s1", SELL, 1, 98, account="C1"))
    assert brief(events) == [
        ("NEW", "s1", "NEW", 1, 0, None),
        ("FILL", 98, 1, "SELL", "s1", 0, "b1", 0),
        ("TRIGGERED", "sl", "NEW", 4, 0, None),
    ]
    venue.assert_book([], [(97, 4)])
    assert venue.engine.orders[venue.live("sl").order_id].level is not None


def test_stops_cascade_each_trigger_trading_into_the_next(venue: Driver) -> None:
    """A triggered stop's own trade moves the last price and triggers the next stop, in
    stop-price order, all within the one command."""
    venue.all(
        order("s1", SELL, 1, 101, account="B1"),
        order("s2", SELL, 1, 102, account="B1"),
        order("s3", SELL, 1, 103, account="B1"),
        order("st1", BUY, 1, stop_px=101, account="A1"),
        order("st2", BUY, 1, stop_px=102, account="C1"),
        order("st3", BUY, 1, stop_px=110, account="A2"),
    )
    assert brief(venue(order("b1", BUY, 1, 101, account="C1"))) == [
        ("NEW", "b1", "NEW", 1, 0, None),
        ("FILL", 101, 1, "BUY", "b1", 0, "s1", 0),
        ("TRIGGERED", "st1", "NEW", 1, 0, None),
        ("FILL", 102, 1, "BUY", "st1", 0, "s2", 0),
        ("TRIGGERED", "st2", "NEW", 1, 0, None),
        ("FILL", 103, 1, "BUY", "st2", 0, "s3", 0),
    ]
    assert venue.book().last_px == 103
    assert [oid for _, oid in venue.book().buy_stops] == [venue.live("st3").order_id]


@pytest.mark.parametrize(
    ("side", "stop_px", "refused"),
    [(BUY, 100, True), (BUY, 99, True), (BUY, 101, False), (SELL, 100, True), (SELL, 101, True), (SELL, 99, False)],
)
def test_stop_that_would_trigger_at_once_is_refused(venue: Driver, side: Side, stop_px: int, refused: bool) -> None:
    """Last price is 100: a buy stop at or below it, or a sell stop at or above it, would
    trigger on entry and is refused; one on the far side parks."""
    events = venue(order("st", side, 1, stop_px=stop_px))
    if refused:
        assert brief(events) == [("REJECTED", "st", "REJECTED", 0, 0, "STOP_WOULD_TRIGGER")]
        assert venue.engine.orders == {}
    else:
        assert brief(events) == [("NEW", "st", "NEW", 1, 0, None)]


# ---------------------------------------------------------------- times in force


def test_day_orders_expire_at_end_of_day_and_others_stay(venue: Driver) -> None:
    """EndOfDay expires DAY orders (resting or parked, every instrument) and leaves GTC
    and GTD orders alone."""
    venue.all(
        order("d1", BUY, 1, 99, tif=DAY),
        order("d2", SELL, 1, 200, tif=DAY, symbol=ETH, account="B1"),
        order("g1", BUY, 1, 98),
        order("t1", BUY, 1, 97, tif=GTD, expire_time=T0 + 10**9),
        order("ds", BUY, 1, stop_px=150, tif=DAY, account="C1"),
    )
    events = venue(EndOfDay())
    assert sorted(brief(events)) == [
        ("EXPIRED", "d1", "EXPIRED", 0, 0, None),
        ("EXPIRED", "d2", "EXPIRED", 0, 0, None),
        ("EXPIRED", "ds", "EXPIRED", 0, 0, None),
    ]
    assert {e.text for e in reports(events)} == {"DAY order expired: end of day"}
    venue.assert_book([(98, 1), (97, 1)], [])
    venue.assert_book([], [], symbol=ETH)


def test_closing_an_instrument_expires_its_day_orders_only(venue: Driver) -> None:
    """Moving one instrument to CLOSED expires that instrument's DAY orders, not its GTC
    ones nor another instrument's."""
    venue.all(order("d1", BUY, 1, 99, tif=DAY), order("g1", BUY, 1, 98), order("d2", BUY, 1, 99, tif=DAY, symbol=ETH))
    assert brief(venue(SetPhase(symbol=BTC, phase=TradingPhase.CLOSED))) == [
        ("PHASE", BTC, "CLOSED"),
        ("EXPIRED", "d1", "EXPIRED", 0, 0, None),
    ]
    venue.assert_book([(98, 1)], [])
    venue.assert_book([(99, 1)], [], symbol=ETH)


def test_gtd_orders_expire_when_due_and_next_expiry_tracks_the_earliest_live_one(venue: Driver) -> None:
    """next_expiry() names the earliest live GTD order (skipping canceled ones);
    ExpireOrders expires exactly those due at the command's time."""
    venue.all(
        order("t1", BUY, 1, 97, tif=GTD, expire_time=T0 + 100),
        order("t2", BUY, 1, 96, tif=GTD, expire_time=T0 + 200),
        order("t3", SELL, 1, stop_px=90, tif=GTD, expire_time=T0 + 300, account="B1"),
    )
    assert venue.engine.next_expiry() == T0 + 100
    venue(cancel("x1", "t1"))
    assert venue.engine.next_expiry() == T0 + 200
    assert venue(ExpireOrders(), at=T0 + 199) == []
    events = venue(ExpireOrders(), at=T0 + 300)
    assert brief(events) == [("EXPIRED", "t2", "EXPIRED", 0, 0, None), ("EXPIRED", "t3", "EXPIRED", 0, 0, None)]
    assert reports(events)[0].text == "GTD order expired"
    assert venue.engine.next_expiry() is None
    venue.assert_book([], [])


@pytest.mark.parametrize("expire_time", [None, T0 + 1, T0])
def test_gtd_needs_an_expire_time_in_the_future(venue: Driver, expire_time: int | None) -> None:
    """The first command runs at T0 + 1: an ExpireTime at or before it is refused."""
    events = venue(order("t1", BUY, 1, 97, tif=GTD, expire_time=expire_time))
    assert brief(events) == [("REJECTED", "t1", "REJECTED", 0, 0, "INVALID_EXPIRE_TIME")]


def test_ioc_fills_what_it_can_and_cancels_the_rest(venue: Driver) -> None:
    """IOC trades what crosses now and cancels the remainder, with the reason in the
    text."""
    venue(order("s1", SELL, 2, 101, account="B1"))
    events = venue(order("i1", BUY, 5, 101, tif=IOC))
    assert brief(events) == [
        ("NEW", "i1", "NEW", 5, 0, None),
        ("FILL", 101, 2, "BUY", "i1", 3, "s1", 0),
        ("CANCELED", "i1", "CANCELED", 0, 2, None),
    ]
    assert reports(events)[-1].text == "IOC: unfilled quantity canceled"
    venue.assert_book([], [])


def test_fok_that_cannot_fill_completely_trades_nothing(venue: Driver) -> None:
    """A FOK larger than the crossing quantity is canceled without a single fill; the
    book is untouched."""
    venue.all(order("s1", SELL, 2, 101, account="B1"), order("s2", SELL, 2, 102, account="C1"))
    events = venue(order("f1", BUY, 5, 102, tif=FOK))
    assert brief(events) == [("NEW", "f1", "NEW", 5, 0, None), ("CANCELED", "f1", "CANCELED", 0, 0, None)]
    assert reports(events)[1].text == "FOK: not fully fillable"
    venue.assert_book([], [(101, 2), (102, 2)])


def test_fok_that_can_fill_fills_completely(venue: Driver) -> None:
    """A FOK the book can fill sweeps the levels it needs and is filled completely."""
    venue.all(order("s1", SELL, 2, 101, account="B1"), order("s2", SELL, 4, 102, account="C1"))
    assert brief(venue(order("f1", BUY, 5, 102, tif=FOK))) == [
        ("NEW", "f1", "NEW", 5, 0, None),
        ("FILL", 101, 2, "BUY", "f1", 3, "s1", 0),
        ("FILL", 102, 3, "BUY", "f1", 0, "s2", 1),
    ]
    venue.assert_book([], [(102, 1)])


@pytest.mark.parametrize(
    ("stp", "fillable"),
    [(StpMode.CANCEL_AGGRESSING, False), (StpMode.CANCEL_BOTH, False), (StpMode.CANCEL_RESTING, True)],
)
def test_fok_fillable_check_counts_self_trade_prevention(venue: Driver, stp: StpMode, fillable: bool) -> None:
    """The book holds 4 lots, but 2 of them ahead of the rest are the taker's own: unless
    self-trade prevention cancels the resting own order, the FOK cannot fill 4 and must
    not trade at all (nor cancel its own resting order)."""
    venue.all(order("s1", SELL, 2, 101, account="B1"), order("own", SELL, 2, 101), order("s2", SELL, 2, 102, account="C1"))
    events = venue(order("f1", BUY, 4, 102, tif=FOK, stp=stp))
    if fillable:
        assert brief(events) == [
            ("NEW", "f1", "NEW", 4, 0, None),
            ("FILL", 101, 2, "BUY", "f1", 2, "s1", 0),
            ("CANCELED", "own", "CANCELED", 0, 0, None),
            ("FILL", 102, 2, "BUY", "f1", 0, "s2", 0),
        ]
        venue.assert_book([], [])
    else:
        assert brief(events) == [("NEW", "f1", "NEW", 4, 0, None), ("CANCELED", "f1", "CANCELED", 0, 0, None)]
        venue.assert_book([], [(101, 4), (102, 2)])


def test_fok_fillable_check_does_not_count_iceberg_reserve_behind_an_own_order(venue: Driver) -> None:
    """An iceberg's hidden quantity is replenished behind the taker's own resting order,
    which stops the taker (cancel aggressing) after the shown slice: so only the slice is
    fillable, and a FOK for more must not trade at all."""
    venue.all(order("ice", SELL, 10, 101, account="B1", display_qty=2), order("own", SELL, 5, 101))
    events = venue(order("f1", BUY, 6, 101, tif=FOK))
    assert brief(events) == [("NEW", "f1", "NEW", 6, 0, None), ("CANCELED", "f1", "CANCELED", 0, 0, None)]
    venue.assert_book([], [(101, 7)])


# ---------------------------------------------------------------- post-only, reduce-only, iceberg


@pytest.mark.parametrize(("side", "price", "accepted"), [(BUY, 101, False), (BUY, 100, True), (SELL, 99, False), (SELL, 100, True)])
def test_post_only_is_refused_if_it_would_cross(venue: Driver, side: Side, price: int, accepted: bool) -> None:
    """Best bid 99, best ask 101: post-only rests when passive, is refused (not repriced)
    when it would take liquidity."""
    venue.all(order("b0", BUY, 1, 99, account="B1"), order("s0", SELL, 1, 101, account="B1"))
    events = venue(order("po", side, 1, price, post_only=True))
    if accepted:
        assert brief(events) == [("NEW", "po", "NEW", 1, 0, None)]
    else:
        assert brief(events) == [("REJECTED", "po", "REJECTED", 0, 0, "POST_ONLY_WOULD_CROSS")]
        venue.assert_book([(99, 1)], [(101, 1)])


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"tif": IOC}, "INVALID_ORDER"),
        ({"tif": FOK}, "INVALID_ORDER"),
        ({"price": None}, "INVALID_ORDER"),
    ],
)
def test_post_only_must_be_a_resting_limit_order(venue: Driver, kw: dict[str, Any], reason: str) -> None:
    """Post-only with IOC, FOK or a market order is refused as an invalid combination."""
    args = {"price": 100, **kw}
    events = venue(order("po", BUY, 1, args.pop("price"), post_only=True, **args))
    assert brief(events) == [("REJECTED", "po", "REJECTED", 0, 0, reason)]


def _long(venue: Driver, account: str, qty: int) -> None:
    """Give `account` a long position of `qty` by buying from C1."""
    venue.all(order(f"pos-s-{account}-{qty}", SELL, qty, 100, account="C1"), order(f"pos-b-{account}-{qty}", BUY, qty, 100, account=account))
    assert venue.position(account) == qty


@pytest.mark.parametrize(
    ("side", "qty", "accepted"),
    [(SELL, 3, True), (SELL, 5, True), (SELL, 6, False), (BUY, 1, False)],
)
def test_reduce_only_is_refused_unless_it_reduces_by_at_most_its_size(venue: Driver, side: Side, qty: int, accepted: bool) -> None:
    """Long 5: a reduce-only sell of up to 5 is accepted; a sell of 6 or any buy is
    refused."""
    _long(venue, "A1", 5)
    events = venue(order("ro", side, qty, 110 if side is SELL else 90, reduce_only=True))
    if accepted:
        assert brief(events) == [("NEW", "ro", "NEW", qty, 0, None)]
    else:
        assert brief(events) == [("REJECTED", "ro", "REJECTED", 0, 0, "REDUCE_ONLY_WOULD_INCREASE")]


def test_reduce_only_without_a_position_is_refused(venue: Driver) -> None:
    """With no position there is nothing to reduce: a reduce-only order is refused."""
    assert brief(venue(order("ro", SELL, 1, 110, reduce_only=True))) == [("REJECTED", "ro", "REJECTED", 0, 0, "REDUCE_ONLY_WOULD_INCREASE")]


def test_resting_reduce_only_is_canceled_when_fills_elsewhere_flatten_the_position(venue: Driver) -> None:
    """Long 5 with a reduce-only sell 5 resting at 110: selling the 5 elsewhere leaves the
    reduce-only order able only to open a short, so it is canceled after that fill."""
    _long(venue, "A1", 5)
    venue(order("ro", SELL, 5, 110, reduce_only=True))
    venue(order("bid", BUY, 5, 100, account="B1"))
    events = venue(order("flat", SELL, 5, 100))
    assert brief(events) == [
        ("NEW", "flat", "NEW", 5, 0, None),
        ("FILL", 100, 5, "SELL", "flat", 0, "bid", 0),
        ("CANCELED", "ro", "CANCELED", 0, 0, None),
    ]
    assert reports(events)[-1].text == "reduce-only: position now 0"
    venue.assert_book([], [])


def test_filled_reduce_only_order_is_not_reported_canceled_afterwards(venue: Driver) -> None:
    """A resting reduce-only order that is filled completely is done: the position check
    after the fill must not send it a cancel, nor change its status."""
    _long(venue, "A1", 5)
    venue(order("ro", SELL, 5, 110, reduce_only=True))
    events = venue(order("lift", BUY, 5, 110, account="B1"))
    assert brief(events) == [("NEW", "lift", "NEW", 5, 0, None), ("FILL", 110, 5, "BUY", "lift", 0, "ro", 0)]
    assert venue.live("ro").status is OrdStatus.FILLED
    assert venue.engine.reduce_only == {}


def test_parked_reduce_only_stop_cannot_open_a_position_when_it_triggers(venue: Driver) -> None:
    """Long 5 with a reduce-only sell stop 5: once the position is flattened by a fill
    elsewhere, the stop could only open a short, so it is canceled and never trades."""
    _long(venue, "A1", 5)
    venue.all(order("rs", SELL, 5, stop_px=95, reduce_only=True), order("bid", BUY, 5, 95, account="B1"), order("bid2", BUY, 5, 90, account="B1"))
    events = venue(order("flat", SELL, 5, 95))
    assert ("FILL", 95, 5, "SELL", "flat", 0, "bid", 0) in brief(events)
    assert not any(f[0] == "FILL" and f[4] == "rs" for f in brief(events))
    assert venue.position("A1") == 0
    assert venue.live("rs").status is OrdStatus.CANCELED


def test_iceberg_shows_its_slice_and_replenishes_at_the_back_of_the_queue(venue: Driver) -> None:
    """Only the display quantity is shown; when the slice is taken the next slice joins
    the tail of the level, behind orders that arrived after the iceberg."""
    venue.all(order("ice", SELL, 10, 101, account="B1", display_qty=3), order("s2", SELL, 2, 101, account="C1"))
    venue.assert_book([], [(101, 5)])
    assert brief(venue(order("b1", BUY, 3, 101))) == [
        ("NEW", "b1", "NEW", 3, 0, None),
        ("FILL", 101, 3, "BUY", "b1", 0, "ice", 7),
    ]
    assert venue.queue(SELL, 101) == ["s2", "ice"]
    venue.assert_book([], [(101, 5)])
    assert brief(venue(order("b2", BUY, 9, 101))) == [
        ("NEW", "b2", "NEW", 9, 0, None),
        ("FILL", 101, 2, "BUY", "b2", 7, "s2", 0),
        ("FILL", 101, 3, "BUY", "b2", 4, "ice", 4),
        ("FILL", 101, 3, "BUY", "b2", 1, "ice", 1),
        ("FILL", 101, 1, "BUY", "b2", 0, "ice", 0),
    ]
    venue.assert_book([], [])


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"display_qty": 0}, "INVALID_QTY"),
        ({"display_qty": 11}, "INVALID_QTY"),
        ({"display_qty": 2, "tif": IOC}, "INVALID_ORDER"),
        ({"display_qty": 2, "price": None}, "INVALID_ORDER"),
    ],
)
def test_iceberg_must_be_a_resting_limit_with_a_sane_display(venue: Driver, kw: dict[str, Any], reason: str) -> None:
    """An iceberg needs a display quantity in 1..qty and a resting limit order."""
    args = {"price": 100, **kw}
    events = venue(order("ice", BUY, 10, args.pop("price"), **args))
    assert brief(events) == [("REJECTED", "ice", "REJECTED", 0, 0, reason)]


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"qty": 0}, "INVALID_QTY"),
        ({"qty": -1}, "INVALID_QTY"),
        ({"ord_type": OrdType.LIMIT, "price": None}, "INVALID_PRICE"),
        ({"price": 0}, "INVALID_PRICE"),
        ({"ord_type": OrdType.MARKET, "price": 100}, "INVALID_PRICE"),
        ({"ord_type": OrdType.STOP, "stop_px": None}, "INVALID_PRICE"),
        ({"ord_type": OrdType.LIMIT, "price": 100, "stop_px": 120}, "INVALID_ORDER"),
        ({"tif": GTC, "expire_time": T0 + 10**6}, "INVALID_ORDER"),
        ({"price": None, "tif": GTD, "expire_time": T0 + 10**6}, "INVALID_ORDER"),
    ],
)
def test_malformed_orders_are_refused_with_a_reason(venue: Driver, kw: dict[str, Any], reason: str) -> None:
    """Orders malformed on their own (quantity, price, stop price, TIF and ExpireTime
    combinations) are refused with the matching reason and rest nothing."""
    args = {"qty": 1, "price": 100, **kw}
    events = venue(order("bad", BUY, args.pop("qty"), args.pop("price"), **args))
    assert brief(events) == [("REJECTED", "bad", "REJECTED", 0, 0, reason)]
    assert venue.engine.orders == {}



def test_parked_reduce_only_stop_triggers_and_reduces_while_the_position_is_open(venue: Driver) -> None:
    """The same stop, with the position still open when another account's trade reaches
    its stop price: it triggers and closes the position."""
    _long(venue, "A1", 5)
    venue.all(order("rs", SELL, 5, stop_px=95, reduce_only=True), order("bid", BUY, 6, 95, account="B1"))
    events = venue(order("hit", SELL, 1, 95, account="C1"))
    assert brief(events) == [
        ("NEW", "hit", "NEW", 1, 0, None),
        ("FILL", 95, 1, "SELL", "hit", 0, "bid", 5),
        ("TRIGGERED", "rs", "NEW", 5, 0, None),
        ("FILL", 95, 5, "SELL", "rs", 0, "bid", 0),
    ]
    assert venue.position("A1") == 0
    assert venue.engine.reduce_only == {}


def test_fok_counts_iceberg_reserve_when_nothing_of_its_own_stands_in_the_way(venue: Driver) -> None:
    """Without an own order on the level the whole iceberg is reachable, slice by slice."""
    venue(order("ice", SELL, 6, 101, account="B1", display_qty=2))
    assert brief(venue(order("f1", BUY, 6, 101, tif=FOK))) == [
        ("NEW", "f1", "NEW", 6, 0, None),
        ("FILL", 101, 2, "BUY", "f1", 4, "ice", 4),
        ("FILL", 101, 2, "BUY", "f1", 2, "ice", 2),
        ("FILL", 101, 2, "BUY", "f1", 0, "ice", 0),
    ]


def test_triggered_stop_limit_rests_and_its_stop_price_can_no_longer_change(venue: Driver) -> None:
    """Once triggered, a stop-limit is a resting limit: its price may be replaced, its
    stop price may not."""
    venue.all(order("st", BUY, 2, 103, stop_px=101), order("s1", SELL, 1, 101, account="B1"), order("b1", BUY, 1, 101, account="C1"))
    venue.assert_book([(103, 2)], [])
    events = venue(replace("r1", "st", 2, 102, stop_px=105))
    assert brief(events) == [("CXL_REJECT", "r1", True, "NEW", "INVALID_ORDER")]
    assert brief(venue(replace("r2", "st", 2, 102, stop_px=101))) == [("REPLACED", "r2", "NEW", 2, 0, None)]
    venue.assert_book([(102, 2)], [])


def test_market_order_with_day_tif_still_never_rests(venue: Driver) -> None:
    """A market order's TIF does not let it rest: what is left after the sweep is
    canceled."""
    venue(order("s1", SELL, 1, 101, account="B1"))
    assert brief(venue(order("m1", BUY, 3, tif=DAY))) == [
        ("NEW", "m1", "NEW", 3, 0, None),
        ("FILL", 101, 1, "BUY", "m1", 2, "s1", 0),
        ("CANCELED", "m1", "CANCELED", 0, 1, None),
    ]


def test_two_reduce_only_orders_hit_by_one_sweep_never_flip_the_position(venue: Driver) -> None:
    """Long 5 with two reduce-only sells of 5 resting (each valid alone): a buy of 10
    lifting both must stop at flat. The second is canceled when its turn comes, and the
    buyer's remainder rests."""
    _long(venue, "A1", 5)
    venue.all(order("ro1", SELL, 5, 110, reduce_only=True), order("ro2", SELL, 5, 110, reduce_only=True))
    events = venue(order("lift", BUY, 10, 110, account="B1"))
    assert brief(events) == [
        ("NEW", "lift", "NEW", 10, 0, None),
        ("FILL", 110, 5, "BUY", "lift", 5, "ro1", 0),
        ("CANCELED", "ro2", "CANCELED", 0, 0, None),
    ]
    assert venue.position("A1") == 0
    venue.assert_book([(110, 5)], [])


def test_reduce_only_maker_fills_only_what_is_left_of_the_position(venue: Driver) -> None:
    """Long 5; a plain sell of 3 ahead of a reduce-only sell of 5: one sweep takes the 3,
    then only 2 of the reduce-only order (to flat), which is then canceled."""
    _long(venue, "A1", 5)
    venue.all(order("plain", SELL, 3, 109), order("ro", SELL, 5, 110, reduce_only=True))
    assert brief(venue(order("lift", BUY, 10, 110, account="B1"))) == [
        ("NEW", "lift", "NEW", 10, 0, None),
        ("FILL", 109, 3, "BUY", "lift", 7, "plain", 0),
        ("FILL", 110, 2, "BUY", "lift", 5, "ro", 3),
        ("CANCELED", "ro", "CANCELED", 0, 2, None),
    ]
    assert venue.position("A1") == 0
    venue.assert_book([(110, 5)], [])


def test_fok_does_not_count_reduce_only_quantity_past_flat(venue: Driver) -> None:
    """Long 5: a plain sell of 3 and a reduce-only sell of 5 can give a buyer only 5 in
    all (the reduce-only order stops at flat), so a FOK for 8 trades nothing."""
    _long(venue, "A1", 5)
    venue.all(order("plain", SELL, 3, 109), order("ro", SELL, 5, 110, reduce_only=True))
    assert brief(venue(order("f1", BUY, 8, 110, tif=FOK, account="B1"))) == [
        ("NEW", "f1", "NEW", 8, 0, None),
        ("CANCELED", "f1", "CANCELED", 0, 0, None),
    ]
    venue.assert_book([], [(109, 3), (110, 5)])


def test_reject_texts_quote_prices_and_quantities_as_the_client_sent_them() -> None:
    """Inside the core prices are ticks and sizes lots; a client reading a reject's Text
    must see the price and size it sent (tick 0.5, lot 0.1 here), never tick counts."""
    inst = dataclasses.replace(instrument(BTC), tick_size=Decimal("0.5"), lot_size=Decimal("0.1"), reference_price=Decimal(100))
    venue = Driver(MatchingEngine([inst], ACCOUNTS))
    venue(order("ask", SELL, 5, 201, account="B1"))  # 100.5 for 0.5
    post = reports(venue(order("po", BUY, 3, 202, post_only=True)))[0]
    assert post.text == "post-only at 101 would cross"
    stop = reports(venue(order("st", BUY, 3, stop_px=150)))[0]
    assert stop.text == "stop 75 would trigger at once (last 100)"
    ro = reports(venue(order("ro", SELL, 3, 190, reduce_only=True)))[0]
    assert ro.text == "reduce-only sell cannot reduce position 0"
