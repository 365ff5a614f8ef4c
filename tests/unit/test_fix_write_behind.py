"""Write-behind of quickfix's FileStore: every file of the store is handed to the kernel's
writeback each sweep, by a thread that stops on close, and a platform without the call
leaves it off; the store's files record no access times."""

from __future__ import annotations

import array
import fcntl
import os
import time
from pathlib import Path

import pytest

from venue.fix import write_behind
from venue.fix.write_behind import WriteBehind


def test_each_sweep_starts_writeback_of_every_store_file(tmp_path: Path) -> None:
    names = ["FIX.4.4-VENUE-FIRM1.body", "FIX.4.4-VENUE-FIRM1.header", "FIX.4.4-VENUE-FIRM1.seqnums"]
    for name in names:
        (tmp_path / name).write_bytes(b"x" * 100)
    (tmp_path / "subdir").mkdir()
    seen: list[str] = []

    def start_writeback(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1])

    wb = WriteBehind(tmp_path, interval_s=0.01, start_writeback=start_writeback)
    wb.start()
    deadline = time.monotonic() + 5
    while wb.sweeps < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    wb.close()
    assert wb.sweeps >= 3
    assert sorted(set(seen)) == sorted(names)  # the directory is skipped
    after = wb.sweeps
    time.sleep(0.05)
    assert wb.sweeps == after, "the thread stopped"


def test_the_real_call_runs_on_this_platform(tmp_path: Path) -> None:
    """Linux's sync_file_range through ctypes: returns 0 on a freshly written file."""
    call = write_behind._sync_file_range()
    assert call is not None
    path = tmp_path / "store.body"
    path.write_bytes(b"y" * 8192)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert call(fd) == 0
    finally:
        os.close(fd)


def test_a_missing_directory_or_platform_is_not_an_error(tmp_path: Path) -> None:
    wb = WriteBehind(tmp_path / "not-yet", interval_s=0.01, start_writeback=lambda fd: None)
    wb.sweep()
    assert wb.sweeps == 0
    off = WriteBehind(tmp_path, start_writeback=None)
    off.start_writeback = None  # as where libc has no sync_file_range
    off.start()
    off.close()
    assert off.sweeps == 0


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, write_behind.FS_IOC_GETFLAGS, buf, True)
        return buf[0]
    finally:
        os.close(fd)


def test_store_files_record_no_access_time(tmp_path: Path) -> None:
    """Files there before start are marked by the first sweep; files created later
    inherit the mark from the directory."""
    probe = tmp_path / "probe"
    probe.mkdir()
    fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not write_behind.skip_atime(fd):
            pytest.skip("this filesystem keeps no per-file noatime flag")
    finally:
        os.close(fd)
    sub = tmp_path / "store"
    sub.mkdir()
    (sub / "old.body").write_bytes(b"x")
    wb = WriteBehind(sub, interval_s=0.01, start_writeback=lambda fd: None)
    assert not _flags(sub / "old.body") & write_behind.FS_NOATIME_FL
    wb.start()
    deadline = time.monotonic() + 5
    while wb.sweeps < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    (sub / "new.body").write_bytes(b"y")
    wb.close()
    assert _flags(sub) & write_behind.FS_NOATIME_FL
    assert _flags(sub / "old.body") & write_behind.FS_NOATIME_FL
    assert _flags(sub / "new.body") & write_behind.FS_NOATIME_FL
