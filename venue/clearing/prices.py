"""Settlement prices for one business day, read from the ledger by the documented rules.

Futures and perpetuals: the VWAP of the trades in the last `vwap_window_s` before the
cutoff, else the mid of the book as the ledger last saw it (both sides needed), else the
underlying's index at the cutoff; rounded half-even to the tick. When none exists the
previous settlement price carries over, or on the first day the instrument's reference
price (`previous` / `reference` in the table, so a person sees it was not observed).

Options: Black-76 (formulas.black76) on the forward, which is the settlement price of the
future on the same underlying with the same expiry when one is listed, else the index at
the cutoff; the volatility from config (`implied_vol` by symbol, then by underlying), else
implied from the mid of the option's own book; rounded half-even to the option's tick.

Expiring contracts (expiry at or before the cutoff, still active): the final settlement
price is the mean of the underlying's index prints in the `final_settlement_window_s`
before expiry (rounded to the cent); a future settles at it, an option at its intrinsic
value. With no print in the window the run stops and changes nothing: an operator sets
the index (or loads a price file) and runs the day again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from venue.clearing import formulas
from venue.clearing.ledger import utc
from venue.clearing.settings import ClearingConfig
from venue.instruments import Instrument
from venue.types import InstrumentKind


class EodError(Exception):
    """The settlement run cannot proceed; the message says what to do. Nothing changed."""


@dataclass(frozen=True, slots=True)
class SettlementPrice:
    price: Decimal
    method: str  # vwap | mid | index | black76 | previous | reference | final
    detail: str


def _us(ts_us: int) -> str:
    return utc(ts_us).isoformat().replace("+00:00", "Z")


def settlement_prices(
    con: duckdb.DuckDBPyConnection,
    instruments: Mapping[str, Instrument],
    *,
    cutoff_us: int,
    previous: Mapping[str, Decimal],
    expiring: set[str],
    cfg: ClearingConfig,
) -> dict[str, SettlementPrice]:
    """Today's price for every instrument given (active ones, including those expiring)."""
    window = {
        s: (Decimal(v), int(q))
        for s, v, q in con.execute(
            "SELECT symbol, sum(price * qty), sum(qty) FROM trades WHERE ts_us >= ? AND ts_us < ? GROUP BY symbol",
            (cutoff_us - cfg.vwap_window_s * 1_000_000, cutoff_us),
        ).fetchall()
    }
    tops = {s: (b, a) for s, b, a in con.execute("SELECT symbol, best_bid, best_ask FROM book_tops").fetchall()}
    index = dict(con.execute(
        "SELECT underlying, arg_max(price, seq) FROM index_prices WHERE ts_us < ? GROUP BY underlying", (cutoff_us,)
    ).fetchall())
    out: dict[str, SettlementPrice] = {}
    for sym in sorted(expiring):
        out[sym] = _final(con, instruments[sym], cfg)
    for sym, inst in instruments.items():
        if sym in out or inst.kind is InstrumentKind.OPTION:
            continue
        value, volume = window.get(sym, (Decimal(0), 0))
        bid, ask = tops.get(sym, (None, None))
        got = formulas.daily_settlement_price(
            window_value=value, window_volume=volume, best_bid=bid, best_ask=ask, index=index.get(inst.underlying), tick=inst.tick_size
        )
        if got is not None:
            detail = {"vwap": f"{volume} lots in the last {cfg.vwap_window_s} s", "mid": f"bid {bid} ask {ask}",
                      "index": f"{inst.underlying} index {index.get(inst.underlying)}"}[got[1]]
            out[sym] = SettlementPrice(got[0], got[1], detail)
        else:
            out[sym] = _carried(inst, previous)
    for sym, inst in instruments.items():
        if sym not in out:
            out[sym] = _option(inst, instruments, out, index, tops, cutoff_us, previous, cfg)
    return out


def _carried(inst: Instrument, previous: Mapping[str, Decimal]) -> SettlementPrice:
    if inst.symbol in previous:
        return SettlementPrice(previous[inst.symbol], "previous", "no trade, book or index: previous settlement price")
    return SettlementPrice(inst.reference_price, "reference", "no trade, book or index: the instrument's reference price")


def final_price(con: duckdb.DuckDBPyConnection, inst: Instrument, cfg: ClearingConfig) -> Decimal:
    """The index average over the window before expiry (EodError when there is none)."""
    assert inst.expiry is not None
    end = int(inst.expiry.timestamp() * 1_000_000)
    start = end - cfg.final_settlement_window_s * 1_000_000
    prints = [p for (p,) in con.execute(
        "SELECT price FROM index_prices WHERE underlying = ? AND ts_us >= ? AND ts_us <= ? ORDER BY seq", (inst.underlying, start, end)
    ).fetchall()]
    price = formulas.final_settlement_price(prints)
    if price is None:
        raise EodError(
            f"{inst.symbol} expires at {_us(end)} but no {inst.underlying} index price was set between {_us(start)} and then;"
            " set the index for that window (a price file or the operator's index command) and run the day again"
        )
    return price


def _final(con: duckdb.DuckDBPyConnection, inst: Instrument, cfg: ClearingConfig) -> SettlementPrice:
    f = final_price(con, inst, cfg)
    if inst.kind is InstrumentKind.OPTION:
        assert inst.right is not None and inst.strike is not None
        value = formulas.intrinsic(right=inst.right, underlying=f, strike=inst.strike)
        return SettlementPrice(value, "final", f"intrinsic value at the {inst.underlying} final settlement price {f}")
    return SettlementPrice(f, "final", f"{inst.underlying} index average over {cfg.final_settlement_window_s} s before expiry")


def _option(
    inst: Instrument,
    instruments: Mapping[str, Instrument],
    prices: Mapping[str, SettlementPrice],
    index: Mapping[str, Decimal],
    tops: Mapping[str, tuple[Decimal | None, Decimal | None]],
    cutoff_us: int,
    previous: Mapping[str, Decimal],
    cfg: ClearingConfig,
) -> SettlementPrice:
    assert inst.expiry is not None and inst.strike is not None and inst.right is not None
    forward, source = None, ""
    for fut in instruments.values():
        if fut.kind is InstrumentKind.FUTURE and fut.underlying == inst.underlying and fut.expiry == inst.expiry and fut.symbol in prices:
            forward, source = prices[fut.symbol].price, f"{fut.symbol} settlement {prices[fut.symbol].price}"
            break
    if forward is None and inst.underlying in index:
        forward, source = index[inst.underlying], f"{inst.underlying} index {index[inst.underlying]}"
    if forward is None:
        return _carried(inst, previous)
    years = formulas.years_between(cutoff_us, int(inst.expiry.timestamp() * 1_000_000))
    vol = cfg.implied_vol.get(inst.symbol, cfg.implied_vol.get(inst.underlying))
    vol_source = "config"
    if vol is None:
        bid, ask = tops.get(inst.symbol, (None, None))
        if bid is not None and ask is not None:
            vol = formulas.implied_vol(right=inst.right, price=(bid + ask) / 2, forward=forward, strike=inst.strike,
                                       years=years, rate=cfg.risk_free_rate)
            vol_source = f"implied from book mid {(bid + ask) / 2}"
    if vol is None:
        return _carried(inst, previous)
    value = formulas.black76(right=inst.right, forward=forward, strike=inst.strike, years=years, vol=vol, rate=cfg.risk_free_rate)
    return SettlementPrice(formulas.to_step(value, inst.tick_size), "black76", f"forward {source}, vol {vol} ({vol_source}), T {years:.6f} y")
