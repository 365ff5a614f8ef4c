"""A real venue for end-to-end tests: config written to a tmp dir, the whole `Venue`
(reference database, sequencer, FIX acceptor) on its own thread and event loop, or as a
`venue run` subprocess for restarts. Ports come from binding 127.0.0.1:0; every wait is
bounded."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixclient import FixClient

from venue.app import Venue
from venue.clearing import jobs
from venue.config import DEFAULT_CONFIG, load_config

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(root: Path, mutate: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The demo config with fresh ports and a var dir under `root`; `mutate` edits the
    YAML mapping before it is written. Adds a password-less conformance session FIRM1C
    to FIRM1 (with quickfix's CheckLatency overridden off), and firm FIRM3
    (cancel-on-disconnect off)."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["venue"]["order_entry"]["port"] = free_port()
    data["venue"]["drop_copy"]["port"] = free_port()
    data["venue"]["var_dir"] = str(root / "var")
    data["firms"][0]["sessions"].append({"sender_comp_id": "FIRM1C", "settings": {"CheckLatency": "N"}})
    data["firms"].append({"id": "FIRM3", "accounts": ["FIRM3-A"], "cancel_on_disconnect": False,
                          "sessions": [{"sender_comp_id": "FIRM3", "username": "firm3", "password": "firm3-secret"}]})
    data.setdefault("risk", {}).setdefault("collateral", {})["FIRM3-A"] = 10000000
    if mutate is not None:
        mutate(data)
    path = root / "config" / "venue.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class VenueThread:
    """The venue on a background thread with its own loop."""

    def __init__(self, config: Path) -> None:
        self.cfg = load_config(config)
        self.port = self.cfg.venue.order_entry.port
        self.venue: Venue | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="venue", daemon=True)
        self.clients: list[FixClient] = []

    def client(self, who: str) -> FixClient:
        """A client for a test session (closed when the venue stops): FIRM1, FIRM2,
        FIRM3 with their passwords, or FIRM1C (no password)."""
        c = client(self.port, who)
        self.clients.append(c)
        return c

    def logged_on(self, who: str, within: float = 15.0) -> FixClient:
        """A logged-on client. Like a FIX engine's reconnect interval, it tries again when
        the venue drops the connection without a word: quickfix does that to a connection
        that arrives while the session's previous one is still being torn down."""
        deadline = time.monotonic() + within
        while True:
            c = self.client(who)
            try:
                answer = c.logon(timeout=max(0.1, deadline - time.monotonic()))
            except ConnectionError:
                c.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)
                continue
            assert answer.get(35) == b"A", f"{who} logon refused: {c.logout_text}"
            return c

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            venue = Venue.build(self.cfg)
            await venue.start()
            self.venue = venue
            self._ready.set()
            await self._stop.wait()
            await venue.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()/stop() in the test thread
            self._error = exc
            self._ready.set()

    def start(self, timeout: float = 30.0) -> VenueThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("venue did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn` on the venue's loop (between batches) and return its result."""
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(_run(fn), self.loop)
        return fut.result(timeout)

    def ledger(self, sql: str, params: tuple[Any, ...] = (), timeout: float = 30.0) -> list[tuple[Any, ...]]:
        """A query on the live clearing ledger, which the venue's drop-copy process holds:
        sent from the venue's loop as the operator's jobs are (venue/clearing/jobs.py)."""
        assert self.loop is not None and self.venue is not None and self.venue.clearing is not None
        asked = self.venue.clearing.run(partial(jobs.query, sql, params), timeout)
        return asyncio.run_coroutine_threadsafe(asked, self.loop).result(timeout + 5)

    def stop(self, timeout: float = 40.0) -> None:
        for c in self.clients:
            c.close()
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("venue did not stop")
        if self._error is not None:
            raise self._error


async def _run(fn: Callable[[], Any]) -> Any:
    return fn()


def client(port: int, who: str) -> FixClient:
    """A client for a demo session: FIRM1, FIRM2, FIRM3 (with their passwords) or FIRM1C."""
    creds = {"FIRM1": ("firm1", "firm1-secret"), "FIRM2": ("firm2", "firm2-secret"), "FIRM3": ("firm3", "firm3-secret")}
    user, pw = creds.get(who, ("", ""))
    return FixClient(port, who, username=user, password=pw)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueThread]:
    v = VenueThread(write_config(tmp_path)).start()
    try:
        yield v
    finally:
        v.stop()


def check_engine(v: VenueThread) -> None:
    """The core's invariants (positions net to zero per instrument, books consistent)."""
    assert v.venue is not None
    v.call(v.venue.engine.validate)


class VenueProcess:
    """`python -m venue run --config PATH` as a real subprocess."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = load_config(config).venue.order_entry.port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "venue.out"

    def start(self, timeout: float = 30.0) -> VenueProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "venue", "run", "--config", str(self.config)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"venue exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"venue did not listen on {self.port}:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 40.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise
