"""The ledger's fees, computed by columns in Arrow, are formulas.FeeRule's exactly: half-even
cents of tick-lots x rate, maker rebates (negative rates) included, and a batch too big for
64-bit arithmetic falls back to the exact Python integers instead of failing or wrapping."""

from __future__ import annotations

import random
from decimal import Decimal

import pyarrow as pa
import pytest

from venue.clearing.formulas import FeeRule
from venue.clearing.ledger import TradeTerms, _fees
from venue.clearing.settings import ClearingConfig, FeeRates
from venue.instruments import Instrument
from venue.types import InstrumentKind


def _instrument(symbol: str, tick: str) -> Instrument:
    return Instrument(symbol=symbol, kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD", tick_size=Decimal(tick),
                      lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(100000), funding_interval_s=28800)


@pytest.mark.parametrize("maker", ["0.0001", "-0.00025", "0.000123456789"])
def test_column_fees_equal_the_fee_rule_for_every_trade(maker: str) -> None:
    insts = [_instrument("A", "0.5"), _instrument("B", "0.01"), _instrument("C", "5")]
    rates = FeeRates(maker=Decimal(maker), taker=Decimal("0.0005"))
    terms = TradeTerms(insts, {"X": ("F", "M")}, ClearingConfig(fees=rates))
    rnd = random.Random(maker)
    n = 2000
    symbol = [rnd.choice("ABC") for _ in range(n)]
    price = [rnd.randrange(1, 10**7) for _ in range(n)]
    qty = [rnd.randrange(1, 5000) for _ in range(n)]
    buy = [rnd.random() < 0.5 for _ in range(n)]
    at = pa.array([ord(s) - ord("A") for s in symbol], pa.int32())
    got_buy, got_sell = _fees(terms, at, pa.array(price), pa.array(qty), pa.array(buy), (symbol, price, qty, buy))
    for i in range(n):
        inst = insts[ord(symbol[i]) - ord("A")]
        per = inst.tick_size * inst.lot_size * inst.multiplier
        taker, mk = FeeRule(per, rates.taker), FeeRule(per, rates.maker)
        assert got_buy[i].as_py() == (taker if buy[i] else mk).cents(price[i] * qty[i])
        assert got_sell[i].as_py() == (mk if buy[i] else taker).cents(price[i] * qty[i])


def test_a_batch_past_64_bits_takes_the_exact_python_integers() -> None:
    insts = [_instrument("A", "0.00000001")]
    rates = FeeRates(maker=Decimal("0.000123456789"), taker=Decimal("0.0005"))
    terms = TradeTerms(insts, {}, ClearingConfig(fees=rates))
    price, qty = [10**13, 3], [10**6, 7]  # 1e19 tick-lots: past int64 before the rate
    got_buy, got_sell = _fees(terms, pa.array([0, 0], pa.int32()), pa.array(price), pa.array(qty), pa.array([True, False]),
                              (["A", "A"], price, qty, [True, False]))
    per = Decimal("0.00000001") * Decimal("0.001")
    taker, maker = FeeRule(per, rates.taker), FeeRule(per, rates.maker)
    assert got_buy.to_pylist() == [taker.cents(10**19), maker.cents(21)]
    assert got_sell.to_pylist() == [maker.cents(10**19), taker.cents(21)]
