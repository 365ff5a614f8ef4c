"""What the core answers: immutable records, in sequence order, for every subscriber.

Events are NamedTuples rather than frozen dataclasses because the core builds one or more
per order on its hot path: a frozen slotted dataclass of ten fields costs 1.0 µs to build
here and a NamedTuple 0.19 µs (positional), against a whole budget of 2.5 µs per order.
They are just as immutable. The core builds them with `make(Event, (fields...))`, from a
tuple in field order: calling the class runs a Python-level `__new__` (an ExecReport: 0.43
µs under load here), and `_make` is a Python-level classmethod too, where `make` is
`tuple.__new__` itself, which the compiled core (setup.py) calls without a Python frame
(about 120 ns an event against 175 ns for `_make`). It does not check the field count:
the type checker does, as it checks every call of the core.

Every event carries `seq` and `ts` (the sequence number and UTC µs of the command that
caused it). ExecIDs and TradeIDs come from counters in the core's state, so a replay of
the journal reproduces them exactly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, NamedTuple

from venue.commands import NewOrder
from venue.rejects import RejectReason
from venue.types import ExecType, MassCancelScope, OrdStatus, OrdType, Side, TimeInForce, TradingPhase

make: Final = tuple.__new__  # make(ExecReport, (seq, ts, ...)): see above


class OrderView(NamedTuple):
    """An order as it stands after entry or a replace: the client's terms plus its venue id.

    `entry` is the NewOrder that created it (session, firm, account, flags); the fields
    here are the ones a replace may change.
    """

    order_id: int
    cl_ord_id: str
    orig_cl_ord_id: str | None
    qty: int
    price: int | None
    stop_px: int | None
    ord_type: OrdType
    entry: NewOrder

    @property
    def session(self) -> str:
        return self.entry.session

    @property
    def firm(self) -> str:
        return self.entry.firm

    @property
    def account(self) -> str:
        return self.entry.account

    @property
    def symbol(self) -> str:
        return self.entry.symbol

    @property
    def side(self) -> Side:
        return self.entry.side

    @property
    def tif(self) -> TimeInForce:
        return self.entry.tif


class ExecReport(NamedTuple):
    """One order's state change: new, canceled, replaced, expired, rejected, triggered,
    status. Fills are `Fill` events. `cum_cost` is the sum of price x qty over the order's
    fills (ticks x lots), so AvgPx is cum_cost / cum_qty, exactly."""

    seq: int
    ts: int
    exec_id: int
    exec_type: ExecType
    status: OrdStatus
    order: OrderView
    leaves_qty: int
    cum_qty: int
    cum_cost: int
    reason: RejectReason | None
    text: str


class Fill(NamedTuple):
    """One trade between an aggressing (taker) and a resting (maker) order, with both
    orders' state after it: the gateway sends each side its ExecutionReport, drop copy
    both, the ledger one trade row."""

    seq: int
    ts: int
    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor: Side
    taker: OrderView
    taker_exec_id: int
    taker_leaves: int
    taker_cum: int
    taker_cost: int
    maker: OrderView
    maker_exec_id: int
    maker_leaves: int
    maker_cum: int
    maker_cost: int

    @property
    def buy(self) -> OrderView:
        return self.taker if self.aggressor is Side.BUY else self.maker

    @property
    def sell(self) -> OrderView:
        return self.maker if self.aggressor is Side.BUY else self.taker


class CancelRejected(NamedTuple):
    """OrderCancelReject: a cancel (`is_replace` False) or replace that was refused.
    `status` is the order's current status, REJECTED when no order was found."""

    seq: int
    ts: int
    session: str
    firm: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: int | None
    is_replace: bool
    status: OrdStatus
    reason: RejectReason
    text: str


class MassCancelDone(NamedTuple):
    """OrderMassCancelReport. The canceled orders' own ExecReports come before it."""

    seq: int
    ts: int
    session: str
    firm: str
    cl_ord_id: str
    scope: MassCancelScope
    symbol: str | None
    account: str | None
    canceled: int
    reason: RejectReason | None
    text: str


class PhaseChanged(NamedTuple):
    seq: int
    ts: int
    symbol: str
    phase: TradingPhase


class CommandRejected(NamedTuple):
    """An operator command the core refused (unknown symbol, illegal phase change)."""

    seq: int
    ts: int
    command: str
    reason: RejectReason
    text: str


class IndexPriceSet(NamedTuple):
    seq: int
    ts: int
    underlying: str
    price: Decimal


class MarkPriceSet(NamedTuple):
    seq: int
    ts: int
    symbol: str
    price: int  # ticks


class CollateralChanged(NamedTuple):
    """A deposit or withdrawal, applied: `balance` is the account's collateral after it."""

    seq: int
    ts: int
    account: str
    amount: Decimal
    currency: str
    balance: Decimal
    reference: str


class BookDelta(NamedTuple):
    """A price level's total displayed quantity after a batch of commands (0: gone).
    Conflated per batch: market data needs the level, not every step to it."""

    seq: int
    ts: int
    symbol: str
    side: Side
    price: int
    qty: int


Event = ExecReport | Fill | CancelRejected | MassCancelDone | PhaseChanged | CommandRejected | IndexPriceSet | MarkPriceSet | CollateralChanged | BookDelta
