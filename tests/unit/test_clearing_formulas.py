"""Every clearing formula against numbers worked by hand (the working is in each test)."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from venue.clearing import formulas as f
from venue.clearing.positions import E9, Position, PositionBook, apply_fills, decimal_column
from venue.types import OptionRight

# ---------------------------------------------------------------------------- fees


@pytest.mark.parametrize(
    ("notional", "rate", "expected"),
    [
        ("300", "0.0005", "0.15"),  # BTC-PERP: 3 lots x 0.001 BTC x 100,000 = 300 USD, taker 5 bp
        ("300", "0.0001", "0.03"),  # maker 1 bp
        ("300", "-0.0001", "-0.03"),  # maker rebate: the venue pays
        ("333.33", "0.0005", "0.17"),  # 0.166665 -> 0.17
        ("10", "0.0005", "0.00"),  # 0.005: a tie, to the even cent 0.00
        ("30", "0.0005", "0.02"),  # 0.015: a tie, to the even cent 0.02
        ("50", "0.0005", "0.02"),  # 0.025: a tie, to the even cent 0.02
        ("-300", "0.0005", "0.15"),  # the fee is on |notional|
    ],
)
def test_fee(notional: str, rate: str, expected: str) -> None:
    assert f.fee(D(notional), D(rate)) == D(expected)


@pytest.mark.parametrize("rate", ["0.0005", "0.0001", "-0.0001", "0.00037", "0.0003"])
@pytest.mark.parametrize(("tick", "mult"), [("0.5", "0.001"), ("0.05", "0.01"), ("5", "0.001")])
def test_integer_fee_rule_equals_decimal_fee(rate: str, tick: str, mult: str) -> None:
    rule = f.FeeRule(D(tick) * D(mult), D(rate))
    for tick_lots in [*range(0, 2000, 7), 200_000, 200_001, 6_666_666, 123_456_789]:
        assert D(rule.cents(tick_lots)) / 100 == f.fee(tick_lots * D(tick) * D(mult), D(rate)), tick_lots


def test_div_half_even() -> None:
    assert [f.div_half_even(n, 10) for n in (4, 5, 6, 15, 25, -5, -15, -16)] == [0, 0, 1, 2, 2, 0, -2, -2]


# ---------------------------------------------------------------------------- variation margin


def test_variation_margin_carried_position_and_day_trades() -> None:
    # carried +5 from 100,000 to 101,000: 5 x 1,000 x 0.001 = 5.00
    # bought 2 @ 100,500 marked to 101,000: 2 x 500 x 0.001 = 1.00
    # sold 3 @ 101,500 marked to 101,000: 3 x 500 x 0.001 = 1.50          total 7.50
    vm = f.variation_margin(prev_qty=5, prev_price=D(100000), bought_qty=2 - 3, bought_value=D(2 * 100500 - 3 * 101500),
                            price=D(101000), contract_size=D("0.001"))
    assert vm == D("7.5")


def test_variation_margin_nets_to_zero_between_counterparties() -> None:
    # long: carried 4 from 100,000 to 99,987.5 = -50; bought 3 @ 100,010.5 -> 3 x -23 = -69;
    # -119 x 0.001 BTC = -0.119. The short is the mirror image.
    kw = {"prev_price": D(100000), "price": D("99987.5"), "contract_size": D("0.001")}
    long = f.variation_margin(prev_qty=4, bought_qty=3, bought_value=D(3) * D("100010.5"), **kw)  # type: ignore[arg-type]
    short = f.variation_margin(prev_qty=-4, bought_qty=-3, bought_value=D(-3) * D("100010.5"), **kw)  # type: ignore[arg-type]
    assert long == D("-0.119") and short == D("0.119")


def test_variation_margin_needs_a_previous_price_for_a_carried_position() -> None:
    with pytest.raises(ValueError, match="previous period"):
        f.variation_margin(prev_qty=1, prev_price=None, bought_qty=0, bought_value=D(0), price=D(1), contract_size=D(1))


# ---------------------------------------------------------------------------- funding


@pytest.mark.parametrize(
    ("mark", "index", "cap", "expected"),
    [
        # premium 0.001; interest - premium = -0.0009 clamps to -0.0005; 0.001 - 0.0005
        ("100100", "100000", "0.0075", "0.0005"),
        # premium 0.00005; interest - premium = 0.00005 is inside the clamp: rate = interest
        ("100005", "100000", "0.0075", "0.0001"),
        # premium 0.1 - 0.0005 = 0.0995, capped
        ("110000", "100000", "0.0075", "0.0075"),
        # premium -0.01; interest - premium = 0.0101 clamps to 0.0005: -0.0095, capped
        ("99000", "100000", "0.0075", "-0.0075"),
        # premium 0.0123456789 - 0.0005 = 0.0118456789, to 1e-8 half-even
        ("101234.56789", "100000", "0.02", "0.01184568"),
    ],
)
def test_funding_rate(mark: str, index: str, cap: str, expected: str) -> None:
    rate = f.funding_rate(mark=D(mark), index=D(index), interest_rate=D("0.0001"), clamp=D("0.0005"), cap=D(cap))
    assert rate == D(expected)


def test_funding_rate_refuses_a_zero_index() -> None:
    with pytest.raises(ValueError, match="index"):
        f.funding_rate(mark=D(1), index=D(0), interest_rate=D(0), clamp=D(0), cap=D(1))


def test_funding_payments_long_pays_short_and_net_to_zero() -> None:
    # 10 lots x 0.001 BTC x 100,100 x 0.0005 = 0.5005
    pay = {a: f.funding_payment(qty=q, contract_size=D("0.001"), mark=D(100100), rate=D("0.0005")) for a, q in (("L", 10), ("S", -10))}
    assert pay == {"L": D("-0.5005"), "S": D("0.5005")}
    rounded, residual = f.round_netting(pay)
    assert rounded == {"L": D("-0.50"), "S": D("0.50")} and residual == 0


def test_round_netting_residual_balances_the_cents() -> None:
    # per lot 0.001 x 100,000 x 0.00005 = 0.005: two longs of 1 pay 0.005 each (ties to -0.00),
    # the short of 2 receives 0.01; rounded they sum to 0.01, so the residual is -0.01
    pay = {a: f.funding_payment(qty=q, contract_size=D("0.001"), mark=D(100000), rate=D("0.00005")) for a, q in (("A", 1), ("B", 1), ("C", -2))}
    rounded, residual = f.round_netting(pay)
    assert rounded == {"A": D("0.00"), "B": D("0.00"), "C": D("0.01")}
    assert residual == D("-0.01") and sum(rounded.values()) + residual == 0


# ---------------------------------------------------------------------------- settlement prices


def test_vwap_rounds_to_the_tick() -> None:
    # (2 x 100,000 + 1 x 100,010) / 3 = 100,003.33 -> 200,006.67 ticks of 0.5 -> 200,007 -> 100,003.5
    assert f.vwap(D(2 * 100000 + 100010), 3, D("0.5")) == D("100003.5")
    assert f.vwap(D(0), 0, D("0.5")) is None


def test_daily_settlement_price_rule_order() -> None:
    kw = {"best_bid": D(100000), "best_ask": D("100000.5"), "index": D("99990.3"), "tick": D("0.5")}
    assert f.daily_settlement_price(window_value=D(300000), window_volume=3, **kw) == (D(100000), "vwap")  # type: ignore[arg-type]
    # mid 100,000.25 = 200,000.5 ticks: a tie, to the even tick 200,000 -> 100,000.0
    assert f.daily_settlement_price(window_value=D(0), window_volume=0, **kw) == (D("100000.0"), "mid")  # type: ignore[arg-type]
    kw["best_ask"] = None
    assert f.daily_settlement_price(window_value=D(0), window_volume=0, **kw) == (D("99990.5"), "index")  # type: ignore[arg-type]
    kw["index"] = None
    assert f.daily_settlement_price(window_value=D(0), window_volume=0, **kw) is None  # type: ignore[arg-type]


def test_final_settlement_price_is_the_index_average_to_the_cent() -> None:
    assert f.final_settlement_price([D(100000), D(100010), D(100021)]) == D("100010.33")  # 300,031 / 3
    assert f.final_settlement_price([D("100000.00"), D("100000.01")]) == D("100000.00")  # 100,000.005: tie to even
    assert f.final_settlement_price([]) is None


def test_intrinsic_and_premium() -> None:
    assert f.intrinsic(right=OptionRight.CALL, underlying=D("100010.33"), strike=D(100000)) == D("10.33")
    assert f.intrinsic(right=OptionRight.PUT, underlying=D("100010.33"), strike=D(100000)) == 0
    assert f.intrinsic(right=OptionRight.PUT, underlying=D(99000), strike=D(100000)) == D(1000)
    assert f.premium(price=D(4005), qty=3, contract_size=D("0.001")) == D("12.02")  # 12.015: tie to even


# ---------------------------------------------------------------------------- Black-76


@pytest.mark.parametrize(("x", "expected"), [("0", "0.5"), ("1.96", "0.975002104851780"), ("-1", "0.158655253931457"), ("0.1", "0.539827837277029")])
def test_norm_cdf(x: str, expected: str) -> None:
    assert f.norm_cdf(D(x)).quantize(D("1e-15")) == D(expected)


def test_black76_at_the_money_one_year() -> None:
    # F = K = 100, vol 20%, T = 1, r = 0: d1 = 0.1, d2 = -0.1, call = 100 (N(0.1) - N(-0.1))
    # = 100 (2 x 0.539827837277029 - 1) = 7.9655674554058
    call = f.black76(right=OptionRight.CALL, forward=D(100), strike=D(100), years=D(1), vol=D("0.2"))
    assert call.quantize(D("1e-12")) == D("7.965567455406")
    put = f.black76(right=OptionRight.PUT, forward=D(100), strike=D(100), years=D(1), vol=D("0.2"))
    assert put.quantize(D("1e-12")) == D("7.965567455406")


def test_black76_hull_futures_option() -> None:
    # Hull, Options Futures and Other Derivatives: put on a future, F = K = 20, r = 9%,
    # T = 4 months, vol 25%: d1 = (0.25^2 x (1/3) / 2) / (0.25 sqrt(1/3)) = 0.0721688,
    # put = e^(-0.03) x 20 x (N(0.0721688) - N(-0.0721688)) = 1.1166
    put = f.black76(right=OptionRight.PUT, forward=D(20), strike=D(20), years=D(1) / 3, vol=D("0.25"), rate=D("0.09"))
    assert put.quantize(D("0.0001")) == D("1.1166")


def test_black76_put_call_parity_and_expiry() -> None:
    kw = {"forward": D(105000), "strike": D(100000), "years": D("0.25"), "vol": D("0.6"), "rate": D("0.05")}
    call = f.black76(right=OptionRight.CALL, **kw)  # type: ignore[arg-type]
    put = f.black76(right=OptionRight.PUT, **kw)  # type: ignore[arg-type]
    parity = (D("-0.0125").exp()) * (D(105000) - D(100000))  # e^(-rT) (F - K)
    assert abs(call - put - parity) < D("1e-20")
    kw["years"] = D(0)
    assert f.black76(right=OptionRight.CALL, **kw) == D(5000)  # type: ignore[arg-type]


def test_implied_vol_recovers_the_vol() -> None:
    price = f.black76(right=OptionRight.CALL, forward=D(100), strike=D(110), years=D("0.5"), vol=D("0.35"))
    assert f.implied_vol(right=OptionRight.CALL, price=price, forward=D(100), strike=D(110), years=D("0.5")) == D("0.35")
    assert f.implied_vol(right=OptionRight.CALL, price=D(200), forward=D(100), strike=D(110), years=D("0.5")) is None


def test_years_between_is_act_365() -> None:
    assert f.years_between(0, 365 * 24 * 3600 * 1_000_000) == 1
    assert f.years_between(0, 73 * 24 * 3600 * 1_000_000) == D("0.2")


# ---------------------------------------------------------------------------- positions


def test_average_cost_position_and_realised_pnl() -> None:
    p = Position()
    p = p.apply(2, 100 * E9)
    p = p.apply(1, 103 * E9)
    assert (p.qty, p.avg_e9) == (3, 101 * E9)  # (200 + 103) / 3
    p = p.apply(-2, 110 * E9)  # reducing keeps the average: realised 2 x (110 - 101) = 18
    assert (p.qty, p.avg_e9, p.flow_e9 + p.qty * p.avg_e9) == (1, 101 * E9, 18 * E9)
    p = p.apply(-3, 90 * E9)  # closes 1 at -11, opens a short of 2 at 90: realised 7
    assert (p.qty, p.avg_e9, p.flow_e9 + p.qty * p.avg_e9) == (-2, 90 * E9, 7 * E9)
    p = p.close(95 * E9)  # the short of 2 closed at 95: -10 more
    assert (p.qty, p.flow_e9) == (0, -3 * E9)


def test_average_rounds_half_even_in_nano_ticks() -> None:
    p = Position()
    p = p.apply(1, 1)
    p = p.apply(2, 2)  # (1 + 4) / 3 = 1.67 nano-ticks -> 2
    assert p.avg_e9 == 2


Trade = tuple[str, int, int, bool, str, str]  # symbol, price ticks, qty, buyer aggressed, taker, maker
trades = st.lists(st.tuples(st.sampled_from(["S1", "S2"]), st.integers(1, 60), st.integers(1, 30), st.booleans(),
                            st.sampled_from(["A", "B", "C"]), st.sampled_from(["A", "B", "C"])), max_size=80)
# a half-way tie on the third fill: (1,666,666,667 x 3 + 3 x 10^9) / 6 = 1,333,333,333.5 -> 1,333,333,334 (to even)
LONG_TIE = [("S1", 1, 1, True, "A", "B"), ("S1", 2, 2, True, "A", "B"), ("S1", 1, 3, True, "A", "B")]


@given(trades, st.integers(1, 80))
@example(LONG_TIE, 80)  # A's long and B's short reach the same tie
@example([("S1", 5, 3, True, "A", "A"), ("S1", 4, 2, False, "B", "B")], 1)  # an account trading with itself nets nothing
def test_apply_fills_is_position_apply_in_trade_order(batch: list[Trade], chunk: int) -> None:
    books: dict[str, PositionBook] = {}
    for i in range(0, len(batch), chunk):
        apply_fills(books, *(list(c) for c in zip(*batch[i:i + chunk], strict=True)))
    want: dict[tuple[str, str], Position] = {}
    for sym, price, qty, buy_aggr, taker, maker in batch:
        buyer, seller = (taker, maker) if buy_aggr else (maker, taker)
        for key, d in (((buyer, sym), qty), ((seller, sym), -qty)):
            want[key] = want.get(key, Position()).apply(d, price * E9)
    assert {(a, s): Position(*p) for s, b in books.items() for a, p in b.held.items()} == want
    assert {(a, s) for s, b in books.items() for a in b.changed} == set(want)


def test_the_tie_rounds_to_even() -> None:
    p = Position()
    for _, price, qty, _, _, _ in LONG_TIE:
        p = p.apply(qty, price * E9)
    assert p.avg_e9 == 1_333_333_334


@pytest.mark.parametrize("values", [[0, 1, -1, 2**63 - 1, -(2**63)], [5, -(2**70), 2**100]], ids=["64-bit", "wider"])
def test_decimal_column_reads_integers_at_the_scale(values: list[int]) -> None:
    for scale in (9, 2):  # compared as exact ratios: Decimal arithmetic would round to 28 digits
        assert [d.as_integer_ratio() for d in decimal_column(values, scale).to_pylist()] == [
            (Fraction(v, 10**scale).numerator, Fraction(v, 10**scale).denominator) for v in values]
