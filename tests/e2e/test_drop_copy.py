"""Drop copy end to end over loopback: two firms trade over FIX order entry while clearing
members' drop-copy sessions (quickfix initiators, tools/drop_copy_client.py) receive the
copies. CLEARER1 clears FIRM1 and FIRM2; CLEARER2 clears FIRM2 only."""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixclient import FixClient, get
from venue_harness import VenueThread, client, write_config

from tools.drop_copy_client import DropCopyClient
from venue import admin

MEMBERS = {"CLEARER1": ("clearer1", "clearer1-secret"), "CLEARER2": ("clearer2", "clearer2-secret")}


def add_clearer2(data: dict[str, Any]) -> None:
    data["clearing_members"].append({"id": "CLEARER2", "sender_comp_id": "CLEARER2", "username": "clearer2",
                                     "password": "clearer2-secret", "firms": ["FIRM2"]})


def logged_on(port: int, who: str) -> FixClient:
    c = client(port, who)
    answer = c.logon()
    assert get(answer, 35) == "A", f"{who} logon refused: {c.logout_text}"
    return c


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if cond():
            return True
        pause.wait(0.02)
    return cond()


def member(port: int, comp_id: str, state: Path, *, password: str | None = None) -> DropCopyClient:
    user, pw = MEMBERS.get(comp_id, ("", ""))
    c = DropCopyClient(port=port, comp_id=comp_id, username=user, password=pw if password is None else password,
                       state_dir=state / comp_id, csv_path=state / f"{comp_id}.csv")
    c.start()
    return c


def executions(clients: list[FixClient], settle: float = 0.5, timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """Every execution the firms' sessions received (ExecID -> account, exec type), read
    until the sessions have been quiet for `settle` seconds."""
    out: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [m for c in clients for m in c.quiet(settle)]
        for m in got:
            if get(m, 35) == "8" and get(m, 150) not in ("I", "8"):
                out[get(m, 17) or ""] = {"account": get(m, 1) or "", "exec_type": get(m, 150) or ""}
        if not got:
            return out
    raise TimeoutError("the order-entry sessions never went quiet")


def trade(a: FixClient, b: FixClient, n: int, tag: str) -> None:
    """n crossing pairs (FIRM1 buys 3, FIRM2 sells 2), a FIRM1 cancel and an ETH trade."""
    for i in range(n):
        a.new_order(f"{tag}B{i}", "BTC-PERP", 1, 3, "100000", account="FIRM1-A")
        b.new_order(f"{tag}S{i}", "BTC-PERP", 2, 2, "100000", account="FIRM2-A")
    a.cancel(f"{tag}C0", f"{tag}B{n - 1}", "BTC-PERP", 1)
    b.new_order(f"{tag}E1", "ETH-PERP", 1, 1, "3500", account="FIRM2-A")
    a.new_order(f"{tag}E2", "ETH-PERP", 2, 1, "3500", account="FIRM1-A")


def copy_ids(c: DropCopyClient) -> list[str]:
    return [m[17] for m in c.copies()]


@pytest.fixture
def firms(venue: VenueThread) -> Iterator[tuple[FixClient, FixClient]]:
    a, b = logged_on(venue.port, "FIRM1"), logged_on(venue.port, "FIRM2")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueThread]:
    v = VenueThread(write_config(tmp_path, add_clearer2)).start()
    try:
        yield v
    finally:
        v.stop()


def dc_port(v: VenueThread) -> int:
    return v.cfg.venue.drop_copy.port


def test_each_member_gets_exactly_its_accounts_executions_once(venue: VenueThread, firms: tuple[FixClient, FixClient], tmp_path: Path) -> None:
    c1, c2 = member(dc_port(venue), "CLEARER1", tmp_path), member(dc_port(venue), "CLEARER2", tmp_path)
    a, b = firms
    try:
        assert c1.wait_logged_on(10) and c2.wait_logged_on(10), (c1.logout_text, c2.logout_text)
        trade(a, b, 5, "T")
        truth = executions([a, b])
        firm2 = {e for e, x in truth.items() if x["account"] == "FIRM2-A"}
        assert len(truth) > 20 and firm2 and firm2 != set(truth)
        assert eventually(lambda: set(copy_ids(c1)) == set(truth) and set(copy_ids(c2)) == firm2), (len(copy_ids(c1)), len(truth))
        time.sleep(0.3)  # nothing more may arrive: no duplicates, nothing of others
        assert sorted(copy_ids(c1)) == sorted(truth) and sorted(copy_ids(c2)) == sorted(firm2)
        for m in c1.copies() + c2.copies():
            assert m[797] == "Y" and m[448] in ("FIRM1", "FIRM2") and m[1] == f"{m[448]}-A"
            assert len(m[60]) == len("20260101-00:00:00.000000")
            assert (m[150] == "F") == (1003 in m)
        assert {m[448] for m in c2.copies()} == {"FIRM2"}
        rows = (tmp_path / "CLEARER1.csv").read_text().splitlines()
        assert len(rows) == 1 + len(truth) and rows[0].startswith("received_at,msg_type,journal_seq,exec_id")
    finally:
        c1.stop()
        c2.stop()


def test_a_member_offline_during_trading_recovers_everything_by_resend(venue: VenueThread, firms: tuple[FixClient, FixClient], tmp_path: Path) -> None:
    c1 = member(dc_port(venue), "CLEARER1", tmp_path)
    assert c1.wait_logged_on(10)
    c1.stop()  # logged out: its store keeps its sequence numbers
    a, b = firms
    trade(a, b, 4, "O")
    truth = executions([a, b])
    c1 = member(dc_port(venue), "CLEARER1", tmp_path)
    try:
        assert c1.wait_logged_on(20), c1.logout_text
        assert eventually(lambda: set(copy_ids(c1)) == set(truth)), (len(copy_ids(c1)), len(truth))
        time.sleep(0.3)
        assert sorted(copy_ids(c1)) == sorted(truth)
        assert all(m.get(43) == "Y" for m in c1.copies()), "what was missed arrives as a FIX resend"
    finally:
        c1.stop()


def test_a_whole_day_replay_answers_with_the_members_trades_from_the_journal(venue: VenueThread, firms: tuple[FixClient, FixClient], tmp_path: Path) -> None:
    a, b = firms
    trade(a, b, 3, "R")
    truth = executions([a, b])
    fills = {e: x for e, x in truth.items() if x["exec_type"] == "F"}
    c2 = member(dc_port(venue), "CLEARER2", tmp_path)
    try:
        assert c2.wait_logged_on(10)
        c2.request_trades()
        assert eventually(lambda: any(m[35] == "AE" and m.get(912) == "Y" for m in c2.messages))
        ack = next(m for m in c2.messages if m[35] == "AQ")
        reports = [m for m in c2.messages if m[35] == "AE"]
        want = {e for e, x in fills.items() if x["account"] == "FIRM2-A"}
        assert ack[750] == "0" and int(ack[748]) == len(reports) == len(want)
        assert {m[17] for m in reports} == want and {m[1] for m in reports} == {"FIRM2-A"}
        assert [m[912] for m in reports] == ["N"] * (len(reports) - 1) + ["Y"]
        c2.request_trades(request_type="4")  # unmatched trades: not a venue notion
        assert eventually(lambda: any(m[35] == "AQ" and m[750] == "2" and m[749] == "8" for m in c2.messages))
    finally:
        c2.stop()


def test_drop_copy_sessions_are_read_only_and_authenticated(venue: VenueThread, tmp_path: Path) -> None:
    bad = member(dc_port(venue), "CLEARER2", tmp_path / "bad", password="wrong")
    try:
        assert eventually(lambda: "invalid username or password" in bad.logout_text)
        assert not bad.logged_on.is_set()
    finally:
        bad.stop()
    c1 = member(dc_port(venue), "CLEARER1", tmp_path)
    try:
        assert c1.wait_logged_on(10)
        stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
        c1.send_raw("D", f"11=X1\x011=FIRM1-A\x0155=BTC-PERP\x0154=1\x0160={stamp}\x0138=1\x0140=2\x0144=100000\x01")
        assert eventually(lambda: any(m[35] == "j" for m in c1.messages))
        reject = next(m for m in c1.messages if m[35] == "j")
        assert (reject[372], reject[380]) == ("D", "3") and "read-only" in reject[58]
        assert venue.venue is not None and not venue.call(lambda: venue.venue.engine.orders), "the order reached the book"  # type: ignore[union-attr]
    finally:
        c1.stop()


def test_a_dead_drop_copy_process_is_replaced_and_loses_nothing(venue: VenueThread, firms: tuple[FixClient, FixClient], tmp_path: Path) -> None:
    c1 = member(dc_port(venue), "CLEARER1", tmp_path)
    try:
        assert c1.wait_logged_on(10)
        a, b = firms
        trade(a, b, 2, "K")
        first = executions([a, b])
        assert eventually(lambda: set(copy_ids(c1)) == set(first))
        assert venue.venue is not None and venue.venue.drop_copy is not None and venue.venue.drop_copy.proc is not None
        dead = venue.venue.drop_copy.proc
        dead.kill()
        dead.wait(10)
        trade(a, b, 3, "L")  # the first batch after the death finds the pipe broken
        truth = {**first, **executions([a, b])}
        assert eventually(lambda: set(copy_ids(c1)) == set(truth), 30), (len(copy_ids(c1)), len(truth))
        assert venue.venue.drop_copy.proc is not dead
        time.sleep(0.3)
        assert sorted(copy_ids(c1)) == sorted(truth), "a copy arrived twice"
        # the ledger lives in that process too: the new one caught it up from the journal, each trade once
        fills = sum(e["exec_type"] == "F" for e in truth.values())
        assert venue.ledger("SELECT count(*), count(DISTINCT trade_id) FROM trades") == [(fills // 2, fills // 2)]
        ok, out = admin.request(venue.cfg.var_path(), "reconcile", [], 60)
        assert ok and "no breaks" in out, out
    finally:
        c1.stop()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_client_tool_writes_a_readable_csv_of_every_execution_once(venue: VenueThread, firms: tuple[FixClient, FixClient], tmp_path: Path) -> None:
    a, b = firms
    trade(a, b, 2, "C")
    truth = executions([a, b])
    out = tmp_path / "clearer1.csv"
    args = [sys.executable, "-m", "tools.drop_copy_client", "--port", str(dc_port(venue)), "--comp-id", "CLEARER1",
            "--username", "clearer1", "--password", "clearer1-secret", "--csv", str(out), "--replay", "--seconds", "4"]
    done = subprocess.run(args, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = read_csv(out)
    copies = [r for r in rows if r["msg_type"] == "8"]
    reports = [r for r in rows if r["msg_type"] == "AE"]
    assert sorted(r["exec_id"] for r in copies) == sorted(truth), "each execution once"
    assert {r["account"] for r in copies} == {"FIRM1-A", "FIRM2-A"} and all(r["firm"] == r["account"][:5] for r in copies)
    fills = [r for r in copies if r["exec_type"] == "F"]
    assert fills and all(r["trade_id"] and r["last_px"] in ("100000", "3500") for r in fills)
    assert sorted(r["exec_id"] for r in reports) == sorted(r["exec_id"] for r in fills)
    again = subprocess.run(args, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert len(read_csv(out)) == len(rows), "a second run appends nothing it already has"
