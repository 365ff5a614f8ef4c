"""The journal file: group commit, read back, torn tails cut, corruption refused."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from journal_streams import stream

from venue import journal
from venue.journal import FsyncPolicy, Journal, JournalConfig, JournalError, JournalReader, segment_paths
from venue.journal_codec import _CODEC, TAGS, CodecError, register


def write(directory: Path, n: int, *, batch: int = 50, seed: int = 1, config: JournalConfig | None = None) -> list[tuple[int, int, object]]:
    j = Journal.open(directory, config or JournalConfig())
    recs = list(stream(seed, n, operator=True))
    for i in range(0, n, batch):
        for seq, ts, cmd in recs[i:i + batch]:
            j.append(seq, ts, cmd)
        j.flush()
    j.close()
    return recs  # type: ignore[return-value]


def read(directory: Path, from_seq: int = 1) -> list[tuple[int, int, object]]:
    return [tuple(r) for r in JournalReader(directory).records(from_seq)]  # type: ignore[misc]


def last_segment(directory: Path) -> Path:
    return segment_paths(directory)[-1][1]


def data_size(directory: Path) -> int:
    """The last segment's bytes up to the end of its data (a live one is preallocated)."""
    return list(JournalReader(directory).scans())[-1].size


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Every pwritev the journal makes, as (buffers, whether the file syncs each write)."""
    writes: list[tuple[int, bool]] = []
    real = os.pwritev

    def pwritev(fd: int, buffers: list[bytearray], offset: int) -> int:
        writes.append((len(buffers), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DSYNC)))
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "pwritev", pwritev)
    return writes


def test_round_trip_with_one_synced_write_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = record_writes(monkeypatch)
    j = Journal.open(tmp_path)
    recs = list(stream(1, 120, operator=True))
    for seq, ts, cmd in recs[:100]:
        j.append(seq, ts, cmd)
    j.flush()
    for seq, ts, cmd in recs[100:]:
        j.append(seq, ts, cmd)
    j.flush()
    j.flush()  # nothing queued: no write, no sync
    assert (j.flushes, j.records_written, writes) == (2, 120, [(1, True), (1, True)])
    j.close()
    assert read(tmp_path) == recs


def test_batches_taken_while_a_write_was_under_way_go_in_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = record_writes(monkeypatch)
    j = Journal.open(tmp_path)
    recs = list(stream(2, 90, operator=True))
    taken = []
    for i in range(0, 90, 30):
        for seq, ts, cmd in recs[i:i + 30]:
            j.append(seq, ts, cmd)
        taken.append(j.take())
        if i == 0:
            taken.append(j.take())  # an empty take is skipped
    assert [(first, count) for first, count, _ in taken] == [(1, 30), (31, 0), (31, 30), (61, 30)]
    j.write(taken)
    assert (j.flushes, j.records_written, writes) == (1, 90, [(3, True)])
    j.close()
    assert read(tmp_path) == recs


def test_one_write_carries_at_most_max_write_bytes_and_rolls_segments_between_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = record_writes(monkeypatch)
    monkeypatch.setattr(journal, "MAX_WRITE_BYTES", 5000)
    j = Journal.open(tmp_path, JournalConfig(segment_bytes=8192))
    recs = list(stream(3, 600, operator=True))
    taken = []
    for i in range(0, 600, 20):
        for seq, ts, cmd in recs[i:i + 20]:
            j.append(seq, ts, cmd)
        taken.append(j.take())
    j.write(taken)
    assert j.records_written == 600 and len(writes) == j.flushes > 2
    assert all(len(data) <= 5000 for data in journal_bytes_per_write(taken, [n for n, _ in writes]))
    j.close()
    assert len(segment_paths(tmp_path)) > 2
    assert read(tmp_path) == recs


def journal_bytes_per_write(taken: list[tuple[int, int, bytearray]], buffers_per_write: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in buffers_per_write:
        out.append(b"".join(t[2] for t in taken[i:i + n]))
        i += n
    assert i == len(taken)
    return out


def test_fsync_never_writes_without_syncing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = record_writes(monkeypatch)
    monkeypatch.setattr(os, "fdatasync", lambda fd: pytest.fail("fsync under FsyncPolicy.NEVER"))
    recs = write(tmp_path / "j", 200, config=JournalConfig(fsync=FsyncPolicy.NEVER))
    assert read(tmp_path / "j") == recs
    assert writes and not any(synced for _, synced in writes)


def test_a_batch_holding_a_command_the_codec_cannot_carry_is_refused_whole(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    recs = list(stream(4, 4))
    cmds = [cmd for _, _, cmd in recs]
    cmds[2] = dataclasses.replace(cmds[2], qty=2**80)  # more than the record's field holds
    with pytest.raises(CodecError, match="cannot journal seq 3"):
        j.append_batch(1, [ts for _, ts, _ in recs], cmds)
    assert j.last_seq == 0 and j.take()[1] == 0
    j.append_batch(1, [ts for _, ts, _ in recs], [cmd for _, _, cmd in recs])
    j.close()
    assert read(tmp_path) == recs


def test_reopen_continues_the_sequence(tmp_path: Path) -> None:
    recs = write(tmp_path, 100)
    j = Journal.open(tmp_path)
    assert (j.last_seq, j.last_ts) == (100, recs[-1][1])
    with pytest.raises(JournalError, match="consecutive"):
        j.append(102, recs[-1][1], recs[0][2])  # type: ignore[arg-type]
    j.append(101, recs[-1][1] + 1, recs[0][2])  # type: ignore[arg-type]
    j.close()
    assert [r[0] for r in read(tmp_path)] == list(range(1, 102))


def test_segments_roll_and_read_from_the_middle(tmp_path: Path) -> None:
    recs = write(tmp_path, 2000, config=JournalConfig(segment_bytes=8192))
    assert len(segment_paths(tmp_path)) > 5
    assert read(tmp_path) == recs
    assert read(tmp_path, 1234) == recs[1233:]
    j = Journal.open(tmp_path, JournalConfig(segment_bytes=8192))
    assert j.last_seq == 2000


def live(directory: Path, n: int, config: JournalConfig = JournalConfig()) -> tuple[Journal, list[tuple[int, int, object]]]:
    """A journal with n records written in batches of 10 and not closed, as a running venue
    (or one killed) leaves it."""
    j = Journal.open(directory, config)
    recs = list(stream(3, n, operator=True))
    for i in range(0, n, 10):
        for seq, ts, cmd in recs[i:i + 10]:
            j.append(seq, ts, cmd)
        j.flush()
    return j, recs  # type: ignore[return-value]


def test_a_live_segment_is_preallocated_and_cut_back_to_its_data_when_closed(tmp_path: Path) -> None:
    config = JournalConfig(segment_bytes=1 << 20)
    j, recs = live(tmp_path, 300, config)
    seg = last_segment(tmp_path)
    assert seg.stat().st_size >= config.segment_bytes > data_size(tmp_path)
    assert read(tmp_path) == recs  # readers stop at the zeros, with no complaint
    scan = list(JournalReader(tmp_path).scans())[-1]
    assert not scan.problem and scan.good_end == scan.size
    j.close()
    assert seg.stat().st_size == data_size(tmp_path) and read(tmp_path) == recs


def test_rolled_segments_are_cut_back_to_their_data(tmp_path: Path) -> None:
    j, recs = live(tmp_path, 1000, JournalConfig(segment_bytes=8192))
    segs = segment_paths(tmp_path)
    assert len(segs) > 3
    for _, path in segs[:-1]:
        assert path.stat().st_size < 8192 + 4096
    assert read(tmp_path) == recs
    j.close()


def test_after_a_crash_the_writer_goes_on_at_the_end_of_the_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Killed with its segment preallocated: the zeros are no torn tail; the next records
    go right after the last one, and the file keeps no gap."""
    _, recs = live(tmp_path, 100)  # never closed
    more = list(stream(3, 120, operator=True))[100:]
    with caplog.at_level(logging.WARNING):
        j = Journal.open(tmp_path)
    assert "torn" not in caplog.text and (j.last_seq, j.last_ts) == (100, recs[-1][1])
    for seq, ts, cmd in more:
        j.append(seq, ts, cmd)
    j.flush()
    assert read(tmp_path) == recs + more
    j.close()
    assert read(tmp_path) == recs + more


def test_a_torn_write_into_preallocated_space_is_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A crash during a write leaves part of it, then the zeros it was written over."""
    _, recs = live(tmp_path, 100)
    seg = last_segment(tmp_path)
    end = data_size(tmp_path)
    data = bytearray(seg.read_bytes())
    data[end - 9:end] = bytes(9)  # the last record's end never reached the disk
    seg.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        j = Journal.open(tmp_path)
    assert "torn tail" in caplog.text and j.last_seq == 99
    assert read(tmp_path) == recs[:99]
    j.close()


def test_corruption_before_preallocated_space_is_still_refused(tmp_path: Path) -> None:
    _, _ = live(tmp_path, 300)
    seg = last_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[data_size(tmp_path) // 2] ^= 0xFF  # whole records follow, then the zeros
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="corruption inside the journal"):
        Journal.open(tmp_path)


@pytest.mark.parametrize("cannot", [True, False], ids=["filesystem cannot", "config says no"])
def test_without_preallocation_the_journal_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cannot: bool) -> None:
    """Writes extend the file, as plain appends."""
    def refuse(fd: int, offset: int, length: int) -> None:
        raise OSError(95, "Operation not supported")

    if cannot:
        monkeypatch.setattr(os, "posix_fallocate", refuse)
    _, recs = live(tmp_path, 100, JournalConfig(preallocate=cannot))  # it tries, and the filesystem refuses
    assert last_segment(tmp_path).stat().st_size == data_size(tmp_path)
    assert read(tmp_path) == recs


@pytest.mark.parametrize("cut", [1, 7, 20, 60])
def test_torn_tail_is_reported_and_cut(tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    recs = write(tmp_path, 300)
    seg = last_segment(tmp_path)
    size = seg.stat().st_size
    os.truncate(seg, size - cut)  # the last record (or two) loses its end
    with caplog.at_level(logging.WARNING):
        j = Journal.open(tmp_path)
    assert "torn tail" in caplog.text
    kept = j.last_seq
    assert 297 <= kept < 300 and data_size(tmp_path) < size - cut
    assert read(tmp_path) == recs[:kept]
    for seq, ts, cmd in recs[kept:]:
        j.append(seq, ts, cmd)  # type: ignore[arg-type]
    j.close()
    assert read(tmp_path) == recs


def test_garbled_last_record_is_cut(tmp_path: Path) -> None:
    recs = write(tmp_path, 300)
    seg = last_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF  # checksum of the last record fails
    seg.write_bytes(bytes(data))
    j = Journal.open(tmp_path)
    assert j.last_seq == 299 and read(tmp_path) == recs[:299]


def test_reader_does_not_use_a_torn_tail_or_repair_it(tmp_path: Path) -> None:
    recs = write(tmp_path, 50)
    seg = last_segment(tmp_path)
    with open(seg, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")
    assert read(tmp_path) == recs
    assert seg.read_bytes().endswith(b"garbage")


def test_corruption_inside_the_journal_is_refused(tmp_path: Path) -> None:
    write(tmp_path, 300)
    seg = last_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # some record in the middle; whole records follow it
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="corruption inside the journal"):
        Journal.open(tmp_path)
    with pytest.raises(JournalError, match="offset"):
        read(tmp_path)
    assert seg.read_bytes() == bytes(data)  # nothing was cut


def test_corruption_in_an_earlier_segment_is_refused(tmp_path: Path) -> None:
    write(tmp_path, 1000, config=JournalConfig(segment_bytes=8192))
    first = segment_paths(tmp_path)[0][1]
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="record checksum fails"):
        read(tmp_path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{1:020d}.jnl").write_bytes(b"hello, this is not a journal")
    with pytest.raises(JournalError, match="bad magic"):
        Journal.open(tmp_path)


def test_empty_directory_starts_at_seq_one(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "new")
    assert (j.last_seq, j.last_ts) == (0, 0)
    j.close()
    assert segment_paths(tmp_path / "new") == []


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SetFundingRate:
    """A command type that a newer release adds (test only)."""

    symbol: str
    rate: Decimal


@pytest.fixture
def upgrade() -> Iterator[None]:
    """Lets a test register a command type as a newer release would; undone afterwards."""
    try:
        yield
    finally:
        TAGS.pop(200, None)
        _CODEC.clear()


def test_a_new_release_appends_to_a_new_segment(tmp_path: Path, upgrade: None) -> None:
    """Records are never written under a segment header that describes another layout:
    after an upgrade the journal goes on in a fresh segment, and reads across both."""
    recs = write(tmp_path, 100)  # the old release
    register(SetFundingRate, 200)
    j = Journal.open(tmp_path)
    cmd = SetFundingRate(symbol="BTC-PERP", rate=Decimal("0.0001"))
    j.append(101, recs[-1][1] + 1, cmd)  # type: ignore[arg-type]
    j.close()
    assert [first for first, _ in segment_paths(tmp_path)] == [1, 101]
    assert read(tmp_path) == [*recs, (101, recs[-1][1] + 1, cmd)]
