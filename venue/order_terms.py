"""What makes an order well formed on its own, before any book or account is consulted.

Pure functions of a NewOrder (and, for `crosses`, the best prices of a book): the
matching engine asks them first, and they answer with a refusal or None, never raising.
"""

from __future__ import annotations

from typing import Final

from venue.book import Book
from venue.commands import NewOrder
from venue.rejects import RejectReason
from venue.types import (
    BUY,
    OT_LIMIT,
    OT_MARKET,
    OT_STOP,
    OT_STOP_LIMIT,
    PH_CLOSED,
    PH_EXPIRED,
    PH_HALTED,
    S_CANCELED,
    S_EXPIRED,
    S_FILLED,
    S_REJECTED,
    TIF_DAY,
    TIF_GTC,
    TIF_GTD,
    Side,
)

Refusal = tuple[RejectReason, str]

LIMIT_TYPES: Final = (OT_LIMIT, OT_STOP_LIMIT)
STOP_TYPES: Final = (OT_STOP, OT_STOP_LIMIT)
RESTING_TIFS: Final = (TIF_DAY, TIF_GTC, TIF_GTD)
DONE: Final = (S_FILLED, S_CANCELED, S_EXPIRED, S_REJECTED)
DONE_WORD = {S_FILLED: "filled", S_CANCELED: "canceled", S_EXPIRED: "expired", S_REJECTED: "rejected"}
# phases that refuse new orders and replaces (cancels still pass)
ENTRY_REFUSED = {
    PH_HALTED: (RejectReason.PHASE_HALTED, "halted"),
    PH_CLOSED: (RejectReason.PHASE_CLOSED, "closed"),
    PH_EXPIRED: (RejectReason.PHASE_CLOSED, "expired"),
}


def check_terms(ts: int, cmd: NewOrder) -> Refusal | None:
    """Is the order well formed on its own (types, prices, TIF and flags together)?"""
    if cmd.qty <= 0:
        return RejectReason.INVALID_QTY, f"quantity {cmd.qty} must be positive"
    t = cmd.ord_type
    if t is OT_LIMIT and cmd.expire_time is None and cmd.display_qty is None and not cmd.post_only and cmd.tif is not TIF_GTD:
        if cmd.price is None or cmd.price <= 0:  # the plain limit order: most of the flow
            return RejectReason.INVALID_PRICE, "LIMIT order needs a positive price"
        if cmd.stop_px is not None:
            return RejectReason.INVALID_ORDER, "LIMIT order takes no stop price"
        return None
    if t in LIMIT_TYPES:
        if cmd.price is None or cmd.price <= 0:
            return RejectReason.INVALID_PRICE, f"{t.name} order needs a positive price"
    elif cmd.price is not None:
        return RejectReason.INVALID_PRICE, f"{t.name} order takes no price"
    if t in STOP_TYPES:
        if cmd.stop_px is None or cmd.stop_px <= 0:
            return RejectReason.INVALID_PRICE, f"{t.name} order needs a positive stop price"
    elif cmd.stop_px is not None:
        return RejectReason.INVALID_ORDER, f"{t.name} order takes no stop price"
    if cmd.tif is TIF_GTD:
        if cmd.expire_time is None or cmd.expire_time <= ts:
            return RejectReason.INVALID_EXPIRE_TIME, "GTD order needs an ExpireTime in the future"
    elif cmd.expire_time is not None:
        return RejectReason.INVALID_ORDER, f"ExpireTime given with TIF {cmd.tif.name}"
    if t is OT_MARKET and cmd.tif is TIF_GTD:
        return RejectReason.INVALID_ORDER, "market order cannot be GTD"
    if cmd.display_qty is not None:
        if t not in LIMIT_TYPES or cmd.tif not in RESTING_TIFS:
            return RejectReason.INVALID_ORDER, "iceberg must be a resting limit order"
        if not 0 < cmd.display_qty <= cmd.qty:
            return RejectReason.INVALID_QTY, f"display quantity {cmd.display_qty} must be in 1..{cmd.qty}"
    if cmd.post_only and (t is not OT_LIMIT or cmd.tif not in RESTING_TIFS):
        return RejectReason.INVALID_ORDER, "post-only must be a resting limit order"
    return None


def crosses(book: Book, side: Side, price: int | None) -> bool:
    if side is BUY:
        return book.best_ask is not None and (price is None or price >= book.best_ask)
    return book.best_bid is not None and (price is None or price <= book.best_bid)
