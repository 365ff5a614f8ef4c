"""The engine's pre-trade hook, with a hand-written stub in place of venue/risk.py: when it
is asked, that its refusal is the order's reject and changes nothing, that the market
collar bounds how far a market order or triggered stop may sweep, and what the engine
tells it of live orders and fills."""

from __future__ import annotations

from dataclasses import dataclass, field

from matching_support import ACCOUNTS, BTC, BUY, ETH, SELL, Driver, brief, cancel, instrument, order, replace, reports, snapshot

from venue.book import Book, Order
from venue.commands import NewOrder, ReplaceOrder
from venue.matching import MatchingEngine, PreTradeCheck, Refusal
from venue.rejects import RejectReason
from venue.types import Side, TimeInForce


@dataclass
class StubRisk(PreTradeCheck):
    refuse: set[str] = field(default_factory=set)  # ClOrdIDs (new or replace) to refuse
    collar: dict[Side, int] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    told: list[tuple[object, ...]] = field(default_factory=list)  # what the engine reported, in order

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None:
        self.asked.append(cmd.cl_ord_id)
        return (RejectReason.RISK_LIMIT, "over the limit") if cmd.cl_ord_id in self.refuse else None

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        self.asked.append(cmd.cl_ord_id)
        return (RejectReason.RISK_LIMIT, "over the limit") if cmd.cl_ord_id in self.refuse else None

    def market_collar(self, side: Side, book: Book) -> int | None:
        return self.collar.get(side)

    def live(self, order: Order) -> None:
        self.told.append(("live", order.view.cl_ord_id, order.leaves))

    def gone(self, order: Order) -> None:
        self.told.append(("gone", order.view.cl_ord_id, order.leaves))

    def traded(self, symbol: str, price: int, qty: int, taker: Order, maker: Order, taker_live: bool) -> None:
        self.told.append(("traded", price, qty, taker.view.cl_ord_id, taker.leaves, maker.view.cl_ord_id, maker.leaves, taker_live))


def _venue(risk: StubRisk) -> Driver:
    return Driver(MatchingEngine([instrument(BTC), instrument(ETH)], ACCOUNTS, pre_trade=risk))


def test_risk_refusal_rejects_the_order_and_changes_nothing() -> None:
    """A pre-trade refusal becomes the order's reject, with risk's reason and text, and
    leaves the state identical."""
    risk = StubRisk(refuse={"big"})
    venue = _venue(risk)
    venue(order("s1", SELL, 5, 101, account="B1"))
    before = snapshot(venue.engine)
    events = venue(order("big", BUY, 5, 101))
    assert brief(events) == [("REJECTED", "big", "REJECTED", 0, 0, "RISK_LIMIT")]
    assert reports(events)[0].text == "over the limit"
    assert snapshot(venue.engine) == before


def test_risk_is_asked_only_about_requests_that_are_valid_on_their_own() -> None:
    """Requests the engine refuses itself (bad quantity, unknown symbol, bad replace)
    never reach pre-trade risk."""
    risk = StubRisk()
    venue = _venue(risk)
    venue.all(order("ok", BUY, 1, 99), order("bad", BUY, 0, 99), order("x", BUY, 1, 99, symbol="DOGE-PERP"), replace("r0", "ok", 0, 99))
    assert risk.asked == ["ok"]


def test_risk_refusal_of_a_replace_is_a_cancel_reject_and_keeps_the_order() -> None:
    """A replace refused by risk is an OrderCancelReject and the order rests unchanged."""
    risk = StubRisk(refuse={"r1"})
    venue = _venue(risk)
    venue(order("o1", BUY, 5, 99))
    assert brief(venue(replace("r1", "o1", 9, 99))) == [("CXL_REJECT", "r1", True, "NEW", "RISK_LIMIT")]
    venue.assert_book([(99, 5)], [])


def test_the_engine_reports_each_change_to_live_orders_and_positions() -> None:
    """What risk's state follows: an order that rests or parks is live with its leaves; a
    fill reports both orders after it; a cancel, a stop's trigger and a replace that loses
    its place take the old terms off; a replace in place re-counts; a taker that never
    rests is reported only through its fills; the opening auction's taker was resting."""
    risk = StubRisk()
    venue = _venue(risk)
    venue.all(order("s1", SELL, 5, 101, account="B1"), order("b1", BUY, 7, 101), order("st", SELL, 2, stop_px=90, account="B1"))
    assert risk.told == [("live", "s1", 5), ("traded", 101, 5, "b1", 2, "s1", 0, False), ("live", "b1", 2), ("live", "st", 2)]
    risk.told.clear()
    venue.all(replace("b2", "b1", 6, 101), replace("b3", "b2", 8, 100), cancel("x", "b3"), order("i1", SELL, 1, 101, tif=TimeInForce.IOC, account="B1"))
    assert risk.told == [("gone", "b1", 2), ("live", "b2", 1), ("gone", "b2", 1), ("live", "b3", 3), ("gone", "b3", 3)]
    risk.told.clear()
    venue.all(order("bb", BUY, 1, 90, account="C1"), order("ss", SELL, 1, 90))
    assert risk.told == [("live", "bb", 1), ("traded", 90, 1, "ss", 0, "bb", 0, False), ("gone", "st", 2)]


def test_market_collar_bounds_a_market_orders_sweep() -> None:
    """With a collar at 102, a market buy takes 101 and 102, not 103; the rest is canceled."""
    venue = _venue(StubRisk(collar={BUY: 102}))
    venue.all(order("s1", SELL, 1, 101, account="B1"), order("s2", SELL, 1, 102, account="B1"), order("s3", SELL, 1, 103, account="B1"))
    assert brief(venue(order("m1", BUY, 5))) == [
        ("NEW", "m1", "NEW", 5, 0, None),
        ("FILL", 101, 1, "BUY", "m1", 4, "s1", 0),
        ("FILL", 102, 1, "BUY", "m1", 3, "s2", 0),
        ("CANCELED", "m1", "CANCELED", 0, 2, None),
    ]
    venue.assert_book([], [(103, 1)])


def test_market_collar_bounds_a_triggered_stop() -> None:
    """A triggered sell stop trades down only to the collar (97); its remainder is
    canceled, not rested."""
    venue = _venue(StubRisk(collar={SELL: 97}))
    venue.all(
        order("b1", BUY, 1, 98, account="B1"),
        order("b2", BUY, 1, 97, account="B1"),
        order("b3", BUY, 1, 96, account="B1"),
        order("st", SELL, 3, stop_px=99),
    )
    assert brief(venue(order("s1", SELL, 1, 98, account="C1"))) == [
        ("NEW", "s1", "NEW", 1, 0, None),
        ("FILL", 98, 1, "SELL", "s1", 0, "b1", 0),
        ("TRIGGERED", "st", "NEW", 3, 0, None),
        ("FILL", 97, 1, "SELL", "st", 2, "b2", 0),
        ("CANCELED", "st", "CANCELED", 0, 1, None),
    ]
    venue.assert_book([(96, 1)], [])
