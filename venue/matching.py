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

ClOrdIDs are remembered for the trading day: done orders stay in `by_cl_ord_id`, so status
requests answer them and their ClOrdIDs stay taken, until EndOfDay (00:00 UTC, issued by
the sequencer) forgets them; live orders keep theirs (venue/order_index.py keeps the
index from pausing the sequencer as it grows).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from mypy_extensions import mypyc_attr

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
    Event,
    ExecReport,
    Fill,
    OrderView,
    make,
)
from venue.instruments import Instrument
from venue.order_index import ClOrdIndex
from venue.order_terms import DONE, ENTRY_REFUSED, RESTING_TIFS, Refusal, check_terms, crosses
from venue.phases import PhaseControl
from venue.rejects import RejectReason
from venue.requests import OrderRequests
from venue.types import (
    BUY,
    OT_MARKET,
    PH_OPEN,
    PH_PRE_OPEN,
    S_CANCELED,
    S_EXPIRED,
    S_FILLED,
    S_NEW,
    S_PARTIALLY_FILLED,
    S_REJECTED,
    SELL,
    STP_CANCEL_AGGRESSING,
    STP_CANCEL_RESTING,
    TIF_FOK,
    TIF_GTD,
    TIF_IOC,
    X_CANCELED,
    X_EXPIRED,
    X_NEW,
    X_REJECTED,
    X_TRIGGERED,
    OrdStatus,
    Side,
    StpScope,
    TradingPhase,
)


@mypyc_attr(allow_interpreted_subclasses=True)  # tests' stubs
class PreTradeCheck:
    """Pre-trade risk (venue/risk.py): asked before an order or a replace can add exposure,
    after the request itself has been validated. Returns a refusal or None; never raises.

    check_new and check_replace are the last gate: once one returns None the engine accepts
    the order or applies the replace without refusing it for any other reason.

    The engine reports every change to live orders and positions as it makes it, so the
    checks' state needs no per-order records of its own and reads no events (following
    the events cost more than the checks themselves).

    A base class rather than a Protocol: the compiled engine calls a compiled subclass's
    methods directly (about 2 ns), where a Protocol's go through Python's method lookup
    (about 25 ns), several times per order."""

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None:
        raise NotImplementedError

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        raise NotImplementedError

    def market_collar(self, side: Side, book: Book) -> int | None:
        """The worst price a market order (or triggered stop) may fill at; None: no limit."""
        raise NotImplementedError

    def live(self, order: Order) -> None:
        """The order now rests or is parked (a stop), with `order.leaves` on its terms."""
        raise NotImplementedError

    def gone(self, order: Order) -> None:
        """The live order is off the book or the stops, before its leaves are zeroed."""
        raise NotImplementedError

    def traded(self, symbol: str, price: int, qty: int, taker: Order, maker: Order, taker_live: bool) -> None:
        """A fill, after both orders' leaves were reduced by `qty`."""
        raise NotImplementedError


# Entries of a retired ClOrdID index freed per command: at about 0.5 µs an entry (the done
# order's objects go with it), 16 µs a command; 3 million orders of a day are gone within
# 94,000 commands.
SHED_PER_COMMAND: Final = 32


class MatchingEngine(OrderRequests, PhaseControl):
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
        self.by_cl_ord_id = ClOrdIndex()  # (firm, ClOrdID) -> order, done ones too
        self.retired: list[ClOrdIndex] = []  # indexes of ended days, being freed (see apply)
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
        """Apply one sequenced command; return what happened, in order. After a day's end,
        each command also frees SHED_PER_COMMAND entries of the day's retired index."""
        if self.retired and not self.retired[0].shed(SHED_PER_COMMAND):
            self.retired.pop(0)
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
            for side, dirty, levels in ((BUY, book.dirty_bids, book.bids), (SELL, book.dirty_asks, book.asks)):
                if dirty:
                    for price in sorted(dirty):
                        level = levels.get(price)
                        out.append(make(BookDelta, (seq, ts, book.symbol, side, price, level.qty if level is not None else 0)))
                    dirty.clear()
        return out

    def validate(self) -> None:
        """Check every invariant of the whole state (tests call it after each command)."""
        resting = 0
        for book in self.books.values():
            book.validate()
            for side in (BUY, SELL):
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
            assert o.status not in DONE, f"done order {o.order_id} still live"
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
        view = make(OrderView, (oid, cmd.cl_ord_id, None, cmd.qty, cmd.price, cmd.stop_px, cmd.ord_type, cmd))
        order = Order(view, cmd.side, cmd.price, cmd.qty, cmd.display_qty, cmd.account if self.stp_scope is StpScope.ACCOUNT else cmd.firm)
        self.by_cl_ord_id.put(cmd.firm, cmd.cl_ord_id, order)
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        events: list[Event] = [make(ExecReport, (seq, ts, eid, X_NEW, S_NEW, view, cmd.qty, 0, 0, None, ""))]
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
        if self.by_cl_ord_id.has(cmd.firm, cmd.cl_ord_id):
            return RejectReason.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {cmd.cl_ord_id}"
        owner = self.accounts.get(cmd.account)
        if owner != cmd.firm:
            if owner is None:
                return RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account}"
            return RejectReason.ACCOUNT_NOT_PERMITTED, f"account {cmd.account} does not belong to {cmd.firm}"
        if book.phase is not PH_OPEN and book.phase in ENTRY_REFUSED:
            reason, what = ENTRY_REFUSED[book.phase]
            return reason, f"{cmd.symbol} is {what}"
        refusal = check_terms(ts, cmd)
        if refusal is not None:
            return refusal
        if book.phase is PH_PRE_OPEN and (cmd.ord_type is OT_MARKET or cmd.tif not in RESTING_TIFS):
            return RejectReason.NOT_IN_PRE_OPEN, f"{cmd.symbol} is in pre-open: only resting limit and stop orders"
        if cmd.stop_px is not None:
            if cmd.stop_px <= book.last_px if cmd.side is BUY else cmd.stop_px >= book.last_px:
                return RejectReason.STOP_WOULD_TRIGGER, f"stop {book.instrument.show_price(cmd.stop_px)} would trigger at once (last {book.instrument.show_price(book.last_px)})"
        elif cmd.post_only and crosses(book, cmd.side, cmd.price):
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
        view = make(OrderView, (0, cmd.cl_ord_id, None, cmd.qty, cmd.price, cmd.stop_px, cmd.ord_type, cmd))
        return make(ExecReport, (seq, ts, eid, X_REJECTED, S_REJECTED, view, 0, 0, 0, refusal[0], refusal[1]))

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
            if order.side is BUY:
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
        if self.pre_trade is not None:
            self.pre_trade.live(order)
        entry = order.view.entry
        if tif is TIF_GTD:
            assert entry.expire_time is not None
            heapq.heappush(self.gtd, (entry.expire_time, order.order_id))
        if entry.reduce_only:
            self.reduce_only.setdefault((entry.account, entry.symbol), {})[order.order_id] = order

    def _match(self, seq: int, ts: int, book: Book, taker: Order, events: list[Event]) -> None:
        """Sweep the opposite side while it crosses the taker's limit (or any price, for a
        market order). Each fill is one event carrying both orders' state."""
        buy = taker.side is BUY
        limit = taker.price
        levels = book.asks if buy else book.bids
        stp_key = taker.stp_key
        symbol = book.symbol
        positions = self.positions
        taker_view = taker.view
        taker_side = taker.side
        taker_account = taker_view.entry.account
        reduce_only = self.reduce_only  # non-empty only while reduce-only orders live
        pre_trade = self.pre_trade
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
            book.fill(maker, qty, best)
            if not maker.leaves:
                del self.orders[maker.order_id]
            taker.leaves -= qty
            taker.cum += qty
            taker.cost += best * qty
            tid = self.next_trade_id
            self.next_trade_id = tid + 1
            eid = self.next_exec_id
            self.next_exec_id = eid + 2
            events.append(
                make(Fill, (seq, ts, tid, symbol, best, qty, taker_side, taker_view, eid, taker.leaves, taker.cum, taker.cost,
                     maker.view, eid + 1, maker.leaves, maker.cum, maker.cost))
            )
            key = (taker_account, symbol)
            positions[key] = positions.get(key, 0) + (qty if buy else -qty)
            key = (maker.view.entry.account, symbol)
            positions[key] = positions.get(key, 0) + (-qty if buy else qty)
            book.last_px = best
            if pre_trade is not None:
                pre_trade.traded(symbol, best, qty, taker, maker, False)
        taker.status = S_FILLED if taker.leaves == 0 else S_PARTIALLY_FILLED if taker.cum else S_NEW

    def _fillable(self, book: Book, taker: Order) -> int:
        """What the book would fill of the taker now, counting self-trade prevention."""
        buy = taker.side is BUY
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
            events.append(make(ExecReport, (seq, ts, eid, X_TRIGGERED, order.status, order.view, order.leaves, order.cum, order.cost, None, f"stop triggered at {book.instrument.show_price(last)}")))
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
        if order.side is BUY:
            book.buy_stops.add((stop, order.order_id))
        else:
            book.sell_stops.add((-stop, order.order_id))
        self.orders[order.order_id] = order
        if self.pre_trade is not None:
            self.pre_trade.live(order)
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
            if order.side is BUY:
                book.buy_stops.discard((stop, order.order_id))
            else:
                book.sell_stops.discard((-stop, order.order_id))
        if self.orders.pop(order.order_id, None) is not None and self.pre_trade is not None:
            self.pre_trade.gone(order)
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
        events.append(make(ExecReport, (seq, ts, eid, exec_type, status, order.view, 0, order.cum, order.cost, None, text)))
        order.leaves = 0

    def cancel_where(self, seq: int, ts: int, pred: Callable[[Order], bool], status: OrdStatus, text: str) -> list[Event]:
        events: list[Event] = []
        for order in [o for o in self.orders.values() if pred(o)]:
            book = self.books[order.view.entry.symbol]
            self._remove_live(book, order)
            self._end(seq, ts, book, order, events, status, text)
        return events

    # ------------------------------------------------------------------ phases and time



def _sum_by_symbol(positions: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, symbol), qty in positions.items():
        out[symbol] = out.get(symbol, 0) + qty
    return out
