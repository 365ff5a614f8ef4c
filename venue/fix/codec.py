"""FIX in: order-entry messages (D, F, G, H, q) decoded into core commands.

Pure functions over the message's fields (tag -> value, first occurrence), so they are
tested without sockets. By the time a message gets here quickfix has checked it against
the venue's data dictionary: required FIX fields are present, enumerations are values the
venue supports (Side 1/2, OrdType 1-4, TimeInForce 0/1/3/4/6, ...) and numbers are
well formed. What is left is the venue's own judgement, and every refusal goes through
the core, never answered from here, so it gets a venue ExecID and is journaled:

- a new order the edge cannot express (unknown symbol, price or quantity off the grid,
  Account or OrderQty missing) becomes a `RejectRequest` with a Text naming the field;
- a replace the edge cannot express becomes a `ReplaceOrder` that the core must refuse
  (quantity 0 or price/stop -1) plus an `EdgeNote`: the gateway puts the note's Text on
  the core's OrderCancelReject (35=9), which carries the order's real status. (A
  RejectRequest would answer with an ExecutionReport, the wrong message for a replace.)
- everything else (duplicate ClOrdID, another firm's account, unknown order, phases,
  risk) is the core's to find.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from venue.commands import CancelOrder, MassCancel, NewOrder, QueryOrder, RejectRequest, ReplaceOrder
from venue.instruments import Instrument
from venue.rejects import RejectReason
from venue.types import MassCancelScope, OrdType, Side, StpMode, TimeInForce

SOH = "\x01"

# venue fields (fix_specs/FIX44-venue.xml)
POST_ONLY = 7901
REDUCE_ONLY = 7902
STP_INSTRUCTION = 7903
_STP = {"1": StpMode.CANCEL_RESTING, "2": StpMode.CANCEL_AGGRESSING, "3": StpMode.CANCEL_BOTH}
# FIX text -> enum member by dict: calling an Enum class costs about 1 µs a lookup. A value
# the table lacks raises KeyError, as the Enum call raised ValueError; either way the
# gateway answers with a BusinessMessageReject (quickfix's dictionary lets none through).
_SIDES = {str(m.value): m for m in Side}
_ORD_TYPES = {m.value: m for m in OrdType}
_TIFS = {m.value: m for m in TimeInForce}
# the core's texts are replaced by the edge's for these reasons (see EdgeNote)
NOTE_REASONS = frozenset({RejectReason.INVALID_QTY, RejectReason.INVALID_PRICE, RejectReason.INVALID_ORDER})

Fields = Mapping[int, str]


@dataclass(frozen=True, slots=True)
class EdgeNote:
    """The edge's reason for a replace it had to make unacceptable: the gateway shows
    `text` on the core's refusal of (firm, cl_ord_id)."""

    firm: str
    cl_ord_id: str
    text: str


def split_fields(raw: str) -> list[tuple[int, str]]:
    """A FIX string as (tag, value) pairs, in order (repeating groups stay flat)."""
    out = []
    for part in raw.split(SOH):
        if part:
            tag, _, value = part.partition("=")
            out.append((int(tag), value))
    return out


def field_map(raw: str) -> dict[int, str]:
    """A FIX string as tag -> value, keeping each tag's first occurrence."""
    out: dict[int, str] = {}
    for part in raw.split(SOH):
        if part:
            tag, _, value = part.partition("=")
            out.setdefault(int(tag), value)
    return out


def parse_utc_micros(value: str) -> int | None:
    """A FIX UTCTimestamp (seconds, ms or µs) as µs since the epoch, or None."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            dt = datetime.strptime(value[:24] if "." in value else value, fmt)
        except ValueError:
            continue
        return int(dt.replace(tzinfo=UTC).timestamp()) * 1_000_000 + dt.microsecond
    return None


def _grid(value: str, step_of: str, inst: Instrument) -> int | None:
    """Ticks (price) or lots (qty) of a decimal text, or None when off the grid. Cached by
    (text, step): a client sends the same few prices and sizes over and over, and parsing
    a Decimal and dividing it costs more than the rest of decoding an order."""
    step = inst.tick_size if step_of == "tick" else inst.lot_size
    key = (value, step)
    n = _grid_cache.get(key, _MISSING)
    if n is _MISSING:
        try:
            d = Decimal(value)
            n = inst.ticks(d) if step_of == "tick" else inst.lots(d)
        except (InvalidOperation, ValueError):
            n = None
        if len(_grid_cache) < _GRID_CACHE_SIZE:
            _grid_cache[key] = n
    return n  # type: ignore[return-value]


_GRID_CACHE_SIZE = 100_000
_MISSING = object()
_grid_cache: dict[tuple[str, Decimal], int | None | object] = {}


def _order_id(value: str | None) -> int | None:
    """Our OrderIDs are integers; anything else can match no order (-1)."""
    if value is None:
        return None
    return int(value) if value.isdigit() and len(value) < 19 else -1


def decode_new_order(f: Fields, session: str, firm: str, instruments: Mapping[str, Instrument], stp_default: StpMode) -> NewOrder | RejectRequest:
    cl_ord_id, symbol, side = f[11], f[55], _SIDES[f[54]]
    account = f.get(1, "")

    def refuse(reason: RejectReason, text: str) -> RejectRequest:
        return RejectRequest(session=session, firm=firm, cl_ord_id=cl_ord_id, symbol=symbol, side=side, reason=reason, text=text, account=account)

    if not account:
        return refuse(RejectReason.MISSING_FIELD, "Account (1) is required")
    inst = instruments.get(symbol)
    if inst is None:
        return refuse(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
    if 38 not in f:
        return refuse(RejectReason.MISSING_FIELD, "OrderQty (38) is required")
    qty = _grid(f[38], "lot", inst)
    if qty is None:
        return refuse(RejectReason.INVALID_QTY, f"OrderQty {f[38]} is not a whole number of lots of {inst.lot_size} for {symbol}")
    prices: dict[int, int | None] = {44: None, 99: None, 111: None}
    for tag, name in ((44, "Price"), (99, "StopPx")):
        if tag in f:
            prices[tag] = _grid(f[tag], "tick", inst)
            if prices[tag] is None:
                return refuse(RejectReason.INVALID_PRICE, f"{name} {f[tag]} is not on the tick grid {inst.tick_size} of {symbol}")
    if 111 in f:
        prices[111] = _grid(f[111], "lot", inst)
        if prices[111] is None:
            return refuse(RejectReason.INVALID_QTY, f"MaxFloor {f[111]} is not a whole number of lots of {inst.lot_size} for {symbol}")
    expire: int | None = None
    if 126 in f:
        expire = parse_utc_micros(f[126])
        if expire is None:
            return refuse(RejectReason.INVALID_EXPIRE_TIME, f"ExpireTime {f[126]} is not a UTC timestamp")
    if 432 in f:
        return refuse(RejectReason.INVALID_ORDER, "ExpireDate (432) is not supported: use ExpireTime (126)")
    return NewOrder(
        session=session, firm=firm, account=account, cl_ord_id=cl_ord_id, symbol=symbol, side=side,
        ord_type=_ORD_TYPES[f[40]], qty=qty, price=prices[44], stop_px=prices[99], tif=_TIFS[f.get(59, "0")],
        expire_time=expire, display_qty=prices[111], post_only=f.get(POST_ONLY) == "Y", reduce_only=f.get(REDUCE_ONLY) == "Y",
        stp=_STP.get(f.get(STP_INSTRUCTION, ""), stp_default),
    )


def decode_cancel(f: Fields, session: str, firm: str) -> CancelOrder:
    return CancelOrder(session=session, firm=firm, cl_ord_id=f[11], orig_cl_ord_id=f.get(41), order_id=_order_id(f.get(37)))


def decode_replace(f: Fields, session: str, firm: str, instruments: Mapping[str, Instrument]) -> tuple[ReplaceOrder, EdgeNote | None]:
    cl_ord_id, symbol = f[11], f[55]
    orig, order_id = f.get(41), _order_id(f.get(37))

    def replace(qty: int, price: int | None, stop_px: int | None) -> ReplaceOrder:
        return ReplaceOrder(session=session, firm=firm, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig, order_id=order_id, qty=qty, price=price, stop_px=stop_px)

    def refuse(text: str, *, qty: int = 0, price: int | None = None, stop_px: int | None = None) -> tuple[ReplaceOrder, EdgeNote]:
        return replace(qty, price, stop_px), EdgeNote(firm, cl_ord_id, text)

    inst = instruments.get(symbol)
    if inst is None:
        return refuse(f"unknown symbol {symbol}")
    if 38 not in f:
        return refuse("OrderQty (38) is required")
    qty = _grid(f[38], "lot", inst)
    if qty is None:
        return refuse(f"OrderQty {f[38]} is not a whole number of lots of {inst.lot_size} for {symbol}")
    price = stop = None
    if 44 in f:
        price = _grid(f[44], "tick", inst)
        if price is None:
            return refuse(f"Price {f[44]} is not on the tick grid {inst.tick_size} of {symbol}", qty=qty, price=-1)
    if 99 in f:
        stop = _grid(f[99], "tick", inst)
        if stop is None:
            return refuse(f"StopPx {f[99]} is not on the tick grid {inst.tick_size} of {symbol}", qty=qty, price=price, stop_px=-1)
    return replace(qty, price, stop), None


def decode_status(f: Fields, session: str, firm: str) -> QueryOrder:
    return QueryOrder(session=session, firm=firm, symbol=f[55], side=_SIDES[f[54]], cl_ord_id=f.get(11), order_id=_order_id(f.get(37)))


def decode_mass_cancel(f: Fields, session: str, firm: str) -> MassCancel:
    return MassCancel(session=session, firm=firm, cl_ord_id=f[11], scope=MassCancelScope(f[530]), symbol=f.get(55), account=f.get(1))
