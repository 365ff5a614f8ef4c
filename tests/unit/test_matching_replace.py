"""Cancel, cancel/replace, mass cancel, cancel-on-disconnect and order status: the exact
events, queue priority after a replace, and who may touch which order."""

from __future__ import annotations

import pytest
from matching_support import BTC, BUY, ETH, SELL, T0, Driver, brief, cancel, order, replace, reports

from venue.commands import CancelOrder, CancelSessionOrders, MassCancel, NewOrder, QueryOrder, ReplaceOrder, SetPhase
from venue.events import CancelRejected, ExecReport
from venue.rejects import RejectReason
from venue.types import MassCancelScope, OrdStatus, TimeInForce, TradingPhase

# ---------------------------------------------------------------- cancel


def test_cancel_by_orig_cl_ord_id_reports_the_cancel_under_the_new_cl_ord_id(venue: Driver) -> None:
    """The cancel report carries the cancel's ClOrdID, the order's previous one as
    OrigClOrdID, its OrderID and the next ExecID."""
    venue(order("o1", BUY, 5, 99))
    events = venue(cancel("c1", "o1"))
    assert brief(events) == [("CANCELED", "c1", "CANCELED", 0, 0, None)]
    [report] = reports(events)
    assert (report.order.orig_cl_ord_id, report.order.order_id, report.exec_id) == ("o1", 1, 2)
    venue.assert_book([], [])
    assert venue.engine.orders == {}


def test_cancel_of_a_partially_filled_order_reports_its_cum_qty(venue: Driver) -> None:
    """Canceling by OrderID after a partial fill reports leaves 0 and the quantity
    already filled."""
    venue.all(order("o1", BUY, 5, 99), order("s1", SELL, 2, 99, account="B1"))
    assert brief(venue(cancel("c1", order_id=1))) == [("CANCELED", "c1", "CANCELED", 0, 2, None)]


def test_cancel_of_a_parked_stop_takes_it_out_of_the_stops(venue: Driver) -> None:
    """A parked stop can be canceled like a resting order and no longer waits to
    trigger."""
    venue(order("st", SELL, 5, stop_px=90))
    assert brief(venue(cancel("c1", "st"))) == [("CANCELED", "c1", "CANCELED", 0, 0, None)]
    assert venue.book().sell_stops == []


@pytest.mark.parametrize(
    ("request_", "status", "reason"),
    [
        (cancel("c9", "nope"), "REJECTED", "UNKNOWN_ORDER"),
        (cancel("c9", order_id=99), "REJECTED", "UNKNOWN_ORDER"),
        (cancel("c9"), "REJECTED", "MISSING_FIELD"),
        (cancel("c9", "done"), "FILLED", "ORDER_DONE"),
        (cancel("c9", "o1", firm="F2"), "REJECTED", "UNKNOWN_ORDER"),
        (cancel("c9", order_id=1, firm="F2"), "REJECTED", "UNKNOWN_ORDER"),
        (cancel("done", "o1"), "NEW", "DUPLICATE_CL_ORD_ID"),
    ],
    ids=["unknown-clordid", "unknown-orderid", "no-id", "filled", "other-firm-by-clordid", "other-firm-by-orderid", "duplicate-clordid"],
)
def test_refused_cancel_gets_a_cancel_reject_and_the_order_stays(venue: Driver, request_: CancelOrder, status: str, reason: str) -> None:
    """Another firm cannot see F1's orders at all: to it they are unknown."""
    venue.all(order("o1", BUY, 5, 99), order("done", SELL, 1, 105), order("lift", BUY, 1, 105, account="B1"))
    events = venue(request_)
    assert brief(events) == [("CXL_REJECT", "c9" if request_.cl_ord_id == "c9" else "done", False, status, reason)]
    venue.assert_book([(99, 5)], [])


# ---------------------------------------------------------------- replace: priority


def _two_at_101(venue: Driver) -> None:
    venue.all(order("o1", SELL, 5, 101), order("o2", SELL, 5, 101, account="B1"))


def test_replace_quantity_down_keeps_priority(venue: Driver) -> None:
    """A quantity decrease at the same price keeps the order's place at the front of its
    level."""
    _two_at_101(venue)
    events = venue(replace("r1", "o1", 3, 101))
    assert brief(events) == [("REPLACED", "r1", "NEW", 3, 0, None)]
    [report] = reports(events)
    assert (report.order.orig_cl_ord_id, report.order.qty, report.order.order_id) == ("o1", 3, 1)
    assert venue.queue(SELL, 101) == ["r1", "o2"]
    venue.assert_book([], [(101, 8)])


@pytest.mark.parametrize(("qty", "price"), [(6, 101), (5, 102), (5, 100)], ids=["qty-up", "price-away", "price-in"])
def test_replace_quantity_up_or_new_price_loses_priority(venue: Driver, qty: int, price: int) -> None:
    """o1 goes to the tail of its (new) level."""
    _two_at_101(venue)
    venue(order("o3", SELL, 1, price, account="C1"))
    assert brief(venue(replace("r1", "o1", qty, price))) == [("REPLACED", "r1", "NEW", qty, 0, None)]
    assert venue.queue(SELL, price)[-1] == "r1"


def test_replace_back_to_the_same_price_does_not_regain_priority(venue: Driver) -> None:
    """Moving away and back to the original price leaves the order behind those that
    stayed."""
    _two_at_101(venue)
    venue.all(replace("r1", "o1", 5, 102), replace("r2", "r1", 5, 101))
    assert venue.queue(SELL, 101) == ["o2", "r2"]


def test_replace_that_crosses_trades_at_once_after_the_replaced_report(venue: Driver) -> None:
    """A replace to a crossing price is acknowledged first, then trades like a new
    aggressor and rests the rest."""
    venue.all(order("s1", SELL, 3, 101, account="B1"), order("o1", BUY, 5, 99))
    assert brief(venue(replace("r1", "o1", 5, 101))) == [
        ("REPLACED", "r1", "NEW", 5, 0, None),
        ("FILL", 101, 3, "BUY", "r1", 2, "s1", 0),
    ]
    venue.assert_book([(101, 2)], [])


def test_replace_of_a_partially_filled_order_keeps_its_fills(venue: Driver) -> None:
    """New quantity is the order's total: leaves = new qty - cum."""
    venue.all(order("o1", BUY, 5, 99), order("s1", SELL, 2, 99, account="B1"))
    events = venue(replace("r1", "o1", 4, 99))
    assert brief(events) == [("REPLACED", "r1", "PARTIALLY_FILLED", 2, 2, None)]
    assert reports(events)[0].cum_cost == 198
    venue.assert_book([(99, 2)], [])


def test_iceberg_quantity_down_keeps_place_but_not_a_fresh_slice(venue: Driver) -> None:
    """An iceberg whose shown slice is partly taken keeps its place on a quantity decrease,
    but only with what is left of that slice: a fresh slice would give hidden quantity
    the priority the old slice earned."""
    venue.all(order("ice", SELL, 20, 101, display_qty=5), order("s2", SELL, 1, 101, account="C1"), order("b1", BUY, 3, 101, account="B1"))
    venue.assert_book([], [(101, 3)])
    assert brief(venue(replace("r1", "ice", 19, 101))) == [("REPLACED", "r1", "PARTIALLY_FILLED", 16, 3, None)]
    assert venue.queue(SELL, 101) == ["r1", "s2"]
    venue.assert_book([], [(101, 3)])


def test_replace_via_order_id(venue: Driver) -> None:
    """A replace may name the order by OrderID instead of OrigClOrdID."""
    venue(order("o1", BUY, 5, 99))
    assert brief(venue(replace("r1", None, 4, 98, order_id=1))) == [("REPLACED", "r1", "NEW", 4, 0, None)]
    venue.assert_book([(98, 4)], [])


def test_replaced_order_answers_only_to_its_newest_cl_ord_id(venue: Driver) -> None:
    """After o1 -> r1, a cancel naming o1 is refused (the order lives on as r1)."""
    venue.all(order("o1", BUY, 5, 99), replace("r1", "o1", 4, 99))
    [refused] = venue(cancel("c1", "o1"))
    assert isinstance(refused, CancelRejected)
    assert brief([refused]) == [("CXL_REJECT", "c1", False, "NEW", "UNKNOWN_ORDER")]
    assert refused.text == "ClOrdID o1 was replaced by r1"
    assert brief(venue(cancel("c2", "r1"))) == [("CANCELED", "c2", "CANCELED", 0, 0, None)]


def test_replace_of_a_parked_stop_moves_its_stop_price(venue: Driver) -> None:
    """Replacing a parked stop re-parks it under its new stop price and quantity."""
    venue(order("st", BUY, 2, stop_px=110))
    assert brief(venue(replace("r1", "st", 3, stop_px=105))) == [("REPLACED", "r1", "NEW", 3, 0, None)]
    assert venue.book().buy_stops == [(105, 1)]


@pytest.mark.parametrize(
    ("request_", "status", "reason"),
    [
        (replace("r9", "o1", 2, 99), "PARTIALLY_FILLED", "QTY_BELOW_FILLED"),
        (replace("r9", "o1", 1, 99), "PARTIALLY_FILLED", "QTY_BELOW_FILLED"),
        (replace("r9", "o1", 0, 99), "PARTIALLY_FILLED", "INVALID_QTY"),
        (replace("r9", "o1", 5, None), "PARTIALLY_FILLED", "INVALID_PRICE"),
        (replace("r9", "o1", 5, 99, stop_px=120), "PARTIALLY_FILLED", "INVALID_ORDER"),
        (replace("r9", "done", 5, 105), "FILLED", "ORDER_DONE"),
        (replace("r9", "gone", 5, 99), "CANCELED", "ORDER_DONE"),
        (replace("r9", "nope", 5, 99), "REJECTED", "UNKNOWN_ORDER"),
        (replace("r9", "o1", 5, 99, firm="F2"), "REJECTED", "UNKNOWN_ORDER"),
        (replace("done", "o1", 5, 99), "PARTIALLY_FILLED", "DUPLICATE_CL_ORD_ID"),
        (replace("r9", "po", 2, 99), "NEW", "POST_ONLY_WOULD_CROSS"),
        (replace("r9", "st", 2, stop_px=99), "NEW", "STOP_WOULD_TRIGGER"),
        (replace("r9", "st", 2, stop_px=None), "NEW", "INVALID_PRICE"),
        (replace("r9", "st", 2, 120, stop_px=120), "NEW", "INVALID_PRICE"),
    ],
    ids=[
        "qty-equals-filled", "qty-below-filled", "qty-zero", "limit-without-price", "limit-with-stop", "filled", "canceled",
        "unknown", "other-firm", "duplicate-clordid", "post-only-crossing", "stop-would-trigger", "stop-without-stop-px", "stop-given-price",
    ],
)
def test_refused_replace_gets_a_cancel_reject_and_changes_nothing(venue: Driver, request_: ReplaceOrder, status: str, reason: str) -> None:
    """o1 buys 5 at 100 with 2 filled; done was filled; gone canceled; po is a post-only
    sell at 101; st a buy stop at 110."""
    venue.all(
        order("o1", BUY, 5, 100),
        order("s1", SELL, 2, 100, account="B1"),
        order("done", SELL, 1, 105),
        order("lift", BUY, 1, 105, account="B1"),
        order("gone", BUY, 1, 90),
        cancel("x", "gone"),
        order("po", SELL, 2, 101, post_only=True, account="A2"),
        order("st", BUY, 2, stop_px=110),
    )
    before = (venue.book().depth(BUY), venue.book().depth(SELL), list(venue.book().buy_stops))
    events = venue(request_)
    assert brief(events) == [("CXL_REJECT", request_.cl_ord_id, True, status, reason)]
    assert (venue.book().depth(BUY), venue.book().depth(SELL), list(venue.book().buy_stops)) == before


# ---------------------------------------------------------------- mass cancel and cancel-on-disconnect


def _spread_orders(venue: Driver) -> None:
    venue.all(
        order("a1-btc", BUY, 1, 90, account="A1"),
        order("a1-eth", BUY, 1, 90, account="A1", symbol=ETH),
        order("a1-stop", BUY, 1, stop_px=120, account="A1"),
        order("a2-btc", BUY, 1, 91, account="A2"),
        order("a2-eth", SELL, 1, 120, account="A2", symbol=ETH),
        order("b1-btc", BUY, 1, 92, account="B1"),
    )


@pytest.mark.parametrize(
    ("scope", "symbol", "account", "canceled"),
    [
        (MassCancelScope.ALL, None, None, ["a1-btc", "a1-eth", "a1-stop", "a2-btc", "a2-eth"]),
        (MassCancelScope.ALL, None, "A1", ["a1-btc", "a1-eth", "a1-stop"]),
        (MassCancelScope.INSTRUMENT, BTC, None, ["a1-btc", "a1-stop", "a2-btc"]),
        (MassCancelScope.INSTRUMENT, ETH, "A2", ["a2-eth"]),
    ],
    ids=["firm-all", "account-all", "instrument", "instrument-account"],
)
def test_mass_cancel_cancels_the_firms_orders_in_scope_only(
    venue: Driver, scope: MassCancelScope, symbol: str | None, account: str | None, canceled: list[str]
) -> None:
    """Each canceled order gets its own report before the mass cancel report; another
    firm's orders are never touched."""
    _spread_orders(venue)
    events = venue(MassCancel(session="S-F1", firm="F1", cl_ord_id="m1", scope=scope, symbol=symbol, account=account))
    assert brief(events[:-1]) == [("CANCELED", cl, "CANCELED", 0, 0, None) for cl in canceled]
    assert brief(events[-1:]) == [("MASS_CANCEL", "m1", len(canceled), None)]
    assert venue.live("b1-btc", "F2").status is OrdStatus.NEW


@pytest.mark.parametrize(
    ("scope", "symbol", "account", "reason"),
    [
        (MassCancelScope.ALL, None, "B1", "ACCOUNT_NOT_PERMITTED"),
        (MassCancelScope.ALL, None, "ZZ", "UNKNOWN_ACCOUNT"),
        (MassCancelScope.INSTRUMENT, "DOGE-PERP", None, "UNKNOWN_SYMBOL"),
        (MassCancelScope.INSTRUMENT, None, None, "UNKNOWN_SYMBOL"),
    ],
)
def test_refused_mass_cancel_cancels_nothing(
    venue: Driver, scope: MassCancelScope, symbol: str | None, account: str | None, reason: str
) -> None:
    """A mass cancel naming another firm's or an unknown account, or an unknown
    instrument, is refused with a reason and cancels nothing."""
    _spread_orders(venue)
    live = set(venue.engine.orders)
    events = venue(MassCancel(session="S-F1", firm="F1", cl_ord_id="m1", scope=scope, symbol=symbol, account=account))
    assert brief(events) == [("MASS_CANCEL", "m1", 0, reason)]
    assert set(venue.engine.orders) == live


def test_cancel_on_disconnect_cancels_the_sessions_orders_of_the_listed_tifs(venue: Driver) -> None:
    """Cancel-on-disconnect cancels the session's orders of the listed TIFs (resting and
    parked) and nothing of other sessions or TIFs."""
    venue.all(
        order("day", BUY, 1, 90, tif=TimeInForce.DAY, session="S1"),
        order("gtc", BUY, 1, 91, session="S1"),
        order("day-stop", BUY, 1, stop_px=120, tif=TimeInForce.DAY, session="S1"),
        order("other", BUY, 1, 92, tif=TimeInForce.DAY, session="S2"),
    )
    events = venue(CancelSessionOrders(session="S1", tifs=frozenset({TimeInForce.DAY})))
    assert brief(events) == [("CANCELED", "day", "CANCELED", 0, 0, None), ("CANCELED", "day-stop", "CANCELED", 0, 0, None)]
    assert {e.text for e in reports(events)} == {"cancel on disconnect"}
    venue.assert_book([(92, 1), (91, 1)], [])


# ---------------------------------------------------------------- order status


def test_query_order_reports_live_done_and_unknown_orders(venue: Driver) -> None:
    """A status request answers a live order with its leaves and cum, a done order with
    its final status, and another firm's order as unknown."""
    venue.all(order("o1", BUY, 5, 99), order("s1", SELL, 2, 99, account="B1"), order("s2", SELL, 1, 105, account="B1"), cancel("c2", "s2", firm="F2"))
    live = venue(QueryOrder(session="S-F1", firm="F1", symbol=BTC, side=BUY, cl_ord_id="o1"))
    assert brief(live) == [("ORDER_STATUS", "o1", "PARTIALLY_FILLED", 3, 2, None)]
    done = venue(QueryOrder(session="S-F2", firm="F2", symbol=BTC, side=SELL, order_id=None, cl_ord_id="s2"))
    assert brief(done) == [("ORDER_STATUS", "c2", "CANCELED", 0, 0, None)]
    unknown = venue(QueryOrder(session="S-F2", firm="F2", symbol=BTC, side=BUY, cl_ord_id="o1"))
    assert brief(unknown) == [("ORDER_STATUS", "o1", "REJECTED", 0, 0, "UNKNOWN_ORDER")]


# ---------------------------------------------------------------- entry refusals by identity


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        (order("o1", BUY, 1, 99), "DUPLICATE_CL_ORD_ID"),
        (order("x", BUY, 1, 99, symbol="DOGE-PERP"), "UNKNOWN_SYMBOL"),
        (order("x", BUY, 1, 99, account="ZZ", firm="F1"), "UNKNOWN_ACCOUNT"),
        (order("x", BUY, 1, 99, account="B1", firm="F1"), "ACCOUNT_NOT_PERMITTED"),
    ],
)
def test_new_order_refused_for_who_or_what_it_names(venue: Driver, new: NewOrder, reason: str) -> None:
    """Duplicate ClOrdID, unknown symbol, unknown account and another firm's account are
    refused with OrderID 0, and the book is untouched."""
    venue(order("o1", BUY, 1, 98))
    events = venue(new)
    assert brief(events) == [("REJECTED", new.cl_ord_id, "REJECTED", 0, 0, reason)]
    assert reports(events)[0].order.order_id == 0
    venue.assert_book([(98, 1)], [])


def test_the_same_cl_ord_id_is_fine_for_another_firm(venue: Driver) -> None:
    """ClOrdIDs are scoped by firm: another firm may use the same one."""
    venue(order("o1", BUY, 1, 98))
    assert brief(venue(order("o1", BUY, 1, 97, account="B1"))) == [("NEW", "o1", "NEW", 1, 0, None)]


def test_phase_refusals_for_replace_but_cancels_go_through(venue: Driver) -> None:
    """A halted instrument refuses a replace, accepts a cancel."""
    venue.all(order("o1", BUY, 5, 99), SetPhase(symbol=BTC, phase=TradingPhase.HALTED))
    assert brief(venue(replace("r1", "o1", 4, 99))) == [("CXL_REJECT", "r1", True, "NEW", "PHASE_HALTED")]
    assert brief(venue(cancel("c1", "o1"))) == [("CANCELED", "c1", "CANCELED", 0, 0, None)]


def test_cancel_reject_is_a_whole_record(venue: Driver) -> None:
    """One whole CancelRejected tuple: session, firm, ids, kind, status, reason, text."""
    venue(order("o1", BUY, 5, 99))
    assert venue(replace("r1", "o1", 5, 99, firm="F2")) == [
        CancelRejected(2, T0 + 2, "S-F2", "F2", "r1", "o1", None, True, OrdStatus.REJECTED, RejectReason.UNKNOWN_ORDER, "unknown order: ClOrdID o1")
    ]
    assert isinstance(venue(cancel("c1", "o1"))[0], ExecReport)


def test_reduce_only_replace_that_would_increase_the_position_is_refused_and_the_order_kept(venue: Driver) -> None:
    """Long 5 with a reduce-only sell 3: raising it to 6 could open a short, so the replace
    is refused (as the same order would be on entry) and the order stays as it was; 5 is
    fine."""
    venue.all(order("s0", SELL, 5, 100, account="C1"), order("b0", BUY, 5, 100))
    venue(order("ro", SELL, 3, 110, reduce_only=True))
    assert brief(venue(replace("r1", "ro", 6, 110))) == [("CXL_REJECT", "r1", True, "NEW", "REDUCE_ONLY_WOULD_INCREASE")]
    venue.assert_book([], [(110, 3)])
    assert brief(venue(replace("r2", "ro", 5, 110))) == [("REPLACED", "r2", "NEW", 5, 0, None)]
    venue.assert_book([], [(110, 5)])
