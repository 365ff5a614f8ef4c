"""Market data over the order-entry sessions: MarketDataRequest (V) answered with a
snapshot (W), then incremental refreshes (X) from the published events.

Runs on the sequencer's loop thread only (requests are handed over from quickfix's
threads), so a snapshot and the incrementals after it come from one ordered stream: the
snapshot shows the depth as of the last published batch, and every later batch's
BookDelta and Fill events become one X per subscribed symbol. The depth here is a
projection of published events (seeded once from the books before the sequencer starts,
after journal replay), never the core's live state: nothing shows an order before its
command is durable.

Rules of engagement (fix_specs/RULES.md): SubscriptionRequestType 0 (snapshot), 1
(snapshot + updates) or 2 (unsubscribe, by MDReqID); MarketDepth 0 = full book, N = top N
levels in the snapshot (incrementals carry every level change, absolute sizes: 279=0 new,
1 change, 2 delete); MDEntryType 0 bid, 1 offer, 2 trade. A request the venue cannot
serve is answered with MarketDataRequestReject (Y) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from venue.book import Book
from venue.events import BookDelta, Event, Fill
from venue.fix.reports import HEAD, TAIL, Renderer
from venue.types import Side

Send = Callable[[str, str], None]
_BID, _OFFER, _TRADE = "0", "1", "2"


@dataclass(slots=True)
class _Subscription:
    session: str
    md_req_id: str
    symbols: tuple[str, ...]
    types: frozenset[str]


class MarketData:
    def __init__(self, renderer: Renderer, send: Send) -> None:
        self.renderer = renderer
        self.send = send
        self.depth: dict[str, tuple[dict[int, int], dict[int, int]]] = {s: ({}, {}) for s in renderer.instruments}
        self.last_trade: dict[str, tuple[int, int, int]] = {}  # symbol -> (price, qty, ts)
        self.subs: dict[tuple[str, str], _Subscription] = {}  # (session, MDReqID)
        self.by_symbol: dict[str, list[_Subscription]] = {}

    def seed(self, books: Mapping[str, Book]) -> None:
        """Copy the displayed depth once, before the sequencer starts."""
        for symbol, book in books.items():
            bids, asks = self.depth.setdefault(symbol, ({}, {}))
            for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
                for level in book.levels(side):
                    levels[level.price] = level.qty

    # ------------------------------------------------------------------ requests

    def request(self, session: str, pairs: Sequence[tuple[int, str]]) -> None:
        """Handle one MarketDataRequest (its fields in order, groups flat)."""
        f: dict[int, str] = {}
        symbols: list[str] = []
        types: set[str] = set()
        for tag, value in pairs:
            if tag == 55:
                symbols.append(value)
            elif tag == 269:
                types.add(value)
            else:
                f.setdefault(tag, value)
        req_id, kind = f.get(262, ""), f.get(263, "")
        if kind == "2":
            sub = self.subs.pop((session, req_id), None)
            if sub is None:
                self.send(session, _reject(req_id, None, f"no subscription with MDReqID {req_id}"))
                return
            self._unindex(sub)
            return
        bad_types = sorted(types - {_BID, _OFFER, _TRADE})
        if bad_types or not types:
            self.send(session, _reject(req_id, "8", f"MDEntryType {bad_types[0] if bad_types else '(none)'} not published: 0 bid, 1 offer, 2 trade"))
            return
        unknown = [s for s in symbols if s not in self.depth]
        if unknown:
            self.send(session, _reject(req_id, "0", f"unknown symbol {unknown[0]}"))
            return
        if kind == "1" and (session, req_id) in self.subs:
            self.send(session, _reject(req_id, "1", f"duplicate MDReqID {req_id}"))
            return
        depth = int(f.get(264, "0"))
        if depth < 0:
            self.send(session, _reject(req_id, "5", f"MarketDepth {depth} must be 0 (full book) or positive"))
            return
        if f.get(266, "Y") != "Y":
            self.send(session, _reject(req_id, "7", "only aggregated books (AggregatedBook 266=Y) are published"))
            return
        for symbol in symbols:
            self.send(session, self.snapshot(req_id, symbol, types, depth))
        if kind == "1":
            sub = _Subscription(session, req_id, tuple(symbols), frozenset(types))
            self.subs[(session, req_id)] = sub
            for s in symbols:
                self.by_symbol.setdefault(s, []).append(sub)

    def drop_session(self, session: str) -> None:
        """A session logged out: its subscriptions end with it."""
        for key in [k for k in self.subs if k[0] == session]:
            self._unindex(self.subs.pop(key))

    def _unindex(self, sub: _Subscription) -> None:
        for s in sub.symbols:
            subs = self.by_symbol.get(s, [])
            if sub in subs:
                subs.remove(sub)

    def snapshot(self, req_id: str, symbol: str, types: Iterable[str], depth: int) -> str:
        r = self.renderer
        bids, asks = self.depth[symbol]
        entries: list[str] = []
        if _BID in types:
            prices = sorted(bids, reverse=True)
            entries += [f"269=0\x01270={r.px(symbol, p)}\x01271={r.qty(symbol, bids[p])}\x01" for p in prices[: depth or None]]
        if _OFFER in types:
            prices = sorted(asks)
            entries += [f"269=1\x01270={r.px(symbol, p)}\x01271={r.qty(symbol, asks[p])}\x01" for p in prices[: depth or None]]
        if _TRADE in types and symbol in self.last_trade:
            px, qty, ts = self.last_trade[symbol]
            entries.append(f"269=2\x01270={r.px(symbol, px)}\x01271={r.qty(symbol, qty)}\x01273={r.utc(ts)[9:]}\x01")
        return f"{HEAD}35=W\x01262={req_id}\x0155={symbol}\x01268={len(entries)}\x01{''.join(entries)}{TAIL}"

    # ------------------------------------------------------------------ events

    def on_events(self, events: Sequence[Event]) -> None:
        """Apply a batch to the depth and send one X per subscribed symbol it touched."""
        changes: dict[str, list[str]] = {}
        r = self.renderer
        for ev in events:
            if isinstance(ev, BookDelta):
                symbol, price, qty = ev.symbol, ev.price, ev.qty
                levels = self.depth.setdefault(symbol, ({}, {}))[0 if ev.side is Side.BUY else 1]
                action = "2" if qty == 0 else "1" if price in levels else "0"
                if qty == 0:
                    if levels.pop(price, None) is None:
                        continue
                else:
                    levels[price] = qty
                if self.by_symbol.get(symbol):
                    kind = _BID if ev.side is Side.BUY else _OFFER
                    changes.setdefault(symbol, []).append(
                        f"279={action}\x01269={kind}\x0155={symbol}\x01270={r.px(symbol, price)}\x01271={r.qty(symbol, qty)}\x01"
                    )
            elif isinstance(ev, Fill):
                symbol = ev.symbol
                self.last_trade[symbol] = (ev.price, ev.qty, ev.ts)
                if self.by_symbol.get(symbol):
                    changes.setdefault(symbol, []).append(
                        f"279=0\x01269=2\x0155={symbol}\x01270={r.px(symbol, ev.price)}\x01"
                        f"271={r.qty(symbol, ev.qty)}\x01273={r.utc(ev.ts)[9:]}\x01"
                    )
        for symbol, entries in changes.items():
            for sub in self.by_symbol.get(symbol, ()):
                mine = [e for e in entries if _kind(e) in sub.types]
                if mine:
                    self.send(sub.session, f"{HEAD}35=X\x01262={sub.md_req_id}\x01268={len(mine)}\x01{''.join(mine)}{TAIL}")


def _kind(entry: str) -> str:
    """MDEntryType of a rendered incremental entry."""
    return entry[entry.index("269=") + 4]


def _reject(req_id: str, reason: str | None, text: str) -> str:
    """MarketDataRequestReject (Y): MDReqRejReason 0 unknown symbol, 1 duplicate MDReqID,
    5 unsupported MarketDepth, 7 unsupported AggregatedBook, 8 unsupported MDEntryType."""
    why = f"281={reason}\x01" if reason is not None else ""
    return f"{HEAD}35=Y\x01262={req_id}\x01{why}58={text}\x01{TAIL}"
