"""The journal follower reads exactly the records up to what the venue says is published,
across segment rolls, from any starting point, and a record still being written waits."""

from __future__ import annotations

from pathlib import Path

import pytest
from drop_copy_support import order

from drop_copy import tail as tail_module
from drop_copy.tail import JournalTail
from venue.commands import Command
from venue.journal import Journal, JournalConfig, JournalError, JournalReader, segment_paths
from venue.types import Side


def test_the_tail_follows_batches_and_segment_rolls_without_skipping_or_repeating(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, JournalConfig(segment_bytes=4096))
    tail = JournalTail(tmp_path)
    seq, got = 0, []
    for batch in range(50):
        for _ in range(7):
            seq += 1
            journal.append(seq, seq, order("FIRM1", f"o{seq}", Side.BUY, 1, 100))
        journal.flush()
        got += tail.read(seq - batch % 3)  # the venue may say less than the journal holds
        assert tail.position == seq - batch % 3
    got += tail.read(seq)
    assert len(segment_paths(tmp_path)) > 10
    assert [r[0] for r in got] == list(range(1, seq + 1))
    assert [r[2] for r in got] == [r.cmd for r in JournalReader(tmp_path).records()]
    assert tail.read(seq + 5) == [], "nothing past the journal's end"
    late = JournalTail(tmp_path, after_seq=100).read(seq)
    assert [r[0] for r in late] == list(range(101, seq + 1))


@pytest.mark.parametrize("step", [32, 100, 4096])
def test_the_tail_reads_in_steps_shorter_or_longer_than_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Records longer than a read step (it grows until one fits), and steps that end inside one."""
    monkeypatch.setattr(tail_module, "READ_STEP", step)
    journal = Journal.open(tmp_path)
    tail = JournalTail(tmp_path)
    got = []
    for seq in range(1, 41):
        journal.append(seq, seq, order("FIRM1", "x" * (seq * 7), Side.BUY, 1, 100))
        if seq % 4 == 0:
            journal.flush()
            got += tail.read(seq)
    assert [r[0] for r in got] == list(range(1, 41))
    assert [r[2] for r in got] == [r.cmd for r in JournalReader(tmp_path).records()]


def test_a_record_not_yet_whole_waits_for_the_rest(tmp_path: Path) -> None:
    """As where the filesystem cannot preallocate: the file ends inside the second record."""
    journal = Journal.open(tmp_path)
    journal.append(1, 1, order("FIRM1", "a", Side.BUY, 1, 100))
    journal.append(2, 2, order("FIRM1", "b", Side.BUY, 1, 100))
    journal.flush()
    path = segment_paths(tmp_path)[0][1]
    end = next(JournalReader(tmp_path).scans()).size
    whole = path.read_bytes()[:end]
    path.write_bytes(whole[:-5])
    tail = JournalTail(tmp_path)
    assert [r[0] for r in tail.read(2)] == [1]
    path.write_bytes(whole)
    assert [r[0] for r in tail.read(2)] == [2]


def test_what_lies_past_the_published_seq_is_never_an_error(tmp_path: Path) -> None:
    """The live segment is preallocated: a write under way can show a record whose checksum
    fails, and zeros after it. Past what the venue said is published, that is a record not yet
    written; at or before it, corruption."""
    journal = Journal.open(tmp_path)
    for seq in (1, 2, 3):
        journal.append(seq, seq, order("FIRM1", f"o{seq}", Side.BUY, 1, 100))
        journal.flush()
    path = segment_paths(tmp_path)[0][1]
    whole = path.read_bytes()
    end = next(JournalReader(tmp_path).scans()).size
    assert len(whole) > end, "the live segment is preallocated"
    garbled = bytearray(whole)
    garbled[end - 3] ^= 0xFF  # record 3's checksum fails
    path.write_bytes(bytes(garbled))
    tail = JournalTail(tmp_path)
    assert [r[0] for r in tail.read(2)] == [1, 2]
    with pytest.raises(JournalError, match="record checksum fails after seq 2"):
        tail.read(3)
    path.write_bytes(whole)
    assert [r[0] for r in tail.read(3)] == [3]


def test_a_replay_started_from_a_snapshot_regenerates_the_same_events(tmp_path: Path) -> None:
    from drop_copy_support import HandSequencer, new_core, two_member_config

    from drop_copy.replay import Replay
    from venue.snapshot import capture, write

    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    for i in range(20):
        seqr.submit(order("FIRM1", f"b{i}", Side.BUY, 2, 200_000 + i % 3), order("FIRM2", f"s{i}", Side.SELL, 1, 200_000))
        if i == 9:
            write(tmp_path / "snap", capture(seqr.engine, seqr.seq, seqr.journal.items[-1][1]))
    full = {seq: events for seq, events in Replay(seqr.journal, lambda: new_core(cfg)).advance()}
    fast = Replay(seqr.journal, lambda: new_core(cfg), tmp_path / "snap")
    fast.start_near(25)
    assert fast.position == 20
    assert {seq: events for seq, events in fast.advance()} == {s: e for s, e in full.items() if s > 20}
    early = Replay(seqr.journal, lambda: new_core(cfg), tmp_path / "snap")
    early.start_near(20)  # the snapshot is at 20: the events of 20 must still be regenerated
    assert early.position == 0


def test_a_replay_reads_on_from_where_it_stopped(tmp_path: Path) -> None:
    """Each advance of a replay over the journal reads only the records appended since the
    last one (through one JournalTail), so a catch-up under load does not rescan the segment."""
    from drop_copy_support import new_core, two_member_config

    from drop_copy.replay import JournalSource, Replay

    class CountingSource(JournalSource):
        def __init__(self, directory: Path) -> None:
            super().__init__(directory)
            self.read: list[int] = []  # seqs handed out, by every reader

        def follow(self, after_seq: int) -> JournalTail:
            source = self

            class Counted(JournalTail):
                def read(self, until_seq: int) -> list[tuple[int, int, Command]]:
                    out = super().read(until_seq)
                    source.read += [r[0] for r in out]
                    return out

            return Counted(self.directory, after_seq)

    cfg = two_member_config(tmp_path)
    journal = Journal.open(tmp_path / "journal", JournalConfig(segment_bytes=1 << 20))
    source = CountingSource(tmp_path / "journal")
    replay = Replay(source, lambda: new_core(cfg))
    seq = 0
    for _ in range(5):
        for side in (Side.BUY, Side.SELL):
            seq += 1
            journal.append(seq, seq, order("FIRM1" if side is Side.BUY else "FIRM2", f"o{seq}", side, 1, 200_000))
        journal.flush()
        assert [s for s, _ in replay.advance()] == [seq - 1, seq]
    assert source.read == list(range(1, seq + 1)), "a record was read twice"
    assert [s for s, _ in replay.advance(seq - 1)] == [] and replay.position == seq
