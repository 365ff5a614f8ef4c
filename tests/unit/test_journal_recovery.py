"""Recovery: a sequencer journals and snapshots; a restart rebuilds exactly its state."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from journal_streams import stream
from matching_support import new_engine

from venue.events import Event, ExecReport, Fill
from venue.journal import JournalConfig, segment_paths
from venue.recovery import Snapshotter, recover
from venue.sequencer import Sequencer
from venue.snapshot import _HEADER, FORMAT_VERSION, MAGIC, SnapshotConfig, load, snapshot_paths, state_of


async def run_venue(var: Path, n: int, *, seed: int = 1, every: int = 250, start: int = 0) -> tuple[Sequencer, list[Event]]:
    """A sequencer over a recovered core: journal, snapshot every `every`, feed commands
    start..n of the stream, stop cleanly without a final snapshot. The core runs at most
    one batch ahead of the journal, so snapshots fall about every `every` commands (further
    ahead, it may run through the whole stream before the first write completes)."""
    rec = recover(new_engine(), var / "journal", var / "snapshots")
    seq = Sequencer(rec.core, journal=rec.journal, next_seq=rec.next_seq, last_ts=rec.last_ts, max_batch=64, max_unpublished=64)
    published: list[Event] = []
    seq.subscribers.append(published.extend)
    snapper = Snapshotter(seq, var / "snapshots", SnapshotConfig(every=every, keep=3))
    seq.subscribers.append(snapper)
    task = asyncio.create_task(seq.run())
    for i, (_, _, cmd) in enumerate(stream(seed, n)):
        if i >= start:
            seq.submit(cmd)
        if i % 100 == 99:
            await asyncio.sleep(0)  # let batches form and snapshots trigger
    seq.stop()
    await asyncio.wait_for(task, 30)
    await asyncio.wait_for(snapper.close(final=False), 30)
    rec.journal.close()
    return seq, published


async def test_restart_reaches_the_same_state(tmp_path: Path) -> None:
    live, _ = await run_venue(tmp_path, 2000)
    assert len(list(snapshot_paths(tmp_path / "snapshots"))) >= 1
    rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
    assert rec.snapshot is not None and rec.replayed < 2000
    assert (rec.next_seq, rec.last_ts) == (live.next_seq, live.last_ts)
    assert state_of(rec.core) == state_of(live.core)
    full = recover(new_engine(), tmp_path / "journal", tmp_path / "nowhere")
    assert full.snapshot is None and full.replayed == 2000
    assert state_of(full.core) == state_of(live.core)


async def test_restarts_continue_ids_without_reuse(tmp_path: Path) -> None:
    _, first = await run_venue(tmp_path, 1200, start=0)
    second_seq, second = await run_venue(tmp_path, 2400, start=1200)
    ids = [x for e in first + second for x in _exec_ids(e)]
    assert ids and len(ids) == len(set(ids))
    rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
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
    rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
    assert rec.snapshot == snaps[1][1]
    assert state_of(rec.core) == state_of(live.core)
    assert "snapshot unusable" in caplog.text


async def test_snapshot_of_another_journal_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await run_venue(tmp_path / "a", 800, seed=1)
    live, _ = await run_venue(tmp_path / "b", 900, seed=2)
    rec = recover(new_engine(), tmp_path / "b" / "journal", tmp_path / "a" / "snapshots")
    assert rec.snapshot is None and rec.replayed == 900
    assert state_of(rec.core) == state_of(live.core)
    assert "not using snapshot" in caplog.text


async def test_torn_tail_is_cut_at_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await run_venue(tmp_path, 700)
    seg = segment_paths(tmp_path / "journal")[-1][1]
    os.truncate(seg, seg.stat().st_size - 5)
    with caplog.at_level(logging.WARNING):
        rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
    assert rec.next_seq == 700 and "torn tail" in caplog.text
    # the state is the full replay of the 699 whole records, without snapshots
    clean = recover(new_engine(), tmp_path / "journal", tmp_path / "none")
    assert state_of(rec.core) == state_of(clean.core)


async def test_final_snapshot_on_clean_stop(tmp_path: Path) -> None:
    rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots", JournalConfig())
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
    again = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
    assert again.snapshot is not None and again.replayed == 0 and again.next_seq == 301
    assert state_of(again.core) == state_of(seq.core)



async def test_snapshot_failing_half_way_through_restore_leaves_a_pristine_core(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The engine part of the snapshot restores, then its state holders do not match this
    core: recovery must go on from an untouched copy of the core, not the half-restored one."""
    live, _ = await run_venue(tmp_path, 900)
    (newest, *older) = [p for _, p in snapshot_paths(tmp_path / "snapshots")]
    for p in older:
        p.unlink()
    loaded = load(newest)
    body = pickle.dumps(dict(loaded.body, holders={"core.tally": {"NewOrder": 1}}), protocol=5)
    newest.write_bytes(_HEADER.pack(MAGIC, FORMAT_VERSION, loaded.seq, loaded.ts, len(body), zlib.crc32(body)) + body)
    rec = recover(new_engine(), tmp_path / "journal", tmp_path / "snapshots")
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


async def test_a_snapshot_ahead_of_the_journal_waits_for_it(tmp_path: Path) -> None:
    """The sequencer runs batch 3 through the core while batches 1-2 are written; a
    snapshot taken when they are published holds batch 3's state, so it must not reach disk
    before batch 3's journal write completes: a crash in between would recover an order no
    client was told of."""
    from matching_support import BUY, order

    journal = HeldJournal(hold_from=3)
    seqr = Sequencer(new_engine(), journal=journal, max_batch=1)  # type: ignore[arg-type]
    snaps = Snapshotter(seqr, tmp_path, SnapshotConfig(every=1), last_seq=0)
    seqr.subscribers.append(snaps)
    task = asyncio.create_task(seqr.run())
    seqr.submit(order("o1", BUY, 1, 90))  # two at once: a lone batch on a quiet journal is written on the loop
    seqr.submit(order("o2", BUY, 1, 90))
    await asyncio.wait_for(asyncio.to_thread(journal.first.wait, 10), 15)  # batches 1-2 are being written
    seqr.submit(order("o3", BUY, 1, 91))

    async def applied_thrice() -> None:
        while seqr.next_seq < 4:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(applied_thrice(), 10)
    journal.release_first.set()
    await asyncio.wait_for(asyncio.to_thread(journal.held.wait, 10), 15)
    await asyncio.sleep(0.2)  # batches 1-2 published, their snapshot captured at seq 3
    assert seqr.durable_seq == 2 and list(snapshot_paths(tmp_path)) == []
    journal.gate.set()
    seqr.stop()
    await asyncio.wait_for(task, 10)
    await asyncio.wait_for(snaps.close(final=False), 10)
    assert [seq for seq, _ in snapshot_paths(tmp_path)] == [3]
