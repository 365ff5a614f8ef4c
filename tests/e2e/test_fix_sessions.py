"""The session layer as the venue configures it: authenticated logons, cancel-on-
disconnect, resend after a reconnect with a gap, and sequence numbers surviving a restart
of a real `venue run` process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from fixclient import FixClient, get
from venue_harness import VenueProcess, VenueThread, check_engine, venue, write_config  # noqa: F401  (fixture)


@pytest.mark.parametrize("user,password,reason", [
    ("firm1", "wrong", "invalid username or password"),
    ("firm1", "", "password required"),
    ("someone", "firm1-secret", "invalid username or password"),
    ("", "", "invalid username or password"),
])
def test_bad_credentials_get_logout_with_reason(venue: VenueThread, user: str, password: str, reason: str) -> None:
    c = FixClient(venue.port, "FIRM1", username=user, password=password)
    venue.clients.append(c)
    answer = c.logon()
    assert get(answer, 35) == "5" and reason in (get(answer, 58) or "")
    ok = venue.logged_on("FIRM1")  # the real user still gets in, and nothing was canceled
    ok.new_order("A", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    ok.expect_type("8", t11="A", t150="0")


def test_reset_seq_num_logon_is_authenticated_too(venue: VenueThread) -> None:
    c = FixClient(venue.port, "FIRM1", username="firm1", password="wrong")
    venue.clients.append(c)
    answer = c.logon(reset=True)
    assert get(answer, 35) == "5" and "invalid" in (get(answer, 58) or "")


def test_unknown_comp_id_gets_no_session(venue: VenueThread) -> None:
    c = FixClient(venue.port, "NOBODY", username="x", password="y")
    venue.clients.append(c)
    with pytest.raises(ConnectionError):
        c.logon()
    venue.logged_on("FIRM2")  # still serving


def test_second_connection_to_a_logged_on_session_is_refused(venue: VenueThread) -> None:
    first = venue.logged_on("FIRM1")
    second = venue.client("FIRM1")
    second.next_out = 100
    with pytest.raises((ConnectionError, TimeoutError)):
        second.logon(timeout=8)
    first.new_order("STILL", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")  # the first is untouched
    first.expect_type("8", t11="STILL", t150="0")


def test_passwordless_conformance_session_with_its_own_settings(venue: VenueThread) -> None:
    c = venue.logged_on("FIRM1C")
    c.new_order("C1", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
    c.expect_type("8", t11="C1", t150="0")
    stale = "20200101-00:00:00.000"
    c.send("H", [(11, "C1"), (55, "BTC-PERP"), (54, 1)], sending_time=stale)  # CheckLatency=N here
    c.expect_type("8", t11="C1", t150="I")
    a = venue.logged_on("FIRM1")  # the default (CheckLatency=Y) refuses a stale SendingTime
    a.send("H", [(11, "C1"), (55, "BTC-PERP"), (54, 1)], sending_time=stale)
    rej = a.expect(lambda m: get(m, 35) == "3", what="session Reject")
    assert get(rej, 373) == "10"  # SendingTime accuracy problem


def test_cancel_on_disconnect_and_resend_after_reconnect(venue: VenueThread) -> None:
    a = venue.logged_on("FIRM1")
    a.new_order("G1", "BTC-PERP", 1, 2, "99000", account="FIRM1-A")
    a.new_order("G2", "BTC-PERP", 1, 2, "98000", account="FIRM1-A", tif="0")
    a.expect_type("8", t11="G1", t150="0")
    a.expect_type("8", t11="G2", t150="0")
    a.close()  # dropped connection, no Logout
    b = venue.logged_on("FIRM2")
    b.send("H", [(11, "G1"), (55, "BTC-PERP"), (54, 1)])  # another firm cannot see it
    assert get(b.expect_type("8", t11="G1", t150="I"), 39) == "8"
    # the venue canceled both; the reports wait in FIRM1's store
    a.logon_again()
    cancels = [a.expect_type("8", t11=cl, t150="4") for cl in ("G1", "G2")]
    assert all(get(m, 43) == "Y" and get(m, 58) == "cancel on disconnect" for m in cancels)
    assert venue.call(lambda: len(venue.venue.engine.orders)) == 0  # type: ignore[union-attr]
    check_engine(venue)


def test_cancel_on_disconnect_off_for_the_firm(venue: VenueThread) -> None:
    c = venue.logged_on("FIRM3")
    c.new_order("K1", "BTC-PERP", 1, 1, "99000", account="FIRM3-A")
    c.expect_type("8", t11="K1", t150="0")
    c.logout()
    assert get(c.logon_again(), 35) == "A"
    c.send("H", [(11, "K1"), (55, "BTC-PERP"), (54, 1)])
    assert get(c.expect_type("8", t11="K1", t150="I"), 39) == "0"


def test_restart_resumes_sequence_numbers(tmp_path: Path) -> None:
    proc = VenueProcess(write_config(tmp_path)).start()
    c = FixClient(proc.port, "FIRM1", username="firm1", password="firm1-secret")
    keeper = FixClient(proc.port, "FIRM3", username="firm3", password="firm3-secret")  # cancel-on-disconnect off
    try:
        assert get(keeper.logon(), 35) == "A"
        keeper.new_order("K1", "ETH-PERP", 2, 4, "3600.05", account="FIRM3-A")
        keeper.expect_type("8", t11="K1", t150="0")
        keeper.logout()
        assert get(c.logon(), 35) == "A"
        c.new_order("P1", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
        c.expect_type("8", t11="P1", t150="0")
        c.logout()
        sent, received = c.next_out, c.next_in
        assert proc.stop() == 0
        proc.start()
        answer = c.logon()
        assert get(answer, 35) == "A"
        # the venue's numbers went on: one message (P1's cancel-on-disconnect report) was
        # stored after our logout, so the Logon is one past it and we ask for a resend
        assert int(get(answer, 34) or 0) == received + 1
        cancel = c.expect_type("8", t11="P1", t150="4")
        assert get(cancel, 43) == "Y" and int(get(cancel, 34) or 0) == received
        assert c.next_out == sent + 2  # ours were accepted without a reset: Logon, ResendRequest
        c.new_order("P2", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
        c.expect_type("8", t11="P2", t150="0")
        # FIRM3's order survived the restart (journal replay) and market data shows it
        c.send("V", [(262, "R1"), (263, 0), (264, 0), (267, 1), (269, 1), (146, 1), (55, "ETH-PERP")])
        snap = c.expect_type("W", t262="R1")
        assert "269=1\x01270=3600.05\x01271=4" in snap.encode().decode()
        c.logout()
    finally:
        c.close()
        keeper.close()
        proc.stop()
    assert "554=firm1-secret" not in "".join(p.read_text(errors="replace") for p in (tmp_path / "var").rglob("*") if p.is_file() and p.suffix != ".db")


def test_allowed_remote_addresses_is_loopback(venue: VenueThread) -> None:
    assert venue.venue is not None and venue.venue.gateway is not None
    assert venue.venue.gateway.settings[0]["AllowedRemoteAddresses"] == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", venue.port), timeout=2):
        pass


def test_a_client_that_stops_reading_holds_up_no_other_session(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """FIRM1 keeps sending orders but reads nothing: once its socket buffers are full,
    quickfix's send to it blocks. FIRM2's orders are still acknowledged (venue/fix/sender.py),
    and FIRM1 gets every report, in order, once it reads again."""
    def small_buffers(data: dict) -> None:
        data["firms"][0]["sessions"][0]["settings"] = {"SocketSendBufferSize": "4096"}

    v = VenueThread(write_config(tmp_path, small_buffers)).start()
    try:
        other = v.logged_on("FIRM2")
        stuck = v.client("FIRM1")
        stuck.sock = socket.socket()
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sock.settimeout(5)
        stuck.sock.connect(("127.0.0.1", v.port))
        assert get(stuck.logon(), 35) == "A"
        n = 600  # about 200 KB of reports, far past both buffers
        for i in range(n):
            stuck.new_order(f"S{i}", "BTC-PERP", 1, 1, "90000", account="FIRM1-A", tif="3")  # IOC: nothing rests
        with caplog.at_level("WARNING", logger="venue.fix.sender"):
            deadline = time.monotonic() + 10  # FIRM1's sends block first, then FIRM2 orders
            while "sends to FIRM1 have blocked" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "sends to FIRM1 have blocked" in caplog.text
            other.new_order("O1", "BTC-PERP", 1, 1, "90000", account="FIRM2-A")
            other.expect_type("8", timeout=10, t11="O1", t150="0")
        got = [get(stuck.expect_type("8", timeout=10, t11=f"S{i}"), 11) for i in range(n)]  # reading again
        assert got == [f"S{i}" for i in range(n)]
    finally:
        v.stop()
