"""Snapshots: restore + replay of the rest reaches exactly the state, and the events, of
running the whole stream; damaged or foreign snapshots are refused, never half-used."""

from __future__ import annotations

import io
import os
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from journal_streams import stream
from matching_support import ACCOUNTS, BTC, BUY, ETH, instrument, new_engine, order

from venue import snapshot
from venue.commands import Command, NewOrder
from venue.core import VenueCore
from venue.events import Event
from venue.limits import LimitRule, RiskConfig
from venue.sequencer import Core
from venue.snapshot import (
    _HEADER,
    FORMAT_VERSION,
    MAGIC,
    PACE_ROWS,
    SnapshotError,
    _PlainPickler,
    capture,
    encode,
    holders,
    load,
    load_latest,
    restore,
    snapshot_paths,
    state_digest,
    state_of,
    uncovered,
    write,
)
from venue.snapshot_fork import Pacer


def run(core: Core, cmds: list[tuple[int, int, Command]]) -> list[Event]:
    out: list[Event] = []
    for seq, ts, cmd in cmds:
        out += core.apply(seq, ts, cmd)
    return out


@pytest.mark.parametrize(("seed", "at"), [(1, 1), (2, 700), (3, 1500), (4, 2999), (5, 2000)])
def test_restore_then_replay_equals_the_whole_run(tmp_path: Path, seed: int, at: int) -> None:
    cmds = list(stream(seed, 3000))
    whole = new_engine()
    run(whole, cmds[:at])
    write(tmp_path, capture(whole, at, cmds[at - 1][1]))
    tail_events = run(whole, cmds[at:])

    restored = new_engine()
    restore(restored, load(next(snapshot_paths(tmp_path))[1]))
    restored.validate()
    assert run(restored, cmds[at:]) == tail_events  # same events, ExecIDs included
    assert state_of(restored) == state_of(whole)


def test_state_of_sees_a_difference() -> None:
    """The equality the tests rely on is not vacuous: one more order changes it."""
    cmds = list(stream(9, 500))
    i = next(i for i in range(300, 500) if isinstance(cmds[i][2], NewOrder))
    a, b = new_engine(), new_engine()
    run(a, cmds[:i])
    run(b, cmds[:i + 1])
    assert state_of(a) != state_of(b)


def test_snapshot_preserves_priority_and_done_orders(tmp_path: Path) -> None:
    cmds = list(stream(11, 2500))
    e = new_engine()
    run(e, cmds)
    write(tmp_path, capture(e, 2500, cmds[-1][1]))
    r = new_engine()
    restore(r, load(next(snapshot_paths(tmp_path))[1]))
    for symbol, book in e.books.items():
        assert book.ladder(50) == r.books[symbol].ladder(50)
    done = [k for k, o in e.by_cl_ord_id.items() if o.order_id not in e.orders]
    assert done, "the stream should leave done orders"
    for k in done:
        a, b = e.by_cl_ord_id.get(*k), r.by_cl_ord_id.get(*k)
        assert a is not None and b is not None
        assert (a.view, a.status, a.cum, a.cost, a.leaves) == (b.view, b.status, b.cum, b.cost, b.leaves)
    # one object per order, shared by every index that holds it
    for k, o in r.by_cl_ord_id.items():
        if o.order_id in r.orders:
            assert r.orders[o.order_id] is o


def test_keeps_only_the_newest(tmp_path: Path) -> None:
    e = new_engine()
    for seq in (10, 20, 30, 40):
        write(tmp_path, capture(e, seq, seq), keep=2)
    assert [s for s, _ in snapshot_paths(tmp_path)] == [40, 30]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_damaged_snapshot_is_refused_and_an_older_one_used(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    e = new_engine()
    write(tmp_path, capture(e, 5, 5), keep=3)
    write(tmp_path, capture(e, 9, 9), keep=3)
    newest = next(snapshot_paths(tmp_path))[1]
    data = bytearray(newest.read_bytes())
    if damage == "flip":
        data[-10] ^= 0x01
    elif damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[:4] = b"JUNK"
    newest.write_bytes(bytes(data))
    with pytest.raises(SnapshotError):
        load(newest)
    assert [s.seq for s in load_latest(tmp_path, 100)] == [5]
    assert "snapshot unusable" in caplog.text


def test_snapshot_past_the_journal_end_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, capture(new_engine(), 50, 50))
    assert list(load_latest(tmp_path, 49)) == []


def test_restore_needs_a_fresh_core(tmp_path: Path) -> None:
    cmds = list(stream(1, 200))
    e = new_engine()
    run(e, cmds)
    write(tmp_path, capture(e, 200, 0))
    with pytest.raises(SnapshotError, match="freshly built"):
        restore(e, load(next(snapshot_paths(tmp_path))[1]))


def test_instruments_must_match(tmp_path: Path) -> None:
    e = new_engine()
    write(tmp_path, capture(e, 1, 1))
    other = new_engine()
    del other.books["ETH-PERP"]
    with pytest.raises(SnapshotError, match="configured instruments"):
        restore(other, load(next(snapshot_paths(tmp_path))[1]))


@pytest.mark.parametrize("table, field", [("ENGINE_FIELDS", "gtd"), ("BOOK_FIELDS", "buy_stops")])
def test_engine_state_it_does_not_know_is_refused(monkeypatch: pytest.MonkeyPatch, table: str, field: str) -> None:
    """An attribute the engine or a book has and snapshot.py does not list (as a field added
    to the engine's source would be): the compiled core takes no new attributes at run time,
    so the test takes one away from the list instead."""
    known = dict(getattr(snapshot, table))
    del known[field]
    monkeypatch.setattr(snapshot, table, known)
    with pytest.raises(SnapshotError, match=field):
        capture(new_engine(), 1, 1)


class Tally:
    """A state holder: counts commands by type, as a risk engine keeps its tallies."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def snapshot_state(self) -> Any:
        return dict(self.counts)

    def restore_state(self, state: Any) -> None:
        self.counts = dict(state)


class WrappedCore:
    """A core shaped like VenueCore: an engine and a holder behind one apply()."""

    def __init__(self) -> None:
        self.engine = new_engine()
        self.tally = Tally()

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        name = type(cmd).__name__
        self.tally.counts[name] = self.tally.counts.get(name, 0) + 1
        return self.engine.apply(seq, ts, cmd)

    def next_expiry(self) -> int | None:
        return self.engine.next_expiry()

    def drain_book_deltas(self, seq: int, ts: int) -> list[Any]:
        return self.engine.drain_book_deltas(seq, ts)


def test_state_holders_take_part(tmp_path: Path) -> None:
    cmds = list(stream(4, 800))
    whole = WrappedCore()
    run(whole, cmds[:300])
    assert [name for name, _ in holders(whole)] == ["core.tally"]
    write(tmp_path, capture(whole, 300, cmds[299][1]))
    run(whole, cmds[300:])
    r = WrappedCore()
    restore(r, load(next(snapshot_paths(tmp_path))[1]))
    run(r, cmds[300:])
    assert r.tally.counts == whole.tally.counts and sum(r.tally.counts.values()) == 800
    assert state_of(r) == state_of(whole)


def test_holder_state_must_be_plain_data(tmp_path: Path) -> None:
    core = WrappedCore()
    core.tally.counts["x"] = object()  # type: ignore[assignment]
    with pytest.raises(SnapshotError, match="plain data"):
        write(tmp_path, capture(core, 1, 1))


def test_snapshot_of_a_core_with_no_engine_is_refused() -> None:
    with pytest.raises(SnapshotError, match="no MatchingEngine"):
        capture(object(), 1, 1)


def test_wrapping_core_with_state_outside_any_holder_is_refused() -> None:
    """A core like VenueCore with a throttle dict and a risk engine that are not state
    holders: a snapshot would lose them, so none is taken (restart replays it all)."""

    class Risk:
        def __init__(self) -> None:
            self.exposure: dict[str, int] = {}

    core = WrappedCore()
    core.buckets = {}  # type: ignore[attr-defined]
    core.risk = Risk()  # type: ignore[attr-defined]
    with pytest.raises(SnapshotError, match=r"WrappedCore.buckets, WrappedCore.risk"):
        capture(core, 1, 1)


@pytest.mark.parametrize("at", [400, 1700])
def test_venue_core_restores_risk_and_throttle_state(tmp_path: Path, at: int) -> None:
    """The core the venue runs: risk state and throttle buckets ride in the snapshot
    through VenueCore's snapshot_state/restore_state."""
    def build() -> VenueCore:
        risk = RiskConfig(limits=[LimitRule(max_order_qty=8, max_open_orders=40, max_msgs_per_s=400, im_rate=Decimal("0.1"))],
                          collateral={a: Decimal(1_000) for a in ACCOUNTS})
        return VenueCore([instrument(BTC), instrument(ETH)], ACCOUNTS, risk)

    cmds = list(stream(21, 2500, operator=True))
    whole = build()
    run(whole, cmds[:at])
    assert uncovered(whole) == []
    write(tmp_path, capture(whole, at, cmds[at - 1][1]))
    tail_events = run(whole, cmds[at:])
    restored = build()
    restore(restored, load(next(snapshot_paths(tmp_path))[1]))
    assert run(restored, cmds[at:]) == tail_events
    assert state_of(restored) == state_of(whole)
    restored.validate()


def test_capture_is_a_consistent_copy(tmp_path: Path) -> None:
    """The file is encoded in another thread while the venue goes on: commands applied after
    capture() must not leak into it."""
    cmds = list(stream(13, 3000))
    e = new_engine()
    run(e, cmds[:1500])
    at_once = encode(capture(e, 1500, 0))
    later = capture(e, 1500, 0)
    run(e, cmds[1500:])
    assert encode(later) == at_once


def test_a_paced_snapshot_is_the_same_bytes_and_paces_all_along() -> None:
    """Capture and encode call the pace between stretches of PACE_ROWS orders and between
    pickle frames; pacing changes when the work is done, never what it writes."""
    e = new_engine()
    cmds = list(stream(13, 3000))
    run(e, cmds)
    run(e, [(len(cmds) + i + 1, 0, order(f"rest{i}", BUY, 1, 50 + i % 40)) for i in range(1000)])
    calls = 0

    def pace() -> None:
        nonlocal calls
        calls += 1

    paced = encode(capture(e, 4000, 0, pace), pace)
    assert paced == encode(capture(e, 4000, 0))
    remembered = len(e.by_cl_ord_id)
    assert len(e.orders) > PACE_ROWS and remembered > 2 * PACE_ROWS
    frames = len(paced) // (64 << 10)
    assert calls >= len(e.orders) // PACE_ROWS * 2 + remembered // PACE_ROWS + frames


class FakeCpu:
    """A thread's CPU clock that the work advances and sleeping does not."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.cpu

    def sleep(self, s: float) -> None:
        self.slept.append(s)


def test_the_pacer_sleeps_off_each_slice_to_keep_its_share_of_a_core() -> None:
    cpu = FakeCpu()
    pace = Pacer(0.2, 0.001, clock=cpu.clock, sleep=cpu.sleep)
    for _ in range(1010):  # 10.1 ms of work, in steps of 10 us
        cpu.cpu += 0.00001
        pace()
    assert cpu.slept == pytest.approx([0.004] * 10)  # a slice of 1 ms, then 4 ms asleep: 20%
    assert cpu.cpu / (cpu.cpu + sum(cpu.slept)) == pytest.approx(0.2, abs=0.01)


def test_a_pacer_stops_sleeping_once_hurried_or_its_pipe_ends() -> None:
    for hurry in ("byte", "end"):
        read, write = os.pipe()
        os.set_blocking(read, False)
        cpu = FakeCpu()
        pace = Pacer(0.5, 0.001, hurry_fd=read, clock=cpu.clock, sleep=cpu.sleep)
        for _ in range(5):
            cpu.cpu += 0.001
            pace()
        assert len(cpu.slept) == 5
        if hurry == "byte":
            os.write(write, b"!")
        else:
            os.close(write)
        for _ in range(5):
            cpu.cpu += 0.001
            pace()
        assert len(cpu.slept) == 5
        os.close(read)
        if hurry == "byte":
            os.close(write)


def test_a_pacer_with_the_whole_core_never_sleeps_and_a_share_must_be_one() -> None:
    cpu = FakeCpu()
    pace = Pacer(1.0, 0.001, clock=cpu.clock, sleep=cpu.sleep)
    for _ in range(100):
        cpu.cpu += 0.001
        pace()
    assert cpu.slept == []
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="not in"):
            Pacer(bad)


def test_state_digest_ignores_object_identity(tmp_path: Path) -> None:
    """Restored strings are fresh objects where the original shares one; the digest (which
    two processes compare) must not see that, as pickle bytes would."""
    cmds = list(stream(17, 1200))
    whole = new_engine()
    run(whole, cmds)
    write(tmp_path, capture(whole, 1200, 0))
    restored = new_engine()
    restore(restored, load(next(snapshot_paths(tmp_path))[1]))
    assert state_digest(restored) == state_digest(whole)
    run(whole, list(stream(18, 1210))[1200:])
    assert state_digest(restored) != state_digest(whole)


def test_holder_that_cannot_restore_its_state_is_a_snapshot_error(tmp_path: Path) -> None:
    core = WrappedCore()
    write(tmp_path, capture(core, 1, 1))
    other = WrappedCore()
    other.tally.restore_state = lambda state: {}["missing"]  # type: ignore[method-assign]
    with pytest.raises(SnapshotError, match=r"core.tally.restore_state failed: KeyError"):
        restore(other, load(next(snapshot_paths(tmp_path))[1]))


@pytest.mark.parametrize("entry", [b"", b"\x01\x00", bytes([2]) + b"\x00" * 12])
def test_snapshot_with_a_bad_order_entry_does_not_fit(tmp_path: Path, entry: bytes) -> None:
    """A well-checksummed file whose contents this code cannot read (empty, truncated, not
    a NewOrder) is refused as a whole, not half used."""
    e = new_engine()
    run(e, list(stream(23, 300)))
    write(tmp_path, capture(e, 300, 0))
    path = next(snapshot_paths(tmp_path))[1]
    body = load(path).body
    body["orders"][0] = (*body["orders"][0][:7], entry, *body["orders"][0][8:])
    out = io.BytesIO()
    _PlainPickler(out, protocol=5).dump(body)
    data = out.getvalue()
    path.write_bytes(_HEADER.pack(MAGIC, FORMAT_VERSION, 300, 0, len(data), zlib.crc32(data)) + data)
    with pytest.raises(SnapshotError, match="does not fit this core"):
        restore(new_engine(), load(path))
