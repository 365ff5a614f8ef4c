"""Send lanes: each session's messages leave in the order they were posted, a failing
send costs only itself, and close() sends everything posted before it."""

from __future__ import annotations

import threading

import quickfix as fix

from venue.fix.sender import SendLanes, to_message
from venue.fix.settings import DATA_DICTIONARY

DD = fix.DataDictionary(str(DATA_DICTIONARY))


class FakeSession:
    """Stands in for quickfix.Session: records ClOrdIDs; refuses one on purpose."""

    def __init__(self, refuse: str = "") -> None:
        self.sent: list[str] = []
        self.refuse = refuse
        self.threads: set[str] = set()

    def send(self, msg: fix.Message) -> bool:
        cl = msg.getField(11)
        if cl == self.refuse:
            raise RuntimeError("socket gone")
        self.sent.append(cl)
        self.threads.add(threading.current_thread().name)
        return True


def er(cl: str) -> str:
    return f"8=FIX.4.4\x019=0\x0135=8\x0137=1\x0111={cl}\x0117=1\x01150=0\x0139=0\x0155=X\x0154=1\x01151=0\x0114=0\x016=0\x0110=000\x01"


def test_order_per_session_and_drain_on_close() -> None:
    lanes = SendLanes(DD, 2)
    a, b = FakeSession(refuse="A13"), FakeSession()
    la, lb = lanes.lane(), lanes.lane()
    assert la != lb
    lanes.start()
    for i in range(200):
        lanes.post(la, [(a, er(f"A{i}"))])  # type: ignore[list-item]
        lanes.post(lb, [(b, er(f"B{i}")), (b, er(f"B{i}x"))])  # type: ignore[list-item]
    lanes.close(timeout=10)
    assert a.sent == [f"A{i}" for i in range(200) if i != 13]
    assert b.sent == [x for i in range(200) for x in (f"B{i}", f"B{i}x")]
    assert len(a.threads) == len(b.threads) == 1 and a.threads != b.threads


def test_messages_with_groups_parse_with_the_dictionary() -> None:
    w = "8=FIX.4.4\x019=0\x0135=W\x01262=M\x0155=X\x01268=2\x01269=0\x01270=1\x01271=1\x01269=1\x01270=2\x01271=3\x0110=000\x01"
    msg = to_message(w, DD)
    group = fix.Group(268, 269)
    msg.getGroup(2, group)
    assert group.getField(271) == "3"
