"""Sender threads: each session's messages leave in the order they were posted, a failing
send costs only itself, a session whose send blocks (a client that stopped reading) holds
up no other, and close() sends everything posted before it."""

from __future__ import annotations

import threading
import time

import pytest
import quickfix as fix

from venue.fix.sender import Sender, to_message
from venue.fix.settings import DATA_DICTIONARY

DD = fix.DataDictionary(str(DATA_DICTIONARY))


class FakeSession:
    """Stands in for quickfix.Session: records ClOrdIDs; refuses one on purpose; blocks on
    one until `release` is set, as a send to a client that stopped reading does."""

    def __init__(self, refuse: str = "", block: str = "") -> None:
        self.sent: list[str] = []
        self.refuse = refuse
        self.block = block
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.threads: set[str] = set()

    def send(self, msg: fix.Message) -> bool:
        cl = msg.getField(11)
        if cl == self.refuse:
            raise RuntimeError("socket gone")
        if cl == self.block:
            self.blocked.set()
            assert self.release.wait(30), "never released"
        self.sent.append(cl)
        self.threads.add(threading.current_thread().name)
        return True


def er(cl: str) -> str:
    return f"8=FIX.4.4\x019=0\x0135=8\x0137=1\x0111={cl}\x0117=1\x01150=0\x0139=0\x0155=X\x0154=1\x01151=0\x0114=0\x016=0\x0110=000\x01"


@pytest.mark.parametrize("threads", [1, 2])
def test_order_per_session_and_drain_on_close(threads: int) -> None:
    sender = Sender(DD, threads)
    a, b = FakeSession(refuse="A13"), FakeSession()
    box_a, box_b = sender.outbox("A", a), sender.outbox("B", b)  # type: ignore[arg-type]
    sender.start()

    def post_b() -> None:
        for i in range(200):
            sender.post(box_b, [er(f"B{i}"), er(f"B{i}x")])

    other = threading.Thread(target=post_b)  # posts come from the loop and quickfix's threads at once
    other.start()
    for i in range(200):
        if i % 2:
            sender.post(box_a, [er(f"A{i}")])
        else:
            sender.post_many({box_a: [er(f"A{i}")]})
    other.join(10)
    sender.close(timeout=10)
    assert a.sent == [f"A{i}" for i in range(200) if i != 13]
    assert b.sent == [x for i in range(200) for x in (f"B{i}", f"B{i}x")]


def test_a_session_whose_send_blocks_holds_up_no_other(caplog: pytest.LogCaptureFixture) -> None:
    sender = Sender(DD, 1, stuck_s=0.2)
    stuck, other = FakeSession(block="S1"), FakeSession()
    box_s, box_o = sender.outbox("STUCK", stuck), sender.outbox("OTHER", other)  # type: ignore[arg-type]
    sender.start()
    try:
        sender.post_many({box_s: [er("S0"), er("S1"), er("S2")], box_o: [er("O0")]})
        assert stuck.blocked.wait(5)
        sender.post_many({box_s: [er("S3")], box_o: [er("O1"), er("O2")]})
        deadline = time.monotonic() + 5
        while len(other.sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert other.sent == ["O0", "O1", "O2"], "the other session waited for the stuck one"
        assert stuck.sent == ["S0"]
        assert "sends to STUCK have blocked" in caplog.text
        stuck.release.set()  # the client reads again: the rest follows, in order
    finally:
        stuck.release.set()
        sender.close(timeout=10)
    assert stuck.sent == ["S0", "S1", "S2", "S3"]


def test_close_does_not_wait_for_a_stuck_session() -> None:
    sender = Sender(DD, 1, stuck_s=0.1)
    stuck, other = FakeSession(block="S0"), FakeSession()
    box_s, box_o = sender.outbox("STUCK", stuck), sender.outbox("OTHER", other)  # type: ignore[arg-type]
    sender.start()
    sender.post(box_s, [er("S0")])
    assert stuck.blocked.wait(5)
    time.sleep(0.3)  # stuck, and another thread started
    sender.post(box_o, [er("O0"), er("O1")])
    t = time.monotonic()
    sender.close(timeout=10)
    assert other.sent == ["O0", "O1"] and time.monotonic() - t < 5
    stuck.release.set()


def test_messages_with_groups_parse_with_the_dictionary() -> None:
    w = "8=FIX.4.4\x019=0\x0135=W\x01262=M\x0155=X\x01268=2\x01269=0\x01270=1\x01271=1\x01269=1\x01270=2\x01271=3\x0110=000\x01"
    msg = to_message(w, DD)
    group = fix.Group(268, 269)
    msg.getGroup(2, group)
    assert group.getField(271) == "3"
