"""Following the journal as it grows: the drop-copy process's view of the sequencer.

`JournalTail.read(until_seq)` returns the records after the last one it returned, up to
`until_seq`, reading only the bytes appended since its previous call (the journal's own
reader rescans whole segments, which is right for a replay and wrong for a follower
polled every batch). Records are checked as venue/journal.py checks them (length,
checksum, consecutive sequence numbers, via its `scan_segment`); a record not yet whole
is left for the next call. It never reads past `until_seq`: the venue says how far the
journal is durable and published, and a copy never runs ahead of that.

The live segment is preallocated (venue/journal.py): past its data the file holds zeros,
or a write under way, so the tail reads a bounded step at a time and keeps its place at
the end of the last record it returned. What it finds past `until_seq` (zeros, a record
half written) is not yet published and never an error; a bad record at or before it is.
"""

from __future__ import annotations

from pathlib import Path

from venue.commands import Command
from venue.journal import JournalError, scan_segment, segment_paths

_FRAME = 24  # a record's length, checksum, seq and ts come before its command (venue/journal.py)
READ_STEP = 1 << 14  # bytes read at a time (doubled while one record does not fit): a poll at 5,000/s reads ~1 KB


class JournalTail:
    def __init__(self, directory: Path, after_seq: int = 0) -> None:
        self.directory = directory
        self.position = after_seq  # the last seq returned
        self._path: Path | None = None
        self._first = 0
        self._header = b""
        self._offset = 0  # where the next record of the current segment starts

    def read(self, until_seq: int) -> list[tuple[int, int, Command]]:
        """The records (seq, ts, command) after `position`, up to `until_seq`."""
        out: list[tuple[int, int, Command]] = []
        while self.position < until_seq:
            if self._path is None and not self._open_segment():
                break
            got = self._read_segment(until_seq, out)
            if not got and not self._next_segment():
                break
        return out

    def _open_segment(self) -> bool:
        """Open the segment holding position + 1 and skip to that record."""
        want = self.position + 1
        holder = [(first, p) for first, p in segment_paths(self.directory) if first <= want]
        if not holder:
            return False
        self._first, self._path = holder[-1]
        with open(self._path, "rb") as f:
            data = f.read()
        scan = scan_segment(self._path, self._first, data)
        self._header = data[: scan.records[0][2] - _FRAME] if scan.records else data[: scan.good_end]
        self._offset = len(self._header)
        for seq, _, start, _ in scan.records:
            if seq >= want:
                self._offset = start - _FRAME
                break
            self._offset = scan.good_end
        return True

    def _read_segment(self, until_seq: int, out: list[tuple[int, int, Command]]) -> int:
        """Append the current segment's records up to `until_seq` to `out`; how many."""
        assert self._path is not None
        n, step, head = 0, READ_STEP, len(self._header)
        with open(self._path, "rb") as f:
            while self.position < until_seq:
                f.seek(self._offset)
                chunk = f.read(step)
                if not chunk:
                    break
                data = self._header + chunk
                scan = scan_segment(self._path, self._first, data, expect_seq=self.position + 1)
                last = scan.records[-1][0] if scan.records else self.position
                if scan.problem and last < until_seq and not scan.problem.startswith("partial"):
                    raise JournalError(f"{self._path}: {scan.problem} after seq {last}")
                decode = scan.decoder.decode  # type: ignore[union-attr]
                consumed = head
                for seq, ts, start, end in scan.records:
                    if seq > until_seq:
                        break
                    out.append((seq, ts, decode(data, start, end)))
                    self.position = seq
                    consumed = end
                    n += 1
                self._offset += consumed - head
                if len(chunk) < step or (not scan.problem and scan.size < len(data)):
                    break  # the segment's data, as far as it is written, is read (the file ends, or zeros follow)
                if consumed == head:
                    step *= 2  # the next record is longer than a step
        return n

    def _next_segment(self) -> bool:
        """Move on when a segment starting right after `position` exists."""
        nxt = [(first, p) for first, p in segment_paths(self.directory) if first == self.position + 1]
        if not nxt or nxt[0][1] == self._path:
            return False
        self._path = None
        return self._open_segment()
