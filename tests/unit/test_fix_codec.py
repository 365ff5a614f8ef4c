"""FIX in: decoding order-entry fields into commands, and every edge refusal."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from venue.commands import CancelOrder, MassCancel, NewOrder, QueryOrder, RejectRequest, ReplaceOrder
from venue.config import load_config
from venue.fix.codec import EdgeNote, decode_cancel, decode_mass_cancel, decode_new_order, decode_replace, decode_status, field_map, parse_utc_micros, split_fields
from venue.rejects import RejectReason
from venue.types import MassCancelScope, OrdType, Side, StpMode, TimeInForce

INSTRUMENTS = {i.symbol: i for i in load_config().instruments}
BASE = {11: "C1", 1: "FIRM1-A", 55: "BTC-PERP", 54: "1", 60: "20260101-00:00:00", 38: "2", 40: "2", 44: "100000.5"}


def new(**changes: str | None) -> NewOrder | RejectRequest:
    f = dict(BASE)
    for k, v in changes.items():
        tag = int(k[1:])
        if v is None:
            f.pop(tag, None)
        else:
            f[tag] = v
    return decode_new_order(f, "S1", "FIRM1", INSTRUMENTS, StpMode.CANCEL_RESTING)


def test_limit_order_in_ticks_and_lots() -> None:
    cmd = new()
    assert cmd == NewOrder(session="S1", firm="FIRM1", account="FIRM1-A", cl_ord_id="C1", symbol="BTC-PERP", side=Side.BUY,
                           ord_type=OrdType.LIMIT, qty=2, price=200001, tif=TimeInForce.DAY, stp=StpMode.CANCEL_RESTING)


def test_prices_and_sizes_are_read_on_each_instruments_own_grid_every_time() -> None:
    """The grid cache is keyed by text and step: the same text gives each instrument its own
    answer, and asking again gives the same one."""
    other = replace(INSTRUMENTS["BTC-PERP"], symbol="COARSE", tick_size=Decimal(10), lot_size=Decimal(5))
    insts = {**INSTRUMENTS, "COARSE": other}
    for _ in range(2):
        fine = decode_new_order({**BASE, 44: "100005", 38: "10"}, "S1", "FIRM1", insts, StpMode.CANCEL_RESTING)
        coarse = decode_new_order({**BASE, 55: "COARSE", 44: "100005", 38: "10"}, "S1", "FIRM1", insts, StpMode.CANCEL_RESTING)
        coarse_ok = decode_new_order({**BASE, 55: "COARSE", 44: "100010", 38: "10"}, "S1", "FIRM1", insts, StpMode.CANCEL_RESTING)
        assert isinstance(fine, NewOrder) and (fine.price, fine.qty) == (200010, 10)
        assert isinstance(coarse, RejectRequest) and coarse.reason is RejectReason.INVALID_PRICE
        assert isinstance(coarse_ok, NewOrder) and (coarse_ok.price, coarse_ok.qty) == (10001, 2)


def test_venue_flags_stop_iceberg_and_gtd() -> None:
    cmd = new(t40="4", t99="100500", t111="1", t59="6", t126="20260102-03:04:05.123456", t7901="Y", t7902="Y", t7903="3")
    assert isinstance(cmd, NewOrder)
    assert (cmd.stop_px, cmd.display_qty, cmd.tif, cmd.post_only, cmd.reduce_only, cmd.stp) == (201000, 1, TimeInForce.GTD, True, True, StpMode.CANCEL_BOTH)
    assert cmd.expire_time == parse_utc_micros("20260102-03:04:05.123456") == 1767323045123456


@pytest.mark.parametrize("changes,reason,text", [
    ({"t1": None}, RejectReason.MISSING_FIELD, "Account (1) is required"),
    ({"t38": None}, RejectReason.MISSING_FIELD, "OrderQty (38) is required"),
    ({"t55": "NOPE"}, RejectReason.UNKNOWN_SYMBOL, "unknown symbol NOPE"),
    ({"t44": "100000.3"}, RejectReason.INVALID_PRICE, "Price 100000.3 is not on the tick grid 0.5 of BTC-PERP"),
    ({"t99": "1.25", "t40": "4"}, RejectReason.INVALID_PRICE, "StopPx 1.25"),
    ({"t38": "0.5"}, RejectReason.INVALID_QTY, "OrderQty 0.5 is not a whole number of lots"),
    ({"t111": "0.5"}, RejectReason.INVALID_QTY, "MaxFloor 0.5"),
    ({"t44": "1" * 60}, RejectReason.INVALID_PRICE, "not on the tick grid"),
    ({"t126": "tomorrow", "t59": "6"}, RejectReason.INVALID_EXPIRE_TIME, "ExpireTime tomorrow"),
    ({"t432": "20260101", "t59": "6"}, RejectReason.INVALID_ORDER, "ExpireDate (432) is not supported"),
])
def test_edge_refusals_go_to_the_core(changes: dict[str, str | None], reason: RejectReason, text: str) -> None:
    cmd = new(**changes)
    assert isinstance(cmd, RejectRequest)
    assert (cmd.reason, cmd.cl_ord_id, cmd.session, cmd.firm, cmd.side) == (reason, "C1", "S1", "FIRM1", Side.BUY)
    assert text in cmd.text


def test_cancel_status_and_mass_cancel() -> None:
    assert decode_cancel({11: "C2", 41: "C1", 37: "17"}, "S1", "F") == CancelOrder(session="S1", firm="F", cl_ord_id="C2", orig_cl_ord_id="C1", order_id=17)
    assert decode_cancel({11: "C2", 41: "C1", 37: "ABC"}, "S1", "F").order_id == -1  # matches no order
    assert decode_status({11: "C1", 55: "ETH-PERP", 54: "2"}, "S1", "F") == QueryOrder(session="S1", firm="F", symbol="ETH-PERP", side=Side.SELL, cl_ord_id="C1")
    assert decode_mass_cancel({11: "M", 530: "1", 55: "ETH-PERP"}, "S1", "F") == MassCancel(session="S1", firm="F", cl_ord_id="M", scope=MassCancelScope.INSTRUMENT, symbol="ETH-PERP")


def test_replace_and_its_edge_notes() -> None:
    f = {11: "C2", 41: "C1", 55: "BTC-PERP", 54: "1", 38: "3", 40: "2", 44: "100001"}
    cmd, note = decode_replace(f, "S1", "F", INSTRUMENTS)
    assert note is None and cmd == ReplaceOrder(session="S1", firm="F", cl_ord_id="C2", orig_cl_ord_id="C1", qty=3, price=200002)
    cmd, note = decode_replace({**f, 44: "100001.1"}, "S1", "F", INSTRUMENTS)
    assert (cmd.qty, cmd.price) == (3, -1) and note == EdgeNote("F", "C2", "Price 100001.1 is not on the tick grid 0.5 of BTC-PERP")
    cmd, note = decode_replace({**f, 38: "1.5"}, "S1", "F", INSTRUMENTS)
    assert cmd.qty == 0 and note is not None and "OrderQty 1.5" in note.text
    cmd, note = decode_replace({k: v for k, v in f.items() if k != 38}, "S1", "F", INSTRUMENTS)
    assert cmd.qty == 0 and note is not None and note.text == "OrderQty (38) is required"


def test_field_parsing() -> None:
    raw = "8=FIX.4.4\x019=5\x0135=V\x01146=2\x0155=A\x0155=B\x0110=000\x01"
    assert field_map(raw)[55] == "A"
    assert [v for t, v in split_fields(raw) if t == 55] == ["A", "B"]
    assert parse_utc_micros("20260101-00:00:01") == 1767225601 * 1_000_000
    assert parse_utc_micros("20260101-00:00:01.5") == 1767225601 * 1_000_000 + 500_000
    assert parse_utc_micros("junk") is None
    assert Decimal("0.5") == INSTRUMENTS["BTC-PERP"].tick_size
