"""Every pre-trade check just under, at and just over its limit, with the text it answers.

BTC-PERP lots are 100 USD of notional at the 100,000 reference (200,000 ticks), so the
numbers below can be checked by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from risk_support import BUY, SELL, RiskDriver, accepted, cancel_refused, refused

from venue.commands import NewOrder, SetIndexPrice, SetMarkPrice
from venue.events import ExecReport, Fill
from venue.limits import LimitRule
from venue.operator import SetLimit
from venue.rejects import RejectReason
from venue.types import ExecType, OrdType, TimeInForce

REF = 200_000  # BTC-PERP reference, ticks


@pytest.mark.parametrize(("qty", "ok"), [(9, True), (10, True), (11, False)])
def test_max_order_qty(qty: int, ok: bool) -> None:
    d = RiskDriver(LimitRule(max_order_qty=10))
    er = d.new(BUY, qty, REF)
    assert accepted(er) if ok else refused(er) == "risk: order qty 11 > limit 10 lots"


@pytest.mark.parametrize(("price", "ok"), [
    (REF + 9_999, True), (REF + 10_000, True), (REF + 10_001, False),  # 5% of 200,000 ticks = 10,000
    (REF - 9_999, True), (REF - 10_000, True), (REF - 10_001, False),
])
def test_price_band_percent(price: int, ok: bool) -> None:
    d = RiskDriver(LimitRule(band_pct=Decimal(5)))
    er = d.new(BUY, 1, price)
    if ok:
        assert accepted(er)
    else:
        text = refused(er, RejectReason.PRICE_BAND)
        assert text == f"risk: price {Decimal(price) / 2:,f} outside band 95,000..105,000 (5% of reference 100,000)"


@pytest.mark.parametrize(("off", "ok"), [(99, True), (100, True), (101, False), (-100, True), (-101, False)])
def test_price_band_ticks(off: int, ok: bool) -> None:
    d = RiskDriver(LimitRule(band_ticks=100))
    er = d.new(SELL, 1, REF + off)
    assert accepted(er) if ok else "(100 ticks of reference 100,000)" in refused(er, RejectReason.PRICE_BAND)


def test_price_band_narrower_of_percent_and_ticks() -> None:
    d = RiskDriver(LimitRule(band_pct=Decimal(5), band_ticks=100))
    assert accepted(d.new(BUY, 1, REF + 100))
    assert "(5% and 100 ticks of reference" in refused(d.new(BUY, 1, REF + 101), RejectReason.PRICE_BAND)


def test_band_reference_last_trade_else_mark_else_index() -> None:
    d = RiskDriver(LimitRule(band_ticks=100))
    d(SetIndexPrice(underlying="BTC-USD", price=Decimal(101000)))  # 202,000 ticks
    assert accepted(d.new(BUY, 1, 202_100)) and not accepted(d.new(BUY, 1, 201_899))
    assert d.core.risk.ref["BTC-C"] == 800  # an option's reference is not its index
    d(SetMarkPrice(symbol="BTC-PERP", price=204_000))  # the mark beats the index
    assert accepted(d.new(BUY, 1, 204_100)) and not accepted(d.new(SELL, 1, 203_899))
    d.new(SELL, 1, 204_050, account="B1")  # trades at the resting bid, 204,100: the last trade beats the mark
    assert d.core.risk.ref["BTC-PERP"] == 204_100
    assert accepted(d.new(SELL, 1, 204_000)) and not accepted(d.new(SELL, 1, 203_999))
    d(SetIndexPrice(underlying="BTC-USD", price=Decimal(90000)))
    d(SetMarkPrice(symbol="BTC-PERP", price=180_000))
    assert d.core.risk.ref["BTC-PERP"] == 204_100


def test_market_order_filled_only_within_the_band() -> None:
    d = RiskDriver(LimitRule(band_pct=Decimal(5)))
    d(SetMarkPrice(symbol="BTC-PERP", price=204_000))  # band 193,800..214,200
    d.new(SELL, 3, 212_000, account="B1")
    d(SetMarkPrice(symbol="BTC-PERP", price=REF))  # band 190,000..210,000
    d.new(SELL, 4, 205_000, account="B1")
    events = d(_market(d, BUY, 10))
    assert [(f.price, f.qty) for f in events if isinstance(f, Fill)] == [(205_000, 4)]
    end = events[-1]
    assert isinstance(end, ExecReport) and end.exec_type is ExecType.CANCELED and end.cum_qty == 4
    assert d.core.engine.books["BTC-PERP"].best_ask == 212_000


def _market(d: RiskDriver, side: object, qty: int) -> object:
    d.n += 1
    return NewOrder(session="F1", firm="F1", account="A1", cl_ord_id=f"m{d.n}", symbol="BTC-PERP", side=side,  # type: ignore[arg-type]
                    ord_type=OrdType.MARKET, qty=qty, tif=TimeInForce.IOC)


@pytest.mark.parametrize(("qty", "price", "text"), [
    (9, REF, None), (10, REF, None), (11, REF, "risk: notional 1,100 > limit 1,000 USD"),
    (10, REF + 1, "risk: notional 1,000.005 > limit 1,000 USD"),  # exact: 100,000.5 x 10 x 0.001
])
def test_max_order_notional(qty: int, price: int, text: str | None) -> None:
    d = RiskDriver(LimitRule(max_order_notional=Decimal(1000)))
    er = d.new(BUY, qty, price)
    assert accepted(er) if text is None else refused(er) == text


def test_open_orders_per_account() -> None:
    d = RiskDriver(LimitRule(max_open_orders=3))
    assert all(accepted(d.new(BUY, 1, REF - i, cl=f"k{i}")) for i in range(1, 3))  # 2 open: under
    assert accepted(d.new(BUY, 1, REF - 3, cl="k3"))  # 3 open: at
    assert refused(d.new(BUY, 1, REF - 4)) == "risk: open orders 3 at limit 3"
    assert accepted(d.new(BUY, 1, REF - 4, tif=TimeInForce.IOC))  # cannot rest: not counted
    assert accepted(d.new(BUY, 1, REF - 4, account="A2"))  # another account
    d.cancel("k1")
    assert accepted(d.new(BUY, 1, REF - 5))


@pytest.mark.parametrize(("side", "qty", "ok"), [(BUY, 5, True), (BUY, 6, True), (BUY, 7, False), (SELL, 10, True), (SELL, 11, False)])
def test_position_counts_resting_orders_on_the_same_side(side: object, qty: int, ok: bool) -> None:
    d = RiskDriver(LimitRule(max_position=10))
    assert accepted(d.new(BUY, 4, REF - 10))
    er = d.new(side, qty, REF + 10 if side is SELL else REF - 20)  # type: ignore[arg-type]
    if ok:
        assert accepted(er)
    else:
        assert refused(er) == f"risk: position BTC-PERP {'long' if side is BUY else 'short'} {qty + (4 if side is BUY else 0)} with open orders > limit 10 lots"


def test_position_counts_fills() -> None:
    d = RiskDriver(LimitRule(max_position=10))
    d.new(SELL, 8, REF, account="B1")
    d.new(BUY, 8, REF)  # A1 long 8
    assert accepted(d.new(BUY, 2, REF - 1)) and not accepted(d.new(BUY, 1, REF - 1))
    assert accepted(d.new(SELL, 18, REF + 1))  # short if all fill: 18 - 8 = 10
    assert refused(d.new(SELL, 1, REF + 1)) == "risk: position BTC-PERP short 11 with open orders > limit 10 lots"


@pytest.mark.parametrize(("qty", "ok"), [(9, True), (10, True), (11, False)])
def test_underlying_position_sums_contracts(qty: int, ok: bool) -> None:
    d = RiskDriver(LimitRule(max_underlying_position=Decimal("0.05")))  # BTC
    assert accepted(d.new(BUY, 4, REF - 10, symbol="BTC-FUT"))  # 0.04 BTC
    er = d.new(BUY, qty, REF - 10)  # 0.001 BTC a lot
    assert accepted(er) if ok else refused(er) == "risk: position BTC-USD long 0.051 with open orders > limit 0.05"
    assert accepted(d.new(BUY, 40, REF - 10, account="A2"))  # another account


@pytest.mark.parametrize(("collateral", "ok"), [("100.01", True), ("100", True), ("99.99", False)])
def test_credit_at_the_limit(collateral: str, ok: bool) -> None:
    d = RiskDriver(LimitRule(im_rate=Decimal("0.1")), collateral={"A1": collateral})
    er = d.new(BUY, 10, REF)  # 1,000 USD at 10%: 100 USD
    assert accepted(er) if ok else refused(er) == "risk: credit: initial margin 100 > collateral 99.99 USD"


def test_credit_counts_the_worse_side_and_positions() -> None:
    d = RiskDriver(LimitRule(im_rate=Decimal("0.1")), collateral={"A1": 100, "B1": 10_000})
    assert accepted(d.new(BUY, 10, REF - 100))  # long side: 999.5 USD, margin 99.95
    assert accepted(d.new(SELL, 10, REF - 50))  # short side: 99.975; the worse side counts, not both
    assert refused(d.new(SELL, 1, REF - 50)) == "risk: credit: initial margin 109.9725 > collateral 100 USD"
    d.cancel("o1")
    d.cancel("o2")
    d.new(SELL, 5, REF, account="B1")
    assert accepted(d.new(BUY, 5, REF))  # long 5: 50 USD at the reference
    d(SetMarkPrice(symbol="BTC-PERP", price=2 * REF))  # the mark doubles: the position needs 100
    assert refused(d.new(BUY, 1, REF)) == "risk: credit: initial margin 110 > collateral 100 USD"
    assert accepted(d.new(SELL, 5, REF + 1))  # reducing adds no margin


def test_reduce_only_skips_position_and_credit() -> None:
    d = RiskDriver(LimitRule(im_rate=Decimal("0.1"), max_position=5), collateral={"A1": 50, "B1": 1000})
    d.new(SELL, 5, REF, account="B1")
    d.new(BUY, 5, REF)
    assert not accepted(d.new(SELL, 11, REF + 1))
    assert accepted(d.new(SELL, 5, REF + 1, reduce_only=True))


def test_replace_that_only_reduces_passes_any_limit() -> None:
    d = RiskDriver(LimitRule(max_order_qty=10, max_position=10))
    d.new(BUY, 10, REF - 10, cl="x")
    d(_limit("max_order_qty", 5))
    assert isinstance(d.replace("x", 8, REF - 10)[0], ExecReport)  # down, same price: fine
    assert cancel_refused(d.replace("r2", 9, REF - 10), RejectReason.RISK_LIMIT) == "risk: order qty 9 > limit 5 lots"
    d(_limit("max_order_qty", None))
    assert cancel_refused(d.replace("r2", 11, REF - 10), RejectReason.RISK_LIMIT) == "risk: position BTC-PERP long 11 with open orders > limit 10 lots"
    assert isinstance(d.replace("r2", 10, REF - 9)[0], ExecReport)


def test_replace_moving_price_out_of_band_refused() -> None:
    d = RiskDriver(LimitRule(band_ticks=100))
    d.new(BUY, 1, REF - 100, cl="x")
    assert "outside band" in cancel_refused(d.replace("x", 1, REF - 101), RejectReason.PRICE_BAND)
    assert d.core.risk.tallies["price_band"] == 1


def test_every_refusal_is_tallied_by_check() -> None:
    d = RiskDriver(LimitRule(max_order_qty=10, band_ticks=100, max_open_orders=1))
    d.new(BUY, 11, REF)
    d.new(BUY, 1, REF + 500)
    d.new(BUY, 1, REF)
    d.new(BUY, 1, REF)
    t = d.core.risk.tallies
    assert (t["max_order_qty"], t["price_band"], t["open_orders"], t["credit"]) == (1, 1, 1, 0)


def _limit(name: str, value: int | None) -> SetLimit:
    return SetLimit(name=name, value=None if value is None else Decimal(value))
