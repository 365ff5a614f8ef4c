"""The matching engine: the venue's state, and the one function that changes it.

Rules this file keeps (h11's `_state.py` manner):

1. Everything that changes order or book state happens in `MatchingEngine.apply`, called
   only by the sequencer. It reads no clock and does no I/O: `seq` and `ts` arrive with the
   command, and OrderIDs, ExecIDs and TradeIDs come from counters in this state, so a
   replay of the journal reproduces every event exactly.
2. An illegal request yields a reject event and leaves the state identical. Checks return
   a (reason, text) pair or None and never raise; an exception here is a broken invariant.
3. Events are appended in the order a client must see them: an order's acceptance before
   its fills, the fills in price-time order, a remainder's cancel after its last fill,
   stops triggered by a trade after that trade.

Order handling:
- Limit, market, stop and stop-limit (stops trigger on the last trade price: a buy stop at
  last >= stop, a sell stop at last <= stop; a stop that would trigger at once is refused).
- DAY (expires at EndOfDay or when the instrument closes), GTC, GTD (ExpireOrders),
  IOC and FOK (FOK checks fillable quantity first, counting what self-trade prevention
  would remove). A market order never rests: what the book cannot fill is canceled.
- Post-only is refused, not repriced, if it would cross. Reduce-only is refused unless it
  reduces the position by at most its size, and a resting one is canceled once fills
  elsewhere would make it increase the position.
- Replace: a quantity decrease at the same price keeps priority; a price change or a
  quantity increase loses it (and may trade at once); a new quantity at or below the
  filled quantity, or a done order, is refused.
- Self-trade prevention on account or firm (StpScope), mode carried by the aggressor.
- Phases: PRE_OPEN collects limit orders without matching (market, IOC and FOK refused);
  the move to OPEN uncrosses the book at the single price that maximises volume; HALTED
  and CLOSED refuse entries and replaces but accept cancels; CLOSED expires DAY orders;
  EXPIRED cancels everything.

Known limitations: ClOrdIDs are remembered for the life of the process (a day's worth is
small); done orders stay in `by_cl_ord_id` so status requests can answer them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from venue.book import Book, Order
from venue.commands import (
    CancelOrder,
    CancelSessionOrders,
    Command,
    EndOfDay,
    ExpireOrders,
    MassCancel,
    NewOrder,
    QueryOrder,
    RejectRequest,
    ReplaceOrder,
    SetPhase,
)
from venue.events import (
    BookDelta,
    CancelRejected,
    CommandRejected,
    Event,
    ExecReport,
    Fill,
    MassCancelDone,
    OrderView,
    PhaseChanged,
)
from venue.instruments import Instrument
from venue.rejects import RejectReason
from venue.types import (
    ExecType,
    MassCancelScope,
    OrdStatus,
    OrdType,
    Side,
    StpMode,
    StpScope,
    TimeInForce,
    TradingPhase,
)

# Enum members as module constants: in Python 3.11 `Enum.MEMBER` costs ~50 ns a lookup
# and a module global ~10 ns, and the hot path makes dozens of them per order.
_BUY = Side.BUY
OT_LIMIT = OrdType.LIMIT
OT_MARKET = OrdType.MARKET
OT_STOP = OrdType.STOP
OT_STOP_LIMIT = OrdType.STOP_LIMIT
PH_CLOSED = TradingPhase.CLOSED
PH_EXPIRED = TradingPhase.EXPIRED
PH_HALTED = TradingPhase.HALTED
PH_OPEN = TradingPhase.OPEN
PH_PRE_OPEN = TradingPhase.PRE_OPEN
STP_CANCEL_AGGRESSING = StpMode.CANCEL_AGGRESSING
STP_CANCEL_RESTING = StpMode.CANCEL_RESTING
S_CANCELED = OrdStatus.CANCELED
S_EXPIRED = OrdStatus.EXPIRED
S_FILLED = OrdStatus.FILLED
S_NEW = OrdStatus.NEW
S_PARTIALLY_FILLED = OrdStatus.PARTIALLY_FILLED
S_REJECTED = OrdStatus.REJECTED
TIF_DAY = TimeInForce.DAY
TIF_FOK = TimeInForce.FOK
TIF_GTC = TimeInForce.GTC
TIF_GTD = TimeInForce.GTD
TIF_IOC = TimeInForce.IOC
X_CANCELED = ExecType.CANCELED
X_EXPIRED = ExecType.EXPIRED
X_NEW = ExecType.NEW
X_ORDER_STATUS = ExecType.ORDER_STATUS
X_REJECTED = ExecType.REJECTED
X_REPLACED = ExecType.REPLACED
X_TRIGGERED = ExecType.TRIGGERED
_SELL = Side.SELL

Refusal = tuple[RejectReason, str]

_LIMIT_TYPES = (OT_LIMIT, OT_STOP_LIMIT)
_STOP_TYPES = (OT_STOP, OT_STOP_LIMIT)
_RESTING_TIFS = (TIF_DAY, TIF_GTC, TIF_GTD)
_DONE = (S_FILLED, S_CANCELED, S_EXPIRED, S_REJECTED)
_DONE_WORD = {S_FILLED: "filled", S_CANCELED: "canceled", S_EXPIRED: "expired", S_REJECTED: "rejected"}
_ENTRY_REFUSED = {
    PH_HALTED: (RejectReason.PHASE_HALTED, "halted"),
    PH_CLOSED: (RejectReason.PHASE_CLOSED, "closed"),
    PH_EXPIRED: (RejectReason.PHASE_CLOSED, "expired"),
}
_PHASE_MOVES = {
    PH_PRE_OPEN: {PH_OPEN, PH_HALTED, PH_CLOSED, PH_EXPIRED},
    PH_OPEN: {PH_HALTED, PH_CLOSED, PH_PRE_OPEN, PH_EXPIRED},
    PH_HALTED: {PH_OPEN, PH_PRE_OPEN, PH_CLOSED, PH_EXPIRED},
    PH_CLOSED: {PH_PRE_OPEN, PH_OPEN, PH_EXPIRED},
    PH_EXPIRED: set(),
}


class PreTradeCheck(Protocol):
    """Pre-trade risk (venue/risk.py): asked before an order or a replace can add exposure,
    after the request itself has been validated. Returns a refusal or None; never raises.

    check_new and check_replace are the last gate: once one returns None the engine accepts
    the order or applies the replace without refusing it for any other reason, so a risk
    state that follows NEW and REPLACED events needs no per-order bookkeeping of its own."""

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None: ...

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None: ...

    def market_collar(self, side: Side, book: Book) -> int | None:
        """The worst price a market order (or triggered stop) may fill at; None: no limit."""


class MatchingEngine:
    def __init__(
        self,
        instruments: Iterable[Instrument],
        accounts: Mapping[str, str],
        *,
        stp_scope: StpScope = StpScope.ACCOUNT,
        phase: TradingPhase = PH_OPEN,
        pre_trade: PreTradeCheck | None = None,
    ) -> None:
        self.books: dict[str, Book] = {i.symbol: Book(i, phase) for i in instruments}
        self.accounts: dict[str, str] = dict(accounts)  # account -> owning firm
        self.stp_scope = stp_scope
        self.pre_trade = pre_trade
        self.orders: dict[int, Order] = {}  # live: resting or parked stops
        self.by_cl_ord_id: dict[tuple[str, str], Order] = {}  # (firm, ClOrdID) -> order, done ones too
        self.positions: dict[tuple[str, str], int] = {}  # (account, symbol) -> signed lots
        self.reduce_only: dict[tuple[str, str], dict[int, Order]] = {}
        self.gtd: list[tuple[int, int]] = []  # heap of (expire_time, order_id); stale entries skipped
        self.next_order_id = 1
        self.next_exec_id = 1
        self.next_trade_id = 1
        self._dispatch: dict[type, Callable[[int, int, Command], list[Event]]] = {
            NewOrder: self._new_order,  # type: ignore[dict-item]
            CancelOrder: self._cancel_order,  # type: ignore[dict-item]
            ReplaceOrder: self._replace_order,  # type: ignore[dict-item]
            QueryOrder: self._query_order,  # type: ignore[dict-item]
            MassCancel: self._mass_cancel,  # type: ignore[dict-item]
            CancelSessionOrders: self._cancel_session,  # type: ignore[dict-item]
            RejectRequest: self._reject_request,  # type: ignore[dict-item]
            SetPhase: self._set_phase,  # type: ignore[dict-item]
            ExpireOrders: self._expire_orders,  # type: ignore[dict-item]
            EndOfDay: self._end_of_day,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ entry points

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        """Apply one sequenced command; return what happened, in order."""
        return self._dispatch[type(cmd)](seq, ts, cmd)

    def next_expiry(self) -> int | None:
        """When the next GTD order falls due (µs), so the sequencer can schedule ExpireOrders."""
        gtd, orders = self.gtd, self.orders
        while gtd and gtd[0][1] not in orders:
            heapq.heappop(gtd)
        return gtd[0][0] if gtd else None

    def drain_book_deltas(self, seq: int, ts: int) -> list[BookDelta]:
        """The displayed quantity of every level changed since the last drain."""
        out: list[BookDelta] = []
        for book in self.books.values():
            for side, dirty, levels in ((_BUY, book.dirty_bids, book.bids), (_SELL, book.dirty_asks, book.asks)):
                if dirty:
                    for price in sorted(dirty):
                        level = levels.get(price)
                        out.append(BookDelta(seq, ts, book.symbol, side, price, level.qty if level is not None else 0))
                    dirty.clear()
        return out

    def validate(self) -> None:
        """Check every invariant of the whole state (tests call it after each command)."""
        resting = 0
        for book in self.books.values():
            book.validate()
            for side in (_BUY, _SELL):
                for level in book.levels(side):
                    for o in level.orders():
                        resting += 1
                        assert self.orders.get(o.order_id) is o, f"resting order {o.order_id} not live"
            parked = [k[1] for k in book.buy_stops] + [k[1] for k in book.sell_stops]
            for oid in parked:
                assert oid in self.orders and self.orders[oid].level is None, f"stop {oid} not parked right"
            resting += len(parked)
        assert resting == len(self.orders), f"{len(self.orders)} live orders, {resting} on books"
        for o in self.orders.values():
            assert o.status not in _DONE, f"done order {o.order_id} still live"
            assert o.cum + o.leaves == o.view.qty, f"order {o.order_id}: cum {o.cum} + leaves {o.leaves} != qty {o.view.qty}"
        for symbol, total in _sum_by_symbol(self.positions).items():
            assert total == 0, f"positions in {symbol} net to {total}, not 0"

    # ------------------------------------------------------------------ new orders

    def _new_order(self, seq: int, ts: int, cmd: NewOrder) -> list[Event]:
        book = self.books.get(cmd.symbol)
        refusal = self._check_new(ts, cmd, book)
        if refusal is None and self.pre_trade is not None:
            refusal = self.pre_trade.check_new(ts, cmd, book)  # type: ignore[arg-type]
        if refusal is not None:
            return [self._rejected(seq, ts, cmd, refusal)]
        assert book is not None
        oid = self.next_order_id
        self.next_order_id = oid + 1
        view = OrderView(oid, cmd.cl_ord_id, None, cmd.qty, cmd.price, cmd.stop_px, cmd.ord_type, cmd)
        order = Order(view, cmd.side, cmd.price, cmd.qty, cmd.display_qty, cmd.account if self.stp_scope is StpScope.ACCOUNT else cmd.firm)
        self.by_cl_ord_id[(cmd.firm, cmd.cl_ord_id)] = order
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        events: list[Event] = [ExecReport(seq, ts, eid, X_NEW, S_NEW, view, cmd.qty, 0, 0, None, "")]
        if cmd.stop_px is not None:
            self._park_stop(book, order)
            return events
        self._execute(seq, ts, book, order, events)
        if len(events) > 1:
            self._after_trades(seq, ts, book, events)
        return events

    def _check_new(self, ts: int, cmd: NewOrder, book: Book | None) -> Refusal | None:
        if book is None:
            return RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}"
        if (cmd.firm, cmd.cl_ord_id) in self.by_cl_ord_id:
            return RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        owner = self.accounts.get(cmd.account)
        if owner != cmd.firm:
            if owner is None:
                return RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account}"
            return RejectReason.ACCOUNT_NOT_PERMITTED, f"account {cmd.account} does not belong to {cmd.firm}"
        if book.phase is not PH_OPEN and book.phase in _ENTRY_REFUSED:
            reason, what = _ENTRY_REFUSED[book.phase]
            return reason, f"{cmd.symbol} is {what}"
        refusal = _check_terms(ts, cmd)
        if refusal is not None:
            return refusal
        if book.phase is PH_PRE_OPEN and (cmd.ord_type is OT_MARKET or cmd.tif not in _RESTING_TIFS):
            return RejectReason.NOT_IN_PRE_OPEN, f"{cmd.symbol} is in pre-open: only resting limit and stop orders"
        if cmd.stop_px is not None:
            if cmd.stop_px <= book.last_px if cmd.side is _BUY else cmd.stop_px >= book.last_px:
                return RejectReason.STOP_WOULD_TRIGGER, f"stop {book.instrument.show_price(cmd.stop_px)} would trigger at once (last {book.instrument.show_price(book.last_px)})"
        elif cmd.post_only and _crosses(book, cmd.side, cmd.price):
            return RejectReason.POST_ONLY_WOULD_CROSS, f"post-only at {book.instrument.show_price(cmd.price)} would cross"  # type: ignore[arg-type]
        if cmd.reduce_only:
            pos = self.positions.get((cmd.account, cmd.symbol), 0)
            if pos * cmd.side.sign >= 0:
                return RejectReason.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only {cmd.side.name.lower()} cannot reduce position {book.instrument.show_qty(pos)}"
            if cmd.qty > abs(pos):
                return RejectReason.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only qty {book.instrument.show_qty(cmd.qty)} > position {book.instrument.show_qty(abs(pos))}"
        return None

    def _rejected(self, seq: int, ts: int, cmd: NewOrder, refusal: Refusal) -> ExecReport:
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        view = OrderView(0, cmd.cl_ord_id, None, cmd.qty, cmd.price, cmd.stop_px, cmd.ord_type, cmd)
        return ExecReport(seq, ts, eid, X_REJECTED, S_REJECTED, view, 0, 0, 0, refusal[0], refusal[1])

    def _execute(self, seq: int, ts: int, book: Book, order: Order, events: list[Event]) -> None:
        """Trade an accepted (or just triggered, or re-priced) order, then rest or end it."""
        tif = order.view.entry.tif
        market = order.view.price is None  # market, or a triggered stop: never rests
        if market and self.pre_trade is not None:
            order.price = self.pre_trade.market_collar(order.side, book)
        if book.phase is PH_OPEN:
            if tif is TIF_FOK and self._fillable(book, order) < order.leaves:
                self._end(seq, ts, book, order, events, S_CANCELED, "FOK: not fully fillable")
                return
            price = order.price
            if order.side is _BUY:
                crosses = book.best_ask is not None and (price is None or price >= book.best_ask)
            else:
                crosses = book.best_bid is not None and (price is None or price <= book.best_bid)
            if crosses:
                self._match(seq, ts, book, order, events)
                if order.status is S_CANCELED or order.leaves == 0:
                    return
        if market or tif is TIF_IOC or tif is TIF_FOK:
            what = "market order" if market else tif.name
            self._end(seq, ts, book, order, events, S_CANCELED, f"{what}: unfilled quantity canceled")
            return
        display = order.display
        order.visible = order.leaves if display is None or display > order.leaves else display
        book.add(order)
        self.orders[order.order_id] = order
        entry = order.view.entry
        if tif is TIF_GTD:
            assert entry.expire_time is not None
            heapq.heappush(self.gtd, (entry.expire_time, order.order_id))
        if entry.reduce_only:
            self.reduce_only.setdefault((entry.account, entry.symbol), {})[order.order_id] = order

    def _match(self, seq: int, ts: int, book: Book, taker: Order, events: list[Event]) -> None:
        """Sweep the opposite side while it crosses the taker's limit (or any price, for a
        market order). Each fill is one event carrying both orders' state."""
        buy = taker.side is _BUY
        limit = taker.price
        levels = book.asks if buy else book.bids
        dirty = book.dirty_asks if buy else book.dirty_bids
        stp_key = taker.stp_key
        symbol = book.symbol
        positions = self.positions
        taker_view = taker.view
        taker_side = taker.side
        taker_account = taker_view.entry.account
        reduce_only = self.reduce_only  # non-empty only while reduce-only orders live
        while taker.leaves:
            best = book.best_ask if buy else book.best_bid
            if best is None or (limit is not None and (best > limit if buy else best < limit)):
                break
            level = levels[best]
            maker = level.head
            assert maker is not None
            if maker.stp_key == stp_key:
                mode = taker_view.entry.stp
                if mode is not STP_CANCEL_AGGRESSING:
                    self._remove_live(book, maker)
                    self._end(seq, ts, book, maker, events, S_CANCELED, "self-trade prevention: resting order canceled")
                if mode is not STP_CANCEL_RESTING:
                    self._end(seq, ts, book, taker, events, S_CANCELED, "self-trade prevention: aggressing order canceled")
                    return
                continue
            qty = taker.leaves if taker.leaves < maker.visible else maker.visible
            if reduce_only and maker.view.entry.reduce_only:
                room = self._ro_room(maker, symbol)
                assert room is not None
                if room == 0:  # earlier fills of this sweep flattened its account
                    self._remove_live(book, maker)
                    self._end(seq, ts, book, maker, events, S_CANCELED, f"reduce-only: position now {book.instrument.show_qty(positions.get((maker.view.entry.account, symbol), 0))}")
                    continue
                if qty > room:
                    qty = room
            maker.visible -= qty
            maker.leaves -= qty
            maker.cum += qty
            maker.cost += best * qty
            level.qty -= qty
            taker.leaves -= qty
            taker.cum += qty
            taker.cost += best * qty
            dirty.add(best)
            if maker.visible == 0:
                if maker.leaves == 0:
                    maker.status = S_FILLED
                    book.remove(maker)
                    del self.orders[maker.order_id]
                else:
                    maker.status = S_PARTIALLY_FILLED
                    book.remove(maker)
                    shown = maker.display
                    assert shown is not None  # only an iceberg shows less than it leaves
                    maker.visible = shown if shown < maker.leaves else maker.leaves
                    book.add(maker)
            else:
                maker.status = S_PARTIALLY_FILLED
            tid = self.next_trade_id
            self.next_trade_id = tid + 1
            eid = self.next_exec_id
            self.next_exec_id = eid + 2
            events.append(
                Fill(seq, ts, tid, symbol, best, qty, taker_side, taker_view, eid, taker.leaves, taker.cum, taker.cost,
                     maker.view, eid + 1, maker.leaves, maker.cum, maker.cost)
            )
            key = (taker_account, symbol)
            positions[key] = positions.get(key, 0) + (qty if buy else -qty)
            key = (maker.view.entry.account, symbol)
            positions[key] = positions.get(key, 0) + (-qty if buy else qty)
            book.last_px = best
        taker.status = S_FILLED if taker.leaves == 0 else S_PARTIALLY_FILLED if taker.cum else S_NEW

    def _fillable(self, book: Book, taker: Order) -> int:
        """What the book would fill of the taker now, counting self-trade prevention."""
        buy = taker.side is _BUY
        limit, need, got = taker.price, taker.leaves, 0
        mode = taker.view.entry.stp
        took: dict[str, int] = {}  # per maker account: what this sweep would take from it
        for price in (book.ask_prices if buy else reversed(book.bid_prices)):
            if limit is not None and (price > limit if buy else price < limit):
                break
            o = (book.asks if buy else book.bids)[price].head
            hidden = 0  # iceberg reserve on this level: it replenishes behind any own order here
            while o is not None:
                if o.stp_key == taker.stp_key:
                    if mode is not STP_CANCEL_RESTING:
                        return got - hidden
                else:
                    take, account = o.leaves, o.view.entry.account
                    if o.view.entry.reduce_only:  # only down to flat, after what the sweep took before it
                        room = self._ro_room(o, book.symbol)
                        assert room is not None
                        take = max(0, min(take, room - took.get(account, 0)))
                    took[account] = took.get(account, 0) + take
                    got += take
                    hidden += take - o.visible if take > o.visible else 0
                    if got - hidden >= need:
                        return got
                o = o.next
        return got

    def _after_trades(self, seq: int, ts: int, book: Book, events: list[Event]) -> None:
        """Trigger stops the last trade price has reached (which may trade and trigger
        more), then cancel resting reduce-only orders that fills made position-increasing."""
        while book.phase is PH_OPEN:
            if self.reduce_only:  # before a stop triggers: a reduce-only stop may no longer reduce
                self._trim_reduce_only(seq, ts, events)
            last = book.last_px
            if book.buy_stops and book.buy_stops[0][0] <= last:
                oid = book.buy_stops.pop(0)[1]
            elif book.sell_stops and -book.sell_stops[0][0] >= last:
                oid = book.sell_stops.pop(0)[1]
            else:
                break
            order = self.orders[oid]
            self._remove_live(book, order)  # out of the live and reduce-only indexes while it trades
            eid = self.next_exec_id
            self.next_exec_id = eid + 1
            events.append(ExecReport(seq, ts, eid, X_TRIGGERED, order.status, order.view, order.leaves, order.cum, order.cost, None, f"stop triggered at {book.instrument.show_price(last)}"))
            self._execute(seq, ts, book, order, events)
        if self.reduce_only:
            self._trim_reduce_only(seq, ts, events)

    def _trim_reduce_only(self, seq: int, ts: int, events: list[Event]) -> None:
        for key, orders in list(self.reduce_only.items()):
            pos = self.positions.get(key, 0)
            for order in list(orders.values()):
                if order.status is S_FILLED:  # filled as a maker: already off the book, only unindex it
                    self._remove_live(self.books[key[1]], order)
                elif pos * order.side.sign >= 0 or order.leaves > abs(pos):
                    book = self.books[key[1]]
                    self._remove_live(book, order)
                    self._end(seq, ts, book, order, events, S_CANCELED, f"reduce-only: position now {book.instrument.show_qty(pos)}")

    def _ro_room(self, order: Order, symbol: str) -> int | None:
        """How much more a reduce-only order may fill before its account is flat (None: not
        reduce-only). Checked at each fill: one sweep may hit several of the account's orders."""
        entry = order.view.entry
        if not entry.reduce_only:
            return None
        room = -order.side.sign * self.positions.get((entry.account, symbol), 0)
        return room if room > 0 else 0

    def _park_stop(self, book: Book, order: Order) -> None:
        stop = order.view.stop_px
        assert stop is not None
        if order.side is _BUY:
            book.buy_stops.add((stop, order.order_id))
        else:
            book.sell_stops.add((-stop, order.order_id))
        self.orders[order.order_id] = order
        entry = order.view.entry
        if entry.tif is TIF_GTD:
            assert entry.expire_time is not None
            heapq.heappush(self.gtd, (entry.expire_time, order.order_id))
        if entry.reduce_only:
            self.reduce_only.setdefault((entry.account, entry.symbol), {})[order.order_id] = order

    # ------------------------------------------------------------------ ending orders

    def _remove_live(self, book: Book, order: Order) -> None:
        """Take a live order off its book (or out of the stops) and out of the indexes."""
        if order.level is not None:
            book.remove(order)
        elif order.view.stop_px is not None and order.order_id in self.orders:
            stop = order.view.stop_px
            if order.side is _BUY:
                book.buy_stops.discard((stop, order.order_id))
            else:
                book.sell_stops.discard((-stop, order.order_id))
        self.orders.pop(order.order_id, None)
        entry = order.view.entry
        if entry.reduce_only:
            ro = self.reduce_only.get((entry.account, entry.symbol))
            if ro is not None:
                ro.pop(order.order_id, None)
                if not ro:
                    del self.reduce_only[(entry.account, entry.symbol)]

    def _end(self, seq: int, ts: int, book: Book, order: Order, events: list[Event], status: OrdStatus, text: str, view: OrderView | None = None) -> None:
        """Report an order's end (canceled or expired); the caller has taken it off the book."""
        order.status = status
        if view is not None:
            order.view = view
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        exec_type = X_EXPIRED if status is S_EXPIRED else X_CANCELED
        events.append(ExecReport(seq, ts, eid, exec_type, status, order.view, 0, order.cum, order.cost, None, text))
        order.leaves = 0

    def cancel_where(self, seq: int, ts: int, pred: Callable[[Order], bool], status: OrdStatus, text: str) -> list[Event]:
        events: list[Event] = []
        for order in [o for o in self.orders.values() if pred(o)]:
            book = self.books[order.view.entry.symbol]
            self._remove_live(book, order)
            self._end(seq, ts, book, order, events, status, text)
        return events

    # ------------------------------------------------------------------ cancel, replace, status

    def _find(self, firm: str, cl_ord_id: str | None, order_id: int | None) -> tuple[Order | None, Refusal | None]:
        if cl_ord_id is not None:
            order = self.by_cl_ord_id.get((firm, cl_ord_id))
            if order is None:
                return None, (RejectReason.UNKNOWN_ORDER, f"unknown order: ClOrdID {cl_ord_id}")
            if order.view.cl_ord_id != cl_ord_id and order.status not in _DONE:
                return order, (RejectReason.UNKNOWN_ORDER, f"ClOrdID {cl_ord_id} was replaced by {order.view.cl_ord_id}")
        elif order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.view.entry.firm != firm:
                return None, (RejectReason.UNKNOWN_ORDER, f"unknown order: OrderID {order_id}")
        else:
            return None, (RejectReason.MISSING_FIELD, "OrigClOrdID or OrderID required")
        if order.status in _DONE:
            return order, (RejectReason.ORDER_DONE, f"order {order.order_id} is already {_DONE_WORD[order.status]}")
        return order, None

    def _cancel_rejected(self, seq: int, ts: int, cmd: CancelOrder | ReplaceOrder, order: Order | None, refusal: Refusal) -> list[Event]:
        status = order.status if order is not None else S_REJECTED
        oid = order.order_id if order is not None else None
        return [CancelRejected(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.orig_cl_ord_id, oid, isinstance(cmd, ReplaceOrder), status, refusal[0], refusal[1])]

    def _cancel_order(self, seq: int, ts: int, cmd: CancelOrder) -> list[Event]:
        order, refusal = self._find(cmd.firm, cmd.orig_cl_ord_id, cmd.order_id)
        if refusal is None and (cmd.firm, cmd.cl_ord_id) in self.by_cl_ord_id:
            refusal = RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        if refusal is not None:
            return self._cancel_rejected(seq, ts, cmd, order, refusal)
        assert order is not None
        book = self.books[order.view.entry.symbol]
        self._remove_live(book, order)
        self.by_cl_ord_id[(cmd.firm, cmd.cl_ord_id)] = order
        v = order.view
        view = OrderView(v.order_id, cmd.cl_ord_id, v.cl_ord_id, v.qty, v.price, v.stop_px, v.ord_type, v.entry)
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
        self.by_cl_ord_id[(cmd.firm, cmd.cl_ord_id)] = order
        view = OrderView(order.order_id, cmd.cl_ord_id, old.cl_ord_id, cmd.qty, cmd.price, cmd.stop_px, old.ord_type, old.entry)
        order.view = view
        leaves = cmd.qty - order.cum
        events: list[Event] = []
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        status = S_PARTIALLY_FILLED if order.cum else S_NEW
        if parked:  # re-park on the new terms
            order.price, order.leaves = cmd.price, leaves
            order.visible = leaves if order.display is None else min(order.display, leaves)
            events.append(ExecReport(seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, ""))
            self._park_stop(book, order)
            if order.view.entry.reduce_only:
                self.reduce_only.setdefault((old.entry.account, old.entry.symbol), {})[order.order_id] = order
            return events
        if keeps_place:
            level = order.level
            assert level is not None
            shown = leaves if order.display is None else min(order.visible, leaves)  # keep place, not a fresh slice
            level.qty += shown - order.visible
            order.visible, order.leaves = shown, leaves
            (book.dirty_bids if order.side is _BUY else book.dirty_asks).add(level.price)
            events.append(ExecReport(seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, ""))
            if self.reduce_only:
                self._trim_reduce_only(seq, ts, events)
            return events
        order.price, order.leaves = cmd.price, leaves
        order.visible = leaves if order.display is None else min(order.display, leaves)
        events.append(ExecReport(seq, ts, eid, X_REPLACED, status, view, leaves, order.cum, order.cost, None, ""))
        self._execute(seq, ts, book, order, events)
        self._after_trades(seq, ts, book, events)
        return events

    def _check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        if (cmd.firm, cmd.cl_ord_id) in self.by_cl_ord_id:
            return RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        if book.phase is not PH_OPEN and book.phase in _ENTRY_REFUSED:
            reason, what = _ENTRY_REFUSED[book.phase]
            return reason, f"{book.symbol} is {what}"
        view = order.view
        if cmd.qty <= 0:
            return RejectReason.INVALID_QTY, f"quantity {book.instrument.show_qty(cmd.qty)} must be positive"
        if cmd.qty <= order.cum:
            return RejectReason.QTY_BELOW_FILLED, f"new quantity {book.instrument.show_qty(cmd.qty)} is not above filled {book.instrument.show_qty(order.cum)}"
        if view.ord_type in _LIMIT_TYPES and (cmd.price is None or cmd.price <= 0):
            return RejectReason.INVALID_PRICE, "limit price required, and positive"
        if view.ord_type not in _LIMIT_TYPES and cmd.price is not None:
            return RejectReason.INVALID_PRICE, f"{view.ord_type.name} order takes no price"
        if view.ord_type in _STOP_TYPES:
            if order.level is not None:
                if cmd.stop_px != view.stop_px:
                    return RejectReason.INVALID_ORDER, "a triggered stop's stop price cannot change"
            elif cmd.stop_px is None or cmd.stop_px <= 0:
                return RejectReason.INVALID_PRICE, "stop price required, and positive"
            elif cmd.stop_px <= book.last_px if order.side is _BUY else cmd.stop_px >= book.last_px:
                return RejectReason.STOP_WOULD_TRIGGER, f"stop {book.instrument.show_price(cmd.stop_px)} would trigger at once (last {book.instrument.show_price(book.last_px)})"
        elif cmd.stop_px is not None:
            return RejectReason.INVALID_ORDER, f"{view.ord_type.name} order takes no stop price"
        if view.entry.post_only and cmd.price is not None and _crosses(book, order.side, cmd.price):
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
            view = OrderView(cmd.order_id or 0, cmd.cl_ord_id or "", None, 0, None, None, OT_LIMIT, placeholder)
            reason, text = refusal or (RejectReason.UNKNOWN_ORDER, "unknown order")
            return [ExecReport(seq, ts, eid, X_ORDER_STATUS, S_REJECTED, view, 0, 0, 0, reason, text)]
        return [ExecReport(seq, ts, eid, X_ORDER_STATUS, order.status, order.view, order.leaves, order.cum, order.cost, None, "")]

    def _mass_cancel(self, seq: int, ts: int, cmd: MassCancel) -> list[Event]:
        if cmd.scope is MassCancelScope.INSTRUMENT and cmd.symbol not in self.books:
            return [MassCancelDone(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, 0, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}")]
        if cmd.account is not None and self.accounts.get(cmd.account) != cmd.firm:
            if cmd.account not in self.accounts:
                reason, text = RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account}"
            else:
                reason, text = RejectReason.ACCOUNT_NOT_PERMITTED, f"account {cmd.account} does not belong to {cmd.firm}"
            return [MassCancelDone(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, 0, reason, text)]
        by_symbol = cmd.symbol if cmd.scope is MassCancelScope.INSTRUMENT else None

        def pred(o: Order) -> bool:
            e = o.view.entry
            return e.firm == cmd.firm and (by_symbol is None or e.symbol == by_symbol) and (cmd.account is None or e.account == cmd.account)

        events = self.cancel_where(seq, ts, pred, S_CANCELED, f"mass cancel {cmd.cl_ord_id}")
        events.append(MassCancelDone(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, len(events), None, ""))
        return events

    def _cancel_session(self, seq: int, ts: int, cmd: CancelSessionOrders) -> list[Event]:
        return self.cancel_where(seq, ts, lambda o: o.view.entry.session == cmd.session and o.view.entry.tif in cmd.tifs, S_CANCELED, "cancel on disconnect")

    def _reject_request(self, seq: int, ts: int, cmd: RejectRequest) -> list[Event]:
        entry = NewOrder(session=cmd.session, firm=cmd.firm, account=cmd.account, cl_ord_id=cmd.cl_ord_id, symbol=cmd.symbol, side=cmd.side, ord_type=OT_LIMIT, qty=0)
        return [self._rejected(seq, ts, entry, (cmd.reason, cmd.text))]

    # ------------------------------------------------------------------ phases and time

    def _set_phase(self, seq: int, ts: int, cmd: SetPhase) -> list[Event]:
        book = self.books.get(cmd.symbol)
        if book is None:
            return [CommandRejected(seq, ts, repr(cmd), RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}")]
        if cmd.phase not in _PHASE_MOVES[book.phase]:
            return [CommandRejected(seq, ts, repr(cmd), RejectReason.INVALID_ORDER, f"{cmd.symbol} cannot go from {book.phase.name} to {cmd.phase.name}")]
        book.phase = cmd.phase
        events: list[Event] = [PhaseChanged(seq, ts, cmd.symbol, cmd.phase)]
        if cmd.phase is PH_OPEN:
            self._uncross(seq, ts, book, events)
            self._after_trades(seq, ts, book, events)
        elif cmd.phase is PH_CLOSED:
            events += self.cancel_where(seq, ts, lambda o: o.view.entry.symbol == cmd.symbol and o.view.entry.tif is TIF_DAY, S_EXPIRED, "DAY order expired: instrument closed")
        elif cmd.phase is PH_EXPIRED:
            events += self.cancel_where(seq, ts, lambda o: o.view.entry.symbol == cmd.symbol, S_CANCELED, "instrument expired")
        return events

    def _uncross(self, seq: int, ts: int, book: Book, events: list[Event]) -> None:
        """Open a crossed book at one price: the price that trades the most; then the least
        imbalance; then the nearest the last price. Within it, price-time priority; the
        later order of each pair is the taker, and its STP mode settles a self-match."""
        price = _equilibrium(book)
        if price is None:
            return
        while book.best_bid is not None and book.best_ask is not None and book.best_bid >= price >= book.best_ask:
            bid, ask = book.bids[book.best_bid].head, book.asks[book.best_ask].head
            assert bid is not None and ask is not None
            taker, maker = (bid, ask) if bid.order_id > ask.order_id else (ask, bid)
            if bid.stp_key == ask.stp_key:
                mode = taker.view.entry.stp
                for o, cancel in ((maker, mode is not STP_CANCEL_AGGRESSING), (taker, mode is not STP_CANCEL_RESTING)):
                    if cancel:
                        self._remove_live(book, o)
                        self._end(seq, ts, book, o, events, S_CANCELED, "self-trade prevention at the opening auction")
                price = _equilibrium(book)  # the canceled order's volume is gone: re-price what still crosses
                if price is None:
                    return
                continue
            flat = [o for o in (bid, ask) if self._ro_room(o, book.symbol) == 0]
            if flat:  # reduce-only orders whose accounts earlier auction fills flattened
                for o in flat:
                    self._remove_live(book, o)
                    self._end(seq, ts, book, o, events, S_CANCELED, f"reduce-only: position now {book.instrument.show_qty(self.positions.get((o.view.entry.account, book.symbol), 0))}")
                price = _equilibrium(book)
                if price is None:
                    return
                continue
            self._cross(seq, ts, book, taker, maker, price, events)

    def _cross(self, seq: int, ts: int, book: Book, taker: Order, maker: Order, price: int, events: list[Event]) -> None:
        """One auction fill between the heads of the best bid and best ask, at the auction
        price. An order keeps its place unless its shown slice is used up."""
        qty = min(taker.visible, maker.visible)
        for o in (taker, maker):
            room = self._ro_room(o, book.symbol)
            if room is not None and room < qty:  # a reduce-only order fills only down to flat
                qty = room
        for o in (taker, maker):
            o.leaves -= qty
            o.cum += qty
            o.cost += price * qty
            o.visible -= qty
            level = o.level
            assert level is not None
            level.qty -= qty
            (book.dirty_bids if o.side is _BUY else book.dirty_asks).add(level.price)
            if o.leaves == 0:
                o.status = S_FILLED
                book.remove(o)
                del self.orders[o.order_id]
            else:
                o.status = S_PARTIALLY_FILLED
                if o.visible == 0:
                    shown = o.display
                    assert shown is not None  # only an iceberg shows less than it leaves
                    book.remove(o)
                    o.visible = shown if shown < o.leaves else o.leaves
                    book.add(o)
            key = (o.view.entry.account, book.symbol)
            self.positions[key] = self.positions.get(key, 0) + o.side.sign * qty
        tid = self.next_trade_id
        self.next_trade_id = tid + 1
        eid = self.next_exec_id
        self.next_exec_id = eid + 2
        events.append(Fill(seq, ts, tid, book.symbol, price, qty, taker.side, taker.view, eid, taker.leaves, taker.cum, taker.cost,
                           maker.view, eid + 1, maker.leaves, maker.cum, maker.cost))
        book.last_px = price

    def _expire_orders(self, seq: int, ts: int, cmd: ExpireOrders) -> list[Event]:
        events: list[Event] = []
        gtd = self.gtd
        while gtd and gtd[0][0] <= ts:
            _, oid = heapq.heappop(gtd)
            order = self.orders.get(oid)
            if order is not None:
                book = self.books[order.view.entry.symbol]
                self._remove_live(book, order)
                self._end(seq, ts, book, order, events, S_EXPIRED, "GTD order expired")
        return events

    def _end_of_day(self, seq: int, ts: int, cmd: EndOfDay) -> list[Event]:
        return self.cancel_where(seq, ts, lambda o: o.view.entry.tif is TIF_DAY, S_EXPIRED, "DAY order expired: end of day")


def _check_terms(ts: int, cmd: NewOrder) -> Refusal | None:
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
    if t in _LIMIT_TYPES:
        if cmd.price is None or cmd.price <= 0:
            return RejectReason.INVALID_PRICE, f"{t.name} order needs a positive price"
    elif cmd.price is not None:
        return RejectReason.INVALID_PRICE, f"{t.name} order takes no price"
    if t in _STOP_TYPES:
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
        if t not in _LIMIT_TYPES or cmd.tif not in _RESTING_TIFS:
            return RejectReason.INVALID_ORDER, "iceberg must be a resting limit order"
        if not 0 < cmd.display_qty <= cmd.qty:
            return RejectReason.INVALID_QTY, f"display quantity {cmd.display_qty} must be in 1..{cmd.qty}"
    if cmd.post_only and (t is not OT_LIMIT or cmd.tif not in _RESTING_TIFS):
        return RejectReason.INVALID_ORDER, "post-only must be a resting limit order"
    return None


def _crosses(book: Book, side: Side, price: int | None) -> bool:
    if side is _BUY:
        return book.best_ask is not None and (price is None or price >= book.best_ask)
    return book.best_bid is not None and (price is None or price <= book.best_bid)


def _equilibrium(book: Book) -> int | None:
    """The opening price of a crossed book, or None when it is not crossed."""
    if book.best_bid is None or book.best_ask is None or book.best_bid < book.best_ask:
        return None
    lo, hi = book.best_ask, book.best_bid
    candidates = sorted({p for p, lv in book.bids.items() if p >= lo and lv.count} | {p for p, lv in book.asks.items() if p <= hi and lv.count})
    best: tuple[int, int, int, int] | None = None
    for p in candidates:
        demand = sum(sum(o.leaves for o in lv.orders()) for q, lv in book.bids.items() if q >= p)
        supply = sum(sum(o.leaves for o in lv.orders()) for q, lv in book.asks.items() if q <= p)
        key = (-min(demand, supply), abs(demand - supply), abs(p - book.last_px), p)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[3]


def _sum_by_symbol(positions: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, symbol), qty in positions.items():
        out[symbol] = out.get(symbol, 0) + qty
    return out
