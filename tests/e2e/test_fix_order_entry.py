"""Order entry end to end over loopback: two firms trade; every order message and its
answers; every reject path leaves the venue up and unchanged."""

from __future__ import annotations

from fixclient import get
from venue_harness import VenueThread, check_engine, venue  # noqa: F401  (fixture)


def test_two_firms_trade(venue: VenueThread) -> None:
    a, b = venue.logged_on("FIRM1"), venue.logged_on("FIRM2")
    a.new_order("A1", "BTC-PERP", 2, 5, "100000.5", account="FIRM1-A")
    new = a.expect_type("8", t11="A1", t150="0")
    assert get(new, 39) == "0" and get(new, 151) == "5" and get(new, 1) == "FIRM1-A"
    b.new_order("B1", "BTC-PERP", 1, 3, "100001", account="FIRM2-A")
    b.expect_type("8", t11="B1", t150="0")
    taker = b.expect_type("8", t11="B1", t150="F")
    maker = a.expect_type("8", t11="A1", t150="F")
    assert (get(taker, 32), get(taker, 31), get(taker, 39), get(taker, 14), get(taker, 151), get(taker, 6)) == ("3", "100000.5", "2", "3", "0", "100000.5")
    assert (get(maker, 32), get(maker, 31), get(maker, 39), get(maker, 14), get(maker, 151)) == ("3", "100000.5", "1", "3", "2")
    assert get(taker, 880) == get(maker, 880) and get(taker, 17) != get(maker, 17)
    assert get(taker, 851) == "2" and get(maker, 851) == "1"
    assert len(get(taker, 60) or "") == len("20260101-00:00:00.000000")
    check_engine(venue)


def test_cancel_replace_status_and_mass_cancel(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.new_order("O1", "BTC-PERP", 1, 4, "99000", account="FIRM1-A")
    oid = get(a.expect_type("8", t11="O1", t150="0"), 37)
    a.replace("O2", "O1", "BTC-PERP", 1, 3, "99000")
    rep = a.expect_type("8", t11="O2", t150="5")
    assert (get(rep, 41), get(rep, 37), get(rep, 38), get(rep, 151)) == ("O1", oid, "3", "3")
    a.send("H", [(11, "O2"), (55, "BTC-PERP"), (54, 1)])
    st = a.expect_type("8", t11="O2", t150="I")
    assert get(st, 39) == "0" and get(st, 151) == "3"
    a.cancel("O3", "O2", "BTC-PERP", 1)
    cx = a.expect_type("8", t11="O3", t150="4")
    assert get(cx, 41) == "O2" and get(cx, 39) == "4"
    a.cancel("O4", "O2", "BTC-PERP", 1)
    rej = a.expect_type("9", t11="O4")
    assert get(rej, 434) == "1" and get(rej, 39) == "4" and "already canceled" in (get(rej, 58) or "")
    for i in range(3):
        a.new_order(f"M{i}", "ETH-PERP", 2, 1, "3600", account="FIRM1-A")
        a.expect_type("8", t11=f"M{i}", t150="0")
    a.send("q", [(11, "MC1"), (530, 1), (55, "ETH-PERP"), (60, "20260101-00:00:00")])
    for i in range(3):
        a.expect_type("8", t11=f"M{i}", t150="4")
    report = a.expect_type("r", t11="MC1")
    assert get(report, 531) == "1" and get(report, 533) == "3"
    check_engine(venue)


def test_a_session_acts_only_on_its_own_firm(venue: VenueThread) -> None:
    a, b = venue.logged_on("FIRM1"), venue.logged_on("FIRM2")
    a.new_order("X1", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    oid = get(a.expect_type("8", t11="X1", t150="0"), 37)
    b.cancel("Y1", "X1", "BTC-PERP", 1)
    assert get(b.expect_type("9", t11="Y1"), 102) == "1"
    b.cancel("Y2", "whatever", "BTC-PERP", 1, extra=[(37, oid)])
    assert get(b.expect_type("9", t11="Y2"), 102) == "1"
    b.send("q", [(11, "Y3"), (530, 7), (60, "20260101-00:00:00")])
    assert get(b.expect_type("r", t11="Y3"), 533) == "0"
    b.new_order("Y4", "BTC-PERP", 2, 1, "99000", account="FIRM1-A")
    rej = b.expect_type("8", t11="Y4", t150="8")
    assert "does not belong to FIRM2" in (get(rej, 58) or "")
    a.send("H", [(11, "X1"), (55, "BTC-PERP"), (54, 1)])
    assert get(a.expect_type("8", t11="X1", t150="I"), 39) == "0"  # untouched
    assert a.quiet(0.2) == []


def test_gtd_order_expires(venue: VenueThread) -> None:
    from datetime import datetime, timedelta, timezone

    a = venue.logged_on("FIRM1")
    soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y%m%d-%H:%M:%S.%f")
    a.new_order("GTD1", "BTC-PERP", 1, 2, "99000", account="FIRM1-A", tif="6", extra=[(126, soon)])
    a.expect_type("8", t11="GTD1", t150="0")
    expired = a.expect_type("8", timeout=10, t11="GTD1", t150="C")
    assert (get(expired, 39), get(expired, 151), get(expired, 58)) == ("C", "0", "GTD order expired")
    check_engine(venue)
