"""The config loader: the demo config loads exactly; every kind of mistake stops the venue
before it starts, with the file, the key and what is wrong."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from venue.config import DEFAULT_CONFIG, ConfigError, load_config
from venue.types import InstrumentKind, OptionRight


@pytest.fixture
def demo() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def write(tmp_path: Path, data: dict | str) -> Path:
    p = tmp_path / "venue.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def test_demo_config_lists_the_contracts_exactly() -> None:
    cfg = load_config()
    by = {i.symbol: i for i in cfg.instruments}
    assert {"BTC-PERP", "ETH-PERP", "BTC-26DEC26", "BTC-26DEC26-100000-C", "BTC-26DEC26-100000-P"} <= set(by)
    perp = by["BTC-PERP"]
    assert (perp.kind, perp.tick_size, perp.lot_size, perp.multiplier, perp.reference_price) == (
        InstrumentKind.PERPETUAL, Decimal("0.5"), Decimal("1"), Decimal("0.001"), Decimal("100000"))
    assert type(perp.multiplier) is Decimal  # read from YAML text, never through float
    fut = by["BTC-26DEC26"]
    assert fut.expiry is not None and fut.expiry.isoformat() == "2026-12-26T08:00:00+00:00"
    call = by["BTC-26DEC26-100000-C"]
    assert (call.kind, call.strike, call.right) == (InstrumentKind.OPTION, Decimal(100000), OptionRight.CALL)
    assert cfg.accounts() == {"FIRM1-A": "FIRM1", "FIRM2-A": "FIRM2"}
    assert cfg.var_path() == DEFAULT_CONFIG.resolve().parent.parent / "var"


def test_ticks_and_lots_refuse_off_grid_values() -> None:
    perp = {i.symbol: i for i in load_config().instruments}["BTC-PERP"]
    assert perp.ticks(Decimal("100000.5")) == 200001
    assert perp.ticks(Decimal("100000.3")) is None
    assert perp.lots(Decimal("2")) == 2
    assert perp.lots(Decimal("2.5")) is None
    assert perp.price(200001) == Decimal("100000.5")
    assert perp.notional(200000, 3) == Decimal("300.000")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["instruments"][0].update(tick_size="abc"), "instruments[0].tick_size: expected a decimal number, got str 'abc'"),
        (lambda d: d["instruments"][0].update(colour="red"), "instruments[0]: unknown key 'colour'"),
        (lambda d: d["instruments"][1].pop("lot_size"), "instruments[1]: missing key 'lot_size'"),
        (lambda d: d["instruments"][0].update(kind="swap"), "instruments[0].kind: expected one of perpetual, future, option, got str 'swap'"),
        (lambda d: d["instruments"][0].update(reference_price="100000.3"), "instruments[0].reference_price: 100000.3 is not on the tick grid 0.5"),
        (lambda d: d["instruments"][0].update(tick_size=0), "instruments[0].tick_size: must be positive"),
        (lambda d: d["instruments"][0].pop("funding_interval_s"), "instruments[0].funding_interval_s: required for a perpetual"),
        (lambda d: d["instruments"][2].pop("expiry"), "instruments[2].expiry: required for a future"),
        (lambda d: d["instruments"][2].update(expiry="next tuesday"), "instruments[2].expiry: expected an ISO 8601 time, got str 'next tuesday'"),
        (lambda d: d["instruments"].append(dict(d["instruments"][0])), "instruments[5].symbol: duplicate symbol BTC-PERP"),
        (lambda d: d["venue"]["order_entry"].update(port="9876"), "venue.order_entry.port: expected a whole number, got str '9876'"),
        (lambda d: d["venue"].pop("order_entry"), "venue: missing key 'order_entry'"),
        (lambda d: d["venue"].update(send_threads=0), "venue: send_threads must be at least 1, not 0"),
        (lambda d: d["firms"][1]["accounts"].append("FIRM1-A"), "firms[1].accounts: account FIRM1-A already belongs to FIRM1"),
        (lambda d: d["firms"][0].update(cancel_on_disconnect="yes"), "firms[0].cancel_on_disconnect: expected true or false, got str 'yes'"),
        (lambda d: d["clearing_members"][0]["firms"].append("FIRM9"), "clearing_members[0].firms: unknown firm FIRM9"),
        (lambda d: d.update(extra_section={}), "venue.yaml: unknown key 'extra_section'"),
        (lambda d: d["snapshots"].update(cpu_share=0), "snapshots: cpu_share must be above 0 and at most 1 (of one core), got 0"),
        (lambda d: d["snapshots"].update(cpu_share=1.5), "snapshots: cpu_share must be above 0 and at most 1 (of one core), got 1.5"),
        (lambda d: d["snapshots"].update(cpu_share="half"), "snapshots.cpu_share: expected a number, got str 'half'"),
    ],
)
def test_bad_config_names_file_key_and_fault(tmp_path: Path, demo: dict, mutate, message: str) -> None:
    mutate(demo)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, demo))
    assert message in str(err.value)
    assert "venue.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("venue: [unclosed", "not valid YAML"), ("- just\n- a list\n", "expected a mapping at the top level")],
)
def test_unreadable_config(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_cli_reports_a_bad_config_and_exits_2(tmp_path: Path, demo: dict) -> None:
    demo["instruments"][0]["tick_size"] = "abc"
    path = write(tmp_path, demo)
    proc = subprocess.run([sys.executable, "-m", "venue", "run", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "config error" in proc.stderr and "instruments[0].tick_size" in proc.stderr
