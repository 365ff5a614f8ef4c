"""The clearing section of the venue config: fees, funding, settlement windows, files.

Every rate is a Decimal read from its YAML text (venue/config.py never goes through float),
so 0.0002 is exactly two basis points. Defaults make an unconfigured venue clear with no
fees and the conventional 8-hour funding clamp (BitMEX's published parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeRates:
    """Fee as a fraction of notional per side. A negative maker rate is a rebate."""

    maker: Decimal = Decimal(0)
    taker: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingSettings:
    """Perpetual funding per interval: rate = premium + clamp(interest - premium, -clamp,
    +clamp), then capped to [-cap, +cap]; all per funding interval, as fractions."""

    interest_rate: Decimal = Decimal(0)
    clamp: Decimal = Decimal("0.0005")
    cap: Decimal = Decimal("0.0075")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearingConfig:
    """How the venue clears. `fees_by_symbol` overrides `fees` per instrument;
    `implied_vol` is keyed by option symbol or by underlying (symbol wins)."""

    currency: str = "USD"
    ledger_file: str = "ledger.duckdb"  # under the venue's var_dir
    settlement_dir: str = "settlement"  # under the venue's var_dir: one folder per business date
    fees: FeeRates = field(default_factory=FeeRates)
    fees_by_symbol: dict[str, FeeRates] = field(default_factory=dict)
    vwap_window_s: int = 1800  # settlement price: VWAP of the trades in the last N seconds of the day
    funding: FundingSettings = field(default_factory=FundingSettings)
    final_settlement_window_s: int = 1800  # expiry: average of the index over the last N seconds
    implied_vol: dict[str, Decimal] = field(default_factory=dict)
    risk_free_rate: Decimal = Decimal(0)  # annual, continuously compounded (Black-76 discounting)

    def fee_rates(self, symbol: str) -> FeeRates:
        return self.fees_by_symbol.get(symbol, self.fees)

    def check(self, symbols: set[str]) -> list[str]:
        """Problems a loader should report (unknown symbols, nonsensical windows)."""
        problems = [f"fees_by_symbol: unknown instrument {s}" for s in sorted(set(self.fees_by_symbol) - symbols)]
        for name in ("vwap_window_s", "final_settlement_window_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be positive")
        f = self.funding
        if f.clamp < 0 or f.cap < 0:
            problems.append("funding: clamp and cap must not be negative")
        for key, vol in self.implied_vol.items():
            if vol <= 0:
                problems.append(f"implied_vol.{key}: must be positive")
        return problems
