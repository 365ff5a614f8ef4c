"""TradeCaptureReportRequest (35=AD): a member asks for a whole day's trades again.

Served from the journal, never from memory: the journal's commands run through a fresh
core (drop_copy/replay.py), which regenerates every trade with its original TradeID and
ExecIDs; the member gets the sides of its own accounts only.

What the venue takes (fix_specs/DROP_COPY.md):
- TradeRequestID 568 (required), TradeRequestType 569: 0 all trades or 1 trades
  matching the criteria; anything else is refused (749=8).
- SubscriptionRequestType 263: absent or 0 (snapshot); 1 and 2 are refused (749=99):
  the drop-copy stream itself is the subscription.
- Criteria: Symbol 55; TrdCapDtGrp (580) with TradeDate 75 (YYYYMMDD, UTC) and/or one or
  two TransactTime 60 (a range start and end, inclusive).
The answer: TradeCaptureReportRequestAck (35=AQ, 750=0 accepted, TotNumTradeReports 748 =
n), then n TradeCaptureReports (35=AE), the last with LastRptRequested 912=Y. A refused
request gets an AQ with 750=2, the reason in 749 and Text 58, and nothing else.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from drop_copy.entitlement import Member
from drop_copy.messages import trade_capture, trade_capture_ack, utc_date
from venue.events import Event, Fill
from venue.fix.reports import Renderer

_SOH = "\x01"


class TradeRequestError(Exception):
    """A request the venue refuses; `ack` is the AQ that says why."""

    def __init__(self, ack: str, text: str) -> None:
        super().__init__(text)
        self.ack = ack


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRequest:
    request_id: str
    request_type: str
    symbol: str | None = None
    trade_date: str | None = None  # YYYYMMDD
    start_ts: int | None = None  # µs, inclusive
    end_ts: int | None = None  # µs, inclusive

    def matches(self, ev: Fill) -> bool:
        if self.symbol is not None and ev.symbol != self.symbol:
            return False
        if self.trade_date is not None and utc_date(ev.ts) != self.trade_date:
            return False
        if self.start_ts is not None and ev.ts < self.start_ts:
            return False
        return self.end_ts is None or ev.ts <= self.end_ts


def parse_utc_timestamp(text: str) -> int:
    """FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fff[fff]]) -> µs since the epoch."""
    whole, _, frac = text.partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y%m%d-%H:%M:%S"))
    if frac and (not frac.isdigit() or len(frac) > 9):
        raise ValueError(f"bad fraction in {text!r}")
    return secs * 1_000_000 + int((frac + "000000")[:6] or 0)


def parse_trade_request(raw: str) -> TradeRequest:
    """Read a 35=AD message; raise TradeRequestError (with the refusing AQ) if it asks
    for something the venue does not serve."""
    pairs = [p.split("=", 1) for p in raw.split(_SOH) if "=" in p]
    first = {int(k): v for k, v in reversed(pairs) if k.isdigit()}
    request_id = first.get(568, "")
    request_type = first.get(569, "")

    def refuse(result: int, text: str) -> TradeRequestError:
        return TradeRequestError(trade_capture_ack(request_id, request_type or "0", 0, result, 2, text), text)

    if not request_id:
        raise refuse(99, "TradeRequestID (568) is required")
    if request_type not in ("0", "1"):
        raise refuse(8, f"TradeRequestType {request_type!r} is not supported: 0 (all trades) or 1 (matching criteria)")
    if first.get(263, "0") != "0":
        raise refuse(99, "only snapshots (263=0): the drop-copy session itself streams every execution")
    trade_date: str | None = None
    stamps: list[int] = []
    in_dates = False
    for k, v in pairs:
        if k == "580":
            in_dates = True
        elif in_dates and k == "75":
            if len(v) != 8 or not v.isdigit():
                raise refuse(99, f"TradeDate {v!r} is not YYYYMMDD")
            trade_date = v
        elif in_dates and k == "60":
            try:
                stamps.append(parse_utc_timestamp(v))
            except ValueError:
                raise refuse(99, f"TransactTime {v!r} is not a UTC timestamp") from None
    if len(stamps) > 2:
        raise refuse(99, "at most two TransactTime entries (start and end)")
    start = stamps[0] if stamps else None
    end = stamps[1] if len(stamps) == 2 else None
    if start is not None and end is not None and end < start:
        raise refuse(99, "the TransactTime range ends before it starts")
    return TradeRequest(request_id=request_id, request_type=request_type, symbol=first.get(55), trade_date=trade_date, start_ts=start, end_ts=end)


def trade_reports(request: TradeRequest, member: Member, batches: Iterable[tuple[int, list[Event]]], renderer: Renderer) -> Iterator[str]:
    """The answer to `request` for `member`: the AQ, then one AE per side of each matching
    trade that the member clears, in trade order."""
    sides: list[tuple[Fill, bool]] = []
    for _, events in batches:
        for ev in events:
            if isinstance(ev, Fill) and request.matches(ev):
                for taker, o in ((True, ev.taker), (False, ev.maker)):
                    if member.entitled(o.entry.firm, o.entry.account):
                        sides.append((ev, taker))
    n = len(sides)
    yield trade_capture_ack(request.request_id, request.request_type, n, 0, 0)
    for i, (ev, taker) in enumerate(sides):
        yield trade_capture(renderer, ev, taker, request.request_id, i == n - 1, n)


TradeRequestHandler = Callable[[Member, TradeRequest], Iterable[str]]
