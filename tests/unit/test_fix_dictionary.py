"""Everything the venue sends must pass a client's validation against the venue's data
dictionary (fix_specs/FIX44-venue.xml): render each outgoing message type and validate it
with quickfix, as a certifying client's engine would."""

from __future__ import annotations

import quickfix as fix
import pytest

from venue.book import Book
from venue.commands import NewOrder
from venue.config import load_config
from venue.events import BookDelta, CancelRejected, ExecReport, Fill, MassCancelDone, OrderView
from venue.fix.marketdata import MarketData
from venue.fix.reports import Renderer
from venue.fix.security_list import security_list
from venue.fix.settings import DATA_DICTIONARY
from venue.rejects import RejectReason
from venue.types import ExecType, MassCancelScope, OrdStatus, OrdType, Side, TimeInForce

DD = fix.DataDictionary(str(DATA_DICTIONARY))
R = Renderer({i.symbol: i for i in load_config().instruments})
TS = 1767225600_000001
HEADER = "49=VENUE\x0156=FIRM1\x0134=7\x0152=20260101-00:00:00.000001\x01"


def validate(raw: str) -> fix.Message:
    """Add a header, let quickfix frame it, then parse it back with validation on."""
    i = raw.index("\x0135=")
    j = raw.index("\x01", i + 1) + 1
    framed = fix.Message(raw[:j] + HEADER + raw[j:], DD, False).toString()
    msg = fix.Message(framed, DD, True)
    DD.validate(msg)
    return msg


def _view(cl: str, side: Side, ord_type: OrdType = OrdType.LIMIT, price: int | None = 200001, stop: int | None = None) -> OrderView:
    entry = NewOrder(session="FIRM1", firm="FIRM1", account="FIRM1-A", cl_ord_id=cl, symbol="BTC-PERP", side=side, ord_type=ord_type,
                     qty=5, price=price, stop_px=stop, tif=TimeInForce.GTD if stop else TimeInForce.GTC)
    return OrderView(3, cl, "C0" if stop else None, 5, price, stop, ord_type, entry)


EXEC_REPORTS = [
    ExecReport(1, TS, 1, ExecType.NEW, OrdStatus.NEW, _view("A", Side.BUY), 5, 0, 0, None, ""),
    ExecReport(1, TS, 2, ExecType.REJECTED, OrdStatus.REJECTED, _view("B", Side.SELL)._replace(order_id=0, qty=0), 0, 0, 0, RejectReason.UNKNOWN_SYMBOL, "unknown symbol"),
    ExecReport(1, TS, 3, ExecType.CANCELED, OrdStatus.CANCELED, _view("C", Side.BUY), 0, 2, 400002, None, "cancel on disconnect"),
    ExecReport(1, TS, 4, ExecType.REPLACED, OrdStatus.PARTIALLY_FILLED, _view("D", Side.SELL, OrdType.STOP_LIMIT, 200000, 199990), 3, 2, 400002, None, ""),
    ExecReport(1, TS, 5, ExecType.EXPIRED, OrdStatus.EXPIRED, _view("E", Side.BUY), 0, 0, 0, None, "GTD order expired"),
    ExecReport(1, TS, 6, ExecType.ORDER_STATUS, OrdStatus.NEW, _view("F", Side.BUY, OrdType.MARKET, None), 5, 0, 0, None, ""),
    ExecReport(1, TS, 7, ExecType.TRIGGERED, OrdStatus.NEW, _view("G", Side.BUY, OrdType.STOP, None, 200010), 5, 0, 0, None, "stop triggered at 200010"),
]


@pytest.mark.parametrize("ev", EXEC_REPORTS, ids=[e.exec_type.name for e in EXEC_REPORTS])
def test_execution_reports_validate(ev: ExecReport) -> None:
    msg = validate(R.execution_report(ev))
    assert msg.getField(17) == str(ev.exec_id)


def test_fills_cancel_rejects_and_mass_cancel_reports_validate() -> None:
    fill = Fill(1, TS, 9, "BTC-PERP", 200001, 2, Side.BUY, _view("T", Side.BUY), 10, 3, 2, 400002, _view("M", Side.SELL), 11, 0, 5, 1000005)
    for raw in R.fill_reports(fill):
        assert validate(raw).getField(150) == "F"
    validate(R.cancel_reject(CancelRejected(1, TS, "FIRM1", "FIRM1", "X", "Y", None, True, OrdStatus.REJECTED, RejectReason.UNKNOWN_ORDER, "unknown order")))
    validate(R.mass_cancel_report(MassCancelDone(1, TS, "FIRM1", "FIRM1", "Q", MassCancelScope.ALL, None, "FIRM1-A", 2, None, "")))
    validate(R.mass_cancel_report(MassCancelDone(1, TS, "FIRM1", "FIRM1", "Q", MassCancelScope.INSTRUMENT, "NOPE", None, 0, RejectReason.UNKNOWN_SYMBOL, "unknown symbol NOPE")))


def test_market_data_and_security_list_validate() -> None:
    sent: list[str] = []
    md = MarketData(R, lambda session, raw: sent.append(raw))
    md.seed({"BTC-PERP": Book(R.instruments["BTC-PERP"])})
    md.request("FIRM1", [(262, "M"), (263, "1"), (264, "0"), (265, "1"), (267, "3"), (269, "0"), (269, "1"), (269, "2"), (146, "1"), (55, "BTC-PERP")])
    md.on_events([BookDelta(1, TS, "BTC-PERP", Side.BUY, 200000, 3), BookDelta(1, TS, "BTC-PERP", Side.SELL, 200004, 1)])
    fill = Fill(2, TS, 1, "BTC-PERP", 200004, 1, Side.BUY, _view("T", Side.BUY), 10, 0, 1, 200004, _view("M", Side.SELL), 11, 0, 1, 200004)
    md.on_events([fill, BookDelta(2, TS, "BTC-PERP", Side.SELL, 200004, 0)])
    md.request("FIRM1", [(262, "M2"), (263, "0"), (264, "5"), (267, "2"), (269, "0"), (269, "2"), (146, "1"), (55, "BTC-PERP")])
    md.request("FIRM1", [(262, "M3"), (263, "0"), (264, "0"), (267, "1"), (269, "0"), (146, "1"), (55, "NOPE")])
    for raw in sent:
        validate(raw)
    assert [raw.split("\x0135=")[1][0] for raw in sent] == ["W", "X", "X", "W", "Y"]
    validate(security_list({320: "S", 559: "4"}, R.instruments, "SL1"))
    validate(security_list({320: "S", 559: "0", 55: "NOPE"}, R.instruments, "SL2"))
