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
