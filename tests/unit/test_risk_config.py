"""The config's `risk:` section: the demo's loads, typed; a wrong one stops the venue before
it starts, naming the file, the key and what is wrong; the demo's limits let its firms trade."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from venue.commands import AdjustCollateral, NewOrder
from venue.config import DEFAULT_CONFIG, ConfigError, load_config
from venue.core import VenueCore
from venue.events import CollateralChanged, ExecReport, Fill
from venue.limits import LimitRule
from venue.types import OrdStatus, OrdType, Side


def write(tmp_path: Path, risk: Any) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["risk"] = risk
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_demo_risk_section_loads_typed() -> None:
    risk = load_config().risk
    assert risk.currency == "USD" and risk.collateral == {"FIRM1-A": Decimal(10_000_000), "FIRM2-A": Decimal(10_000_000)}
    default = risk.limits[0]
    assert (default.firm, default.account, default.symbol) == ("", "", "")
    assert default.im_rate == Decimal("0.1") and isinstance(default.max_order_qty, int)


def test_demo_firms_trade_out_of_the_box() -> None:
    cfg = load_config()
    core = VenueCore(cfg.instruments, cfg.accounts(), cfg.risk)
    seq = 0
    for account, amount in cfg.risk.collateral.items():
        seq += 1
        core.apply(seq, 1, AdjustCollateral(account=account, amount=amount))
    for symbol, price in (("BTC-PERP", 200_000), ("ETH-PERP", 70_000), ("BTC-26DEC26", 202_000), ("BTC-26DEC26-100000-C", 800)):
        for firm, side in (("FIRM1", Side.BUY), ("FIRM2", Side.SELL)):
            seq += 1
            events = core.apply(seq, 2, NewOrder(session=firm, firm=firm, account=f"{firm}-A", cl_ord_id=f"{symbol}-{firm}", symbol=symbol,
                                                 side=side, ord_type=OrdType.LIMIT, qty=10, price=price))
        assert any(isinstance(e, Fill) and e.qty == 10 for e in events), f"{symbol}: {events}"
    core.validate()


@pytest.mark.parametrize(("risk", "error"), [
    ({"limits": [{"max_qty": 5}]}, ("v.yaml.risk.limits[0]: unknown key 'max_qty' (known: account, band_pct, band_ticks, firm, im_rate, "
                                    "max_msgs_per_s, max_open_orders, max_order_notional, max_order_qty, max_position, max_underlying_position, symbol)")),
    ({"limits": [{"max_order_qty": "lots"}]}, "v.yaml.risk.limits[0].max_order_qty: expected a whole number, got str 'lots'"),
    ({"limits": [{"max_order_qty": 0}]}, "v.yaml: risk.limits[0].max_order_qty: max_order_qty must be positive, got 0"),
    ({"limits": [{"firm": "FIRM1", "account": "FIRM1-A", "max_position": 5}]}, "v.yaml: risk.limits[0]: a rule names a firm or an account, not both"),
    ({"limits": [{"symbol": "DOGE-PERP", "band_pct": 5}]}, "v.yaml: risk.limits[0]: unknown symbol DOGE-PERP"),
    ({"limits": [{"symbol": "BTC-PERP", "max_open_orders": 5}]}, "v.yaml: risk.limits[0].max_open_orders: max_open_orders applies per account or session, not per symbol"),
    ({"limits": [{"im_rate": 1.5}]}, "v.yaml: risk.limits[0].im_rate: im_rate is a fraction of notional (at most 1), got 1.5"),
    ({"collateral": {"NOPE-A": 5}}, "v.yaml: risk.collateral.NOPE-A: unknown account NOPE-A"),
    ({"collateral": {"FIRM1-A": -5}}, "v.yaml: risk.collateral.FIRM1-A: opening collateral must be positive, got -5"),
    ({"currency": "EUR"}, "v.yaml: risk.currency: BTC-PERP quotes in USD, but collateral is held in EUR"),
])
def test_a_wrong_risk_section_is_refused_naming_the_key(tmp_path: Path, risk: Any, error: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, risk))
    assert str(exc.value) == error


def test_decimal_limits_are_read_exactly(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {"limits": [{"band_pct": 2.5, "im_rate": 0.125, "max_underlying_position": 0.3}]}))
    assert cfg.risk.limits == [LimitRule(band_pct=Decimal("2.5"), im_rate=Decimal("0.125"), max_underlying_position=Decimal("0.3"))]


def _demo_core() -> tuple[VenueCore, list[int]]:
    cfg = load_config()
    core = VenueCore(cfg.instruments, cfg.accounts(), cfg.risk)
    seq = [0]
    for account, amount in cfg.risk.collateral.items():
        seq[0] += 1
        core.apply(seq[0], 1, AdjustCollateral(account=account, amount=amount))
    return core, seq


def _order(core: VenueCore, seq: list[int], symbol: str, qty: int, price: int, side: Side = Side.BUY, ts: int = 1) -> ExecReport:
    seq[0] += 1
    ev = core.apply(seq[0], ts, NewOrder(session="FIRM1", firm="FIRM1", account="FIRM1-A", cl_ord_id=f"d{seq[0]}", symbol=symbol, side=side,
                                         ord_type=OrdType.LIMIT, qty=qty, price=price))[0]
    assert isinstance(ev, ExecReport)
    return ev


@pytest.mark.parametrize(("symbol", "ok", "over", "text"), [
    ("BTC-PERP", (10_000, 200_000), (10_001, 200_000), "risk: order qty 10,001 > limit 10,000 lots"),
    ("BTC-PERP", (1, 220_000), (1, 220_001), "risk: price 110,000.5 outside band 90,000..110,000 (10% of reference 100,000)"),
    ("BTC-26DEC26", (9_900, 202_000), (9_901, 202_000), "risk: notional 1,000,001 > limit 1,000,000 USD"),
    ("BTC-26DEC26-100000-C", (1, 1_200), (1, 1_201), "risk: price 6,005 outside band 2,000..6,000 (50% of reference 4,000)"),
])
def test_each_demo_limit_bites_on_one_order(symbol: str, ok: tuple[int, int], over: tuple[int, int], text: str) -> None:
    core, seq = _demo_core()
    assert _order(core, seq, symbol, *over).text == text
    assert _order(core, seq, symbol, *ok).status is OrdStatus.NEW


def test_demo_position_open_orders_credit_and_throttle_limits_bite() -> None:
    core, seq = _demo_core()
    for _ in range(5):  # 50,000 lots resting: the position limit, at it
        assert _order(core, seq, "BTC-PERP", 10_000, 199_000).status is OrdStatus.NEW
    assert _order(core, seq, "BTC-PERP", 1, 199_000).text == "risk: position BTC-PERP long 50,001 with open orders > limit 50,000 lots"
    for qty in (9_000,) * 5 + (5_000,):  # 50 BTC more on the future: 100 BTC on the underlying, its limit
        assert _order(core, seq, "BTC-26DEC26", qty, 201_000).status is OrdStatus.NEW
    assert _order(core, seq, "BTC-26DEC26-100000-C", 1, 800).text == "risk: position BTC-USD long 100.001 with open orders > limit 100"
    seq[0] += 1  # margin now 497,500 + 502,500: withdraw down to exactly that
    assert isinstance(core.apply(seq[0], 1, AdjustCollateral(account="FIRM1-A", amount=Decimal(-9_000_000)))[0], CollateralChanged)
    assert _order(core, seq, "ETH-PERP", 1, 70_000).text == "risk: credit: initial margin 1,000,003.5 > collateral 1,000,000 USD"
    seq[0] += 1
    core.apply(seq[0], 1, AdjustCollateral(account="FIRM1-A", amount=Decimal(9_000_000)))
    for _ in range(1000 - 11):  # open orders: 11 resting, up to 1,000
        assert _order(core, seq, "ETH-PERP", 1, 69_000, ts=2_000_000).status is OrdStatus.NEW
    assert _order(core, seq, "ETH-PERP", 1, 69_000, ts=2_000_000).text == "risk: open orders 1,000 at limit 1,000"
    burst = [_order(core, seq, "ETH-PERP", 1, 69_000, Side.SELL, ts=9_000_000).text for _ in range(10_001)]  # one instant
    assert burst.count("risk: throttle 10,000 messages/s exceeded on session FIRM1") == 1 and burst[-1].startswith("risk: throttle")
