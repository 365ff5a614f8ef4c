"""Whole-state properties of the engine on hand-built scenarios: an illegal request leaves
the state identical, market data deltas are conflated per level, ids only go up."""

from __future__ import annotations

import pytest
from matching_support import BTC, BUY, ETH, SELL, T0, Driver, cancel, exec_ids, order, replace, snapshot

from venue.commands import Command, EndOfDay, ExpireOrders, MassCancel, QueryOrder, RejectRequest, SetPhase
from venue.events import BookDelta, ExecReport, Fill, OrderView
from venue.rejects import RejectReason
from venue.types import ExecType, MassCancelScope, OrdStatus, OrdType, TimeInForce, TradingPhase


@pytest.fixture
def busy(venue: Driver) -> Driver:
    """A BTC book with a partly filled ask, an iceberg, a post-only, a GTD, a reduce-only,
    a parked stop, a filled and a canceled order; ETH halted with one resting bid."""
    venue.all(
        order("a-bid", BUY, 5, 99),
        order("b-ask", SELL, 5, 101, account="B1"),
        order("c-lift", BUY, 2, 101, account="C1"),
        order("b-ice", SELL, 10, 102, account="B1", display_qty=2),
        order("a-po", SELL, 2, 103, post_only=True, account="A2"),
        order("a-gtd", SELL, 1, 105, tif=TimeInForce.GTD, expire_time=T0 + 10**9),
        order("c-ro", SELL, 1, 104, account="C1", reduce_only=True),
        order("a-stop", BUY, 3, stop_px=110),
        order("a-x", BUY, 1, 90),
        cancel("a-x-cxl", "a-x"),
        order("e-bid", BUY, 1, 90, symbol=ETH),
        SetPhase(symbol=ETH, phase=TradingPhase.HALTED),
    )
    return venue


def _mass(firm: str, scope: MassCancelScope, symbol: str | None = None, account: str | None = None) -> MassCancel:
    return MassCancel(session=f"S-{firm}", firm=firm, cl_ord_id="m1", scope=scope, symbol=symbol, account=account)


ILLEGAL: list[Command] = [
    order("a-bid", BUY, 1, 98),
    order("x", BUY, 1, 98, symbol="DOGE-PERP"),
    order("x", BUY, 1, 98, account="ZZ", firm="F1"),
    order("x", BUY, 1, 98, account="B1", firm="F1"),
    order("x", BUY, 0, 98),
    order("x", BUY, 1, 101, post_only=True),
    order("x", BUY, 1, stop_px=100),
    order("x", BUY, 1, 98, reduce_only=True),
    order("x", SELL, 3, 110, reduce_only=True, account="C1"),
    order("x", BUY, 1, 98, tif=TimeInForce.GTD, expire_time=T0),
    order("x", BUY, 1, 98, display_qty=5),
    order("x", BUY, 1, 80, symbol=ETH),
    cancel("x", "nope"),
    cancel("x", "c-lift", firm="F3"),
    cancel("x", "a-x"),
    cancel("x", "b-ask"),
    cancel("x", order_id=2),
    cancel("a-x", "a-bid"),
    cancel("x"),
    replace("x", "b-ask", 2, 101, firm="F2"),
    replace("x", "b-ask", 1, 101, firm="F2"),
    replace("x", "c-lift", 5, 101, firm="F3"),
    replace("x", "a-po", 2, 99),
    replace("x", "a-stop", 3, stop_px=100),
    replace("x", "a-bid", 5, None),
    replace("x", "e-bid", 2, 90),
    replace("a-po", "a-bid", 5, 99),
    replace("x", "a-bid", 5, 99, firm="F2"),
    _mass("F1", MassCancelScope.ALL, account="B1"),
    _mass("F1", MassCancelScope.INSTRUMENT, symbol="DOGE-PERP"),
    SetPhase(symbol=BTC, phase=TradingPhase.OPEN),
    SetPhase(symbol="DOGE-PERP", phase=TradingPhase.OPEN),
    QueryOrder(session="S-F1", firm="F1", symbol=BTC, side=BUY, cl_ord_id="a-bid"),
    QueryOrder(session="S-F1", firm="F1", symbol=BTC, side=BUY, order_id=5),
    QueryOrder(session="S-F2", firm="F2", symbol=BTC, side=BUY, cl_ord_id="a-bid"),
    RejectRequest(session="S-F1", firm="F1", cl_ord_id="x", symbol=BTC, side=BUY, reason=RejectReason.INVALID_PRICE, text="off the tick grid"),
    ExpireOrders(),
]


@pytest.mark.parametrize("cmd", ILLEGAL, ids=[repr(c) for c in ILLEGAL])
def test_refused_or_read_only_request_leaves_the_state_identical(busy: Driver, cmd: Command) -> None:
    """Every refusal (and every status query) changes nothing but the ExecID counter, which
    advances by exactly the ExecIDs its answer carries."""
    before, next_exec = snapshot(busy.engine), busy.engine.next_exec_id
    events = busy(cmd)
    assert events or isinstance(cmd, ExpireOrders), "a request is always answered"
    assert not any(isinstance(e, Fill) for e in events)
    assert snapshot(busy.engine) == before, f"state changed by {cmd!r}:\n{busy.ladders()}"
    assert busy.engine.next_exec_id == next_exec + len(exec_ids(events))


def test_reject_request_answers_with_a_venue_exec_id_and_the_edges_reason(venue: Driver) -> None:
    """A request the edge found malformed is answered with a reject carrying a venue
    ExecID and the edge's reason and text."""
    cmd = RejectRequest(session="S-F1", firm="F1", cl_ord_id="x", symbol=BTC, side=BUY, reason=RejectReason.INVALID_PRICE, text="off the tick grid", account="A1")
    [report] = venue(cmd)
    assert isinstance(report, ExecReport)
    assert (report.exec_id, report.exec_type, report.status, report.reason, report.text) == (
        1, ExecType.REJECTED, OrdStatus.REJECTED, RejectReason.INVALID_PRICE, "off the tick grid",
    )
    assert (report.order.order_id, report.order.cl_ord_id, report.order.account, report.order.side) == (0, "x", "A1", BUY)


def test_rejected_order_is_a_whole_record(venue: Driver) -> None:
    """The whole reject tuple: seq, ts, ExecID, type, status, the order as sent with
    OrderID 0, zero quantities, reason and text."""
    bad = order("x", BUY, 1, 98, symbol="DOGE-PERP")
    assert venue(bad) == [
        ExecReport(1, T0 + 1, 1, ExecType.REJECTED, OrdStatus.REJECTED, OrderView(0, "x", None, 1, 98, None, OrdType.LIMIT, bad),
                   0, 0, 0, RejectReason.UNKNOWN_SYMBOL, "unknown symbol DOGE-PERP"),
    ]


def test_book_deltas_are_conflated_per_level_and_drained_once(venue: Driver) -> None:
    """Several changes to one level give one delta with its final displayed quantity; a
    level that emptied gives 0; an iceberg shows only its slice; a second drain is empty."""
    venue.engine.drain_book_deltas(0, T0)
    venue.all(
        order("b1", BUY, 5, 99),
        order("b2", BUY, 3, 99, account="B1"),
        replace("r1", "b1", 2, 99),
        order("s1", SELL, 4, 101, account="B1"),
        order("lift", BUY, 4, 101, account="C1"),
        order("ice", SELL, 10, 102, display_qty=3, symbol=ETH),
    )
    assert venue.engine.drain_book_deltas(7, T0 + 7) == [
        BookDelta(7, T0 + 7, BTC, BUY, 99, 5),
        BookDelta(7, T0 + 7, BTC, SELL, 101, 0),
        BookDelta(7, T0 + 7, ETH, SELL, 102, 3),
    ]
    assert venue.engine.drain_book_deltas(8, T0 + 8) == []


def test_a_refused_order_marks_no_level_dirty(venue: Driver) -> None:
    """A refused order sends no market data: no level is marked dirty."""
    venue(order("b1", BUY, 5, 99))
    venue.engine.drain_book_deltas(1, T0 + 1)
    venue(order("x", SELL, 1, 99, post_only=True))
    assert venue.engine.drain_book_deltas(2, T0 + 2) == []


def test_exec_ids_and_trade_ids_are_unique_and_increasing_across_every_kind_of_event(busy: Driver) -> None:
    """ExecIDs are 1, 2, 3, ... across new, fill (two each), replace, reject, cancel and
    expiry reports; TradeIDs likewise across fills."""
    busy.all(
        order("sweep", BUY, 20, 105, account="C1"),
        replace("r", "a-bid", 4, 100),
        order("bad", BUY, 1, 98, symbol="DOGE-PERP"),
        cancel("c", "r"),
        EndOfDay(),
        _mass("F2", MassCancelScope.ALL),
    )
    events = [e for _, _, _, evs in busy.log for e in evs]
    ids = exec_ids(events)
    assert ids == list(range(1, len(ids) + 1))
    trade_ids = [e.trade_id for e in events if isinstance(e, Fill)]
    assert trade_ids == list(range(1, 9)), "c-lift's fill, then the sweep: 101, five iceberg slices, 103"
