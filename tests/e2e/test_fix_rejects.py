"""Every way a client can get an order wrong, over a real session: each gets the FIX
answer a client expects (ExecutionReport 39=8 with Text, OrderCancelReject, session Reject
35=3, BusinessMessageReject 35=j), nothing changes, and the session and venue go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixclient import get, utc_now
from venue_harness import VenueThread, check_engine, venue, write_config  # noqa: F401  (fixture)

BAD_ORDERS = [
    # (what, fields beyond ClOrdID, expected OrdRejReason 103, Text fragment)
    ("unknown symbol", [(1, "FIRM1-A"), (55, "DOGE-PERP"), (54, 1), (38, 1), (40, 2), (44, 1)], "1", "unknown symbol DOGE-PERP"),
    ("price off tick", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, "100000.3")], "18", "not on the tick grid 0.5"),
    ("stop off tick", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 3), (99, "200000.25")], "18", "StopPx 200000.25"),
    ("qty off lot", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, "1.5"), (40, 2), (44, 100000)], "13", "OrderQty 1.5"),
    ("zero qty", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 0), (40, 2), (44, 100000)], "13", "must be positive"),
    ("missing account", [(55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, 100000)], "99", "Account (1) is required"),
    ("missing qty", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (40, 2), (44, 100000)], "99", "OrderQty (38) is required"),
    ("another firm's account", [(1, "FIRM2-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, 100000)], "15", "does not belong to FIRM1"),
    ("unknown account", [(1, "NOPE"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, 100000)], "15", "unknown account NOPE"),
    ("limit without price", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2)], "18", "needs a positive price"),
    ("GTD without expiry", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, 100000), (59, 6)], "4", "ExpireTime"),
    ("post-only IOC", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (38, 1), (40, 2), (44, 100000), (59, 3), (7901, "Y")], "11", "post-only"),
]


@pytest.mark.parametrize("what,fields,reason,text", BAD_ORDERS, ids=[b[0] for b in BAD_ORDERS])
def test_bad_order_is_rejected_with_text(venue: VenueThread, what: str, fields: list[tuple[int, object]], reason: str, text: str) -> None:
    a = venue.logged_on("FIRM1")
    a.send("D", [(11, "BAD1"), (60, utc_now()), *fields])
    rej = a.expect_type("8", t11="BAD1")
    assert (get(rej, 150), get(rej, 39), get(rej, 37), get(rej, 103)) == ("8", "8", "NONE", reason), what
    assert text in (get(rej, 58) or ""), get(rej, 58)
    assert get(rej, 17)  # the core allocated an ExecID
    assert venue.call(lambda: len(venue.venue.engine.orders)) == 0  # type: ignore[union-attr]
    a.new_order("GOOD1", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")  # the session goes on
    a.expect_type("8", t11="GOOD1", t150="0")
    check_engine(venue)


def test_duplicate_cl_ord_id(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.new_order("DUP", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    a.expect_type("8", t11="DUP", t150="0")
    a.new_order("DUP", "BTC-PERP", 1, 7, "99500", account="FIRM1-A")
    rej = a.expect_type("8", t11="DUP", t150="8")
    assert get(rej, 103) == "6" and "duplicate ClOrdID" in (get(rej, 58) or "")
    a.send("H", [(11, "DUP"), (55, "BTC-PERP"), (54, 1)])
    st = a.expect_type("8", t11="DUP", t150="I")
    assert (get(st, 38), get(st, 44)) == ("1", "99000")  # the first order, unchanged


@pytest.mark.parametrize("qty,price,text", [("2", "99000.2", "Price 99000.2 is not on the tick grid"), ("2.5", "99000", "OrderQty 2.5"), ("0", "99000", "must be positive")])
def test_bad_replace_gets_cancel_reject_and_order_stays(venue: VenueThread, qty: str, price: str, text: str) -> None:
    a = venue.logged_on("FIRM1")
    a.new_order("R1", "BTC-PERP", 1, 3, "99000", account="FIRM1-A")
    a.expect_type("8", t11="R1", t150="0")
    a.replace("R2", "R1", "BTC-PERP", 1, qty, price)
    rej = a.expect_type("9", t11="R2")
    assert (get(rej, 434), get(rej, 39), get(rej, 41)) == ("2", "0", "R1")
    assert text in (get(rej, 58) or "")
    a.send("H", [(11, "R1"), (55, "BTC-PERP"), (54, 1)])
    st = a.expect_type("8", t11="R1", t150="I")
    assert (get(st, 38), get(st, 44), get(st, 39)) == ("3", "99000", "0")


def test_unknown_order_cancel_and_status(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.cancel("C1", "NEVER", "BTC-PERP", 1)
    rej = a.expect_type("9", t11="C1")
    assert (get(rej, 102), get(rej, 39)) == ("1", "8")
    a.send("H", [(11, "NEVER"), (55, "BTC-PERP"), (54, 2)])
    st = a.expect_type("8", t11="NEVER", t150="I")
    assert get(st, 39) == "8" and "unknown order" in (get(st, 58) or "")
    a.send("q", [(11, "MQ"), (530, 1), (55, "NOPE"), (60, utc_now())])
    r = a.expect_type("r", t11="MQ")
    assert (get(r, 531), get(r, 532)) == ("0", "1")


SESSION_REJECTS = [
    ("missing ClOrdID", [(1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (60, "20260101-00:00:00"), (38, 1), (40, 2), (44, 1)], "1"),
    ("side not taken", [(11, "S1"), (1, "FIRM1-A"), (55, "BTC-PERP"), (54, 5), (60, "20260101-00:00:00"), (38, 1), (40, 2), (44, 1)], "5"),
    ("price not a number", [(11, "S2"), (1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (60, "20260101-00:00:00"), (38, 1), (40, 2), (44, "abc")], "6"),
    ("unknown tag", [(11, "S3"), (1, "FIRM1-A"), (55, "BTC-PERP"), (54, 1), (60, "20260101-00:00:00"), (38, 1), (40, 2), (44, 1), (9999, "x")], "0"),
]


@pytest.mark.parametrize("what,fields,reason", SESSION_REJECTS, ids=[s[0] for s in SESSION_REJECTS])
def test_malformed_message_gets_session_reject(venue: VenueThread, what: str, fields: list[tuple[int, object]], reason: str) -> None:
    a = venue.logged_on("FIRM1")
    seq = a.send("D", fields)
    rej = a.expect(lambda m: get(m, 35) == "3", what="session Reject")
    assert (get(rej, 45), get(rej, 373)) == (str(seq), reason), what
    assert venue.call(lambda: venue.venue.engine.next_order_id) == 1  # type: ignore[union-attr]
    a.new_order("AFTER", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    a.expect_type("8", t11="AFTER", t150="0")


def test_message_type_the_venue_does_not_take(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    seq = a.send("B", [(148, "hello"), (33, 1), (58, "world")])  # News: valid FIX 4.4, not taken here
    rej = a.expect_type("j")
    assert (get(rej, 45), get(rej, 372), get(rej, 380)) == (str(seq), "B", "3")
    a.new_order("AFTER", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    a.expect_type("8", t11="AFTER", t150="0")


def test_more_bad_cancels_and_mass_cancels(venue: VenueThread) -> None:
    a, b = venue.logged_on("FIRM1"), venue.logged_on("FIRM2")
    a.new_order("K1", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    a.new_order("K2", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    a.expect_type("8", t11="K2", t150="0")
    a.cancel("K2", "K1", "BTC-PERP", 1)  # the cancel's own ClOrdID is taken
    assert get(a.expect_type("9", t11="K2"), 102) == "6"
    b.replace("Z1", "K1", "BTC-PERP", 1, 1, "98000")  # another firm's order does not exist for FIRM2
    rej = b.expect_type("9", t11="Z1")
    assert (get(rej, 434), get(rej, 102)) == ("2", "1")
    b.send("q", [(11, "Z2"), (530, 7), (1, "FIRM1-A"), (60, utc_now())])
    r = b.expect_type("r", t11="Z2")
    assert (get(r, 531), get(r, 532)) == ("0", "99") and "does not belong to FIRM2" in (get(r, 58) or "")
    a.send("q", [(11, "K3"), (530, 1), (60, utc_now())])
    r = a.expect_type("r", t11="K3")
    assert get(r, 531) == "0" and get(r, 58) == "Symbol (55) is required for MassCancelRequestType 1"
    a.send("H", [(11, "K1"), (55, "BTC-PERP"), (54, 1)])
    assert get(a.expect_type("8", t11="K1", t150="I"), 39) == "0"  # nothing changed
    check_engine(venue)


def test_test_request_is_answered(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.send("1", [(112, "ARE-YOU-THERE")])
    beat = a.expect_admin(lambda m: get(m, 35) == "0" and get(m, 112) == "ARE-YOU-THERE")
    assert get(beat, 49) == "VENUE"


def test_a_message_the_gateway_cannot_decode_gets_business_reject(tmp_path: Path) -> None:
    """With validation turned off for a session (its own settings), a malformed order
    reaches the gateway: it answers 35=j and the venue goes on."""

    def no_dictionary(data: dict[str, Any]) -> None:
        data["firms"][1]["sessions"][0]["settings"] = {"UseDataDictionary": "N"}

    v = VenueThread(write_config(tmp_path, no_dictionary)).start()
    try:
        b = v.logged_on("FIRM2")
        seq = b.send("D", [(11, "NOSIDE"), (1, "FIRM2-A"), (55, "BTC-PERP"), (60, utc_now()), (38, 1), (40, 2), (44, 1)])
        rej = b.expect_type("j")
        assert (get(rej, 45), get(rej, 372), get(rej, 380)) == (str(seq), "D", "0")
        b.new_order("OK", "BTC-PERP", 1, 1, "99000", account="FIRM2-A")
        b.expect_type("8", t11="OK", t150="0")
        check_engine(v)
    finally:
        v.stop()
