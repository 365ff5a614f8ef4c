"""The venue's side of drop copy: start the drop-copy process, tell it what is published,
send it the clearing ledger's jobs.

`venue/app.py` starts it after recovery (before order entry listens) and stops it once the
sequencer has drained, telling it the last published seq;
if it dies, the next batch finds the pipe broken and another is started (members resume
after what their FIX stores hold, the rest regenerated from the journal).
The subscriber `on_events` runs on the sequencer's loop after each batch is journaled and
published, and writes one line, the batch's last sequence number, to the process's stdin
(non-blocking: if the pipe is full, the number is written with the next batch or a moment
later, never waited for). That is all drop copy costs the venue process.

At most one line per TELL_INTERVAL_S (1 ms): a batch published sooner after the last line
is told with the next line, at most that much later. Without it, at 5,000 orders/s in
batches of one or two the process woke, reread the journal's tail and handed over to its
writer once per batch. A longer interval costs the process less CPU but makes its work come
in bursts, and bursts are what the venue's tail latency feels. Measured on
bench/fix_e2e.py's load (1 session, resting orders at 5,000/s, snapshots out of the run,
three paired runs): with 10 ms the process took 17-19% of a core against 27-30%, but the
venue's ack p99 was 1.9-2.7 ms against 1.4-1.6 ms, and bench/drop_copy.py's copy latency
p50 28-123 ms against 10 ms with one member.

The process also holds the clearing ledger (venue/clearing/host.py). `run(job)` sends an
operator's job down the same pipe after the latest published seq (drop_copy/pipe.py) and
awaits its answer, which the loop reads off the process's stdout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from drop_copy import pipe
from venue.clearing.jobs import Job, LedgerUnavailable
from venue.events import Event

T = TypeVar("T")

log = logging.getLogger(__name__)

RETRY_S = 0.005  # a full pipe: tell again this much later
TELL_INTERVAL_S = 0.001  # the least time between two lines to the process
RESTART_DELAY_S = 0.5  # a dead process: start another after this (times the attempt)
RESTART_ATTEMPTS = 5


class DropCopyLink:
    def __init__(self, config: Path, log_level: str = "INFO") -> None:
        self.config = config
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._written = 0  # the last seq the process was told
        self._latest = 0  # the last seq published
        self._retry: asyncio.TimerHandle | None = None  # a tell waiting for its time (paced, or a full pipe)
        self._told_at = float("-inf")  # loop time of the last line written
        self._restart: asyncio.Task[None] | None = None
        self._stopping = False
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[Any]] = {}  # job id -> its answer, once it comes
        self._lines = pipe.Lines()
        self._ready = False

    async def start(self, published: int) -> None:
        """Start the process; do not wait for it (it takes seconds to import and listen,
        and the pipe keeps what the venue says meanwhile). Its `ready`, or its failure,
        is logged when it comes."""
        self._written = self._latest = published
        args = [sys.executable, "-m", "drop_copy", "--config", str(self.config), "--published", str(published), "--log-level", self.log_level]
        loop = asyncio.get_running_loop()
        proc = await loop.run_in_executor(None, lambda: subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self._fd = proc.stdin.fileno()
        os.set_blocking(self._fd, False)
        self._lines, self._ready = pipe.Lines(), False
        out = proc.stdout.fileno()
        os.set_blocking(out, False)
        loop.add_reader(out, self._on_output, proc)
        log.info("drop-copy process %d following from seq %d", proc.pid, published)

    def _on_output(self, proc: subprocess.Popen[bytes]) -> None:
        """The process's stdout is readable: `ready`, job answers, or its end."""
        assert proc.stdout is not None
        try:
            data = os.read(proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            self._output_ended(proc)
            return
        for line in self._lines.feed(data):
            if line == pipe.READY:
                self._ready = True
                log.info("drop-copy process %d listening", proc.pid)
            elif line.startswith(b"R "):
                job_id, ok, value = pipe.read_answer(line)
                answer = self._answers.pop(job_id, None)
                if answer is None or answer.done():
                    continue  # its caller stopped waiting (a timeout)
                if ok:
                    answer.set_result(value)
                else:
                    answer.set_exception(value)
            elif line:
                log.warning("drop-copy process %d wrote %r", proc.pid, line[:80])

    def _output_ended(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        asyncio.get_running_loop().remove_reader(proc.stdout.fileno())
        if not self._ready:
            log.error("drop-copy process %d did not start (exit %s)", proc.pid, proc.poll())
        self._fail_answers()

    def _fail_answers(self) -> None:
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(LedgerUnavailable("the drop-copy process, which holds the clearing ledger, exited"))
        self._answers.clear()

    async def run(self, job: Job[T], timeout: float) -> T:
        """Run `job` on the clearing ledger after everything published so far, and return
        its answer (or raise what it raised)."""
        job_id = next(self._ids)
        told = self._latest
        line = b"%d\n" % told + pipe.job_line(job_id, job)
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._answers[job_id] = answer
        try:
            async with asyncio.timeout(timeout):
                while True:  # all or nothing (under PIPE_BUF): a full pipe is tried again
                    if self._fd < 0:
                        raise LedgerUnavailable("the drop-copy process, which holds the clearing ledger, is not running")
                    try:
                        os.write(self._fd, line)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(RETRY_S)
                    except BrokenPipeError:
                        self._gone()
                self._written = max(self._written, told)
                return await answer
        finally:
            self._answers.pop(job_id, None)

    def on_events(self, events: Sequence[Event]) -> None:
        """Sequencer subscriber: the batch's last seq to the process, never blocking."""
        seq = events[-1].seq
        self._latest = max(self._latest, seq)
        if self._retry is not None:  # already due: it will tell this seq too
            return
        loop = asyncio.get_running_loop()
        wait = self._told_at + TELL_INTERVAL_S - loop.time()
        if wait > 0:
            self._retry = loop.call_later(wait, self._retried)
        else:
            self._tell()

    def _tell(self) -> None:
        if self._latest <= self._written or self._fd < 0:
            return
        try:
            os.write(self._fd, b"%d\n" % self._latest)
            self._written = self._latest
            self._told_at = asyncio.get_running_loop().time()
        except BlockingIOError:
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._retried)
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        """The pipe is broken: the process has exited. Start another (not when stopping)."""
        self._fd = -1
        if self._restart is None and not self._stopping:
            log.error("the drop-copy process has gone (exit %s): starting another", self.proc.poll() if self.proc is not None else None)
            self._restart = asyncio.get_running_loop().create_task(self._start_again())

    def _retried(self) -> None:
        self._retry = None
        self._tell()

    async def _start_again(self) -> None:
        """A new process, from what is published now: it resumes each member after the
        last copy its store holds and regenerates the rest from the journal."""
        try:
            for attempt in range(1, RESTART_ATTEMPTS + 1):
                self._close_pipes()
                await asyncio.sleep(RESTART_DELAY_S * attempt)
                if self._stopping:
                    return
                try:
                    await self.start(self._latest)
                except OSError:
                    log.exception("drop-copy process did not start again (attempt %d of %d)", attempt, RESTART_ATTEMPTS)
                    continue
                self._tell()
                return
            log.error("drop copy is down until the venue restarts")
        finally:
            self._restart = None

    def _close_pipes(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.stdout is not None and not proc.stdout.closed:
                asyncio.get_running_loop().remove_reader(proc.stdout.fileno())
            self._fail_answers()
            for end in (proc.stdin, proc.stdout):
                if end is not None:
                    try:
                        end.close()
                    except BrokenPipeError:  # closing flushes nothing, but a dead reader can still say so
                        pass
            proc.poll()  # reap it

    async def stop(self, timeout: float = 20.0) -> None:
        """Close its stdin (it finishes and exits); terminate it if it does not."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._restart is not None:
            self._restart.cancel()
        proc = self.proc
        if proc is None:
            return
        await self._tell_last(timeout)
        self._fd = -1
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), timeout)
        except TimeoutError:
            proc.terminate()
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 5)
        self._close_pipes()

    async def _tell_last(self, timeout: float) -> None:
        """The last published seq, waiting for room in the pipe if need be: the ledger
        writes everything up to it before the process exits."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._latest > self._written and self._fd >= 0:
            try:
                os.write(self._fd, b"%d\n" % self._latest)
                self._written = self._latest
            except BlockingIOError:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("drop-copy process not reading: the ledger catches up from the journal at the next start")
                    return
                await asyncio.sleep(RETRY_S)
            except BrokenPipeError:
                return
