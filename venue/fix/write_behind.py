"""Write-behind for quickfix's FileStore: its files go to disk a little at a time, never
in a burst that holds up the journal's synced writes, and reading them records no access
time.

quickfix writes every message it sends to its FileStore (for resend) without syncing it;
the kernel then writes those pages back only once they are 30 s old (Linux's default
`vm.dirty_expire_centisecs`: a machine with gigabytes of memory never reaches the
background threshold), in sweeps every 5 s. After a busy spell that is tens of megabytes
at once, and a synced journal write queued behind it on the disk waits for all of it:
measured on this project's machine (bench/fix_e2e.py --duration 20: a 20 s run as fast as
the window allows, then 20 s at 5,000 orders/s), journal writes of 43, 77 and 27 ms in a
row, 30 s after the busy spell, and ack p99 18.8 ms. With the kernel told to write back
within a second (`vm.dirty_expire_centisecs=100`, `vm.dirty_background_bytes=8 MB`,
tried by hand) the longest write was 13 ms and p99 4.3 ms.

An operator can set those sysctls; this does the same for the venue's own stores without
them: every INTERVAL_S a thread asks the kernel to start writing back each store file's
dirty pages (sync_file_range, SYNC_FILE_RANGE_WRITE: it starts the I/O and returns, no
cache flush, no wait), so each sweep is the little written since the last. It adds no
durability (quickfix's store never had any against power loss; the journal is the
truth) and takes no lock the senders need. Linux only; elsewhere it does nothing.

Access times. Before each message it stores, quickfix seeks to the end of its files, and
glibc's fseek on a file open for reading and writing reads the last partial block back.
On a filesystem mounted `relatime` (Linux's default) a read after a write updates the
file's access time: a journaled inode update per message sent. perf on the venue at full
speed: 7% of the order-entry sender's and of drop copy's writer's CPU samples were under
`touch_atime`. So the store's directory and files are marked noatime (FS_NOATIME_FL,
what `chattr +A` sets); files created in the directory later (quickfix recreates them
on a sequence reset) inherit it from the directory. A filesystem that refuses the flag
keeps its access times.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_S = 0.1
SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait
FS_IOC_GETFLAGS = 0x80086601  # <linux/fs.h>: the inode's flags (an int)
FS_IOC_SETFLAGS = 0x40086602
FS_NOATIME_FL = 0x80


def skip_atime(fd: int) -> bool:
    """Mark an open file or directory to record no access times (a directory hands the
    flag to the files created in it). False where the platform or filesystem refuses."""
    flags = array.array("i", [0])
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & FS_NOATIME_FL:
            flags[0] |= FS_NOATIME_FL
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
    except OSError:
        return False
    return True


def _sync_file_range() -> Callable[[int], object] | None:
    """libc's sync_file_range(fd, 0, 0, WRITE), or None where there is none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    fn = getattr(ctypes.CDLL(name, use_errno=True), "sync_file_range", None)
    if fn is None:
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return lambda fd: fn(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


class WriteBehind:
    def __init__(self, directory: Path, interval_s: float = INTERVAL_S, start_writeback: Callable[[int], object] | None = None) -> None:
        self.directory = directory
        self.interval_s = interval_s
        self.start_writeback = start_writeback or _sync_file_range()
        self.sweeps = 0
        self._marked: set[int] = set()  # inodes already marked noatime (or refused)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)

    def start(self) -> None:
        if self.start_writeback is None:
            log.info("write-behind off: no sync_file_range on this platform")
            return
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            pass
        else:
            try:
                skip_atime(fd)
            finally:
                os.close(fd)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def sweep(self) -> None:
        """Start writing back every file of the directory, marking any new one noatime (a
        file that goes away meanwhile is skipped)."""
        assert self.start_writeback is not None
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            if not entry.is_file():
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except OSError:
                continue
            try:
                if entry.inode() not in self._marked:
                    self._marked.add(entry.inode())
                    skip_atime(fd)
                self.start_writeback(fd)
            finally:
                os.close(fd)
        self.sweeps += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # the venue goes on without it; the kernel writes back anyway
                log.exception("write-behind sweep of %s failed; stopping it", self.directory)
                return
