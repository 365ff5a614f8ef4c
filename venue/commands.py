"""What the edges ask the core to do. Plain frozen data: journaled, replayed, sharded.

A command carries everything the core needs and nothing it must look up outside itself;
the sequencer adds the sequence number and the UTC time (µs) beside it, so a replay of
the journal gives the core the same inputs and it answers with the same events.
Prices are int ticks and quantities int lots (venue/instruments.py converts).

`session` is the FIX session that sent the request (where its answers go); `firm` owns
the order and scopes ClOrdIDs: one firm's sessions share a ClOrdID namespace, and no
firm can see or touch another firm's orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from venue.rejects import RejectReason
from venue.types import MassCancelScope, OrdType, Side, StpMode, TimeInForce, TradingPhase


def _px(ticks: int | None) -> str:
    return "MKT" if ticks is None else str(ticks)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOrder:
    session: str
    firm: str
    account: str
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    qty: int
    price: int | None = None
    stop_px: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    expire_time: int | None = None  # GTD: µs since the epoch, UTC
    display_qty: int | None = None  # iceberg: the slice shown on the book
    post_only: bool = False
    reduce_only: bool = False
    stp: StpMode = StpMode.CANCEL_AGGRESSING

    def __repr__(self) -> str:
        flags = "".join(
            f for f, on in ((" PO", self.post_only), (" RO", self.reduce_only), (f" ICE{self.display_qty}", self.display_qty)) if on
        )
        stop = f" STOP{self.stop_px}" if self.stop_px is not None else ""
        return (
            f"[NEW {self.firm}/{self.account} {self.cl_ord_id} {self.symbol} {self.side.name[0]}"
            f" {self.qty}@{_px(self.price)}{stop} {self.ord_type.name} {self.tif.name}{flags}]"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    session: str
    firm: str
    cl_ord_id: str
    orig_cl_ord_id: str | None = None
    order_id: int | None = None  # either this or orig_cl_ord_id finds the order

    def __repr__(self) -> str:
        return f"[CXL {self.firm} {self.cl_ord_id} orig={self.orig_cl_ord_id} oid={self.order_id}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceOrder:
    """Cancel/replace. A quantity decrease at the same price keeps queue priority; a price
    change or a quantity increase loses it."""

    session: str
    firm: str
    cl_ord_id: str
    orig_cl_ord_id: str | None = None
    order_id: int | None = None
    qty: int
    price: int | None = None
    stop_px: int | None = None

    def __repr__(self) -> str:
        return f"[RPL {self.firm} {self.cl_ord_id} orig={self.orig_cl_ord_id} {self.qty}@{_px(self.price)}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOrder:
    """OrderStatusRequest: answered with an ExecutionReport 150=I, changes nothing."""

    session: str
    firm: str
    symbol: str
    side: Side
    cl_ord_id: str | None = None
    order_id: int | None = None

    def __repr__(self) -> str:
        return f"[QRY {self.firm} {self.cl_ord_id} oid={self.order_id}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class MassCancel:
    session: str
    firm: str
    cl_ord_id: str
    scope: MassCancelScope
    symbol: str | None = None  # required when scope is INSTRUMENT
    account: str | None = None  # narrows either scope to one account

    def __repr__(self) -> str:
        return f"[MCX {self.firm} {self.cl_ord_id} {self.scope.name} {self.symbol or '*'} {self.account or '*'}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSessionOrders:
    """Cancel-on-disconnect: the session's resting orders whose TIF is listed."""

    session: str
    tifs: frozenset[TimeInForce]

    def __repr__(self) -> str:
        return f"[COD {self.session} {','.join(sorted(t.name for t in self.tifs))}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectRequest:
    """A request the edge found malformed (off-grid price, bad field): the core answers it
    with a reject carrying a venue ExecID, and changes nothing else."""

    session: str
    firm: str
    cl_ord_id: str
    symbol: str
    side: Side
    reason: RejectReason
    text: str
    account: str = ""

    def __repr__(self) -> str:
        return f"[REJ {self.firm} {self.cl_ord_id} {self.reason.name}: {self.text}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPhase:
    symbol: str
    phase: TradingPhase

    def __repr__(self) -> str:
        return f"[PHASE {self.symbol} {self.phase.name}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireOrders:
    """Expire every GTD order whose ExpireTime is at or before the command's time. The
    sequencer issues it when the core's next_expiry() falls due."""

    def __repr__(self) -> str:
        return "[EXPIRE]"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfDay:
    """Close of the trading day: DAY orders expire."""

    def __repr__(self) -> str:
        return "[EOD]"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetIndexPrice:
    """Operator or price feed: the index an underlying's contracts track (e.g. BTC-USD)."""

    underlying: str
    price: Decimal

    def __repr__(self) -> str:
        return f"[INDEX {self.underlying} {self.price}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMarkPrice:
    """Operator: an instrument's mark price, in ticks."""

    symbol: str
    price: int

    def __repr__(self) -> str:
        return f"[MARK {self.symbol} {self.price}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustCollateral:
    """Operator: deposit (amount > 0) or withdraw (amount < 0) collateral, in the
    account's settlement currency."""

    account: str
    amount: Decimal
    currency: str = "USD"
    reference: str = ""

    def __repr__(self) -> str:
        return f"[COLL {self.account} {self.amount:+} {self.currency} {self.reference}]"


Command = NewOrder | CancelOrder | ReplaceOrder | QueryOrder | MassCancel | CancelSessionOrders | RejectRequest | SetPhase | ExpireOrders | EndOfDay | SetIndexPrice | SetMarkPrice | AdjustCollateral
