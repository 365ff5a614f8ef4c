"""`venue admin` against a running `venue run` process, with FIX clients watching: kill
switches and halts reach the clients as FIX, limits changed at run time bite, bad input
gets a clear error and exit code 1, and a client without this run's token is refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fixclient import FixClient, get
from venue_harness import REPO, VenueProcess, client, write_config

from venue.admin import SOCKET_NAME, TOKEN_NAME, request
from venue.config import load_config
from venue.refdata import open_reference


def admin(config: Path, *args: str) -> tuple[int, str]:
    """Run the CLI: (exit code, stdout + stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "venue", "admin", "--config", str(config), "--timeout", "20", *args],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    return p.returncode, (p.stdout + p.stderr).strip()


def logged_on(port: int, who: str) -> FixClient:
    c = client(port, who)
    answer = c.logon(reset=True)  # the module shares one venue: each test starts the session afresh
    assert answer.get(35) == b"A", f"{who} logon refused: {c.logout_text}"
    return c


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, VenueProcess]]:
    config = write_config(tmp_path_factory.mktemp("admin"))
    proc = VenueProcess(config).start()
    try:
        yield config, proc
    finally:
        assert proc.stop() == 0


def test_status_and_help(running: tuple[Path, VenueProcess]) -> None:
    config, _ = running
    rc, out = admin(config, "status")
    assert rc == 0 and "BTC-PERP" in out and "kill switches: none" in out
    rc, out = admin(config, "help")
    assert rc == 0 and all(c in out for c in ("kill", "release", "halt", "resume", "limit", "risk", "collateral", "mark", "index"))


def test_kill_switch_over_fix(running: tuple[Path, VenueProcess]) -> None:
    config, proc = running
    a, b = logged_on(proc.port, "FIRM1"), logged_on(proc.port, "FIRM2")
    try:
        a.new_order("K1", "BTC-PERP", 1, 2, "99000", account="FIRM1-A")
        a.expect_type("8", t11="K1", t150="0")
        b.new_order("K2", "BTC-PERP", 2, 2, "101000", account="FIRM2-A")
        b.expect_type("8", t11="K2", t150="0")
        rc, out = admin(config, "kill", "firm", "FIRM1", "--reason", "desk call")
        assert (rc, out) == (0, "kill switch engaged for firm FIRM1: 1 orders canceled; new orders and replaces refused until released")
        canceled = a.expect_type("8", t11="K1", t150="4")
        assert get(canceled, 39) == "4" and "kill switch" in (get(canceled, 58) or "")
        a.new_order("K3", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
        rej = a.expect_type("8", t11="K3", t150="8")
        assert get(rej, 58) == "risk: kill switch engaged for firm FIRM1" and get(rej, 103) == "3"
        b.new_order("K4", "BTC-PERP", 2, 1, "101500", account="FIRM2-A")  # the other firm trades on
        b.expect_type("8", t11="K4", t150="0")
        rc, out = admin(config, "kill", "firm", "FIRM1")
        assert rc == 1 and out == "refused: kill switch for firm FIRM1 is already engaged"
        assert admin(config, "release", "firm", "FIRM1") == (0, "kill switch released for firm FIRM1")
        a.new_order("K5", "BTC-PERP", 1, 1, "99000", account="FIRM1-A")
        a.expect_type("8", t11="K5", t150="0")
        rc, out = admin(config, "risk", "FIRM1-A")
        assert rc == 0 and "kill_switch" in out and "killed               no" in out
        assert [line.split()[-1] for line in out.splitlines() if line.strip().startswith("kill_switch")] == ["1"]
    finally:
        a.close()
        b.close()


def test_halt_and_resume_over_fix(running: tuple[Path, VenueProcess]) -> None:
    config, proc = running
    a = logged_on(proc.port, "FIRM1")
    try:
        assert admin(config, "halt", "ETH-PERP") == (0, "ETH-PERP: halted")
        a.new_order("H1", "ETH-PERP", 1, 1, "3500", account="FIRM1-A")
        assert get(a.expect_type("8", t11="H1", t150="8"), 58) == "ETH-PERP is halted"
        assert admin(config, "resume", "ETH-PERP") == (0, "ETH-PERP: open")
        a.new_order("H2", "ETH-PERP", 1, 1, "3500", account="FIRM1-A")
        a.expect_type("8", t11="H2", t150="0")
    finally:
        a.close()


def test_limit_changed_at_run_time_bites_over_fix(running: tuple[Path, VenueProcess]) -> None:
    config, proc = running
    a = logged_on(proc.port, "FIRM1")
    try:
        rc, out = admin(config, "limit", "--account", "FIRM1-A", "--symbol", "BTC-26DEC26", "max_order_qty", "5")
        assert (rc, out) == (0, "FIRM1-A/BTC-26DEC26: max_order_qty unset -> 5")
        a.new_order("L1", "BTC-26DEC26", 1, 6, "101000", account="FIRM1-A")
        assert get(a.expect_type("8", t11="L1", t150="8"), 58) == "risk: order qty 6 > limit 5 lots"
        a.new_order("L2", "BTC-26DEC26", 1, 5, "101000", account="FIRM1-A")
        a.expect_type("8", t11="L2", t150="0")
        a.new_order("L3", "BTC-26DEC26", 1, 1, "150000", account="FIRM1-A")  # the demo's 10% band
        assert get(a.expect_type("8", t11="L3", t150="8"), 58) == "risk: price 150,000 outside band 90,900..111,100 (10% of reference 101,000)"
        assert admin(config, "limit", "--account", "FIRM1-A", "--symbol", "BTC-26DEC26", "max_order_qty", "clear")[0] == 0
        a.new_order("L4", "BTC-26DEC26", 1, 6, "101000", account="FIRM1-A")
        a.expect_type("8", t11="L4", t150="0")
    finally:
        a.close()


def test_throttle_over_fix_keeps_the_session_up(running: tuple[Path, VenueProcess]) -> None:
    config, proc = running
    assert admin(config, "limit", "--firm", "FIRM2", "max_msgs_per_s", "2")[0] == 0
    b = logged_on(proc.port, "FIRM2")
    try:
        for i in range(5):  # a burst: the bucket holds 2
            b.new_order(f"T{i}", "ETH-PERP", 2, 1, "3600", account="FIRM2-A")
        answers = [b.expect(lambda m, i=i: get(m, 11) == f"T{i}", what=f"T{i}") for i in range(5)]
        assert [get(m, 150) for m in answers] == ["0", "0", "8", "8", "8"]
        assert get(answers[2], 58) == "risk: throttle 2 messages/s exceeded on session FIRM2"
        b.quiet(0.7)  # a token comes back every half second
        b.new_order("T5", "ETH-PERP", 2, 1, "3600", account="FIRM2-A")
        b.expect_type("8", t11="T5", t150="0")
    finally:
        b.close()
        assert admin(config, "limit", "--firm", "FIRM2", "max_msgs_per_s", "clear")[0] == 0


@pytest.mark.parametrize(("args", "error"), [
    (("limit", "max_order_qty", "abc"), "max_order_qty: expected a decimal number, got 'abc'"),
    (("limit", "max_order_qty", "1.5"), "refused: max_order_qty must be a whole number, got 1.5"),
    (("limit", "--firm", "NOPE", "max_position", "5"), "refused: unknown firm NOPE"),
    (("mark", "BTC-PERP", "100000.3"), "price 100000.3 is not on BTC-PERP's tick grid 0.5"),
    (("kill", "firm"), "venue admin kill: 'venue' takes no target; 'firm' and 'account' need one"),
    (("kill", "desk", "X"), "argument scope: invalid choice: 'desk'"),
    (("collateral", "NOPE-A", "100"), "refused: unknown account 'NOPE-A'"),
    (("halt", "NOPE"), "unknown symbol 'NOPE'"),
    (("frobnicate",), "unknown command 'frobnicate'"),
])
def test_bad_input_exits_1_with_the_reason_and_changes_nothing(running: tuple[Path, VenueProcess], args: tuple[str, ...], error: str) -> None:
    config, _ = running
    before = admin(config, "limits")
    rc, out = admin(config, *args)
    assert rc == 1 and error in out
    assert admin(config, "limits") == before


def test_operator_prices_and_collateral(running: tuple[Path, VenueProcess]) -> None:
    config, _ = running
    assert admin(config, "index", "BTC-USD", "100250.5") == (0, "index BTC-USD = 100,250.5")
    assert admin(config, "mark", "BTC-PERP", "100100.5") == (0, "mark BTC-PERP = 100,100.5")
    assert admin(config, "collateral", "FIRM2-A", "2500.25", "--ref", "wire 7") == (0, "FIRM2-A: +2,500.25 USD, balance 10,002,500.25 USD")
    rc, out = admin(config, "collateral", "FIRM2-A", "-20000000")
    assert rc == 1 and "withdrawal would leave collateral" in out


def test_a_client_without_this_runs_token_is_refused(running: tuple[Path, VenueProcess], tmp_path: Path) -> None:
    config, _ = running
    var = load_config(config).var_path()
    assert (var / TOKEN_NAME).stat().st_mode & 0o077 == 0 and (var / SOCKET_NAME).stat().st_mode & 0o077 == 0
    (tmp_path / SOCKET_NAME).symlink_to(var / SOCKET_NAME)
    (tmp_path / TOKEN_NAME).write_text("0" * 64)
    ok, text = request(tmp_path, "status", [], timeout_s=10)
    assert not ok and text.startswith("not authorised: wrong token")


def limit_rows(config: Path) -> set[tuple[str, str, str, str, str]]:
    """The reference database's limits table: (firm, account, symbol, name, value)."""
    db = load_config(config).var_path() / "reference.db"
    with sqlite3.connect(db) as conn:
        return set(conn.execute("SELECT firm, account, symbol, name, value FROM limits"))


def test_operator_state_survives_a_restart(tmp_path: Path) -> None:
    """Kill switches, run-time limits, marks and collateral are journaled commands: a
    restarted venue replays them, and does not deposit the opening collateral twice. The
    limits came from the config once, on the first start: a config edited afterwards
    changes nothing, and the reference database shows the limits in force."""
    config = write_config(tmp_path)
    proc = VenueProcess(config).start()
    try:
        assert ("", "", "", "max_order_qty", "10000") in limit_rows(config)  # seeded from the config
        assert admin(config, "kill", "account", "FIRM2-A")[0] == 0
        assert admin(config, "limit", "--firm", "FIRM1", "max_order_qty", "3")[0] == 0
        assert admin(config, "collateral", "FIRM1-A", "-1000")[0] == 0
        assert ("FIRM1", "", "", "max_order_qty", "3") in limit_rows(config)
    finally:
        assert proc.stop() == 0
    data = yaml.safe_load(config.read_text())
    data["risk"]["limits"] = [{"max_order_qty": 1, "firm": "FIRM1"}]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = VenueProcess(config).start()
    try:
        rc, out = admin(config, "status")
        assert rc == 0 and "kill switches: account FIRM2-A" in out
        assert admin(config, "limits", "--account", "FIRM1-A", "--symbol", "BTC-PERP")[1].splitlines()[2] == "max_order_qty = 3"
        assert admin(config, "limits", "--account", "FIRM2-A", "--symbol", "BTC-PERP")[1].splitlines()[2] == "max_order_qty = 10,000"
        rows = limit_rows(config)
        assert ("FIRM1", "", "", "max_order_qty", "3") in rows and ("", "", "", "max_order_qty", "10000") in rows
        rc, out = admin(config, "risk", "FIRM1-A")
        assert rc == 0 and "collateral           9,999,000 USD" in out
        a = logged_on(proc.port, "FIRM1")
        try:
            a.new_order("R1", "BTC-PERP", 1, 4, "100000", account="FIRM1-A")
            assert get(a.expect_type("8", t11="R1", t150="8"), 58) == "risk: order qty 4 > limit 3 lots"
        finally:
            a.close()
    finally:
        assert proc.stop() == 0


def test_a_refused_opening_limit_stops_the_first_start_before_anything_is_journaled(tmp_path: Path) -> None:
    """A limit the core would refuse (here a hand-edited reference database) stops the
    first start with the reason; nothing was journaled, so once it is put right the next
    start is still a first start and journals every opening limit and deposit."""
    config = write_config(tmp_path)
    db = load_config(config).var_path() / "reference.db"
    open_reference(load_config(config))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE limits SET value = '1.5' WHERE name = 'max_order_qty' AND firm = '' AND account = '' AND symbol = ''")
    with pytest.raises(RuntimeError, match=r"limits are refused: \[LIMIT default max_order_qty=1.5\]: max_order_qty must be a whole number"):
        VenueProcess(config).start()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE limits SET value = '10000' WHERE name = 'max_order_qty' AND firm = '' AND account = '' AND symbol = ''")
    proc = VenueProcess(config).start()
    try:
        assert admin(config, "limits", "--account", "FIRM1-A", "--symbol", "BTC-PERP")[1].splitlines()[2] == "max_order_qty = 10,000"
        rc, out = admin(config, "risk", "FIRM1-A")
        assert rc == 0 and "collateral           10,000,000 USD" in out
    finally:
        assert proc.stop() == 0
