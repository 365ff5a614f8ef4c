"""Following the journal as it grows: the drop-copy process's view of the sequencer.

`JournalTail.read(until_seq)` returns the records after the last one it returned, up to
`until_seq`, reading only the bytes appended since its previous call (the journal's own
reader rescans whole segments, which is right for a replay and wrong for a follower
polled every batch). Records are checked as venue/journal.py checks them (length,
checksum, consecutive sequence numbers, via its `scan_segment`); a record not yet whole
is left for the next call. It never reads past `until_seq`: the venue says how far the
journal is durable and published, and a copy never runs ahead of that.
"""

from __future__ import annotations

from pathlib import Path

from venue.commands import Command
from venue.journal import JournalError, scan_segment, segment_paths

_FRAME = 24  # a record's length, checksum, seq and ts come before its command (venue/journal.py)


class JournalTail:
    def __init__(self, directory: Path, after_seq: int = 0) -> None:
        self.directory = directory
        self.position = after_seq  # the last seq returned
        self._path: Path | None = None
        self._first = 0
        self._header = b""
        self._offset = 0  # where the unread bytes of the current segment start
        self._pending = b""  # a record not yet whole

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
        self._pending = b""
        for seq, _, start, _ in scan.records:
            if seq >= want:
                self._offset = start - _FRAME
                break
            self._offset = scan.good_end
        return True

    def _read_segment(self, until_seq: int, out: list[tuple[int, int, Command]]) -> int:
        assert self._path is not None
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        if not chunk and not self._pending:
            return 0
        self._offset += len(chunk)
        data = self._header + self._pending + chunk
        scan = scan_segment(self._path, self._first, data, expect_seq=self.position + 1)
        if scan.problem and not scan.problem.startswith("partial"):
            raise JournalError(f"{self._path}: {scan.problem} after seq {self.position}")
        decode = scan.decoder.decode  # type: ignore[union-attr]
        n = 0
        consumed = len(self._header)
        for seq, ts, start, end in scan.records:
            if seq > until_seq:
                break
            out.append((seq, ts, decode(data, start, end)))
            self.position = seq
            consumed = end
            n += 1
        self._pending = data[consumed:]
        return n

    def _next_segment(self) -> bool:
        """Move on when a segment starting right after `position` exists."""
        nxt = [(first, p) for first, p in segment_paths(self.directory) if first == self.position + 1]
        if not nxt or nxt[0][1] == self._path:
            return False
        self._path = None
        return self._open_segment()
