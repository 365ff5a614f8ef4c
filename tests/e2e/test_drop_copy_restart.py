"""A venue restart in the middle of trading loses no copy: the real venue as a subprocess,
killed with SIGKILL while copies are in flight, restarted on the same files. Members'
sessions reconnect by themselves; what was stored reaches them by FIX resend, what was
still in a buffer is regenerated from the journal. The truth is the journal itself: a
fresh core replaying it gives every execution and its ExecID."""

from __future__ import annotations

import time
from pathlib import Path

from fixclient import FixClient, get
from test_drop_copy import add_clearer2, copy_ids, eventually, logged_on, member
from venue_harness import VenueProcess, write_config

from drop_copy.entitlement import entitlements_from_reference
from drop_copy.messages import copies
from drop_copy.replay import JournalSource, Replay
from venue.app import new_core
from venue.config import load_config
from venue.fix.reports import Renderer
from venue.refdata import open_reference


def expected_copies(config: Path) -> dict[str, list[str]]:
    """Per member, the ExecIDs of every copy it must hold, from the journal."""
    cfg = load_config(config)
    ref = open_reference(cfg)
    ent = entitlements_from_reference(ref, cfg)
    replay = Replay(JournalSource(cfg.var_path() / cfg.journal.dir), lambda: new_core(cfg, ref))
    renderer = Renderer({i.symbol: i for i in ref.instruments})
    out: dict[str, list[str]] = {m.sender_comp_id: [] for m in ent.members}
    for _, events in replay.advance():
        for c in copies(events, renderer):
            for m in ent.members_for(c.firm, c.account):
                if m.include_rejects or c.exec_type.value != "8":
                    out[m.sender_comp_id].append(str(c.exec_id))
    return out


def burst(a: FixClient, b: FixClient, n: int, tag: str, wait_for: int | None = None) -> None:
    """n crossing pairs, sent at once; return when pair `wait_for` (default: the last) has
    traded: it is journaled and acknowledged, later ones may still be in flight."""
    for i in range(n):
        a.new_order(f"{tag}B{i}", "BTC-PERP", 1, 2, "100000", account="FIRM1-A")
        b.new_order(f"{tag}S{i}", "BTC-PERP", 2, 2, "100000", account="FIRM2-A")
    last = n - 1 if wait_for is None else wait_for
    b.expect_type("8", timeout=10, t11=f"{tag}S{last}", t150="F")


def test_a_venue_killed_mid_stream_loses_no_copy(tmp_path: Path) -> None:
    config = write_config(tmp_path, add_clearer2)
    port = load_config(config).venue.drop_copy.port
    venue = VenueProcess(config).start()
    c1 = member(port, "CLEARER1", tmp_path)
    c2 = member(port, "CLEARER2", tmp_path)
    firms: list[FixClient] = []
    try:
        assert c1.wait_logged_on(15) and c2.wait_logged_on(15)
        c2.stop()  # CLEARER2 is away for the first half: its copies wait in its store
        a, b = logged_on(venue.port, "FIRM1"), logged_on(venue.port, "FIRM2")
        firms = [a, b]
        burst(a, b, 300, "X", wait_for=100)
        assert venue.proc is not None
        venue.proc.kill()  # in the middle of the burst, copies still on their way to CLEARER1
        venue.proc.wait(10)
        before = expected_copies(config)
        assert len(before["CLEARER1"]) >= 4 * 101 and len(before["CLEARER2"]) >= 2 * 101
        a.close()
        b.close()
        venue = VenueProcess(config).start()
        for f in firms:  # the same sessions, resuming their sequence numbers
            assert get(f.logon(), 35) == "A", f.logout_text
        for f in firms:
            f.quiet(1.0)  # settle the resend and gap fill of what the kill cut off before sending more
        burst(a, b, 10, "Y")
        c2 = member(port, "CLEARER2", tmp_path)
        want = expected_copies(config)
        assert want["CLEARER1"][:len(before["CLEARER1"])] == before["CLEARER1"], "a restart changed the journal's executions"
        assert eventually(lambda: sorted(copy_ids(c1)) == sorted(want["CLEARER1"]), 30), (len(copy_ids(c1)), len(want["CLEARER1"]))
        assert eventually(lambda: sorted(copy_ids(c2)) == sorted(want["CLEARER2"]), 30), (len(copy_ids(c2)), len(want["CLEARER2"]))
        time.sleep(0.5)
        assert sorted(copy_ids(c1)) == sorted(want["CLEARER1"]), "a copy arrived twice"
        assert sorted(copy_ids(c2)) == sorted(want["CLEARER2"]), "a copy arrived twice"
        assert {m[448] for m in c2.copies()} == {"FIRM2"}
        rows = (tmp_path / "CLEARER1.csv").read_text().splitlines()
        assert len(rows) == 1 + len(want["CLEARER1"])
    finally:
        c1.stop()
        c2.stop()
        for f in firms:
            f.close()
        venue.stop()
