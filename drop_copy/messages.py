"""What a clearing member receives, rendered as FIX 4.4 message strings. No I/O, no quickfix.

The copy of an execution is the ExecutionReport (35=8) the order's owner received,
rendered by the order-entry gateway's renderer (venue/fix/reports.py), with drop copy's
fields appended: CopyMsgIndicator 797=Y; on a fill the venue-unique TradeID (1003, also
sent as TrdMatchID 880 by the renderer); the owning firm as a Parties entry (453=1,
448=firm, 447=D proprietary, 452=1 executing firm) beside Account (1); and JournalSeqNum
(7910), the sequence number of the command that caused it, which orders the stream and is
where a restarted venue resumes a member. TransactTime (60) carries microseconds.
fix_specs/DROP_COPY.md lists every field.

A copy is rendered once per (event, side) and shared by every member entitled to it, so
ten members cost one rendering, not ten. Strings carry the renderer's placeholders for
BodyLength and CheckSum; quickfix fills in the header and both when it sends.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from venue.events import Event, ExecReport, Fill
from venue.fix.reports import HEAD, TAIL, Renderer
from venue.types import ExecType, Side

SOH = "\x01"
JOURNAL_SEQ = 7910  # venue field: the journal sequence number of the command behind a copy
_X_STATUS = ExecType.ORDER_STATUS
_X_TRADE = ExecType.TRADE


class Copy(NamedTuple):
    """One order side's copy: who it belongs to, where it sits in the stream, and its FIX
    message. Members resume after (seq, exec_id): the watermark read back from the FIX store."""

    seq: int
    exec_id: int
    firm: str
    account: str
    exec_type: ExecType
    raw: str


def copy_fields(firm: str, seq: int, trade_id: int | None = None) -> str:
    """Drop copy's additions to an ExecutionReport."""
    trade = f"1003={trade_id}{SOH}" if trade_id is not None else ""
    return f"{trade}453=1{SOH}448={firm}{SOH}447=D{SOH}452=1{SOH}{JOURNAL_SEQ}={seq}{SOH}797=Y{SOH}"


def _append(raw: str, fields: str) -> str:
    return raw[: -len(TAIL)] + fields + TAIL


def copies(events: Iterable[Event], renderer: Renderer) -> Iterator[Copy]:
    """Every copyable side of `events`, in stream order, rendered. Status answers (150=I)
    are not executions and are never copied; rejects are, and members filter them."""
    for ev in events:
        if isinstance(ev, Fill):
            taker, maker = renderer.fill_reports(ev)
            t, m = ev.taker.entry, ev.maker.entry
            yield Copy(ev.seq, ev.taker_exec_id, t.firm, t.account, _X_TRADE, _append(taker, copy_fields(t.firm, ev.seq, ev.trade_id)))
            yield Copy(ev.seq, ev.maker_exec_id, m.firm, m.account, _X_TRADE, _append(maker, copy_fields(m.firm, ev.seq, ev.trade_id)))
        elif isinstance(ev, ExecReport) and ev.exec_type is not _X_STATUS:
            e = ev.order.entry
            yield Copy(ev.seq, ev.exec_id, e.firm, e.account, ev.exec_type, renderer.execution_report(ev, copy_fields(e.firm, ev.seq)))


def utc_date(ts: int) -> str:
    """The UTC trading date (YYYYMMDD) of a µs timestamp."""
    return time.strftime("%Y%m%d", time.gmtime(ts // 1_000_000))


def trade_capture(renderer: Renderer, ev: Fill, taker: bool, request_id: str, last: bool, total: int) -> str:
    """A TradeCaptureReport (35=AE) of one side of a trade, answering request `request_id`.
    TradeReportID is `<TradeID>-<B|S>` so each side's report is unique; ExecID is the
    side's ExecID, the key a member deduplicates on against its live copies."""
    o, eid = (ev.taker, ev.taker_exec_id) if taker else (ev.maker, ev.maker_exec_id)
    e, sym = o.entry, ev.symbol
    letter = "B" if e.side is Side.BUY else "S"
    return (
        f"{HEAD}35=AE{SOH}571={ev.trade_id}-{letter}{SOH}487=0{SOH}856=0{SOH}568={request_id}{SOH}150=F{SOH}"
        f"748={total}{SOH}912={'Y' if last else 'N'}{SOH}17={eid}{SOH}880={ev.trade_id}{SOH}1003={ev.trade_id}{SOH}570=Y{SOH}"
        f"55={sym}{SOH}32={renderer.qty(sym, ev.qty)}{SOH}31={renderer.px(sym, ev.price)}{SOH}"
        f"75={utc_date(ev.ts)}{SOH}60={renderer.utc(ev.ts)}{SOH}"
        f"552=1{SOH}54={e.side.value}{SOH}37={o.order_id}{SOH}11={o.cl_ord_id}{SOH}"
        f"453=1{SOH}448={e.firm}{SOH}447=D{SOH}452=1{SOH}1={e.account}{SOH}{JOURNAL_SEQ}={ev.seq}{SOH}797=Y{SOH}{TAIL}"
    )


def trade_capture_ack(request_id: str, request_type: str, total: int, result: int, status: int, text: str = "") -> str:
    """TradeCaptureReportRequestAck (35=AQ). TradeRequestResult 749: 0 successful,
    8 TradeRequestType not supported, 9 not authorized, 99 other; TradeRequestStatus 750:
    0 accepted, 2 rejected. Symbol 55=[N/A] because FIX 4.4 requires the Instrument block."""
    body = f"{HEAD}35=AQ{SOH}568={request_id}{SOH}569={request_type}{SOH}748={total}{SOH}749={result}{SOH}750={status}{SOH}55=[N/A]{SOH}"
    if text:
        body += f"58={_clean(text)}{SOH}"
    return body + TAIL


def business_reject(ref_seq_num: str, ref_msg_type: str, reason: int, text: str) -> str:
    """BusinessMessageReject (35=j): 380=3 unsupported message type."""
    return f"{HEAD}35=j{SOH}45={ref_seq_num}{SOH}372={ref_msg_type}{SOH}380={reason}{SOH}58={_clean(text)}{SOH}{TAIL}"


def _clean(text: str) -> str:
    return text.replace(SOH, " ")
