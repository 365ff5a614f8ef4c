"""Listed contracts and the one place decimals become integer ticks and lots.

Inside the core a price is an int count of ticks and a quantity an int count of lots
(exchange-core's rule: no floating point). `Instrument` converts at the edges and refuses
anything off the grid rather than rounding it: a client who sends 100000.3 on a 0.5 tick
gets a reject, not a silently different order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from venue.types import InstrumentKind, OptionRight


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    symbol: str
    kind: InstrumentKind
    underlying: str  # the index the contract tracks, e.g. BTC-USD
    quote_currency: str  # prices and settlement, e.g. USD
    tick_size: Decimal
    lot_size: Decimal  # contracts per lot
    multiplier: Decimal  # underlying units per contract
    reference_price: Decimal  # opening reference until the first trade or mark
    expiry: datetime | None = None  # futures and options, UTC
    strike: Decimal | None = None  # options
    right: OptionRight | None = None  # options: European, cash-settled
    funding_interval_s: int | None = None  # perpetuals

    def ticks(self, price: Decimal) -> int | None:
        """Price as ticks, or None when it is not on the tick grid."""
        q, r = divmod(price, self.tick_size)
        return int(q) if r == 0 else None

    def lots(self, qty: Decimal) -> int | None:
        """Quantity as lots, or None when it is not a whole number of lots."""
        q, r = divmod(qty, self.lot_size)
        return int(q) if r == 0 else None

    def price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def qty(self, lots: int) -> Decimal:
        return lots * self.lot_size

    def show_price(self, ticks: int) -> str:
        """A price as a client wrote it: 100000.5, never 2.000010E+5 or ticks."""
        return f"{(ticks * self.tick_size).normalize():f}"

    def show_qty(self, lots: int) -> str:
        return f"{(lots * self.lot_size).normalize():f}"

    def notional(self, ticks: int, lots: int) -> Decimal:
        """Value in the quote currency: price x contracts x multiplier."""
        return ticks * self.tick_size * lots * self.lot_size * self.multiplier

    @property
    def reference_ticks(self) -> int:
        t = self.ticks(self.reference_price)
        if t is None:
            raise ValueError(f"{self.symbol}: reference price {self.reference_price} is off the tick grid")
        return t
