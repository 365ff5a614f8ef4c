"""Random command streams through VenueCore: after every command the risk state (live
orders per side, positions, open-order counts) equals a recount from the engine's orders
(RiskDriver validates it), and nothing escapes as an exception.

Each example is a seed for a long weighted stream (orders of every type far more often
than operator commands, so books fill and trade); hypothesis picks and reports the seed."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st
from risk_support import ACCOUNTS, RiskDriver

from venue.commands import EndOfDay, ExpireOrders, MassCancel, ReplaceOrder, SetMarkPrice, SetPhase
from venue.events import ExecReport, Fill
from venue.limits import LimitRule
from venue.operator import KillScope, KillSwitch, SetLimit
from venue.types import MassCancelScope, OrdType, Side, TimeInForce, TradingPhase

REF = 200_000
SYMBOLS = ("BTC-PERP", "BTC-FUT")
STEPS = 250
WEIGHTS = {"limit": 40, "market": 6, "stop": 5, "replace": 12, "cancel": 10, "kill": 3, "halt": 2, "auction": 2, "limit_change": 2,
           "other": 3}


def run_stream(seed: int) -> Counter[str]:
    """Drive one random stream; return what happened, by event kind."""
    rng = random.Random(seed)
    d = RiskDriver(LimitRule(max_position=30, max_underlying_position=Decimal("0.3"), im_rate=Decimal("0.1"), band_ticks=25,
                             max_open_orders=8, max_order_qty=15),
                   collateral=dict.fromkeys(ACCOUNTS, 3000))
    placed: list[tuple[str, str]] = []  # (account, ClOrdID of the order's current version)
    seen: Counter[str] = Counter()
    accounts = list(ACCOUNTS)
    for _ in range(STEPS):
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        acct, side = rng.choice(accounts), rng.choice((Side.BUY, Side.SELL))
        d.last = []
        if kind == "limit":
            tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK))
            post = tif in (TimeInForce.GTC, TimeInForce.DAY) and rng.random() < 0.1
            lean = -8 if side is Side.BUY else 8  # resting orders lean away; a third cross
            er = d.new(side, rng.randint(1, 12), REF + lean + rng.randint(-12, 12), account=acct, symbol=rng.choice(SYMBOLS), tif=tif,
                       post_only=post)
            if er.order.order_id:
                placed.append((acct, er.order.cl_ord_id))
        elif kind == "market":
            d.new(side, rng.randint(1, 20), None, account=acct, symbol=rng.choice(SYMBOLS))
        elif kind == "stop":
            off, limit = rng.randint(1, 30), rng.random() < 0.5
            stop = REF + off if side is Side.BUY else REF - off
            er = d.new(side, rng.randint(1, 5), stop if limit else None, account=acct, stop_px=stop,
                       ord_type=OrdType.STOP_LIMIT if limit else OrdType.STOP, tif=TimeInForce.GTC)
            if er.order.order_id:
                placed.append((acct, er.order.cl_ord_id))
        elif kind == "replace" and placed:
            i = rng.randrange(len(placed))
            acct, cl = placed[i]
            order = d.core.engine.by_cl_ord_id.get(ACCOUNTS[acct], cl)
            price = None if order is None or order.view.price is None else order.view.price + rng.randint(-6, 6)
            stop = order.view.stop_px if order is not None else None
            d.n += 1
            d(ReplaceOrder(session=ACCOUNTS[acct], firm=ACCOUNTS[acct], cl_ord_id=f"r{d.n}", orig_cl_ord_id=cl,
                                    qty=rng.randint(1, 15), price=price, stop_px=stop))
            if isinstance(d.last[0], ExecReport):
                placed[i] = (acct, f"r{d.n}")
        elif kind == "cancel" and placed:
            acct, cl = placed[rng.randrange(len(placed))]
            d.cancel(cl, account=acct)
        elif kind == "kill":  # engage (canceling the scope's orders), bounce an order off it, release
            scope, target, who = rng.choice([(KillScope.FIRM, "F1", "A2"), (KillScope.ACCOUNT, "B2", "B2"), (KillScope.VENUE, "", "B1")])
            d(KillSwitch(scope=scope, target=target))
            d.new(side, 1, REF, account=who)
            d(KillSwitch(scope=scope, target=target, engaged=False))
        elif kind == "halt":  # halt, bounce an order off it, resume (which may uncross nothing: halts keep no crossed book)
            d(SetPhase(symbol="BTC-PERP", phase=TradingPhase.HALTED))
            d.new(side, 1, REF, account=acct)
            d(SetPhase(symbol="BTC-PERP", phase=TradingPhase.OPEN))
        elif kind == "auction":  # pre-open collects crossing orders; the open uncrosses them (both sides were resting)
            d(SetPhase(symbol="BTC-FUT", phase=TradingPhase.PRE_OPEN))
            for _ in range(rng.randint(2, 6)):
                er = d.new(rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 8), REF + rng.randint(-4, 4), account=rng.choice(accounts),
                           symbol="BTC-FUT", tif=TimeInForce.GTC)
                if er.order.order_id:
                    placed.append((er.order.account, er.order.cl_ord_id))
            seen["auction fills"] += sum(isinstance(e, Fill) for e in d(SetPhase(symbol="BTC-FUT", phase=TradingPhase.OPEN)))
        elif kind == "limit_change":
            d(SetLimit(name=rng.choice(["max_position", "max_order_qty", "max_open_orders"]), value=Decimal(rng.randint(10, 40)), firm="F2"))
        elif kind == "other":
            d(rng.choice([
                SetMarkPrice(symbol="BTC-PERP", price=REF + rng.randint(-20, 20)),
                EndOfDay(), ExpireOrders(), MassCancel(session="F1", firm="F1", cl_ord_id=f"mc{d.seq}", scope=MassCancelScope.ALL),
            ]))
        seen.update(type(e).__name__ + (f".{e.exec_type.name}" if isinstance(e, ExecReport) else "") for e in d.last)
    if not d.core.risk.venue_killed:  # the venue-wide switch leaves nothing live, and nothing counted
        d(KillSwitch(scope=KillScope.VENUE))
    assert d.core.engine.orders == {}
    assert all(d.core.risk.open_orders(a) == 0 for a in ACCOUNTS)
    assert all(e.buy_qty == e.sell_qty == e.buy_val == e.sell_val == 0 for e in d.core.risk.exposures())
    return seen


@settings(max_examples=60, deadline=None)
@example(seed=1)
@given(seed=st.integers(0, 2**32 - 1))
def test_risk_state_matches_the_engine_after_every_command(seed: int) -> None:
    run_stream(seed)


def test_streams_exercise_trading() -> None:
    """The generator is worth its time: its streams trade, replace and refuse."""
    seen = sum((run_stream(seed) for seed in range(1, 7)), Counter[str]())
    assert seen[Fill.__name__] >= 20 and seen["ExecReport.REPLACED"] >= 5 and seen["ExecReport.TRIGGERED"] >= 1, seen
    assert seen["auction fills"] >= 1, seen
