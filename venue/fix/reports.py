"""FIX out: the core's events rendered as FIX 4.4 message strings for their sessions.

ExecutionReport (8), OrderCancelReject (9) and OrderMassCancelReport (r) are built as
strings, not field by field through quickfix (about 18 µs a message that way, against
2 µs to parse a finished string). quickfix fills the header (CompIDs, MsgSeqNum,
SendingTime), BodyLength and CheckSum when it sends, so the strings carry placeholders
for those. Drop copy renders the same reports (with its own additions) through
`execution_report` and `fill_reports`.

Numbers leave the core as ticks and lots and become decimals here, exactly: AvgPx is
cum_cost / cum_qty in ticks, times the tick size, to 28 significant digits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from venue.events import CancelRejected, ExecReport, Fill, MassCancelDone, OrderView
from venue.instruments import Instrument
from venue.types import ExecType

SOH = "\x01"
HEAD = "8=FIX.4.4\x019=0\x01"
TAIL = "10=000\x01"
_LIQUIDITY_ADDED, _LIQUIDITY_REMOVED = "1", "2"


class UtcFormatter:
    """µs since the epoch -> FIX UTCTimestamp with microseconds; the second's prefix is
    cached, since a busy venue formats many times a second."""

    __slots__ = ("_prefix", "_sec")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def __call__(self, micros: int) -> str:
        sec, us = divmod(micros, 1_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{us:06d}"


def decimal_text(d: Decimal) -> str:
    """Plain notation (never 1E+5), trailing zeros dropped."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class Renderer:
    """Renders events for one venue: knows its instruments and formats their numbers."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self.instruments = dict(instruments)
        self.utc: Callable[[int], str] = UtcFormatter()
        self._px: dict[str, dict[int, str]] = {s: {} for s in instruments}

    def px(self, symbol: str, ticks: int) -> str:
        cache = self._px[symbol]
        text = cache.get(ticks)
        if text is None:
            text = decimal_text(self.instruments[symbol].price(ticks))
            if len(cache) < 100_000:
                cache[ticks] = text
        return text

    def qty(self, symbol: str, lots: int) -> str:
        inst = self.instruments.get(symbol)
        return str(lots) if inst is None or inst.lot_size == 1 else decimal_text(inst.qty(lots))

    def avg_px(self, symbol: str, cost: int, cum: int) -> str:
        if cum == 0:
            return "0"
        whole, rest = divmod(cost, cum)
        if rest == 0:
            return self.px(symbol, whole)
        return decimal_text(Decimal(cost) * self.instruments[symbol].tick_size / Decimal(cum))  # one rounding

    # ------------------------------------------------------------------ messages

    def _order_fields(self, view: OrderView) -> str:
        e = view.entry
        symbol = e.symbol
        known = symbol in self.instruments
        parts = [
            f"37={view.order_id or 'NONE'}", f"11={view.cl_ord_id}",
        ]
        if view.orig_cl_ord_id:
            parts.append(f"41={view.orig_cl_ord_id}")
        if e.account:
            parts.append(f"1={e.account}")
        parts += [f"55={symbol}", f"54={e.side.value}", f"40={view.ord_type.value}", f"59={e.tif.value}"]
        if known and view.qty > 0:  # a request refused at the edge has no quantity to echo
            parts.append(f"38={self.qty(symbol, view.qty)}")
            if view.price is not None and view.price > 0:
                parts.append(f"44={self.px(symbol, view.price)}")
            if view.stop_px is not None and view.stop_px > 0:
                parts.append(f"99={self.px(symbol, view.stop_px)}")
        return SOH.join(parts)

    def execution_report(self, ev: ExecReport, extra: str = "") -> str:
        """An ExecutionReport for a non-trade event (new, cancel, replace, expire,
        reject, status, triggered). `extra` is appended fields (drop copy's)."""
        view = ev.order
        symbol = view.entry.symbol
        known = symbol in self.instruments
        body = (
            f"35=8\x01{self._order_fields(view)}\x0117={ev.exec_id}\x01150={ev.exec_type.value}\x0139={ev.status.value}"
            f"\x01151={self.qty(symbol, ev.leaves_qty) if known else '0'}\x0114={self.qty(symbol, ev.cum_qty) if known else '0'}"
            f"\x016={self.avg_px(symbol, ev.cum_cost, ev.cum_qty) if known else '0'}\x0160={self.utc(ev.ts)}\x01"
        )
        if ev.reason is not None and ev.exec_type is ExecType.REJECTED:
            body += f"103={ev.reason.ord_rej_reason}\x01"
        if ev.text:
            body += f"58={_clean(ev.text)}\x01"
        return HEAD + body + extra + TAIL

    def fill_reports(self, ev: Fill, extra: str = "") -> tuple[str, str]:
        """The taker's and the maker's ExecutionReport (ExecType F) for one trade."""
        symbol = ev.symbol
        last = f"32={self.qty(symbol, ev.qty)}\x0131={self.px(symbol, ev.price)}\x01880={ev.trade_id}\x0160={self.utc(ev.ts)}\x01"
        out = []
        for view, eid, leaves, cum, cost, liq in (
            (ev.taker, ev.taker_exec_id, ev.taker_leaves, ev.taker_cum, ev.taker_cost, _LIQUIDITY_REMOVED),
            (ev.maker, ev.maker_exec_id, ev.maker_leaves, ev.maker_cum, ev.maker_cost, _LIQUIDITY_ADDED),
        ):
            status = "2" if leaves == 0 else "1"
            out.append(
                f"{HEAD}35=8\x01{self._order_fields(view)}\x0117={eid}\x01150=F\x0139={status}\x01{last}"
                f"151={self.qty(symbol, leaves)}\x0114={self.qty(symbol, cum)}\x016={self.avg_px(symbol, cost, cum)}\x01851={liq}\x01{extra}{TAIL}"
            )
        return out[0], out[1]

    def cancel_reject(self, ev: CancelRejected, text: str | None = None) -> str:
        body = f"35=9\x0137={ev.order_id if ev.order_id else 'NONE'}\x0111={ev.cl_ord_id}\x01"
        if ev.orig_cl_ord_id:
            body += f"41={ev.orig_cl_ord_id}\x01"
        body += (
            f"39={ev.status.value}\x01434={'2' if ev.is_replace else '1'}\x01102={ev.reason.cxl_rej_reason}\x01"
            f"60={self.utc(ev.ts)}\x0158={_clean(text if text is not None else ev.text)}\x01"
        )
        return HEAD + body + TAIL

    def mass_cancel_report(self, ev: MassCancelDone) -> str:
        body = f"35=r\x0111={ev.cl_ord_id}\x0137=M{ev.seq}\x01530={ev.scope.value}\x01"
        if ev.reason is None:
            body += f"531={ev.scope.value}\x01"
        else:
            body += f"531=0\x01532={1 if ev.reason.name == 'UNKNOWN_SYMBOL' else 99}\x01"
        body += f"533={ev.canceled}\x01"
        if ev.symbol:
            body += f"55={ev.symbol}\x01"
        body += f"60={self.utc(ev.ts)}\x01"
        text = ev.text
        if ev.reason is not None and ev.reason.name == "UNKNOWN_SYMBOL" and ev.symbol is None:
            text = "Symbol (55) is required for MassCancelRequestType 1"
        if text:
            body += f"58={_clean(text)}\x01"
        return HEAD + body + TAIL


def _clean(text: str) -> str:
    """Text must not carry the field separator."""
    return text.replace(SOH, " ")
