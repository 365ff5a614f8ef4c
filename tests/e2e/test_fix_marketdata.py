"""Market data (V -> W, then X) and the security list (x -> y) over real sessions."""

from __future__ import annotations

from fixclient import get
from venue_harness import VenueThread, venue  # noqa: F401  (fixture)


def test_snapshot_then_incrementals(venue: VenueThread) -> None:
    a, b = venue.logged_on("FIRM1"), venue.logged_on("FIRM2")
    a.new_order("A1", "BTC-PERP", 1, 2, "99000", account="FIRM1-A")
    a.new_order("A2", "BTC-PERP", 2, 3, "101000", account="FIRM1-A")
    a.expect_type("8", t11="A2", t150="0")
    b.send("V", [(262, "MD1"), (263, 1), (264, 0), (265, 1), (267, 3), (269, 0), (269, 1), (269, 2), (146, 1), (55, "BTC-PERP")])
    snap = b.expect_type("W", t262="MD1")
    assert get(snap, 55) == "BTC-PERP" and get(snap, 268) == "2"
    raw = snap.encode().decode()
    assert "269=0\x01270=99000\x01271=2" in raw and "269=1\x01270=101000\x01271=3" in raw
    b.new_order("B1", "BTC-PERP", 1, 1, "101000", account="FIRM2-A")  # lifts 1 of the offer
    inc = b.expect_type("X", t262="MD1")
    raw = inc.encode().decode()
    assert "279=1\x01269=1\x0155=BTC-PERP\x01270=101000\x01271=2" in raw  # offer level now 2
    assert "279=0\x01269=2\x0155=BTC-PERP\x01270=101000\x01271=1" in raw  # the trade
    a.cancel("A3", "A1", "BTC-PERP", 1)
    inc = b.expect_type("X", t262="MD1")
    assert "279=2\x01269=0\x0155=BTC-PERP\x01270=99000\x01271=0" in inc.encode().decode()
    b.send("V", [(262, "MD1"), (263, 2), (264, 0), (265, 1), (267, 1), (269, 0), (146, 1), (55, "BTC-PERP")])
    # b's status request reaches the loop after its unsubscribe: its answer says the V was taken
    b.send("H", [(11, "B1"), (55, "BTC-PERP"), (54, 1)])
    b.expect_type("8", t11="B1", t150="I")
    a.new_order("A4", "BTC-PERP", 1, 1, "98000", account="FIRM1-A")
    a.expect_type("8", t11="A4", t150="0")
    assert [m for m in b.quiet(0.3) if get(m, 35) == "X"] == []  # unsubscribed


def test_market_data_rejects(venue: VenueThread) -> None:
    b = venue.logged_on("FIRM2")
    b.send("V", [(262, "U1"), (263, 1), (264, 0), (265, 1), (267, 1), (269, 0), (146, 1), (55, "NOPE")])
    assert get(b.expect_type("Y", t262="U1"), 281) == "0"
    b.send("V", [(262, "U2"), (263, 1), (264, 0), (265, 1), (267, 1), (269, 0), (146, 1), (55, "BTC-PERP")])
    b.expect_type("W", t262="U2")
    b.send("V", [(262, "U2"), (263, 1), (264, 0), (265, 1), (267, 1), (269, 0), (146, 1), (55, "BTC-PERP")])
    assert get(b.expect_type("Y", t262="U2"), 281) == "1"
    b.send("V", [(262, "U3"), (263, 2), (264, 0), (267, 1), (269, 0), (146, 1), (55, "BTC-PERP")])
    assert "no subscription" in (get(b.expect_type("Y", t262="U3"), 58) or "")
    b.send("V", [(262, "U4"), (263, 0), (264, 0), (267, 1), (269, 7), (146, 1), (55, "BTC-PERP")])
    assert get(b.expect_type("Y", t262="U4"), 281) == "8"


def test_snapshot_depth_limits_levels(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    for i, px in enumerate(("99000", "98500", "98000")):
        a.new_order(f"L{i}", "BTC-PERP", 1, 1, px, account="FIRM1-A")
        a.expect_type("8", t11=f"L{i}", t150="0")
    a.send("V", [(262, "D1"), (263, 0), (264, 2), (267, 1), (269, 0), (146, 1), (55, "BTC-PERP")])
    snap = a.expect_type("W", t262="D1")
    raw = snap.encode().decode()
    assert get(snap, 268) == "2" and "270=99000" in raw and "270=98500" in raw and "270=98000" not in raw


def test_security_list(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.send("x", [(320, "S1"), (559, 4)])
    sl = a.expect_type("y", t320="S1")
    raw = sl.encode().decode()
    assert get(sl, 560) == "0" and get(sl, 146) == "5"
    assert "55=BTC-PERP\x01167=FUT\x01" in raw and "969=0.5" in raw
    call = raw.split("\x0155=BTC-26DEC26-100000-C\x01")[1].split("\x0155=")[0].split("\x01")
    assert {"167=OPT", "200=202612", "541=20261226", "202=100000", "201=1", "231=0.001", "311=BTC-USD", "969=5"} <= set(call)
    a.send("x", [(320, "S2"), (559, 0), (55, "ETH-PERP")])
    one = a.expect_type("y", t320="S2")
    assert get(one, 146) == "1" and "969=0.05" in one.encode().decode()
    a.send("x", [(320, "S3"), (559, 0), (55, "NOPE")])
    assert get(a.expect_type("y", t320="S3"), 560) == "2"
