"""Shared by the drop-copy unit tests: a venue config with two clearing members, and a
hand-run sequencer that journals to a list and publishes to a feed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import yaml

from venue.commands import Command, NewOrder
from venue.config import DEFAULT_CONFIG, VenueConfig, load_config
from venue.events import Event
from venue.matching import MatchingEngine
from venue.types import OrdType, Side

T0 = 1_795_000_000_000_000  # µs, a fixed trading day (2026-11-18 UTC)


def two_member_config(tmp_path: Path, *, oe_port: int = 0, dc_port: int = 0, **clearer2: object) -> VenueConfig:
    """The demo venue plus CLEARER2, who clears FIRM2 only. Ports 0 unless given."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["venue"]["var_dir"] = str(tmp_path / "var")
    data["venue"]["order_entry"]["port"] = oe_port
    data["venue"]["drop_copy"]["port"] = dc_port
    data["clearing_members"].append({
        "id": "CLEARER2", "sender_comp_id": "CLEARER2", "username": "clearer2", "password": "clearer2-secret",
        "firms": ["FIRM2"], **clearer2,
    })
    path = tmp_path / "venue.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def order(firm: str, cl_ord_id: str, side: Side, qty: int, price: int | None, symbol: str = "BTC-PERP", account: str | None = None) -> NewOrder:
    return NewOrder(session=firm, firm=firm, account=account or f"{firm}-A", cl_ord_id=cl_ord_id, symbol=symbol, side=side,
                    ord_type=OrdType.LIMIT if price is not None else OrdType.MARKET, qty=qty, price=price)


class ListJournal:
    """A journal in a list: what the hand-run sequencer applied, readable from any thread."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, Command]] = []
        self.lock = threading.Lock()

    def records(self, from_seq: int = 1) -> Iterator[tuple[int, int, Command]]:
        with self.lock:
            return iter(self.items[from_seq - 1:])

    def follow(self, after_seq: int) -> ListReader:
        return ListReader(self, after_seq)


class ListReader:
    """ListJournal's incremental reader (drop_copy/replay.py RecordReader)."""

    def __init__(self, journal: ListJournal, after_seq: int) -> None:
        self.journal = journal
        self.position = after_seq

    def read(self, until_seq: int) -> list[tuple[int, int, Command]]:
        with self.journal.lock:
            out = self.journal.items[self.position:until_seq]
        if out:
            self.position = out[-1][0]
        return out


class HandSequencer:
    """Stamps, applies, journals (before publishing, like the real one) and publishes."""

    def __init__(self, cfg: VenueConfig, publish: Callable[[Sequence[Event]], None] | None = None) -> None:
        self.engine = new_core(cfg)
        self.journal = ListJournal()
        self.publish = publish
        self.seq = 0
        self.events: list[Event] = []

    def submit(self, *cmds: Command) -> list[Event]:
        batch: list[Event] = []
        for cmd in cmds:
            self.seq += 1
            ts = T0 + self.seq
            batch += self.engine.apply(self.seq, ts, cmd)
            with self.journal.lock:
                self.journal.items.append((self.seq, ts, cmd))
        self.events += batch
        if batch and self.publish is not None:
            self.publish(batch)
        return batch


def new_core(cfg: VenueConfig) -> MatchingEngine:
    return MatchingEngine(cfg.instruments, cfg.accounts())


def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `cond` until true or `timeout` seconds pass; the caller asserts the result."""
    done = threading.Event()
    deadline = timeout
    step = 0.005
    while deadline > 0:
        if cond():
            return True
        done.wait(step)
        deadline -= step
    return cond()


def fields(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.split("\x01"):
        k, sep, v = part.partition("=")
        if sep and k.isdigit():
            out.setdefault(int(k), v)
    return out
