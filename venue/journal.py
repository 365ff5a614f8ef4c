"""The journal: the sequenced command log, append-only files under var/journal/.

It is the truth for orders and trades (DESIGN.md): every command the sequencer stamps is
appended here and made durable before any event it caused is published, and on start the
venue replays it through the pure core to reach exactly the state it had.

Files. The log is cut into segments named by the sequence number of their first record,
`00000000000000000001.jnl`, rolled once a segment passes `segment_bytes`. A segment opens
with a header (magic `VJNL`, u16 version, u32 length + the codec schema the records are
written with, u32 crc32 of all of it); it is written to a temporary name, fsynced and
renamed, so a segment is never seen without its whole header. Then records:

    u32 body length | u32 crc32(body) | body = u64 seq | i64 ts (UTC µs) | command

with the command as venue/journal_codec.py encodes it. Sequence numbers are consecutive
across the whole log; a gap is corruption.

Group commit: `append_batch` frames a batch's records (on the loop thread, no I/O);
`take` hands the batch over and `write` makes any number of taken batches durable
with one pwritev() per MAX_WRITE_BYTES. Under FsyncPolicy.BATCH (the default) the file is
open with O_DSYNC, so that one call is also the sync: the same guarantee as write() then
fdatasync(), in one system call, so the journal thread takes the interpreter lock back
once per write instead of twice (each time it may wait for the loop to let go of it).

Preallocated segments. A new segment is allocated whole (posix_fallocate) before its first
record, and records are written into that space at the offset where the data ends, not
appended. A synced append must also journal the file's new size in the filesystem; a
synced write into allocated space is the data alone. Measured on this project's ext4
machine (200-byte O_DSYNC writes, 3,000 in a row): 131-133 µs and 54-55 µs of CPU per
append against 91-93 µs and 35-36 µs into allocated space; at 5,000 orders/s most orders
are a write of their own. So a live segment ends in zeros after its last record, and
every reader treats zeros from a record boundary to the end of the file as the end of the
data (no record starts with a zero length). A segment is cut back to its data when it is
rolled or the journal is closed; after a crash the zeros stay, and the writer goes on at
the end of the data.
FsyncPolicy.NEVER leaves durability to the OS: it survives a kill -9 of the venue (the
page cache has the data) but not a power loss, and is for benchmarks, which must say so.

Torn tails. A crash can leave the last segment ending in a partial or garbled record.
Opening the journal for writing scans the last segment; a bad record there is reported
and cut off, with everything after it, but only if nothing after it looks like a whole
record (a valid checksum and a later sequence number) and it is within `MAX_TORN_BYTES`
of the end: a single batch write is what a crash can tear. Anything else is corruption
in the middle of the log, which no code should guess about: JournalError, naming the
file and offset, and the venue does not start. Readers never use a record whose checksum
fails.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from venue.commands import Command
from venue.journal_codec import ENCODE_ERRORS, CodecError, Decoder, codec

log = logging.getLogger(__name__)

MAGIC = b"VJNL"
FORMAT_VERSION = 1
MAX_RECORD = 1 << 20  # a body longer than this is garbage, not a command
MAX_TORN_BYTES = 1 << 20  # how much unsynced tail one crash can leave
MAX_WRITE_BYTES = MAX_TORN_BYTES // 2  # batches written (and synced) together, at most: one write is what a crash tears
_IOV_MAX = 1024  # buffers one writev() takes (POSIX's minimum for IOV_MAX is 16; Linux allows 1024)
_HEAD = struct.Struct("<II")  # body length, crc32(body)
_SEQTS = struct.Struct("<Qq")
_MIN_BODY = _SEQTS.size + 1
_SEGMENT = re.compile(r"^(\d{20})\.jnl$")


class FsyncPolicy(str, Enum):
    BATCH = "batch"  # every write synced (O_DSYNC): nothing acknowledged is lost on power loss
    NEVER = "never"  # no fsync: survives a process crash only (benchmarks)


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalConfig:
    dir: str = "journal"  # relative to the venue's var_dir, or absolute
    fsync: FsyncPolicy = FsyncPolicy.BATCH
    segment_bytes: int = 16 << 20  # smaller: less to scan at open and before a snapshot's seq
    preallocate: bool = True  # allocate each segment whole and write into it (see the module docstring)

    def __post_init__(self) -> None:
        if self.segment_bytes < 4096:
            raise ValueError(f"segment_bytes {self.segment_bytes} is below 4096")


class JournalError(Exception):
    """The journal is damaged in a way that must not be repaired by guessing."""


class Record(NamedTuple):
    seq: int
    ts: int
    cmd: Command


@dataclass
class SegmentScan:
    """What one pass over a segment's bytes found (no command is decoded)."""

    path: Path
    first_seq: int
    decoder: Decoder | None = None
    schema: bytes = b""  # the codec schema its records are written with
    records: list[tuple[int, int, int, int]] = field(default_factory=list)  # (seq, ts, body start, body end)
    good_end: int = 0  # offset after the last whole record
    size: int = 0  # bytes of data: the file's size without its preallocated zeros
    problem: str = ""  # why the bytes from good_end on are not records ("" if there are none)
    later_record_at: int | None = None  # a whole record found past the problem: not a torn tail

    @property
    def torn(self) -> bool:
        """The segment ends in a bad stretch that a crash could have left."""
        return bool(self.problem) and self.later_record_at is None and self.size - self.good_end <= MAX_TORN_BYTES


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    """The segments in `directory`, in order, as (first seq, path)."""
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = _SEGMENT.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def segment_header(schema: bytes) -> bytes:
    head = MAGIC + struct.pack("<HI", FORMAT_VERSION, len(schema)) + schema
    return head + struct.pack("<I", zlib.crc32(head))


_DECODERS: dict[bytes, Decoder] = {}


def _parse_header(data: bytes, path: Path) -> tuple[Decoder, bytes, int]:
    if len(data) < 14 or data[:4] != MAGIC:
        raise JournalError(f"{path}: not a journal segment (bad magic)")
    version, n = struct.unpack_from("<HI", data, 4)
    end = 10 + n
    if version != FORMAT_VERSION:
        raise JournalError(f"{path}: journal format version {version}, this code reads {FORMAT_VERSION}")
    if len(data) < end + 4 or struct.unpack_from("<I", data, end)[0] != zlib.crc32(data[:end]):
        raise JournalError(f"{path}: segment header checksum fails")
    schema = data[10:end]
    dec = _DECODERS.get(schema)
    if dec is None:
        try:
            dec = _DECODERS[schema] = Decoder(schema)
        except CodecError as exc:
            raise JournalError(f"{path}: {exc}") from None
    return dec, schema, end + 4


def scan_segment(path: Path, first_seq: int, data: bytes, expect_seq: int | None = None) -> SegmentScan:
    """Walk a segment's records, checking length, checksum and sequence continuity."""
    scan = SegmentScan(path=path, first_seq=first_seq, size=len(data))
    scan.decoder, scan.schema, off = _parse_header(data, path)
    scan.good_end = off
    expect = first_seq if expect_seq is None else expect_seq
    n = len(data)
    records = scan.records
    unpack_head, unpack_seqts, crc32 = _HEAD.unpack_from, _SEQTS.unpack_from, zlib.crc32
    while off < n:
        if n - off < _HEAD.size:
            if _zeros_from(data, off):
                scan.size = off
            else:
                scan.problem = f"partial record header ({n - off} bytes)"
            break
        length, crc = unpack_head(data, off)
        if length == 0 and _zeros_from(data, off):  # preallocated space: the data ends here
            scan.size = off
            break
        start, end = off + _HEAD.size, off + _HEAD.size + length
        if not _MIN_BODY <= length <= MAX_RECORD:
            scan.problem = f"impossible record length {length}"
            break
        if end > n:
            scan.problem = f"partial record ({n - start} of {length} bytes)"
            break
        if crc32(data[start:end]) != crc:
            scan.problem = "record checksum fails"
            break
        seq, ts = unpack_seqts(data, start)
        if seq != expect:
            scan.problem = f"record has seq {seq}, expected {expect}"
            break
        records.append((seq, ts, start + _SEQTS.size, end))
        expect += 1
        off = end
    scan.good_end = off
    if scan.problem:
        scan.size = len(data.rstrip(b"\0"))  # a torn write into preallocated space is followed by zeros
        if scan.size - off <= MAX_TORN_BYTES:
            scan.later_record_at = _find_record(data, off + 1, expect - 1, scan.size)
    return scan


def _zeros_from(data: bytes, off: int) -> bool:
    """Whether every byte from `off` on is zero."""
    return data.count(0, off) == len(data) - off


def _find_record(data: bytes, start: int, after_seq: int, data_end: int) -> int | None:
    """The offset of a whole record with seq > after_seq at or after `start`, if any (a
    record starts with its nonzero length, so before `data_end`, the last nonzero byte)."""
    n = len(data)
    unpack_head, unpack_seqts, crc32 = _HEAD.unpack_from, _SEQTS.unpack_from, zlib.crc32
    for off in range(start, min(data_end, n - _HEAD.size - _MIN_BODY + 1)):
        length, crc = unpack_head(data, off)
        if _MIN_BODY <= length <= MAX_RECORD and off + _HEAD.size + length <= n:
            seq = unpack_seqts(data, off + _HEAD.size)[0]
            if seq > after_seq and crc32(data[off + _HEAD.size:off + _HEAD.size + length]) == crc:
                return off
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalReader:
    """Reads a journal directory without changing it (replay, inspect, verify)."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise JournalError(f"{self.dir}: no journal directory")

    def scans(self) -> Iterator[SegmentScan]:
        """Every segment's scan, in order, continuity checked across segments."""
        expect: int | None = None
        for first, path in segment_paths(self.dir):
            if expect is not None and first != expect:
                raise JournalError(f"{path}: segment starts at seq {first}, expected {expect}")
            scan = scan_segment(path, first, path.read_bytes())
            yield scan
            expect = scan.records[-1][0] + 1 if scan.records else first

    def records(self, from_seq: int = 1) -> Iterator[Record]:
        """Decoded records with seq >= from_seq, in order. Raises JournalError at a bad
        stretch anywhere but a torn tail of the last segment, which ends the iteration."""
        segs = segment_paths(self.dir)
        start = 0
        for i, (first, _) in enumerate(segs):
            if first <= from_seq:
                start = i
        expect: int | None = None
        for i, (first, path) in enumerate(segs[start:], start):
            if expect is not None and first != expect:
                raise JournalError(f"{path}: segment starts at seq {first}, expected {expect}")
            data = path.read_bytes()
            scan = scan_segment(path, first, data)
            if scan.problem and not (i == len(segs) - 1 and scan.torn):
                raise JournalError(f"{path}: offset {scan.good_end}: {scan.problem}")
            decode = scan.decoder.decode  # type: ignore[union-attr]
            for seq, ts, b, e in scan.records:
                if seq >= from_seq:
                    try:
                        cmd = decode(data, b, e)
                    except CodecError as exc:
                        raise JournalError(f"{path}: seq {seq}: {exc}") from None
                    yield Record(seq, ts, cmd)
            expect = scan.records[-1][0] + 1 if scan.records else first


Taken = tuple[int, int, bytearray]  # what Journal.take hands over: first seq, record count, framed records


class Journal:
    """The writer the sequencer drives: append (frame), take (hand over), write (one
    synced write for every batch taken since the last). `flush` is take and write at once.

    Open it with `Journal.open`, which repairs a torn tail and tells where the log ends.
    """

    def __init__(self, directory: Path, config: JournalConfig, last_seq: int, last_ts: int, current: Path | None, size: int) -> None:
        self.dir = directory
        self.config = config
        self.last_seq = last_seq  # the last seq appended (durable once written)
        self.last_ts = last_ts
        self.records_written = 0
        self.bytes_written = 0
        self.flushes = 0  # write (and sync) calls made
        self.syncs = config.fsync is FsyncPolicy.BATCH  # write() waits for the disk (the sequencer writes on its journal thread)
        self._codec = codec()
        self._framers = self._codec.framers
        self._pending = bytearray()  # framed records appended since the last take()
        self._taken_seq = last_seq  # the last seq handed over by take()
        self._open_flags = os.O_WRONLY | (os.O_DSYNC if config.fsync is FsyncPolicy.BATCH else 0)
        self._fd: int | None = None
        self._size = size  # where the current segment's data ends: the next write's offset
        if current is not None:
            self._fd = os.open(current, self._open_flags)
            self._preallocate(self._fd)

    @classmethod
    def open(cls, directory: Path | str, config: JournalConfig = JournalConfig()) -> Journal:
        """Open (creating if needed) the journal in `directory` for appending, after
        cutting a torn tail off its last segment. JournalError if it is corrupt."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.jnl.tmp"):
            stale.unlink()
        segs = segment_paths(directory)
        if not segs:
            return cls(directory, config, 0, 0, None, 0)
        first, path = segs[-1]
        data = path.read_bytes()
        scan = scan_segment(path, first, data)
        if scan.problem:
            if not scan.torn:
                where = f"; a whole record follows at offset {scan.later_record_at}" if scan.later_record_at is not None else ""
                raise JournalError(f"{path}: offset {scan.good_end}: {scan.problem}{where}: corruption inside the journal, not a torn tail")
            log.warning(
                "journal %s: torn tail at offset %d (%s): cutting %d bytes after seq %s",
                path, scan.good_end, scan.problem, scan.size - scan.good_end, scan.records[-1][0] if scan.records else first - 1,
            )
            with open(path, "r+b") as f:
                f.truncate(scan.good_end)  # the writer allocates the segment's space again
                f.flush()
                os.fsync(f.fileno())
        if scan.records:
            last_seq, last_ts = scan.records[-1][0], scan.records[-1][1]
        else:
            last_seq, last_ts = first - 1, _last_ts_before(segs)
        if scan.schema != codec().schema():  # written by other code: new records go in a new segment
            return cls(directory, config, last_seq, last_ts, None, 0)
        return cls(directory, config, last_seq, last_ts, path, scan.good_end)

    # ------------------------------------------------------------------ the Journal protocol

    def append(self, seq: int, ts: int, cmd: Command) -> None:
        """Frame one stamped command into the pending batch (see append_batch)."""
        self.append_batch(seq, (ts,), (cmd,))

    def append_batch(self, first_seq: int, stamps: Sequence[int], cmds: Sequence[Command]) -> None:
        """Frame stamped commands, seqs first_seq, first_seq + 1, ..., into the pending batch
        (no I/O): all of them, or none and CodecError naming the one that cannot be
        journaled. The sequencer calls this once per batch, on its loop: per command there
        is only the framing, in one comprehension, with no call or check around it.
        Framing here and not in write(): encoding is Python work, and done on the journal
        thread it competed with the loop for the interpreter lock (measured: with fsync off
        the journal's cost at batches of 512 fell from 31-37% to 24%); write() does only
        the system calls, which release it."""
        if first_seq != self.last_seq + 1:
            raise JournalError(f"append of seq {first_seq} after {self.last_seq}: sequence numbers must be consecutive")
        if not cmds:
            return
        framers = self._framers
        try:
            frames = [framers[type(cmd)](seq, ts, cmd) for seq, ts, cmd in zip(range(first_seq, first_seq + len(cmds)), stamps, cmds, strict=True)]
        except (KeyError, *ENCODE_ERRORS):
            for seq, ts, cmd in zip(range(first_seq, first_seq + len(cmds)), stamps, cmds):
                self._codec.frame(seq, ts, cmd)  # raises CodecError naming the seq, the type or the field
            raise
        self._pending += b"".join(frames)
        self.last_seq = first_seq + len(cmds) - 1
        self.last_ts = stamps[-1]

    def flush(self) -> None:
        """Write every queued record with one synced write (by policy)."""
        self.write((self.take(),))

    def take(self) -> Taken:
        """Hand over what append() framed, as (first seq, count, bytes), to be written by
        write(). The sequencer takes on its loop thread (where it appends) and writes on its
        journal thread, so the next batch is appended while this one is written."""
        first = self._taken_seq + 1
        taken = (first, self.last_seq - self._taken_seq, self._pending)  # handed over, not copied
        self._pending = bytearray()
        self._taken_seq = self.last_seq
        return taken

    def write(self, taken: Sequence[Taken]) -> None:
        """Write taken batches, in the order they were taken: together, one writev() (synced,
        by policy) per MAX_WRITE_BYTES, so batches that queued up while the previous write
        was syncing cost one sync, not one each. One thread at a time."""
        batches = [t for t in taken if t[1]]
        i = 0
        while i < len(batches):
            first = batches[i][0]
            chunk: list[bytearray] = []
            size = count = 0
            while i < len(batches) and len(chunk) < _IOV_MAX and (not chunk or size + len(batches[i][2]) <= MAX_WRITE_BYTES):
                chunk.append(batches[i][2])
                size += len(batches[i][2])
                count += batches[i][1]
                i += 1
            if self._fd is None:
                self._new_segment(first)
            self._write_all(chunk, size)
            self._size += size
            self.bytes_written += size
            self.records_written += count
            self.flushes += 1
            if self._size >= self.config.segment_bytes:
                self._close_segment()

    def _write_all(self, chunk: list[bytearray], size: int) -> None:
        fd, at = self._fd, self._size
        assert fd is not None
        n = os.pwritev(fd, chunk, at)
        if n < size:  # a regular file takes it all unless something is wrong (a full disk): finish or raise
            whole = memoryview(b"".join(chunk))
            while n < size:
                n += os.pwrite(fd, whole[n:], at + n)

    def close(self) -> None:
        """Flush what is queued and close the file."""
        self.flush()
        if self._fd is not None:
            self._close_segment()

    def _preallocate(self, fd: int) -> None:
        """Allocate the segment's space up to the size it rolls at, plus one write past it.
        Where the filesystem cannot, writes extend the file as appends would."""
        if not self.config.preallocate:
            return
        try:
            os.posix_fallocate(fd, 0, self.config.segment_bytes + MAX_WRITE_BYTES)
        except (AttributeError, OSError) as exc:
            log.debug("journal space not preallocated: %r", exc)

    def _close_segment(self) -> None:
        """Cut the segment back to its data (its preallocated zeros go) and close it. A cut
        that fails leaves the zeros, which every reader takes for the end of the data."""
        fd = self._fd
        assert fd is not None
        self._fd = None
        try:
            os.ftruncate(fd, self._size)
        except OSError as exc:
            log.warning("journal segment not cut back to its %d bytes of data: %r", self._size, exc)
        finally:
            os.close(fd)

    def _new_segment(self, first_seq: int) -> None:
        path = self.dir / f"{first_seq:020d}.jnl"
        tmp = path.with_name(path.name + ".tmp")
        header = segment_header(self._codec.schema())
        with open(tmp, "wb") as f:
            f.write(header)
            f.flush()
            self._preallocate(f.fileno())
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.dir)
        self._fd = os.open(path, self._open_flags)
        self._size = len(header)


def _last_ts_before(segs: list[tuple[int, Path]]) -> int:
    """The last record's ts in the segments before an empty last one (0 if none)."""
    for first, path in reversed(segs[:-1]):
        scan = scan_segment(path, first, path.read_bytes())
        if scan.records:
            return scan.records[-1][1]
    return 0
