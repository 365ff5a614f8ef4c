"""FIX out: events rendered as the messages clients reconcile on, checked field by field
and parsed back through quickfix with the venue's dictionary."""

from __future__ import annotations

import quickfix as fix

from venue.commands import NewOrder
from venue.config import load_config
from venue.events import CancelRejected, ExecReport, Fill, MassCancelDone, OrderView
from venue.fix.codec import field_map
from venue.fix.reports import Renderer, UtcFormatter, decimal_text
from venue.fix.security_list import security_list
from venue.fix.settings import DATA_DICTIONARY
from venue.rejects import RejectReason
from venue.types import ExecType, MassCancelScope, OrdStatus, OrdType, Side

R = Renderer({i.symbol: i for i in load_config().instruments})
DD = fix.DataDictionary(str(DATA_DICTIONARY))
TS = 1767225600_123456  # 2026-01-01 00:00:00.123456 UTC


def view(cl: str, side: Side, qty: int = 5, price: int | None = 200001, session: str = "S1") -> OrderView:
    entry = NewOrder(session=session, firm="F", account="F-A", cl_ord_id=cl, symbol="BTC-PERP", side=side, ord_type=OrdType.LIMIT, qty=qty, price=price)
    return OrderView(7, cl, None, qty, price, None, OrdType.LIMIT, entry)


def fields(raw: str) -> dict[int, str]:
    msg = fix.Message(raw, DD, False)  # quickfix accepts it and fills length and checksum
    return field_map(msg.toString())


def test_new_order_report() -> None:
    f = fields(R.execution_report(ExecReport(1, TS, 11, ExecType.NEW, OrdStatus.NEW, view("C1", Side.BUY), 5, 0, 0, None, "")))
    assert {k: f[k] for k in (35, 37, 11, 17, 150, 39, 1, 55, 54, 38, 44, 151, 14, 6, 60)} == {
        35: "8", 37: "7", 11: "C1", 17: "11", 150: "0", 39: "0", 1: "F-A", 55: "BTC-PERP", 54: "1", 38: "5", 44: "100000.5",
        151: "5", 14: "0", 6: "0", 60: "20260101-00:00:00.123456"}
    assert 58 not in f and 103 not in f


def test_reject_carries_reason_and_text() -> None:
    v = view("C1", Side.SELL)._replace(order_id=0)
    f = fields(R.execution_report(ExecReport(1, TS, 12, ExecType.REJECTED, OrdStatus.REJECTED, v, 0, 0, 0, RejectReason.INVALID_PRICE, "bad\x01price")))
    assert (f[37], f[150], f[39], f[103], f[58]) == ("NONE", "8", "8", "18", "bad price")


def test_fill_reports_both_sides_with_exact_avg_px() -> None:
    taker, maker = view("T", Side.BUY, 3), view("M", Side.SELL, 3, session="S2")
    # the taker has now filled 1 @ 100000.5 and 2 @ 100001: cost 200001 + 2 * 200002 ticks
    ev = Fill(1, TS, 99, "BTC-PERP", 200002, 2, Side.BUY, taker, 20, 0, 3, 600005, maker, 21, 1, 2, 400004)
    t, m = (fields(x) for x in R.fill_reports(ev))
    assert (t[17], t[150], t[39], t[32], t[31], t[14], t[151], t[880], t[851]) == ("20", "F", "2", "2", "100001", "3", "0", "99", "2")
    assert t[6] == "100000.8333333333333333333333"
    assert (m[17], m[39], m[14], m[151], m[6], m[851]) == ("21", "1", "2", "1", "100001", "1")


def test_cancel_reject_and_mass_cancel_report() -> None:
    cr = CancelRejected(1, TS, "S1", "F", "C2", "C1", 7, True, OrdStatus.NEW, RejectReason.INVALID_QTY, "quantity 0 must be positive")
    f = fields(R.cancel_reject(cr, "OrderQty 1.5 is not a whole number of lots"))
    assert (f[35], f[37], f[11], f[41], f[39], f[434], f[102], f[58]) == ("9", "7", "C2", "C1", "0", "2", "99", "OrderQty 1.5 is not a whole number of lots")
    md = MassCancelDone(5, TS, "S1", "F", "MC", MassCancelScope.INSTRUMENT, "ETH-PERP", None, 3, None, "")
    f = fields(R.mass_cancel_report(md))
    assert (f[35], f[37], f[530], f[531], f[533], f[55]) == ("r", "M5", "1", "1", "3", "ETH-PERP")
    bad = md._replace(reason=RejectReason.UNKNOWN_SYMBOL, text="unknown symbol X", canceled=0)
    f = fields(R.mass_cancel_report(bad))
    assert (f[531], f[532], f[58]) == ("0", "1", "unknown symbol X")


def test_security_list_parses_with_groups() -> None:
    raw = security_list({320: "Q", 559: "4"}, R.instruments, "SL1")
    msg = fix.Message(raw, DD, False)
    group = fix.Group(146, 55)
    symbols = []
    for i in range(1, int(msg.getField(146)) + 1):
        msg.getGroup(i, group)
        symbols.append(group.getField(55))
    assert symbols == sorted(R.instruments)


def test_number_and_time_text() -> None:
    assert decimal_text(R.instruments["ETH-PERP"].price(70001)) == "3500.05"
    assert decimal_text(R.instruments["BTC-PERP"].price(200000)) == "100000"
    fmt = UtcFormatter()
    assert fmt(TS) == "20260101-00:00:00.123456" and fmt(TS + 1_000_001) == "20260101-00:00:01.123457"
