"""venue/fix/thread_state.py over a real quickfix acceptor: without it, quickfix's binding
gives every callback a fresh Python thread state (thread-local data does not survive from
one message to the next); with `hold()`, a connection's callbacks share one state until
`release()` in onLogout, and the next connection starts with a fresh one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import quickfix as fix
from fixclient import FixClient
from venue_harness import free_port

from venue.fix import thread_state
from venue.fix.settings import acceptor_settings, to_quickfix

_marks = threading.local()


class Probe(fix.Application):  # type: ignore[misc]
    """Records, per application message and per logout, whether thread-local data set by
    the previous message's callback on the same thread was still there."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.keep = keep
        self.seen: list[bool] = []
        self.logouts: list[bool] = []

    def onCreate(self, sid: fix.SessionID) -> None:
        pass

    def onLogon(self, sid: fix.SessionID) -> None:
        pass

    def onLogout(self, sid: fix.SessionID) -> None:
        self.logouts.append(getattr(_marks, "set", False))
        if self.keep:
            thread_state.release()

    def toAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        if self.keep:
            thread_state.hold()
        self.seen.append(getattr(_marks, "set", False))
        _marks.set = True


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.fixture(params=[False, True], ids=["binding-default", "held"])
def acceptor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Probe, int]]:
    port = free_port()
    settings = to_quickfix(*acceptor_settings(comp_id="VENUE", host="127.0.0.1", port=port, state_dir=tmp_path, sessions=[("T1", {})]))
    app = Probe(keep=request.param)
    acc = fix.ThreadedSocketAcceptor(app, fix.FileStoreFactory(settings), settings)
    acc.start()
    try:
        yield app, port
    finally:
        acc.stop()


def connection(port: int, orders: int, first: int) -> None:
    c = FixClient(port, "T1")
    c.logon_again(reset=True)  # the previous connection may still be being torn down
    for i in range(first, first + orders):
        c.new_order(f"O{i}", "BTC-PERP", 1, 1, "100000", account="A")
    c.quiet(0.2)
    c.logout()
    c.close()


def test_thread_local_data_lives_as_long_as_the_state_is_held(acceptor: tuple[Probe, int]) -> None:
    app, port = acceptor
    connection(port, 3, 0)
    assert eventually(lambda: len(app.seen) == 3), app.seen
    connection(port, 2, 3)
    assert eventually(lambda: len(app.seen) == 5), app.seen
    assert eventually(lambda: len(app.logouts) == 2), app.logouts
    if app.keep:
        assert app.seen == [False, True, True, False, True]
        assert app.logouts == [True, True]  # onLogout runs on the connection's thread: where release() must be
    else:
        assert app.seen == [False] * 5  # the premise of venue/fix/thread_state.py
        assert app.logouts == [False, False]
