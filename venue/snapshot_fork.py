"""Snapshots taken in a forked child, so their encoding never competes with the venue for
the interpreter lock. The drop-copy process forks the same child from its replica
(drop_copy/snapshots.py), which is how the demo venue takes its periodic snapshots; what
follows describes the venue forking itself, as it does when that process does not run.

A snapshot in a worker thread costs the venue about 300 ms of CPU per 100,000 live orders,
taken from the same GIL that the loop and the FIX sender threads need: acks around it waited up
to 480 ms. Here the loop thread forks at a batch boundary instead, where it would capture;
the child is a copy-on-write image of the process at that seq, holding only the forking
thread, and does the whole job on another CPU:

    child:   gc off, capture, encode, write and fsync `<seq>.snap.tmp`, os._exit(0)
             (or os._exit(1) with one line on its pipe saying why)
    parent:  `wait` in a thread (waitpid), then installs the file, or not (venue/recovery.py)

The parent alone makes the file a snapshot (the rename), since only it knows when the
journal is durable past the snapshot's seq. A child that fails or dies leaves at most a tmp
file, which the parent deletes and recovery ignores.

Rules for the child, because other threads of the parent may have held locks at the fork
(quickfix's, logging handlers', stdio buffers'): it calls no logging, quickfix, asyncio or
print, runs no atexit handler (os._exit), and never returns into the caller. It turns the
cyclic GC off: a collection writes to every tracked object, which would copy every page of
the parent's heap. It closes the descriptors it inherited (sockets the venue closes while the
child lives must close at once) and detaches from the loop's signal wake-up descriptor.

The child yields the CPU to the venue. The machine the venue runs on also runs its FIX
threads, drop copy and, on a small one, the clients' load: a child encoding flat out for
the 0.8 s that 150,000 live orders take held a core for all of it, and the acks of that
stretch waited for it: bench/snapshot.py's median ack p99 at 5,000 orders/s was 2.56 ms
with the replica's snapshot in the run against 1.84 ms without, and a one-off timeline
(latency and each process's CPU per 250 ms) put nearly all the acks slower than the p99
in the quarter-seconds the child ran. A lower priority alone does not help: a busy-looping
stand-in for the child, 2 s of a 4 s run, took the ack p99 from 1.5-2.1 ms (7 runs without
it) to 7.1 ms at nice 10, as at nice 0 (6.4-7.1); as SCHED_IDLE, to 3.2-4.8 ms (one-off, 2
runs each).

So the child runs as SCHED_IDLE (it gets only the CPU time nothing else wants, and any
waking venue thread preempts it) and paces itself: after every SLICE_S of CPU (capture and
encode call its `Pacer` between stretches of orders and pickle frames, see
venue/snapshot.py) it sleeps long enough to use at most `snapshots.cpu_share` of one core
(SnapshotConfig, 0.2 by default). The stand-in paced so, as SCHED_IDLE: ack p99 1.6-2.2 ms
(5 runs). The snapshot takes longer (its CPU time / cpu_share: 4 s for 150,000 live orders
at 0.2) and is as current: the state is the one at the fork. So a crash replays a longer
tail: at 5,000 orders/s and `every` 100,000, at most 120,000 commands instead of 104,000
(a restart replays some 200,000 a second, README). A process that stops has no acks left
to protect and should not wait that long: `Child.hurry` tells the child (a byte on a pipe
its Pacer looks at before each sleep) to finish at full speed.

Cost on the loop: the fork itself, which copies the page tables, then, while the child
lives, a page fault the first time the parent writes to each page still shared with it.
bench/snapshot.py (the whole venue, 100,000 resting orders, 5,000 orders/s, load average 1
to 4, six runs): fork() pauses the loop 9-25 ms, where capture paused it 62-77 ms and the
worker thread's encoding then stalled it up to 146-300 ms; the run's ack p99 is 10-88 ms
(most runs 10-30), against 159-570 ms with the worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from venue.snapshot import capture, tmp_path, write_tmp

log = logging.getLogger(__name__)

_MESSAGE_BYTES = 2_000
SLICE_S = 0.0005  # a paced child's CPU between its sleeps
# prctl(2), looked up once in the parent: the child must not load libraries (the loader's
# lock may have been held by another thread at the fork)
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def available() -> bool:
    """Whether this platform can take snapshots in a child."""
    return hasattr(os, "fork")


class Child:
    """A child writing the snapshot at `seq` into `tmp`; `pipe` is the read end of its
    failure message. `hurry()` may come from any thread, also once `wait` has released the
    pipe it writes to (the lock keeps it off a descriptor number reused meanwhile)."""

    __slots__ = ("_hurry_pipe", "_lock", "pid", "pipe", "seq", "tmp")

    def __init__(self, pid: int, seq: int, tmp: Path, pipe: int, hurry_pipe: int) -> None:
        self.pid = pid
        self.seq = seq
        self.tmp = tmp
        self.pipe = pipe
        self._hurry_pipe = hurry_pipe
        self._lock = threading.Lock()

    def hurry(self) -> None:
        """Have the child finish at full speed (its parent is stopping)."""
        with self._lock:
            if self._hurry_pipe >= 0:
                with contextlib.suppress(OSError):  # the child is gone: nothing to hurry
                    os.write(self._hurry_pipe, b"!")

    def _release(self) -> None:
        with self._lock:
            os.close(self._hurry_pipe)
            self._hurry_pipe = -1


class Pacer:
    """A child's `Pace` (venue/snapshot.py): called between stretches of work, it sleeps once
    the thread has used `slice_s` of CPU since it last slept, for as long as keeps the
    thread's use of one core at `share`; until `hurry_fd` (a pipe's read end, non-blocking)
    has a byte or is closed, after which it never sleeps. The clock and the sleep are the
    thread's CPU time and time.sleep, or a test's."""

    def __init__(self, share: float, slice_s: float = SLICE_S, *, hurry_fd: int | None = None,
                 clock: Callable[[], float] = time.thread_time, sleep: Callable[[float], object] = time.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share {share} is not in (0, 1]")
        self.slice_s = slice_s
        self.rest_s = slice_s * (1 - share) / share
        self.hurry_fd = hurry_fd
        self.clock = clock
        self.sleep = sleep
        self.until = clock() + slice_s

    def __call__(self) -> None:
        if self.rest_s and self.clock() >= self.until:
            if self._hurried():
                self.rest_s = 0.0
                return
            self.sleep(self.rest_s)
            self.until = self.clock() + self.slice_s

    def _hurried(self) -> bool:
        if self.hurry_fd is None:
            return False
        try:
            os.read(self.hurry_fd, 1)  # a byte, or b"" at the end of the pipe: hurried either way
        except BlockingIOError:
            return False
        return True


def start(core: object, seq: int, ts: int, directory: Path, cpu_share: float) -> Child:
    """Fork a child that writes the snapshot of `core` at `seq` (loop thread, batch
    boundary: the state is the one at `seq` until this returns), using at most `cpu_share`
    of one core until hurried. OSError if it cannot fork."""
    read, write = os.pipe()
    hurry_read, hurry_write = os.pipe()
    parent = os.getpid()
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns of any fork in a threaded process: this one keeps the rules above
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            pid = os.fork()
    except OSError:
        for fd in (read, write, hurry_read, hurry_write):
            os.close(fd)
        raise
    if pid == 0:
        _child(core, seq, ts, directory, cpu_share, write, hurry_read, parent)
    os.close(write)
    os.close(hurry_read)
    return Child(pid, seq, tmp_path(directory, seq, str(pid)), read, hurry_write)


def _child(core: object, seq: int, ts: int, directory: Path, cpu_share: float, pipe: int, hurry_pipe: int, parent: int) -> NoReturn:
    code = 1
    try:
        gc.disable()
        signal.set_wakeup_fd(-1)  # the loop's self-pipe is shared with the parent: a signal here is not the venue's
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        low, high = sorted((pipe, hurry_pipe))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, os.sysconf("SC_OPEN_MAX"))
        _die_with(parent)
        _yield_cpu()
        os.set_blocking(hurry_pipe, False)
        pace = Pacer(cpu_share, hurry_fd=hurry_pipe)
        write_tmp(directory, capture(core, seq, ts, pace), str(os.getpid()), pace)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent hears of it and the child exits
        with contextlib.suppress(BaseException):  # the exit code still says it failed
            os.write(pipe, repr(exc).encode(errors="replace")[:_MESSAGE_BYTES])
    finally:
        os._exit(code)


def _yield_cpu() -> None:
    """Run as SCHED_IDLE where the platform has it (Linux); elsewhere at the inherited priority."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, os.sched_param(0))


def _die_with(parent: int) -> None:
    """Have the kernel kill this child if the venue dies (kill -9) before it is done: its
    file could never be installed, and the restarted venue needs the CPU. (Strictly, when
    the forking thread ends: the loop thread, which waits for the child before it ends.)"""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request
        os._exit(1)


def wait(child: Child) -> str | None:
    """Block (in a worker thread) until the child exits: None if it wrote its file, else why
    it did not."""
    try:
        _, status = os.waitpid(child.pid, 0)
        os.set_blocking(child.pipe, False)  # a fork elsewhere may hold the write end open too
        try:
            message = os.read(child.pipe, _MESSAGE_BYTES).decode(errors="replace")
        except BlockingIOError:
            message = ""
    finally:
        os.close(child.pipe)
        child._release()
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return message or f"exit code {code}"


def discard(child: Child, failure: str) -> None:
    """A child that did not write its snapshot: say why, and delete what it left."""
    log.error("snapshot at seq %d failed in its child process %d: %s", child.seq, child.pid, failure)
    child.tmp.unlink(missing_ok=True)
