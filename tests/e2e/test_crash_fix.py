"""kill -9 of the real venue under FIX load, 20 times: what a client was told is never lost.

`venue run` runs as a subprocess (journal with fsync per batch, snapshots every 300
commands). Four FIX sessions of three firms send orders, crossing orders and cancels from
their own threads, three reading their ExecutionReports as they go, one (FIRM3) leaving
them unread, so each crash throws its reports away. At a random (seeded) moment
the venue gets SIGKILL; it is restarted on the same files; the clients log on again with
their own sequence numbers, and the venue resends what they missed. Checked:
  - right after every restart, before new load, the venue's book (a FIX market data
    snapshot) equals the book of a clean in-process replay of its journal;
  - every ExecutionReport any client received, resends included, is the report a clean
    replay of the journal produces for that ExecID (so it is in the recovered state, and
    no ExecID was ever used for two reports);
  - every client's inbound sequence has no hole: each MsgSeqNum up to the last was
    received, resent, or gap-filled.
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fixclient import FixClient, get
from venue_harness import VenueProcess, client, write_config

from venue.app import new_core
from venue.config import load_config
from venue.core import VenueCore
from venue.events import Event, ExecReport, Fill
from venue.journal import JournalReader
from venue.refdata import open_reference
from venue.types import Side

KILLS = 20
SYMBOL = "BTC-PERP"
SESSIONS = {"FIRM1": "FIRM1-A", "FIRM1C": "FIRM1-A", "FIRM2": "FIRM2-A", "FIRM3": "FIRM3-A"}

Report = tuple[str, str, str, Decimal, Decimal]  # ClOrdID, ExecType, OrdStatus, LeavesQty, CumQty


class Trader:
    """One session's load: new orders around 100,000, some crossing, cancels of its own
    resting orders; every message it receives is kept (fixclient.seen). A trader that does
    not `read` leaves its reports in the socket until the crash throws them away, as a
    client that went down with the venue: it must get them by resend after its logon."""

    def __init__(self, port: int, who: str, rng: random.Random, *, read: bool = True) -> None:
        self.who, self.account, self.read = who, SESSIONS[who], read
        self.fix: FixClient = client(port, who)
        self.rng = rng
        self.n = 0
        self.resting: list[tuple[str, int]] = []  # (ClOrdID, side) acknowledged New, not yet seen done
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def logon(self) -> None:
        """Log on again with the same sequence numbers, then let the resend exchange run
        (the venue asks for the messages it lost, the client gap-fills them; the venue
        resends what the client missed) before anything new is sent."""
        self.fix.close()
        answer = self.fix.logon(timeout=15)
        assert get(answer, 35) == "A", f"{self.who} logon refused: {self.fix.logout_text}"
        self._drain(0.5)

    def start(self) -> None:
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, name=f"trader-{self.who}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                for _ in range(4):
                    self._send_one()
                if self.read:
                    self._drain(0.01)
                else:
                    time.sleep(0.01)
        except (ConnectionError, OSError):
            return  # the venue went away

    def _send_one(self) -> None:
        self.n += 1
        cl = f"{self.who}-{self.n}"
        r = self.rng.random()
        if r < 0.25 and self.resting:
            orig, side = self.resting.pop(self.rng.randrange(len(self.resting)))
            self.fix.cancel(cl, orig, SYMBOL, side)
            return
        side = self.rng.choice((1, 2))
        sign = 1 if side == 1 else -1
        if r < 0.8:
            price = 100_000 - sign * self.rng.randint(1, 40) * 5
        else:
            price = 100_000 + sign * self.rng.randint(0, 20) * 5
        self.fix.new_order(cl, SYMBOL, side, self.rng.randint(1, 5), str(price), account=self.account)

    def _drain(self, seconds: float) -> None:
        for m in self.fix.quiet(seconds):
            if get(m, 35) == "8":
                cl, et = get(m, 11) or "", get(m, 150)
                if et == "0" and get(m, 43) != "Y":
                    self.resting.append((cl, int(get(m, 54) or 1)))
                elif et in ("4", "F") and get(m, 39) in ("2", "4"):
                    self.resting = [x for x in self.resting if x[0] != cl]

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), f"{self.who}'s load thread did not stop"

    def reports(self) -> list[tuple[str, Report]]:
        """(ExecID, report) of every ExecutionReport received, resends included."""
        return [
            (get(m, 17) or "", (get(m, 11) or "", get(m, 150) or "", get(m, 39) or "", Decimal(get(m, 151) or "0"), Decimal(get(m, 14) or "0")))
            for m in self.fix.seen if get(m, 35) == "8"
        ]

    def holes(self) -> list[int]:
        """Inbound MsgSeqNums up to the last that were neither received nor gap-filled."""
        covered: set[int] = set()
        for m in self.fix.seen:
            seq = int(get(m, 34) or 0)
            if get(m, 35) == "4" and get(m, 123) == "Y":
                covered.update(range(seq, int(get(m, 36) or seq)))
            else:
                covered.add(seq)
        return [s for s in range(1, self.fix.next_in) if s not in covered]


class Replay:
    """The clean replay: a fresh core fed the journal in-process, incrementally."""

    def __init__(self, config: Path) -> None:
        self.cfg = load_config(config)
        self.core: VenueCore | None = None
        self.seq = 0
        self.reports: dict[str, Report] = {}

    def advance(self) -> None:
        if self.core is None:
            self.core = new_core(self.cfg, open_reference(self.cfg))
        inst = self.core.engine.books[SYMBOL].instrument
        for rec in JournalReader(self.cfg.var_path() / self.cfg.journal.dir).records(self.seq + 1):
            for eid, report in _reports(self.core.apply(rec.seq, rec.ts, rec.cmd), inst.qty):
                assert eid not in self.reports, f"the replay itself produced ExecID {eid} twice"
                self.reports[eid] = report
            self.seq = rec.seq
        self.core.drain_book_deltas(self.seq, 0)

    def book(self) -> dict[str, list[tuple[Decimal, Decimal]]]:
        assert self.core is not None
        b = self.core.engine.books[SYMBOL]
        inst = b.instrument
        return {side: [(inst.price(p), inst.qty(q)) for p, q in b.depth(s)] for side, s in (("0", Side.BUY), ("1", Side.SELL))}


def _reports(events: list[Event], qty: Any) -> list[tuple[str, Report]]:
    out: list[tuple[str, Report]] = []
    for e in events:
        if isinstance(e, ExecReport):
            out.append((str(e.exec_id), (e.order.cl_ord_id, e.exec_type.value, e.status.value, qty(e.leaves_qty), qty(e.cum_qty))))
        elif isinstance(e, Fill):
            for view, eid, leaves, cum in ((e.taker, e.taker_exec_id, e.taker_leaves, e.taker_cum), (e.maker, e.maker_exec_id, e.maker_leaves, e.maker_cum)):
                out.append((str(eid), (view.cl_ord_id, "F", "2" if leaves == 0 else "1", qty(leaves), qty(cum))))
    return out


def market_book(fix: FixClient, req: str) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """The venue's full book for SYMBOL from a market data snapshot (35=W)."""
    fix.send("V", [(262, req), (263, 0), (264, 0), (267, 2), (269, 0), (269, 1), (146, 1), (55, SYMBOL)])
    snap = fix.expect_type("W", timeout=10, t262=req)
    book: dict[str, list[tuple[Decimal, Decimal]]] = {"0": [], "1": []}
    side: str | None = None
    price: Decimal | None = None
    for tag, value in snap.pairs:
        if tag == b"269":
            side = value.decode()
        elif tag == b"270":
            price = Decimal(value.decode())
        elif tag == b"271" and side in book and price is not None:
            book[side].append((price, Decimal(value.decode())))
    return book


def _snapshots_often(data: dict[str, Any]) -> None:
    data["snapshots"] = {"every": 300, "keep": 2}


@pytest.mark.slow
def test_kill_9_under_fix_load_loses_no_report(tmp_path: Path) -> None:
    rng = random.Random(5_2026)
    config = write_config(tmp_path, _snapshots_often)
    replay = Replay(config)
    venue = VenueProcess(config).start()
    traders = [Trader(venue.port, who, random.Random(rng.random()), read=who != "FIRM3") for who in SESSIONS]
    books: list[dict[str, list[tuple[Decimal, Decimal]]]] = []
    try:
        for kill in range(KILLS + 1):
            for t in traders:
                t.logon()
            replay.advance()
            watcher = traders[kill % len(traders)]
            book = market_book(watcher.fix, f"MD{kill}")
            assert book == replay.book(), f"restart {kill}: the venue's book is not the replay's"
            books.append(book)
            if kill == KILLS:
                break
            for t in traders:
                t.start()
            time.sleep(rng.uniform(0.4, 1.6))
            assert venue.proc is not None
            venue.proc.kill()
            venue.proc.wait(30)
            for t in traders:
                t.halt()
            venue = VenueProcess(config).start(timeout=60)
        for t in traders:  # resends after the last restart arrive with the last logon
            t.fix.quiet(1.0)
    finally:
        for t in traders:
            t.stop.set()
            t.fix.close()
        venue.stop()

    replay.advance()
    received = [r for t in traders for r in t.reports()]
    assert len(received) > 2_000, f"only {len(received)} reports: the load was too light to mean anything"
    wrong = [(eid, rep, replay.reports.get(eid)) for eid, rep in received if replay.reports.get(eid) != rep]
    assert not wrong, f"{len(wrong)} reports a client received differ from the journal's, e.g. {wrong[:3]}"
    for t in traders:
        assert t.holes() == [], f"{t.who}: inbound MsgSeqNums never received nor gap-filled: {t.holes()[:10]}"
    resent = sum(1 for t in traders for m in t.fix.seen if get(m, 35) == "8" and get(m, 43) == "Y")
    assert resent > 100, f"only {resent} reports came by resend: the crashes never cost a client its reports"
    assert books[-1]["0"] and books[-1]["1"], "the books compared were empty"
