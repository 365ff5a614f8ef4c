"""The venue's side of drop copy: start the drop-copy process, tell it what is published.

`venue/app.py` starts it after recovery (before order entry listens) and stops it first.
The subscriber `on_events` runs on the sequencer's loop after each batch is journaled and
published, and writes one line, the batch's last sequence number, to the process's stdin
(non-blocking: if the pipe is full, the number is written with the next batch or a moment
later, never waited for). That is all drop copy costs the venue process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from venue.events import Event

log = logging.getLogger(__name__)

RETRY_S = 0.005


class DropCopyLink:
    def __init__(self, config: Path, log_level: str = "INFO") -> None:
        self.config = config
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._written = 0  # the last seq the process was told
        self._latest = 0  # the last seq published
        self._retry: asyncio.TimerHandle | None = None

    async def start(self, published: int, timeout: float = 60.0) -> None:
        """Start the process and wait until it listens."""
        self._written = self._latest = published
        args = [sys.executable, "-m", "drop_copy", "--config", str(self.config), "--published", str(published), "--log-level", self.log_level]
        loop = asyncio.get_running_loop()
        self.proc = await loop.run_in_executor(None, lambda: subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), timeout)
        if line.strip() != b"ready":
            raise RuntimeError(f"the drop-copy process did not start (exit {self.proc.poll()})")
        self._fd = self.proc.stdin.fileno()
        os.set_blocking(self._fd, False)
        log.info("drop-copy process %d following from seq %d", self.proc.pid, published)

    def on_events(self, events: Sequence[Event]) -> None:
        """Sequencer subscriber: the batch's last seq to the process, never blocking."""
        seq = events[-1].seq
        self._latest = max(self._latest, seq)
        self._tell()

    def _tell(self) -> None:
        self._retry = None
        if self._latest <= self._written or self._fd < 0:
            return
        try:
            os.write(self._fd, b"%d\n" % self._latest)
            self._written = self._latest
        except BlockingIOError:
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._tell)
        except BrokenPipeError:
            log.error("the drop-copy process has gone (exit %s); members get no copies until the venue restarts",
                      self.proc.poll() if self.proc is not None else None)
            self._fd = -1

    async def stop(self, timeout: float = 20.0) -> None:
        """Close its stdin (it finishes and exits); terminate it if it does not."""
        if self._retry is not None:
            self._retry.cancel()
        proc = self.proc
        if proc is None:
            return
        self._fd = -1
        if proc.stdin is not None:
            proc.stdin.close()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), timeout)
        except TimeoutError:
            proc.terminate()
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 5)
        if proc.stdout is not None:
            proc.stdout.close()
