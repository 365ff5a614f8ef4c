"""What the drop-copy acceptor answers to each thing a member can send, without a network:
the quickfix callbacks called as quickfix calls them, the sends recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix
from drop_copy_support import fields

from drop_copy.acceptor import DropCopyAcceptor
from drop_copy.entitlement import Entitlements, Member
from drop_copy.requests import TradeRequest
from venue.fix.auth import hash_password


class RecordingAcceptor(DropCopyAcceptor):
    """The acceptor with its sends recorded instead of handed to a session."""

    def __init__(self, tmp: Path) -> None:
        members = [
            Member(id="C1", sender_comp_id="CLEARER1", username="clearer1", password_hash=hash_password("s3cret", n=2**10), firms=frozenset({"F1"})),
            Member(id="C2", sender_comp_id="OPEN", firms=frozenset({"F2"})),  # no password: loopback conformance only
        ]
        self.requests: list[tuple[str, TradeRequest]] = []
        super().__init__(entitlements=Entitlements(members), comp_id="VENUE", host="127.0.0.1", port=0, state_dir=tmp,
                         on_trade_request=self._answer)
        self.sent: list[tuple[str, dict[int, str]]] = []

    def _answer(self, member: Member, request: TradeRequest) -> list[str]:
        self.requests.append((member.id, request))
        return []

    def send(self, member: Member, raw: str) -> None:
        self.sent.append((member.id, fields(raw)))


def logon(username: str | None, password: str | None) -> fix.Message:
    m = fix.Message()
    m.getHeader().setField(35, "A")
    if username is not None:
        m.setField(553, username)
    if password is not None:
        m.setField(554, password)
    return m


def sid(comp_id: str) -> fix.SessionID:
    return fix.SessionID("FIX.4.4", "VENUE", comp_id)


@pytest.fixture
def acceptor(tmp_path: Path) -> RecordingAcceptor:
    return RecordingAcceptor(tmp_path)


@pytest.mark.parametrize(("comp_id", "username", "password", "refusal"), [
    ("CLEARER1", "clearer1", "wrong", "invalid username or password"),
    ("CLEARER1", "someone", "s3cret", "invalid username or password"),
    ("CLEARER1", "clearer1", None, "password required (554)"),
    ("CLEARER1", None, None, "invalid username or password"),
    ("NOBODY", "clearer1", "s3cret", "unknown SenderCompID"),
])
def test_a_bad_logon_is_refused_with_the_reason(acceptor: RecordingAcceptor, comp_id: str, username: str | None, password: str | None, refusal: str) -> None:
    with pytest.raises(fix.RejectLogon) as err:
        acceptor.fromAdmin(logon(username, password), sid(comp_id))
    assert err.value.args == (refusal,)


def test_a_good_logon_passes_once(acceptor: RecordingAcceptor) -> None:
    acceptor.fromAdmin(logon("clearer1", "s3cret"), sid("CLEARER1"))
    acceptor.fromAdmin(logon(None, None), sid("OPEN"))
    acceptor.onLogon(sid("CLEARER1"))
    with pytest.raises(fix.RejectLogon):
        acceptor.fromAdmin(logon("clearer1", "s3cret"), sid("CLEARER1"))
    acceptor.onLogout(sid("CLEARER1"))
    acceptor.fromAdmin(logon("clearer1", "s3cret"), sid("CLEARER1"))


@pytest.mark.parametrize("msg_type", ["D", "F", "G", "H", "q", "V", "x", "AE", "8"])
def test_every_other_application_message_gets_a_business_reject_and_does_nothing(acceptor: RecordingAcceptor, msg_type: str) -> None:
    m = fix.Message()
    m.getHeader().setField(35, msg_type)
    m.getHeader().setField(34, "7")
    m.setField(11, "X1")
    acceptor.fromApp(m, sid("CLEARER1"))
    assert acceptor.sent == [("C1", acceptor.sent[0][1])]
    reject = acceptor.sent[0][1]
    assert (reject[35], reject[45], reject[372], reject[380]) == ("j", "7", msg_type, "3")
    assert "read-only" in reject[58]
    assert acceptor.requests == []


def test_a_trade_capture_request_is_served_off_the_session_thread(acceptor: RecordingAcceptor) -> None:
    m = fix.Message("8=FIX.4.4\x019=0\x0135=AD\x0134=3\x01568=Q1\x01569=0\x0110=000\x01", False)
    acceptor.fromApp(m, sid("OPEN"))
    acceptor._requests.shutdown(wait=True)
    assert [(mid, r.request_id) for mid, r in acceptor.requests] == [("C2", "Q1")]
    bad = fix.Message("8=FIX.4.4\x019=0\x0135=AD\x0134=4\x01568=Q2\x01569=9\x0110=000\x01", False)
    acceptor._requests = type(acceptor._requests)(max_workers=1)
    acceptor.fromApp(bad, sid("OPEN"))
    acceptor._requests.shutdown(wait=True)
    assert [(mid, f[35], f[750], f[749]) for mid, f in acceptor.sent] == [("C2", "AQ", "2", "8")]
