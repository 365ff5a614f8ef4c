"""The drop-copy process's replica takes the venue's periodic restart snapshots: each one is
the venue's state at a published seq, checked as recovery checks it, and the venue process
itself then takes only its last one, as it stops."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest
from drop_copy_support import HandSequencer, new_core, order, two_member_config

from drop_copy.process import Follower
from drop_copy.replay import Replay
from drop_copy.snapshots import ReplicaSnapshots
from venue import snapshot_fork
from venue.snapshot import SnapshotConfig, load, restore, snapshot_paths, state_digest
from venue.types import Side

pytestmark = pytest.mark.skipif(not snapshot_fork.available(), reason="the replica's snapshots need os.fork")


def test_the_replica_snapshots_every_n_commands_the_state_a_replay_reaches(tmp_path: Path) -> None:
    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    directory = tmp_path / "snapshots"
    taker = ReplicaSnapshots(directory, SnapshotConfig(every=15, keep=2))
    follower = Follower(Replay(seqr.journal, lambda: new_core(cfg)), lambda events: None, taker)
    digests = {}
    for i in range(40):  # two commands a step
        seqr.submit(order("FIRM1", f"b{i}", Side.BUY, 2, 200_000 + i % 5), order("FIRM2", f"s{i}", Side.SELL, 1, 200_000 + i % 3))
        follower.advance(seqr.seq)
        taker.close(30)  # the child's file installed before the replica moves on
        digests[seqr.seq] = state_digest(follower.replay.core)
    assert [p.name for p in taker.written] == [f"{s:020d}.snap" for s in (16, 32, 48, 64, 80)]
    kept = [seq for seq, _ in snapshot_paths(directory)]
    assert kept == [80, 64], "only the newest `keep` stay"
    for seq in kept:
        snap = load(directory / f"{seq:020d}.snap")
        assert snap.ts == seqr.journal.items[seq - 1][1], "the ts recovery checks against the journal"
        core = new_core(cfg)
        restore(core, snap)
        assert state_digest(core) == digests[seq]
    assert not list(directory.glob("*.tmp"))


def test_a_stopping_process_hurries_its_paced_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child paced to sleep 1 s after each stretch is told by close() to finish at full
    speed: its file is installed within a few seconds, where unhurried it would take twenty."""
    monkeypatch.setattr(snapshot_fork, "Pacer", functools.partial(snapshot_fork.Pacer, slice_s=0.0001))
    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    taker = ReplicaSnapshots(tmp_path / "snapshots", SnapshotConfig(every=800, keep=2, cpu_share=0.0001))
    follower = Follower(Replay(seqr.journal, lambda: new_core(cfg)), lambda events: None, taker)
    for i in range(400):
        seqr.submit(order("FIRM1", f"b{i}", Side.BUY, 1, 190_000 + i % 50), order("FIRM2", f"s{i}", Side.SELL, 1, 210_000 + i % 50))
    follower.advance(seqr.seq)
    time.sleep(0.5)
    assert not taker.written  # still pacing
    t = time.monotonic()
    taker.close(30)
    assert time.monotonic() - t < 6
    assert [p.name for p in taker.written] == [f"{800:020d}.snap"]


def test_the_count_starts_from_the_newest_snapshot_on_disk(tmp_path: Path) -> None:
    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    directory = tmp_path / "snapshots"
    first = ReplicaSnapshots(directory, SnapshotConfig(every=10))
    follower = Follower(Replay(seqr.journal, lambda: new_core(cfg)), lambda events: None, first)
    for i in range(6):
        seqr.submit(order("FIRM1", f"b{i}", Side.BUY, 1, 200_000), order("FIRM2", f"s{i}", Side.SELL, 1, 210_000))
    follower.advance(seqr.seq)
    first.close(30)
    assert [seq for seq, _ in snapshot_paths(directory)] == [12]
    again = ReplicaSnapshots(directory, SnapshotConfig(every=10))  # a restarted drop-copy process
    assert again.last_seq == 12
    follower.snapshots = again
    for i in range(5):
        seqr.submit(order("FIRM1", f"c{i}", Side.BUY, 1, 200_000), order("FIRM2", f"t{i}", Side.SELL, 1, 210_000))
        follower.advance(seqr.seq)
        again.close(30)
    assert [seq for seq, _ in snapshot_paths(directory)] == [22, 12], "ten commands after 12, not after 0"


def test_a_core_no_snapshot_carries_turns_the_replica_snapshots_off_with_a_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Unsnapshottable:
        engine = object()  # not a MatchingEngine: check() refuses it

    taker = ReplicaSnapshots(tmp_path, SnapshotConfig(every=1))
    taker.after(Unsnapshottable(), 5, 5)
    taker.after(Unsnapshottable(), 10, 10)
    assert taker.written == [] and not list(tmp_path.iterdir())
    assert sum("cannot snapshot the replica" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(("taken_by", "members", "periodic"), [("drop_copy", True, False), ("venue", True, True), ("drop_copy", False, False)])
def test_the_venue_takes_periodic_snapshots_only_when_configured_to(tmp_path: Path, taken_by: str, members: bool, periodic: bool) -> None:
    """The drop-copy process runs with or without members (it holds the clearing ledger), so
    its replica takes the snapshots unless `taken_by: venue`."""
    import yaml

    from venue.app import Venue
    from venue.config import load_config

    cfg = two_member_config(tmp_path)
    data = yaml.safe_load(Path(cfg.source).read_text())
    data["snapshots"]["taken_by"] = taken_by
    if not members:
        data["clearing_members"] = []
    Path(cfg.source).write_text(yaml.safe_dump(data))
    durable = Venue.build(load_config(cfg.source)).durable
    assert durable is not None
    try:
        assert durable.snapshotter is not None and durable.snapshotter.periodic is periodic
    finally:
        durable.journal.close()
