"""A VenueCore on test instruments, driven one command at a time with every invariant
(engine, and risk state against the engine) checked after each command."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venue.commands import AdjustCollateral, CancelOrder, NewOrder, ReplaceOrder
from venue.core import VenueCore
from venue.events import CancelRejected, CommandRejected, Event, ExecReport
from venue.instruments import Instrument
from venue.limits import LimitRule, RiskConfig
from venue.rejects import RejectReason
from venue.types import InstrumentKind, OptionRight, OrdStatus, OrdType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL

# BTC-PERP: 0.5 tick, 0.001 BTC a lot, reference 100,000 = 200,000 ticks: a lot is 100 USD.
BTC = Instrument(symbol="BTC-PERP", kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD",
                 tick_size=Decimal("0.5"), lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(100000),
                 funding_interval_s=28800)
# BTC-FUT: same underlying, 0.01 BTC a lot (ten BTC-PERP lots).
FUT = Instrument(symbol="BTC-FUT", kind=InstrumentKind.FUTURE, underlying="BTC-USD", quote_currency="USD",
                 tick_size=Decimal("0.5"), lot_size=Decimal(1), multiplier=Decimal("0.01"), reference_price=Decimal(100000),
                 expiry=None)
ETH = Instrument(symbol="ETH-PERP", kind=InstrumentKind.PERPETUAL, underlying="ETH-USD", quote_currency="USD",
                 tick_size=Decimal("0.05"), lot_size=Decimal(1), multiplier=Decimal("0.01"), reference_price=Decimal(3500),
                 funding_interval_s=28800)
CALL = Instrument(symbol="BTC-C", kind=InstrumentKind.OPTION, underlying="BTC-USD", quote_currency="USD",
                  tick_size=Decimal(5), lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(4000),
                  strike=Decimal(100000), right=OptionRight.CALL)
INSTRUMENTS = [BTC, FUT, ETH, CALL]
ACCOUNTS = {"A1": "F1", "A2": "F1", "B1": "F2", "B2": "F2"}
T0 = 1_800_000_000_000_000  # µs


class RiskDriver:
    """Apply commands to a VenueCore with sequence numbers and a settable clock."""

    def __init__(self, *rules: LimitRule, collateral: dict[str, Any] | None = None) -> None:
        self.core = VenueCore(INSTRUMENTS, ACCOUNTS, RiskConfig(limits=list(rules)))
        self.seq = 0
        self.ts = T0
        self.n = 0
        self.last: list[Event] = []  # the events of the latest command
        for account, amount in (collateral or {}).items():
            self(AdjustCollateral(account=account, amount=Decimal(str(amount))))

    def __call__(self, cmd: object, ts: int | None = None) -> list[Event]:
        self.seq += 1
        events = self.core.apply(self.seq, self.ts if ts is None else ts, cmd)  # type: ignore[arg-type]
        self.core.validate()
        self.last = events
        return events

    def new(self, side: Side, qty: int, price: int | None = None, *, account: str = "A1", symbol: str = "BTC-PERP",
            cl: str | None = None, ts: int | None = None, **kw: Any) -> ExecReport:
        """Submit a new order; return its first ExecReport (NEW, or the reject)."""
        self.n += 1
        ord_type = kw.pop("ord_type", OrdType.LIMIT if price is not None else OrdType.MARKET)
        if ord_type is OrdType.MARKET and "tif" not in kw:
            kw["tif"] = TimeInForce.IOC
        cmd = NewOrder(session=ACCOUNTS[account], firm=ACCOUNTS[account], account=account, cl_ord_id=cl or f"o{self.n}",
                       symbol=symbol, side=side, ord_type=ord_type, qty=qty, price=price, **kw)
        first = self(cmd, ts)[0]
        assert isinstance(first, ExecReport)
        return first

    def replace(self, orig: str, qty: int, price: int | None, *, account: str = "A1", ts: int | None = None) -> list[Event]:
        self.n += 1
        return self(ReplaceOrder(session=ACCOUNTS[account], firm=ACCOUNTS[account], cl_ord_id=f"r{self.n}", orig_cl_ord_id=orig, qty=qty, price=price), ts)

    def cancel(self, orig: str, *, account: str = "A1", ts: int | None = None) -> list[Event]:
        self.n += 1
        return self(CancelOrder(session=ACCOUNTS[account], firm=ACCOUNTS[account], cl_ord_id=f"c{self.n}", orig_cl_ord_id=orig), ts)

    def state(self) -> object:
        """Everything replay rebuilds, engine and risk: compared to prove 'nothing changed'."""
        e = self.core.engine
        return (self.core.snapshot_state(), sorted((o.order_id, o.leaves, o.price) for o in e.orders.values()),
                sorted(e.positions.items()), [(b.symbol, b.phase) for b in e.books.values()])


def accepted(er: ExecReport) -> bool:
    return er.status is not OrdStatus.REJECTED


def refused(er: ExecReport, reason: RejectReason = RejectReason.RISK_LIMIT) -> str:
    """The reject text, after checking the order was refused for `reason`."""
    assert er.status is OrdStatus.REJECTED, f"expected a reject, got {er.exec_type.name} {er.text!r}"
    assert er.reason is reason, f"expected {reason.name}, got {er.reason} {er.text!r}"
    return er.text


def command_refused(events: list[Event]) -> str:
    assert len(events) == 1 and isinstance(events[0], CommandRejected), f"expected CommandRejected, got {events}"
    return events[0].text


def cancel_refused(events: list[Event], reason: RejectReason) -> str:
    assert len(events) == 1 and isinstance(events[0], CancelRejected) and events[0].reason is reason, f"expected {reason.name}, got {events}"
    return events[0].text
