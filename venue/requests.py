"""Client requests on orders already in the book: cancel, replace, status, mass cancel,
cancel-on-disconnect, and the edge's own rejects. A part of MatchingEngine.

OrderRequests is a mixin of MatchingEngine (venue/matching.py), split out by concern. A
request names its order by (firm, ClOrdID) or OrderID, so no firm can reach another's
orders; a refused request answers with an OrderCancelReject (or a rejected status) and
leaves the state identical. A replace keeps queue priority only for a quantity decrease
at the same price; a price change or quantity increase re-enters the order at the back
and may trade at once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from mypy_extensions import trait

from venue.book import Book, Order
from venue.commands import CancelOrder, CancelSessionOrders, MassCancel, NewOrder, QueryOrder, RejectRequest, ReplaceOrder
from venue.events import CancelRejected, Event, ExecReport, MassCancelDone, OrderView, make
from venue.order_index import ClOrdIndex
from venue.order_terms import DONE, DONE_WORD, ENTRY_REFUSED, LIMIT_TYPES, STOP_TYPES, Refusal, crosses
from venue.rejects import RejectReason
from venue.types import (
    BUY,
    OT_LIMIT,
    PH_OPEN,
    S_CANCELED,
    S_NEW,
    S_PARTIALLY_FILLED,
    S_REJECTED,
    X_ORDER_STATUS,
    X_REPLACED,
    MassCancelScope,
    OrdStatus,
)

if TYPE_CHECKING:
    from venue.matching import PreTradeCheck


@trait
class OrderRequests:
    """Cancel, replace, status and mass-cancel handling of MatchingEngine."""

    # what the mixin uses of MatchingEngine
    books: dict[str, Book]
    orders: dict[int, Order]
    accounts: dict[str, str]
    positions: dict[tuple[str, str], int]
    reduce_only: dict[tuple[str, str], dict[int, Order]]
    by_cl_ord_id: ClOrdIndex
    pre_trade: PreTradeCheck | None
    next_exec_id: int
    @abstractmethod
    def _remove_live(self, book: Book, order: Order) -> None:
        """Take a live order off its book or the stops."""
    @abstractmethod
    def _end(self, seq: int, ts: int, book: Book, order: Order, events: list[Event], status: OrdStatus, text: str, view: OrderView | None = None) -> None:
        """Close an order with a final report."""
    @abstractmethod
    def _execute(self, seq: int, ts: int, book: Book, order: Order, events: list[Event]) -> None:
        """Match an order, then rest, park or end what is left."""
    @abstractmethod
    def _after_trades(self, seq: int, ts: int, book: Book, events: list[Event]) -> None:
        """Trigger the stops that the last trades reached."""
    @abstractmethod
    def _park_stop(self, book: Book, order: Order) -> None:
        """Park a stop order until the last trade reaches it."""
    @abstractmethod
    def _trim_reduce_only(self, seq: int, ts: int, events: list[Event]) -> None:
        """Shrink reduce-only orders to the positions they may reduce."""
    @abstractmethod
    def _rejected(self, seq: int, ts: int, cmd: NewOrder, refusal: Refusal) -> ExecReport:
        """The report of a refused new order."""
    @abstractmethod
    def cancel_where(self, seq: int, ts: int, pred: Callable[[Order], bool], status: OrdStatus, text: str) -> list[Event]:
        """Cancel every live order `pred` picks."""

    def _find(self, firm: str, cl_ord_id: str | None, order_id: int | None) -> tuple[Order | None, Refusal | None]:
        if cl_ord_id is not None:
            order = self.by_cl_ord_id.get(firm, cl_ord_id)
            if order is None:
                return None, (RejectReason.UNKNOWN_ORDER, f"unknown order: ClOrdID {cl_ord_id}")
            if order.view.cl_ord_id != cl_ord_id and order.status not in DONE:
                return order, (RejectReason.UNKNOWN_ORDER, f"ClOrdID {cl_ord_id} was replaced by {order.view.cl_ord_id}")
        elif order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.view.entry.firm != firm:
                return None, (RejectReason.UNKNOWN_ORDER, f"unknown order: OrderID {order_id}")
        else:
            return None, (RejectReason.MISSING_FIELD, "OrigClOrdID or OrderID required")
        if order.status in DONE:
            return order, (RejectReason.ORDER_DONE, f"order {order.order_id} is already {DONE_WORD[order.status]}")
        return order, None

    def _cancel_rejected(self, seq: int, ts: int, cmd: CancelOrder | ReplaceOrder, order: Order | None, refusal: Refusal) -> list[Event]:
        status = order.status if order is not None else S_REJECTED
        oid = order.order_id if order is not None else None
        return [make(CancelRejected, (seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.orig_cl_ord_id, oid, isinstance(cmd, ReplaceOrder), status, refusal[0], refusal[1]))]

    def _cancel_order(self, seq: int, ts: int, cmd: CancelOrder) -> list[Event]:
        order, refusal = self._find(cmd.firm, cmd.orig_cl_ord_id, cmd.order_id)
        if refusal is None and self.by_cl_ord_id.has(cmd.firm, cmd.cl_ord_id):
            refusal = RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        if refusal is not None:
            return self._cancel_rejected(seq, ts, cmd, order, refusal)
        assert order is not None
        book = self.books[order.view.entry.symbol]
        self._remove_live(book, order)
        self.by_cl_ord_id.put(cmd.firm, cmd.cl_ord_id, order)
        v = order.view
        view = make(OrderView, (v.order_id, cmd.cl_ord_id, v.cl_ord_id, v.qty, v.price, v.stop_px, v.ord_type, v.entry))
        events: list[Event] = []
        self._end(seq, ts, book, order, events, S_CANCELED, "", view)
        return events

    def _replace_order(self, seq: int, ts: int, cmd: ReplaceOrder) -> list[Event]:
        order, refusal = self._find(cmd.firm, cmd.orig_cl_ord_id, cmd.order_id)
        book = self.books[order.view.entry.symbol] if order is not None else None
        if refusal is None:
            assert order is not None and book is not None
            refusal = self._check_replace(ts, order, cmd, book)
        if refusal is not None:
            return self._cancel_rejected(seq, ts, cmd, order, refusal)
        assert order is not None and book is not None
        old = order.view
        parked = order.level is None  # a live order off the book is an untriggered stop
        keeps_place = not parked and cmd.price == order.price and cmd.qty <= old.qty
        if not keeps_place:
            self._remove_live(book, order)
        elif self.pre_trade is not None:
            self.pre_trade.gone(order)  # and live again below, on the new terms
        self.by_cl_ord_id.put(cmd.firm, cmd.cl_ord_id, order)
        view = make(OrderView, (order.order_id, cmd.cl_ord_id, old.cl_ord_id, cmd.qty, cmd.price, cmd.stop_px, old.ord_type, old.entry))
        order.view = view
        leaves = cmd.qty - order.cum
        events: list[Event] = []
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        status = S_PARTIALLY_FILLED if order.cum else S_NEW
        if parked:  # re-park on the new terms (the shown slice is set when it triggers and rests)
            order.price, order.leaves = cmd.price, leaves
            events.append(make(ExecReport, (seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, "")))
            self._park_stop(book, order)
            return events
        if keeps_place:
            level = order.level
            assert level is not None
            shown = leaves if order.display is None else min(order.visible, leaves)  # keep place, not a fresh slice
            level.qty += shown - order.visible
            order.visible, order.leaves = shown, leaves
            if self.pre_trade is not None:
                self.pre_trade.live(order)
            (book.dirty_bids if order.side is BUY else book.dirty_asks).add(level.price)
            events.append(make(ExecReport, (seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, "")))
            if self.reduce_only:
                self._trim_reduce_only(seq, ts, events)
            return events
        order.price, order.leaves = cmd.price, leaves  # _execute sets the shown slice if it rests
        events.append(make(ExecReport, (seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, "")))
        self._execute(seq, ts, book, order, events)
        self._after_trades(seq, ts, book, events)
        return events

    def _check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        if self.by_cl_ord_id.has(cmd.firm, cmd.cl_ord_id):
            return RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        if book.phase is not PH_OPEN and book.phase in ENTRY_REFUSED:
            reason, what = ENTRY_REFUSED[book.phase]
            return reason, f"{book.symbol} is {what}"
        view = order.view
        if cmd.qty <= 0:
            return RejectReason.INVALID_QTY, f"quantity {book.instrument.show_qty(cmd.qty)} must be positive"
        if cmd.qty <= order.cum:
            return RejectReason.QTY_BELOW_FILLED, f"new quantity {book.instrument.show_qty(cmd.qty)} is not above filled {book.instrument.show_qty(order.cum)}"
        if view.ord_type in LIMIT_TYPES and (cmd.price is None or cmd.price <= 0):
            return RejectReason.INVALID_PRICE, "limit price required, and positive"
        if view.ord_type not in LIMIT_TYPES and cmd.price is not None:
            return RejectReason.INVALID_PRICE, f"{view.ord_type.name} order takes no price"
        if view.ord_type in STOP_TYPES:
            if order.level is not None:
                if cmd.stop_px != view.stop_px:
                    return RejectReason.INVALID_ORDER, "a triggered stop's stop price cannot change"
            elif cmd.stop_px is None or cmd.stop_px <= 0:
                return RejectReason.INVALID_PRICE, "stop price required, and positive"
            elif cmd.stop_px <= book.last_px if order.side is BUY else cmd.stop_px >= book.last_px:
                return RejectReason.STOP_WOULD_TRIGGER, f"stop {book.instrument.show_price(cmd.stop_px)} would trigger at once (last {book.instrument.show_price(book.last_px)})"
        elif cmd.stop_px is not None:
            return RejectReason.INVALID_ORDER, f"{view.ord_type.name} order takes no stop price"
        if view.entry.post_only and cmd.price is not None and crosses(book, order.side, cmd.price):
            return RejectReason.POST_ONLY_WOULD_CROSS, f"post-only at {book.instrument.show_price(cmd.price)} would cross"
        if view.entry.reduce_only:  # as on entry: refuse rather than accept and cancel at once
            pos = self.positions.get((view.entry.account, book.symbol), 0)
            if cmd.qty - order.cum > abs(pos):
                return RejectReason.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only qty {book.instrument.show_qty(cmd.qty - order.cum)} > position {book.instrument.show_qty(abs(pos))}"
        if self.pre_trade is not None:
            return self.pre_trade.check_replace(ts, order, cmd, book)
        return None

    def _query_order(self, seq: int, ts: int, cmd: QueryOrder) -> list[Event]:
        order, refusal = self._find(cmd.firm, cmd.cl_ord_id, cmd.order_id)
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        if order is None or (refusal is not None and refusal[0] is not RejectReason.ORDER_DONE):
            placeholder = NewOrder(session=cmd.session, firm=cmd.firm, account="", cl_ord_id=cmd.cl_ord_id or "", symbol=cmd.symbol, side=cmd.side, ord_type=OT_LIMIT, qty=0)
            view = make(OrderView, (cmd.order_id or 0, cmd.cl_ord_id or "", None, 0, None, None, OT_LIMIT, placeholder))
            reason, text = refusal or (RejectReason.UNKNOWN_ORDER, "unknown order")
            return [make(ExecReport, (seq, ts, eid, X_ORDER_STATUS, S_REJECTED, view, 0, 0, 0, reason, text))]
        return [make(ExecReport, (seq, ts, eid, X_ORDER_STATUS, order.status, order.view, order.leaves, order.cum, order.cost, None, ""))]

    def _mass_cancel(self, seq: int, ts: int, cmd: MassCancel) -> list[Event]:
        if cmd.scope is MassCancelScope.INSTRUMENT and cmd.symbol not in self.books:
            return [make(MassCancelDone, (seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, 0, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}"))]
        if cmd.account is not None and self.accounts.get(cmd.account) != cmd.firm:
            if cmd.account not in self.accounts:
                reason, text = RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account}"
            else:
                reason, text = RejectReason.ACCOUNT_NOT_PERMITTED, f"account {cmd.account} does not belong to {cmd.firm}"
            return [make(MassCancelDone, (seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, 0, reason, text))]
        by_symbol = cmd.symbol if cmd.scope is MassCancelScope.INSTRUMENT else None

        def pred(o: Order) -> bool:
            e = o.view.entry
            return e.firm == cmd.firm and (by_symbol is None or e.symbol == by_symbol) and (cmd.account is None or e.account == cmd.account)

        events = self.cancel_where(seq, ts, pred, S_CANCELED, f"mass cancel {cmd.cl_ord_id}")
        events.append(make(MassCancelDone, (seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, len(events), None, "")))
        return events

    def _cancel_session(self, seq: int, ts: int, cmd: CancelSessionOrders) -> list[Event]:
        return self.cancel_where(seq, ts, lambda o: o.view.entry.session == cmd.session and o.view.entry.tif in cmd.tifs, S_CANCELED, "cancel on disconnect")

    def _reject_request(self, seq: int, ts: int, cmd: RejectRequest) -> list[Event]:
        entry = NewOrder(session=cmd.session, firm=cmd.firm, account=cmd.account, cl_ord_id=cmd.cl_ord_id, symbol=cmd.symbol, side=cmd.side, ord_type=OT_LIMIT, qty=0)
        return [self._rejected(seq, ts, entry, (cmd.reason, cmd.text))]
