"""Recovery: a sequencer journals and snapshots; a restart rebuilds exactly its state."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pickle
import signal
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from journal_streams import stream
from matching_support import BUY, new_engine, order

from venue import snapshot_fork
from venue.events import Event, ExecReport, Fill
from venue.journal import JournalConfig, segment_paths
from venue.recovery import Recovered, Snapshotter, recover
from venue.sequencer import Sequencer
from venue.snapshot import (
    _HEADER,
    FORMAT_VERSION,
    MAGIC,
    Captured,
    Pace,
    SnapshotConfig,
    capture,
    load,
    restore,
    snapshot_paths,
    state_digest,
    state_of,
    write_tmp,
)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `cond` on the loop until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.001)


async def run_venue(var: Path, n: int, *, seed: int = 1, every: int = 250, start: int = 0, fork: bool = True) -> tuple[Sequencer, list[Event]]:
    """A sequencer over a recovered core: journal, snapshot every `every` (in a child, or in
    a worker thread), feed commands start..n of the stream, stop cleanly without a final
    snapshot. Every 100 commands, the feed waits for them to be published and for a
    snapshot in progress, so snapshots fall about every `every` commands however slow the
    machine (else the core may run through the whole stream before the first completes)."""
    rec = recover(new_engine, var / "journal", var / "snapshots")
    seq = Sequencer(rec.core, journal=rec.journal, next_seq=rec.next_seq, last_ts=rec.last_ts, max_batch=64, max_unpublished=64)
    published: list[Event] = []
    seq.subscribers.append(published.extend)
    snapper = Snapshotter(seq, var / "snapshots", SnapshotConfig(every=every, keep=3, fork=fork))
    assert snapper.fork is fork
    seq.subscribers.append(snapper)
    task = asyncio.create_task(seq.run())
    for i, (_, _, cmd) in enumerate(stream(seed, n)):
        if i < start:
            continue
        if i % 100 == 99:
            await seq.call(cmd)  # all before it published: a snapshot due has started
            await until(lambda: not snapper.busy)
        else:
            seq.submit(cmd)
    seq.stop()
    await asyncio.wait_for(task, 30)
    await asyncio.wait_for(snapper.close(final=False), 30)
    rec.journal.close()
    return seq, published


@pytest.mark.parametrize("fork", [True, False], ids=["child", "thread"])
async def test_restart_reaches_the_same_state(tmp_path: Path, fork: bool) -> None:
    live, _ = await run_venue(tmp_path, 2000, fork=fork)
    assert len(list(snapshot_paths(tmp_path / "snapshots"))) >= 1
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert rec.snapshot is not None and rec.replayed < 2000
    assert (rec.next_seq, rec.last_ts) == (live.next_seq, live.last_ts)
    assert state_of(rec.core) == state_of(live.core)
    assert state_digest(rec.core) == state_digest(live.core)
    full = recover(new_engine, tmp_path / "journal", tmp_path / "nowhere")
    assert full.snapshot is None and full.replayed == 2000
    assert state_of(full.core) == state_of(live.core)


async def test_restarts_continue_ids_without_reuse(tmp_path: Path) -> None:
    _, first = await run_venue(tmp_path, 1200, start=0)
    second_seq, second = await run_venue(tmp_path, 2400, start=1200)
    ids = [x for e in first + second for x in _exec_ids(e)]
    assert ids and len(ids) == len(set(ids))
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert rec.next_seq == 2401 and state_of(rec.core) == state_of(second_seq.core)


def _exec_ids(e: Event) -> list[int]:
    if isinstance(e, ExecReport):
        return [e.exec_id]
    if isinstance(e, Fill):
        return [e.taker_exec_id, e.maker_exec_id]
    return []


async def test_damaged_newest_snapshot_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    live, _ = await run_venue(tmp_path, 1500, every=200)
    snaps = list(snapshot_paths(tmp_path / "snapshots"))
    assert len(snaps) >= 2
    newest = snaps[0][1]
    newest.write_bytes(newest.read_bytes()[:-7])
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert rec.snapshot == snaps[1][1]
    assert state_of(rec.core) == state_of(live.core)
    assert "snapshot unusable" in caplog.text


async def test_snapshot_of_another_journal_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await run_venue(tmp_path / "a", 800, seed=1)
    live, _ = await run_venue(tmp_path / "b", 900, seed=2)
    rec = recover(new_engine, tmp_path / "b" / "journal", tmp_path / "a" / "snapshots")
    assert rec.snapshot is None and rec.replayed == 900
    assert state_of(rec.core) == state_of(live.core)
    assert "not using snapshot" in caplog.text


async def test_torn_tail_is_cut_at_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await run_venue(tmp_path, 700)
    seg = segment_paths(tmp_path / "journal")[-1][1]
    os.truncate(seg, seg.stat().st_size - 5)
    with caplog.at_level(logging.WARNING):
        rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert rec.next_seq == 700 and "torn tail" in caplog.text
    # the state is the full replay of the 699 whole records, without snapshots
    clean = recover(new_engine, tmp_path / "journal", tmp_path / "none")
    assert state_of(rec.core) == state_of(clean.core)


async def test_final_snapshot_on_clean_stop(tmp_path: Path) -> None:
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots", JournalConfig())
    seq = Sequencer(rec.core, journal=rec.journal, next_seq=rec.next_seq, last_ts=rec.last_ts)
    snapper = Snapshotter(seq, tmp_path / "snapshots", SnapshotConfig(every=0))
    seq.subscribers.append(snapper)
    task = asyncio.create_task(seq.run())
    for _, _, cmd in stream(3, 300):
        seq.submit(cmd)
    seq.stop()
    await asyncio.wait_for(task, 30)
    await asyncio.wait_for(snapper.close(), 30)
    rec.journal.close()
    again = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert again.snapshot is not None and again.replayed == 0 and again.next_seq == 301
    assert state_of(again.core) == state_of(seq.core)



async def test_snapshot_failing_half_way_through_restore_leaves_a_pristine_core(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The engine part of the snapshot restores, then its state holders do not match this
    core: recovery must go on from a new core, not the half-restored one."""
    live, _ = await run_venue(tmp_path, 900)
    (newest, *older) = [p for _, p in snapshot_paths(tmp_path / "snapshots")]
    for p in older:
        p.unlink()
    loaded = load(newest)
    body = pickle.dumps(dict(loaded.body, holders={"core.tally": {"NewOrder": 1}}), protocol=5)
    newest.write_bytes(_HEADER.pack(MAGIC, FORMAT_VERSION, loaded.seq, loaded.ts, len(body), zlib.crc32(body)) + body)
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert "this core has []" in caplog.text
    assert rec.snapshot is None and rec.replayed == 900
    assert state_of(rec.core) == state_of(live.core)


class HeldJournal:
    """A journal stub whose writes wait for the test: the first one's until `release_first`,
    and any reaching `hold_from` until `gate`."""

    def __init__(self, hold_from: int) -> None:
        import threading

        self.hold_from, self.gate, self.held = hold_from, threading.Event(), threading.Event()
        self.first, self.release_first = threading.Event(), threading.Event()
        self.pending: list[int] = []
        self.syncs = True

    def append_batch(self, first_seq: int, stamps: Sequence[int], cmds: Sequence[object]) -> None:
        self.pending += range(first_seq, first_seq + len(cmds))

    def take(self) -> list[int]:
        taken, self.pending = self.pending, []
        return taken

    def write(self, taken: Sequence[list[int]]) -> None:
        seqs = [s for t in taken for s in t]
        if seqs and seqs[-1] >= self.hold_from:
            self.held.set()
            assert self.gate.wait(10), "gate never opened"
        elif not self.first.is_set():
            self.first.set()
            assert self.release_first.wait(10), "first write never released"


@pytest.mark.parametrize("fork", [True, False], ids=["child", "thread"])
async def test_a_snapshot_ahead_of_the_journal_waits_for_it(tmp_path: Path, fork: bool) -> None:
    """The sequencer runs batch 3 through the core while batches 1-2 are written; a
    snapshot taken when they are published holds batch 3's state, so it must not reach disk
    before batch 3's journal write completes: a crash in between would recover an order no
    client was told of. A child writes its file meanwhile, but the rename waits."""
    journal = HeldJournal(hold_from=3)
    seqr = Sequencer(new_engine(), journal=journal, max_batch=1)  # type: ignore[arg-type]
    snaps = Snapshotter(seqr, tmp_path, SnapshotConfig(every=1, fork=fork), last_seq=0)
    seqr.subscribers.append(snaps)
    task = asyncio.create_task(seqr.run())
    seqr.submit(order("o1", BUY, 1, 90))  # two at once: a lone batch on a quiet journal is written on the loop
    seqr.submit(order("o2", BUY, 1, 90))
    await asyncio.wait_for(asyncio.to_thread(journal.first.wait, 10), 15)  # batches 1-2 are being written
    seqr.submit(order("o3", BUY, 1, 91))
    await until(lambda: seqr.next_seq == 4)
    journal.release_first.set()
    await asyncio.wait_for(asyncio.to_thread(journal.held.wait, 10), 15)
    if fork:  # the child has written seq 3's file and exited
        await until(lambda: snaps._child_exit is not None and snaps._child_exit.done())
        assert snaps._child is not None and snaps._child.tmp.exists()
    else:
        await asyncio.sleep(0.2)  # batches 1-2 published, their snapshot captured at seq 3
    assert seqr.durable_seq == 2 and list(snapshot_paths(tmp_path)) == []
    journal.gate.set()
    seqr.stop()
    await asyncio.wait_for(task, 10)
    await asyncio.wait_for(snaps.close(final=False), 10)
    assert [seq for seq, _ in snapshot_paths(tmp_path)] == [3]
    assert not list(tmp_path.glob("*.tmp"))
    rec = new_engine()
    restore(rec, load(tmp_path / f"{3:020d}.snap"))
    assert state_digest(rec) == state_digest(seqr.core)


async def start_sequencer(var: Path, every: int, fork: bool = True, cpu_share: float = SnapshotConfig().cpu_share,
                          ) -> tuple[Sequencer, Snapshotter, asyncio.Task[None], Recovered]:
    """A journaled sequencer on a fresh engine with a Snapshotter; no final snapshot is
    taken unless the test asks for one."""
    rec = recover(new_engine, var / "journal", var / "snapshots")
    seqr = Sequencer(rec.core, journal=rec.journal, next_seq=rec.next_seq, last_ts=rec.last_ts)
    snaps = Snapshotter(seqr, var / "snapshots", SnapshotConfig(every=every, fork=fork, cpu_share=cpu_share), last_seq=0)
    seqr.subscribers.append(snaps)
    return seqr, snaps, asyncio.create_task(seqr.run()), rec


async def feed(seqr: Sequencer, first: int, n: int) -> None:
    """n resting orders, each awaited: durable and published."""
    for i in range(first, first + n):
        await seqr.call(order(f"r{i}", BUY, 1, 50 + i % 40))


async def stop(seqr: Sequencer, snaps: Snapshotter, task: asyncio.Task[None], rec: Recovered, final: bool = False) -> None:
    seqr.stop()
    await asyncio.wait_for(task, 30)
    await asyncio.wait_for(snaps.close(final=final), 30)
    rec.journal.close()


async def test_the_loop_goes_on_while_the_child_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child is held before it captures (a gate file the test creates later): the
    sequencer meanwhile takes, journals and publishes more commands, and the snapshot is
    still the state at the seq where the child was forked."""
    gate = tmp_path / "gate"
    real_capture = snapshot_fork.capture

    def gated_capture(core: object, seq: int, ts: int, pace: Pace) -> Captured:
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        return real_capture(core, seq, ts, pace)

    monkeypatch.setattr(snapshot_fork, "capture", gated_capture)
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=100)
    await feed(seqr, 0, 100)
    at_fork = state_digest(seqr.core)
    assert snaps._child is not None and snaps._child.seq == 100
    await feed(seqr, 100, 300)  # the loop is not waiting for the child
    assert snaps._child is not None and not (tmp_path / "snapshots").exists()
    gate.touch()
    await stop(seqr, snaps, task, rec)
    assert [seq for seq, _ in snapshot_paths(tmp_path / "snapshots")] == [100]
    restored = new_engine()
    restore(restored, load(tmp_path / "snapshots" / f"{100:020d}.snap"))
    assert state_digest(restored) == at_fork != state_digest(seqr.core)
    again = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert again.replayed == 300 and state_digest(again.core) == state_digest(seqr.core)


def dying_capture(core: object, seq: int, ts: int, pace: Pace) -> Captured:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("still alive")


@pytest.mark.parametrize("failure", ["unwritable", "killed"])
async def test_a_failed_child_leaves_no_snapshot_and_the_venue_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    """A child that cannot write (its directory is a file) or dies (SIGKILL) is logged, leaves
    no file, and the sequencer keeps serving; the next snapshot is tried `every` later."""
    if failure == "unwritable":
        (tmp_path / "snapshots").write_text("not a directory")
        expected = "NotADirectoryError"
    else:
        monkeypatch.setattr(snapshot_fork, "capture", dying_capture)
        expected = "killed by SIGKILL"
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=50)
    await feed(seqr, 0, 50)
    await until(lambda: snaps._child is None)
    assert "snapshot at seq 50 failed in its child process" in caplog.text and expected in caplog.text
    await feed(seqr, 50, 60)
    await stop(seqr, snaps, task, rec)
    assert caplog.text.count("failed in its child process") == 2  # at 50 and at 100
    assert seqr.next_seq == 111 and seqr.failed is None
    if failure == "killed":
        assert list(snapshot_paths(tmp_path / "snapshots")) == [] and not list((tmp_path / "snapshots").glob("*"))
    again = recover(new_engine, tmp_path / "journal", tmp_path / "nowhere")
    assert state_digest(again.core) == state_digest(seqr.core)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
async def test_the_child_runs_as_sched_idle_and_paces_its_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the child runs under, written down by the child itself: the idle scheduling
    policy, and one Pacer with the module's share, handed to capture and to write_tmp, whose
    encoding calls it."""
    seen = tmp_path / "seen"
    paces: list[Pace] = []
    real_capture, real_write_tmp = snapshot_fork.capture, snapshot_fork.write_tmp

    def noting_capture(core: object, seq: int, ts: int, pace: Pace) -> Captured:
        paces.append(pace)
        return real_capture(core, seq, ts, pace)

    def noting_write_tmp(directory: Path, snap: Captured, writer: str, pace: Pace) -> Path:
        calls = 0

        def counted() -> None:
            nonlocal calls
            calls += 1
            pace()

        path = real_write_tmp(directory, snap, writer, counted)
        assert isinstance(pace, snapshot_fork.Pacer) and paces == [pace]
        seen.write_text(f"{os.sched_getscheduler(0)} {pace.rest_s / pace.slice_s:.3f} {calls}")
        return path

    monkeypatch.setattr(snapshot_fork, "capture", noting_capture)
    monkeypatch.setattr(snapshot_fork, "write_tmp", noting_write_tmp)
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=50)
    await feed(seqr, 0, 50)
    await until(lambda: snaps._child is None)
    await stop(seqr, snaps, task, rec)
    policy, rest_per_slice, calls = seen.read_text().split()
    assert int(policy) == os.SCHED_IDLE and os.sched_getscheduler(0) != os.SCHED_IDLE  # the child's, not the venue's
    share = SnapshotConfig().cpu_share
    assert float(rest_per_slice) == pytest.approx((1 - share) / share, abs=1e-3)
    assert int(calls) >= 1  # the pickle frames
    assert [seq for seq, _ in snapshot_paths(tmp_path / "snapshots")] == [50]


async def test_a_stopping_venue_hurries_its_paced_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child paced to sleep 1 s after each stretch (about 20 stretches here) is told by
    close() to finish at full speed: its snapshot is installed within a few seconds, where
    unhurried it would take twenty."""
    monkeypatch.setattr(snapshot_fork, "Pacer", functools.partial(snapshot_fork.Pacer, slice_s=0.0001))
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=1000, cpu_share=0.0001)
    await feed(seqr, 0, 1000)
    assert snaps._child is not None and snaps._child.seq == 1000
    await asyncio.sleep(0.5)
    assert snaps._child is not None  # still pacing
    t = time.monotonic()
    await stop(seqr, snaps, task, rec)
    assert time.monotonic() - t < 6
    assert [seq for seq, _ in snapshot_paths(tmp_path / "snapshots")] == [1000]


async def test_close_waits_for_the_child_and_then_takes_the_final_snapshot(tmp_path: Path) -> None:
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=100)
    await feed(seqr, 0, 130)
    await stop(seqr, snaps, task, rec, final=True)
    assert [seq for seq, _ in snapshot_paths(tmp_path / "snapshots")] == [130, 100]
    again = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert again.replayed == 0 and state_digest(again.core) == state_digest(seqr.core)


async def test_without_fork_snapshots_are_written_in_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(*args: object) -> snapshot_fork.Child:
        raise AssertionError("forked on a platform without fork")

    monkeypatch.setattr(snapshot_fork, "available", lambda: False)
    monkeypatch.setattr(snapshot_fork, "start", no_fork)
    seqr, snaps, task, rec = await start_sequencer(tmp_path, every=100)
    assert not snaps.fork
    await feed(seqr, 0, 150)
    await stop(seqr, snaps, task, rec)
    assert [seq for seq, _ in snapshot_paths(tmp_path / "snapshots")] == [100]


def test_recovery_deletes_and_never_uses_a_stray_tmp_file(tmp_path: Path) -> None:
    """A child killed with the venue leaves `<seq>.snap.tmp`, possibly whole: it was never
    installed (its seq may not be durable), so recovery must not use it."""
    cmds = list(stream(5, 400))
    rec = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    rec.journal.append_batch(1, [ts for _, ts, _ in cmds[:300]], [c for _, _, c in cmds[:300]])
    rec.journal.write((rec.journal.take(),))
    rec.journal.close()
    ahead = new_engine()
    for seq, ts, cmd in cmds:
        ahead.apply(seq, ts, cmd)
    tmp = write_tmp(tmp_path / "snapshots", capture(ahead, 300, cmds[299][1]))  # same seq and ts, another state
    again = recover(new_engine, tmp_path / "journal", tmp_path / "snapshots")
    assert again.snapshot is None and again.replayed == 300 and not tmp.exists()
    again.journal.close()
