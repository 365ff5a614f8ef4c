"""Self-trade prevention and trading phases, with exact events."""

from __future__ import annotations

from typing import Any

import pytest
from matching_support import BTC, BUY, ETH, SELL, Driver, brief, cancel, order, replace, reports

from venue.commands import NewOrder, SetPhase
from venue.events import CommandRejected, Fill
from venue.rejects import RejectReason
from venue.types import ExecType, StpMode, TimeInForce, TradingPhase

PRE_OPEN, OPEN, HALTED, CLOSED, EXPIRED = (
    TradingPhase.PRE_OPEN, TradingPhase.OPEN, TradingPhase.HALTED, TradingPhase.CLOSED, TradingPhase.EXPIRED,
)

# ---------------------------------------------------------------- self-trade prevention


@pytest.mark.parametrize(
    ("stp", "expected", "asks_left"),
    [
        (
            StpMode.CANCEL_AGGRESSING,
            [("FILL", 101, 1, "BUY", "b1", 4, "s1", 0), ("CANCELED", "b1", "CANCELED", 0, 1, None)],
            [(101, 2), (102, 2)],
        ),
        (
            StpMode.CANCEL_RESTING,
            [("FILL", 101, 1, "BUY", "b1", 4, "s1", 0), ("CANCELED", "own", "CANCELED", 0, 0, None), ("FILL", 102, 2, "BUY", "b1", 2, "s2", 0)],
            [],
        ),
        (
            StpMode.CANCEL_BOTH,
            [("FILL", 101, 1, "BUY", "b1", 4, "s1", 0), ("CANCELED", "own", "CANCELED", 0, 0, None), ("CANCELED", "b1", "CANCELED", 0, 1, None)],
            [(102, 2)],
        ),
    ],
)
def test_stp_mode_of_the_aggressor_decides_which_side_is_canceled(venue: Driver, stp: StpMode, expected: list[tuple[Any, ...]], asks_left: list[tuple[int, int]]) -> None:
    """The taker fills another account's order, then meets its own account's resting
    order: cancel aggressing stops there; cancel resting removes the own order and goes
    on; cancel both removes both. A cancel-resting remainder rests at its limit."""
    venue.all(order("s1", SELL, 1, 101, account="B1"), order("own", SELL, 2, 101), order("s2", SELL, 2, 102, account="C1"))
    events = venue(order("b1", BUY, 5, 102, stp=stp))
    assert brief(events) == [("NEW", "b1", "NEW", 5, 0, None), *expected]
    venue.assert_book([(102, 2)] if stp is StpMode.CANCEL_RESTING else [], asks_left)
    stp_cancels = [e for e in reports(events) if e.exec_type is ExecType.CANCELED]
    assert stp_cancels and all(e.text.startswith("self-trade prevention") for e in stp_cancels)


@pytest.mark.parametrize(("scope_fixture", "trades"), [("venue", True), ("firm_venue", False)])
def test_stp_scope_account_or_firm(request: pytest.FixtureRequest, scope_fixture: str, trades: bool) -> None:
    """A1 and A2 belong to firm F1: they may trade with each other under account scope,
    never under firm scope."""
    venue: Driver = request.getfixturevalue(scope_fixture)
    venue(order("s1", SELL, 2, 101, account="A2"))
    events = venue(order("b1", BUY, 2, 101, account="A1"))
    if trades:
        assert brief(events) == [("NEW", "b1", "NEW", 2, 0, None), ("FILL", 101, 2, "BUY", "b1", 0, "s1", 0)]
    else:
        assert brief(events) == [("NEW", "b1", "NEW", 2, 0, None), ("CANCELED", "b1", "CANCELED", 0, 0, None)]


def test_stp_on_a_replace_that_crosses_its_own_order(venue: Driver) -> None:
    """A replace that would cross the account's own resting order is canceled by self-
    trade prevention after its replace report."""
    venue.all(order("own", SELL, 2, 101), order("b1", BUY, 2, 99))
    assert brief(venue(replace("r1", "b1", 2, 101))) == [
        ("REPLACED", "r1", "NEW", 2, 0, None),
        ("CANCELED", "r1", "CANCELED", 0, 0, None),
    ]
    venue.assert_book([], [(101, 2)])


# ---------------------------------------------------------------- phases


def test_pre_open_collects_limit_orders_without_matching(pre_open_venue: Driver) -> None:
    """In pre-open crossing limit orders are acknowledged and rest, crossed, without
    trading."""
    venue = pre_open_venue
    assert brief(venue.all(order("b1", BUY, 5, 103), order("s1", SELL, 3, 100, account="B1"))) == [
        ("NEW", "b1", "NEW", 5, 0, None),
        ("NEW", "s1", "NEW", 3, 0, None),
    ]
    venue.assert_book([(103, 5)], [(100, 3)])


@pytest.mark.parametrize(
    "new",
    [order("m", BUY, 1), order("i", BUY, 1, 100, tif=TimeInForce.IOC), order("f", BUY, 1, 100, tif=TimeInForce.FOK)],
    ids=["market", "ioc", "fok"],
)
def test_pre_open_refuses_orders_that_cannot_rest(pre_open_venue: Driver, new: NewOrder) -> None:
    """Pre-open refuses market, IOC and FOK orders: there is nothing to match them
    against yet."""
    assert brief(pre_open_venue(new)) == [("REJECTED", new.cl_ord_id, "REJECTED", 0, 0, "NOT_IN_PRE_OPEN")]


def test_open_uncrosses_at_the_single_price_that_trades_most(pre_open_venue: Driver) -> None:
    """Bids 5@103, 5@101; asks 3@100, 4@102, 5@104. Volume is 3 at 100 and 101 and 5 at
    102 and 103 (both with imbalance 2): the nearer to the last price (100) wins, 102.
    All fills print at 102; within the auction the later order of each pair is the taker."""
    venue = pre_open_venue
    venue.all(
        order("b1", BUY, 5, 103),
        order("b2", BUY, 5, 101),
        order("s1", SELL, 3, 100, account="B1"),
        order("s2", SELL, 4, 102, account="C1"),
        order("s3", SELL, 5, 104, account="B1"),
    )
    assert brief(venue(SetPhase(symbol=BTC, phase=OPEN))) == [
        ("PHASE", BTC, "OPEN"),
        ("FILL", 102, 3, "SELL", "s1", 0, "b1", 2),
        ("FILL", 102, 2, "SELL", "s2", 2, "b1", 0),
    ]
    venue.assert_book([(101, 5)], [(102, 2), (104, 5)])
    assert venue.book().last_px == 102


def test_opening_auction_triggers_stops_after_its_fills(pre_open_venue: Driver) -> None:
    """The opening auction's last price triggers parked stops, whose reports and fills
    follow the auction's fills."""
    venue = pre_open_venue
    venue.all(
        order("b1", BUY, 2, 105),
        order("s1", SELL, 2, 105, account="B1"),
        order("s2", SELL, 1, 106, account="B1"),
        order("st", BUY, 1, stop_px=104, account="C1"),
    )
    assert brief(venue(SetPhase(symbol=BTC, phase=OPEN))) == [
        ("PHASE", BTC, "OPEN"),
        ("FILL", 105, 2, "SELL", "s1", 0, "b1", 0),
        ("TRIGGERED", "st", "NEW", 1, 0, None),
        ("FILL", 106, 1, "BUY", "st", 0, "s2", 0),
    ]


def test_opening_auction_never_trades_an_account_with_itself_and_leaves_the_book_uncrossed(pre_open_venue: Driver) -> None:
    """A1's bid at 101 and ask at 99 would pair at the equilibrium (99); the later one is
    canceled by self-trade prevention, and the book must not be left crossed with B1's
    ask at 100 under A1's bid: the auction goes on with what remains."""
    venue = pre_open_venue
    venue.all(order("a-bid", BUY, 5, 101), order("a-ask", SELL, 5, 99), order("b-ask", SELL, 5, 100, account="B1"))
    events = venue(SetPhase(symbol=BTC, phase=OPEN))
    assert ("CANCELED", "a-ask", "CANCELED", 0, 0, None) in brief(events)
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.buy.account, f.sell.account, f.qty) for f in fills] == [("A1", "B1", 5)]
    venue.assert_book([], [])


@pytest.mark.parametrize(("phase", "reason"), [(HALTED, "PHASE_HALTED"), (CLOSED, "PHASE_CLOSED")])
def test_halted_and_closed_refuse_entries_and_replaces_but_accept_cancels(venue: Driver, phase: TradingPhase, reason: str) -> None:
    """A halted or closed instrument refuses new orders and replaces with the phase as
    reason, accepts cancels, and other instruments go on."""
    venue.all(order("o1", BUY, 5, 99), SetPhase(symbol=BTC, phase=phase))
    assert brief(venue(order("o2", BUY, 1, 98))) == [("REJECTED", "o2", "REJECTED", 0, 0, reason)]
    assert brief(venue(replace("r1", "o1", 4, 99))) == [("CXL_REJECT", "r1", True, "NEW", reason)]
    assert brief(venue(cancel("c1", "o1"))) == [("CANCELED", "c1", "CANCELED", 0, 0, None)]
    assert brief(venue(order("e1", BUY, 1, 98, symbol=ETH))) == [("NEW", "e1", "NEW", 1, 0, None)]


def test_expiry_cancels_every_order_of_the_instrument_and_refuses_new_ones(venue: Driver) -> None:
    """Expiry cancels every order of the instrument, DAY or not, resting or parked, and
    refuses new ones; other instruments keep theirs."""
    venue.all(order("o1", BUY, 5, 99, tif=TimeInForce.DAY), order("o2", SELL, 1, stop_px=90, account="B1"), order("e1", BUY, 1, 98, symbol=ETH))
    events = venue(SetPhase(symbol=BTC, phase=EXPIRED))
    assert brief(events) == [("PHASE", BTC, "EXPIRED"), ("CANCELED", "o1", "CANCELED", 0, 0, None), ("CANCELED", "o2", "CANCELED", 0, 0, None)]
    assert {e.text for e in reports(events)} == {"instrument expired"}
    assert brief(venue(order("o3", BUY, 1, 98))) == [("REJECTED", "o3", "REJECTED", 0, 0, "PHASE_CLOSED")]
    venue.assert_book([(98, 1)], [], symbol=ETH)


def test_halted_to_open_resumes_continuous_trading(venue: Driver) -> None:
    """Reopening after a halt prints no trades by itself and the book then matches as
    before."""
    venue.all(order("o1", BUY, 5, 99), SetPhase(symbol=BTC, phase=HALTED))
    assert brief(venue(SetPhase(symbol=BTC, phase=OPEN))) == [("PHASE", BTC, "OPEN")]
    assert brief(venue(order("s1", SELL, 1, 99, account="B1"))) == [("NEW", "s1", "NEW", 1, 0, None), ("FILL", 99, 1, "SELL", "s1", 0, "o1", 4)]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [([], OPEN), ([EXPIRED], OPEN), ([EXPIRED], PRE_OPEN), ([CLOSED], HALTED), ([PRE_OPEN], PRE_OPEN), ([HALTED], HALTED)],
)
def test_illegal_phase_moves_are_command_rejects(venue: Driver, path: list[TradingPhase], illegal: TradingPhase) -> None:
    """Moves outside the phase table are refused as CommandRejected naming the command,
    and the phase stays."""
    for phase in path:
        venue(SetPhase(symbol=BTC, phase=phase))
    current = venue.book().phase
    [refused] = venue(SetPhase(symbol=BTC, phase=illegal))
    assert isinstance(refused, CommandRejected)
    assert (refused.reason, refused.command) == (RejectReason.INVALID_ORDER, repr(SetPhase(symbol=BTC, phase=illegal)))
    assert venue.book().phase is current


def test_phase_change_of_an_unknown_symbol_is_a_command_reject(venue: Driver) -> None:
    """A phase change for an instrument the engine does not list is refused with
    UNKNOWN_SYMBOL."""
    assert brief(venue(SetPhase(symbol="DOGE-PERP", phase=HALTED))) == [("CMD_REJECT", "UNKNOWN_SYMBOL")]


def test_opening_price_is_chosen_among_prices_with_orders_not_emptied_levels(pre_open_venue: Driver) -> None:
    """Last price 102. Bid 5@103 against ask 5@100 trade 5 anywhere from 100 to 103 with
    no imbalance; of the order prices, 103 is nearest the last price. A level at 101 that
    an earlier canceled order left behind must not become the auction price."""
    venue = pre_open_venue
    venue.all(SetPhase(symbol=BTC, phase=OPEN), order("s0", SELL, 1, 102), order("b0", BUY, 1, 102, account="B1"))
    assert venue.book().last_px == 102
    venue.all(SetPhase(symbol=BTC, phase=PRE_OPEN), order("gone", BUY, 5, 101), cancel("x", "gone"))
    venue.all(order("b1", BUY, 5, 103, account="B1"), order("s1", SELL, 5, 100, account="C1"))
    assert brief(venue(SetPhase(symbol=BTC, phase=OPEN))) == [("PHASE", BTC, "OPEN"), ("FILL", 103, 5, "SELL", "s1", 0, "b1", 0)]


def test_opening_auction_replenishes_an_iceberg_at_the_back_of_its_level(pre_open_venue: Driver) -> None:
    """An iceberg's slices trade at the auction price one at a time, each replenishment
    joining the tail of its level behind the order that came after it."""
    venue = pre_open_venue
    venue.all(
        order("ice", SELL, 6, 100, account="B1", display_qty=2),
        order("s2", SELL, 1, 100, account="C1"),
        order("b1", BUY, 5, 100),
    )
    assert brief(venue(SetPhase(symbol=BTC, phase=OPEN))) == [
        ("PHASE", BTC, "OPEN"),
        ("FILL", 100, 2, "BUY", "b1", 3, "ice", 4),
        ("FILL", 100, 1, "BUY", "b1", 2, "s2", 0),
        ("FILL", 100, 2, "BUY", "b1", 0, "ice", 2),
    ]
    venue.assert_book([], [(100, 2)])


def test_opening_auction_never_fills_reduce_only_orders_past_flat(venue: Driver) -> None:
    """A1 is long 5 with two reduce-only sells of 5 collected in pre-open; B1 bids 10 at
    the open. Only 5 trade: A1 ends flat, its second reduce-only order is canceled."""
    venue.all(order("s0", SELL, 5, 100, account="C1"), order("b0", BUY, 5, 100), SetPhase(symbol=BTC, phase=PRE_OPEN))
    venue.all(order("ro1", SELL, 5, 100, reduce_only=True), order("ro2", SELL, 5, 100, reduce_only=True), order("b1", BUY, 10, 100, account="B1"))
    events = venue(SetPhase(symbol=BTC, phase=OPEN))
    assert brief(events) == [
        ("PHASE", BTC, "OPEN"),
        ("FILL", 100, 5, "BUY", "b1", 5, "ro1", 0),
        ("CANCELED", "ro2", "CANCELED", 0, 0, None),
    ]
    assert venue.position("A1") == 0
    venue.assert_book([(100, 5)], [])


@pytest.mark.parametrize(
    ("mode", "canceled", "bids", "asks"),
    [
        (StpMode.CANCEL_AGGRESSING, ["a-ask"], [(101, 5)], []),
        (StpMode.CANCEL_RESTING, ["a-bid"], [], [(99, 5)]),
        (StpMode.CANCEL_BOTH, ["a-bid", "a-ask"], [], []),
    ],
)
def test_opening_auction_settles_a_self_match_by_the_later_orders_stp_mode(
    pre_open_venue: Driver, mode: StpMode, canceled: list[str], bids: list[tuple[int, int]], asks: list[tuple[int, int]]
) -> None:
    """In the auction the later order of a self-matching pair is the aggressor, so its STP
    mode decides: cancel itself, the earlier (resting) one, or both; nothing trades."""
    venue = pre_open_venue
    venue.all(order("a-bid", BUY, 5, 101), order("a-ask", SELL, 5, 99, stp=mode))
    events = venue(SetPhase(symbol=BTC, phase=OPEN))
    assert [e.order.cl_ord_id for e in reports(events) if e.exec_type is ExecType.CANCELED] == canceled
    assert not [e for e in events if isinstance(e, Fill)]
    venue.assert_book(bids, asks)
