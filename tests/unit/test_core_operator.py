"""VenueCore's operator commands and throttle: kill switches, halts, index and mark prices,
collateral, limits changed at run time, the risk query; bad input refused with a clear
text and the state left identical."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from risk_support import BUY, SELL, T0, RiskDriver, accepted, cancel_refused, command_refused, refused

from venue import snapshot
from venue.commands import AdjustCollateral, MassCancel, SetIndexPrice, SetMarkPrice, SetPhase
from venue.events import CollateralChanged, ExecReport, IndexPriceSet, MarkPriceSet, MassCancelDone, PhaseChanged
from venue.limits import LimitRule
from venue.operator import KillScope, KillSwitch, KillSwitchSet, LimitSet, QueryRisk, RiskReport, SetLimit
from venue.rejects import RejectReason
from venue.types import ExecType, MassCancelScope, OrdStatus, TimeInForce, TradingPhase

REF = 200_000


def _book(d: RiskDriver) -> None:
    """Resting orders of all four accounts of both firms."""
    for acct, px in (("A1", REF - 1), ("A2", REF - 2), ("B1", REF + 1), ("B2", REF + 2)):
        assert accepted(d.new(BUY if acct[0] == "A" else SELL, 1, px, account=acct, cl=f"rest-{acct}"))


@pytest.mark.parametrize(("scope", "target", "killed"), [
    (KillScope.FIRM, "F1", {"A1", "A2"}),
    (KillScope.ACCOUNT, "B1", {"B1"}),
    (KillScope.VENUE, "", {"A1", "A2", "B1", "B2"}),
])
def test_kill_switch_cancels_and_refuses_until_released(scope: KillScope, target: str, killed: set[str]) -> None:
    d = RiskDriver()
    _book(d)
    events = d(KillSwitch(scope=scope, target=target, reason="desk call"))
    cancels = [e for e in events if isinstance(e, ExecReport)]
    assert {e.order.account for e in cancels} == killed and all(e.status is OrdStatus.CANCELED for e in cancels)
    assert all(e.text.startswith("kill switch engaged") for e in cancels)
    assert events[-1] == KillSwitchSet(d.seq, T0, scope, target, True, len(killed), "desk call")
    assert {o.view.entry.account for o in d.core.engine.orders.values()} == {"A1", "A2", "B1", "B2"} - killed
    for acct in ("A1", "A2", "B1", "B2"):
        er = d.new(BUY, 1, REF - 10, account=acct)
        if acct in killed:
            assert refused(er, RejectReason.KILL_SWITCH).startswith("risk: kill switch engaged")
        else:
            assert accepted(er)
    d(KillSwitch(scope=scope, target=target, engaged=False))
    assert all(accepted(d.new(BUY, 1, REF - 10, account=a)) for a in killed)
    assert d.core.risk.tallies["kill_switch"] == len(killed)


def test_kill_switch_scopes_are_independent() -> None:
    d = RiskDriver()
    assert accepted(d.new(BUY, 2, REF - 5, cl="x"))
    d(KillSwitch(scope=KillScope.ACCOUNT, target="A2"))
    d(KillSwitch(scope=KillScope.FIRM, target="F2"))
    assert isinstance(d.replace("x", 3, REF - 5)[0], ExecReport)  # A1 is neither
    assert refused(d.new(BUY, 1, REF, account="A2"), RejectReason.KILL_SWITCH) == "risk: kill switch engaged for account A2"
    assert refused(d.new(SELL, 1, REF, account="B2"), RejectReason.KILL_SWITCH) == "risk: kill switch engaged for firm F2"
    before = d.state()
    assert command_refused(d(KillSwitch(scope=KillScope.ACCOUNT, target="A2"))) == "kill switch for account A2 is already engaged"
    assert d.state() == before


def test_killed_account_replace_refused_with_kill_switch() -> None:
    d = RiskDriver()
    assert accepted(d.new(BUY, 2, REF - 5, cl="x"))
    d.core.risk.set_kill(KillScope.ACCOUNT, "A1", True)  # switch on without the cancel sweep
    assert cancel_refused(d.replace("x", 1, REF - 5), RejectReason.KILL_SWITCH) == "risk: kill switch engaged for account A1"
    assert isinstance(d.cancel("x")[0], ExecReport)  # cancels always pass


def test_halt_and_resume() -> None:
    d = RiskDriver()
    _book(d)
    assert d(SetPhase(symbol="BTC-PERP", phase=TradingPhase.HALTED)) == [PhaseChanged(d.seq, T0, "BTC-PERP", TradingPhase.HALTED)]
    assert refused(d.new(BUY, 1, REF), RejectReason.PHASE_HALTED) == "BTC-PERP is halted"
    assert accepted(d.new(BUY, 1, REF, symbol="ETH-PERP"))  # other instruments trade on
    assert isinstance(d.cancel("rest-A1")[0], ExecReport)
    d(SetPhase(symbol="BTC-PERP", phase=TradingPhase.OPEN))
    assert accepted(d.new(BUY, 1, REF - 3))


def test_index_mark_and_collateral_events() -> None:
    d = RiskDriver()
    assert d(SetIndexPrice(underlying="BTC-USD", price=Decimal("100250.25"))) == [IndexPriceSet(d.seq, T0, "BTC-USD", Decimal("100250.25"))]
    assert d.core.risk.ref["BTC-PERP"] == 200_500  # nearest tick
    assert d(SetMarkPrice(symbol="BTC-PERP", price=200_100)) == [MarkPriceSet(d.seq, T0, "BTC-PERP", 200_100)]
    ev = d(AdjustCollateral(account="A1", amount=Decimal("1500.50"), reference="wire 1"))
    assert ev == [CollateralChanged(d.seq, T0, "A1", Decimal("1500.50"), "USD", Decimal("1500.50"), "wire 1")]
    ev = d(AdjustCollateral(account="A1", amount=Decimal("-500.5")))
    assert ev[0].balance == Decimal("1000.00")  # type: ignore[union-attr]


def test_withdrawal_below_initial_margin_refused() -> None:
    d = RiskDriver(LimitRule(im_rate=Decimal("0.1")), collateral={"A1": 1000})
    assert accepted(d.new(BUY, 50, REF))  # 5,000 USD: margin 500
    assert command_refused(d(AdjustCollateral(account="A1", amount=Decimal("-500.01")))) == \
        "risk: credit: withdrawal would leave collateral 499.99 < initial margin 500 USD"
    assert isinstance(d(AdjustCollateral(account="A1", amount=Decimal(-500)))[0], CollateralChanged)


def test_limits_changed_at_run_time_most_specific_wins() -> None:
    d = RiskDriver(LimitRule(max_order_qty=100))

    def limit_for(account: str, symbol: str = "BTC-PERP") -> int:
        ok = [q for q in (20, 30, 40, 50, 100, 101) if accepted(d.new(BUY, q, REF - 1000 if symbol == "BTC-PERP" else 70_000, account=account, symbol=symbol, tif=TimeInForce.IOC))]
        return max(ok)

    assert limit_for("A1") == 100
    steps = [
        (SetLimit(name="max_order_qty", value=Decimal(50), symbol="BTC-PERP"), 50),
        (SetLimit(name="max_order_qty", value=Decimal(40), firm="F1"), 40),
        (SetLimit(name="max_order_qty", value=Decimal(30), firm="F1", symbol="BTC-PERP"), 30),
        (SetLimit(name="max_order_qty", value=Decimal(101), account="A1"), 101),  # the account's own rule beats its firm's
        (SetLimit(name="max_order_qty", value=Decimal(20), account="A1", symbol="BTC-PERP"), 20),
    ]
    for cmd, want in steps:
        ev = d(cmd)
        assert isinstance(ev[0], LimitSet) and ev[0].value == cmd.value
        assert limit_for("A1") == want
    assert limit_for("A2") == 30 and limit_for("B1") == 50 and limit_for("B1", "ETH-PERP") == 100
    ev = d(SetLimit(name="max_order_qty", value=None, account="A1", symbol="BTC-PERP"))
    assert ev == [LimitSet(d.seq, T0, "", "A1", "BTC-PERP", "max_order_qty", None, Decimal(20))]
    assert limit_for("A1") == 101


@pytest.mark.parametrize(("cmd", "text"), [
    (KillSwitch(scope=KillScope.FIRM, target="NOPE"), "unknown firm 'NOPE'"),
    (KillSwitch(scope=KillScope.ACCOUNT, target="ZZ"), "unknown account 'ZZ'"),
    (KillSwitch(scope=KillScope.VENUE, target="F1"), "a venue-wide kill switch takes no target"),
    (KillSwitch(scope=KillScope.FIRM, target="F1", engaged=False), "kill switch for firm F1 is already released"),
    (SetLimit(name="max_qty", value=Decimal(1)), ("unknown limit 'max_qty' (known: band_pct, band_ticks, max_order_qty, "
                                                  "max_order_notional, max_position, max_underlying_position, max_open_orders, im_rate, max_msgs_per_s)")),
    (SetLimit(name="max_order_qty", value=Decimal("1.5")), "max_order_qty must be a whole number, got 1.5"),
    (SetLimit(name="max_order_qty", value=Decimal(0)), "max_order_qty must be positive, got 0"),
    (SetLimit(name="band_pct", value=Decimal(100)), "band_pct must be below 100, got 100"),
    (SetLimit(name="im_rate", value=Decimal(2)), "im_rate is a fraction of notional (at most 1), got 2"),
    (SetLimit(name="max_position", value=Decimal(5), firm="F1", account="A1"), "a rule names a firm or an account, not both"),
    (SetLimit(name="max_position", value=Decimal(5), symbol="NOPE"), "unknown symbol NOPE"),
    (SetLimit(name="max_open_orders", value=Decimal(5), symbol="BTC-PERP"), "max_open_orders applies per account or session, not per symbol"),
    (SetLimit(name="max_msgs_per_s", value=Decimal(5), account="A1"), "max_msgs_per_s is set per firm (its sessions) or venue-wide"),
    (SetLimit(name="max_position", value=None, firm="F2"), "max_position is not set on that rule"),
    (SetIndexPrice(underlying="DOGE-USD", price=Decimal(1)), "no instrument tracks index 'DOGE-USD'"),
    (SetIndexPrice(underlying="BTC-USD", price=Decimal(-1)), "index price must be positive, got -1"),
    (SetIndexPrice(underlying="BTC-USD", price=Decimal("NaN")), "index price must be positive, got NaN"),
    (SetMarkPrice(symbol="NOPE", price=1), "unknown symbol 'NOPE'"),
    (SetMarkPrice(symbol="BTC-PERP", price=0), "mark price must be positive, got 0 ticks"),
    (AdjustCollateral(account="ZZ", amount=Decimal(1)), "unknown account 'ZZ'"),
    (AdjustCollateral(account="A1", amount=Decimal(0)), "amount must be a non-zero number, got 0"),
    (AdjustCollateral(account="A1", amount=Decimal(1), currency="EUR"), "collateral is held in USD, not EUR"),
    (AdjustCollateral(account="A1", amount=Decimal(-101)), "risk: credit: withdrawal would leave collateral -1 < initial margin 9.99995 USD"),
    (QueryRisk(account="ZZ"), "unknown account 'ZZ'"),
    (SetPhase(symbol="BTC-PERP", phase=TradingPhase.OPEN), "BTC-PERP cannot go from OPEN to OPEN"),
])
def test_bad_operator_input_is_refused_and_changes_nothing(cmd: object, text: str) -> None:
    d = RiskDriver(LimitRule(max_position=10, im_rate=Decimal("0.1")), collateral=dict.fromkeys(("A1", "A2", "B1", "B2"), 100))
    _book(d)
    before = d.state()
    assert command_refused(d(cmd)) == text
    assert d.state() == before


def test_query_risk_reports_tallies_and_exposure() -> None:
    d = RiskDriver(LimitRule(max_order_qty=5, im_rate=Decimal("0.1")), collateral={"A1": 1000})
    d.new(BUY, 6, REF)
    d.new(BUY, 5, REF)
    (report,) = d(QueryRisk(account="A1"))
    assert isinstance(report, RiskReport)
    assert dict(report.tallies)["max_order_qty"] == 1 and sum(n for _, n in report.tallies) == 1
    assert dict(report.exposure) == {
        "collateral": "1,000 USD", "initial_margin": "50 USD", "available": "950 USD", "open_orders": "1", "killed": "no",
        "BTC-PERP": "position 0 open buy 5 open sell 0",
    }


def test_throttle_per_session() -> None:
    d = RiskDriver(LimitRule(firm="F1", max_msgs_per_s=3))
    assert all(accepted(d.new(BUY, 1, REF - i, cl=f"t{i}")) for i in range(3))  # a burst of 3 at one instant
    er = d.new(BUY, 1, REF - 9)
    assert refused(er, RejectReason.THROTTLE) == "risk: throttle 3 messages/s exceeded on session F1"
    assert accepted(d.new(SELL, 1, REF + 9, account="B1"))  # another firm's session
    assert cancel_refused(d.cancel("t0"), RejectReason.THROTTLE)
    (done,) = d(MassCancel(session="F1", firm="F1", cl_ord_id="mc", scope=MassCancelScope.ALL))
    assert isinstance(done, MassCancelDone) and done.reason is RejectReason.THROTTLE and done.canceled == 0
    assert not accepted(d.new(BUY, 1, REF - 9, ts=T0 + 333_333))  # a token takes 1/3 s to come back
    assert accepted(d.new(BUY, 1, REF - 9, ts=T0 + 333_334))
    assert not accepted(d.new(BUY, 1, REF - 9, ts=T0 + 333_334))
    assert all(accepted(d.new(BUY, 1, REF - 20 - i, ts=T0 + 5_000_000)) for i in range(3))  # refills to 3, no more
    assert not accepted(d.new(BUY, 1, REF - 30, ts=T0 + 5_000_000))
    assert d.core.risk.tallies["throttle"] == 6


def test_replay_reproduces_events_and_state() -> None:
    def script(d: RiskDriver) -> list[object]:
        out: list[object] = []
        out += [d.new(BUY, 5, REF - 1, cl="a"), d.new(SELL, 3, REF - 1, account="B1"), d.new(BUY, 50, REF + 100)]
        out += d(SetLimit(name="max_order_qty", value=Decimal(4), firm="F2"))
        out += [d.new(SELL, 5, REF, account="B2")]
        out += d(KillSwitch(scope=KillScope.FIRM, target="F1"))
        out += d(SetMarkPrice(symbol="BTC-PERP", price=REF + 50))
        out += d(KillSwitch(scope=KillScope.FIRM, target="F1", engaged=False))
        out += [d.new(BUY, 4, REF - 2, account="A2", ts=T0 + 10)]
        out += d(QueryRisk(account="A2"))
        return out

    rules = (LimitRule(max_position=40, im_rate=Decimal("0.1"), max_msgs_per_s=2, band_pct=Decimal(1)),)
    a, b = RiskDriver(*rules, collateral={"A1": 500, "A2": 500, "B1": 500, "B2": 500}), RiskDriver(*rules, collateral={"A1": 500, "A2": 500, "B1": 500, "B2": 500})
    events = script(a)
    assert events == script(b)
    assert a.state() == b.state()
    assert any(isinstance(e, ExecReport) and e.exec_type is ExecType.REJECTED for e in events)
    assert a.core.engine.positions[("A1", "BTC-PERP")] == 3


def test_snapshot_restores_risk_state_into_a_fresh_core(tmp_path: Path) -> None:
    rules = (LimitRule(max_position=40, im_rate=Decimal("0.1"), max_msgs_per_s=5),)
    d = RiskDriver(*rules, collateral={"A1": 500, "B1": 500})
    d.new(BUY, 5, REF - 1)
    d.new(SELL, 3, REF - 1, account="B1")
    d(SetLimit(name="max_order_qty", value=Decimal(4), firm="F2"))
    d(KillSwitch(scope=KillScope.ACCOUNT, target="B2"))
    assert snapshot.uncovered(d.core) == []
    snapshot.write(tmp_path, snapshot.capture(d.core, d.seq, T0))
    fresh = RiskDriver(*rules)
    snapshot.restore(fresh.core, next(snapshot.load_latest(tmp_path, d.seq)))
    fresh.seq, fresh.n = d.seq, d.n
    assert fresh.state() == d.state()
    for drv in (d, fresh):  # and both go on alike
        assert refused(drv.new(BUY, 1, REF, account="B2"), RejectReason.KILL_SWITCH)
        assert refused(drv.new(SELL, 5, REF, account="B1")) == "risk: order qty 5 > limit 4 lots"
        drv.new(SELL, 2, REF - 1, account="B1")
    assert fresh.state() == d.state()
