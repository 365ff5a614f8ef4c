"""The drop-copy acceptor: clearing members' FIX sessions (127.0.0.1:9877 by default).

quickfix runs the session layer (logon, heartbeats, sequence numbers, resend from its
FileStore under var/fix/drop_copy/store); this file authenticates logons, keeps the
sessions read-only, answers trade capture requests and sends the feed's copies.

Edge rules:
- Logon is authenticated like order entry (venue/fix/auth.py: Username 553 and a scrypt
  hash of Password 554); a refusal is a Logout with the reason (RejectLogon).
- The sessions are read-only: any application message but TradeCaptureReportRequest
  (35=AD) is answered with BusinessMessageReject 35=j, 380=3, and changes nothing.
- An exception escaping a quickfix callback ends the process, so each callback catches at
  its edge. Trade capture requests are served on a worker thread (a replay of the journal
  takes a while), never on the session's own thread.
- A member's session exists while it is logged out: copies sent then are stored and reach
  the member by resend when it logs on (its next Logon shows the gap). A Logon with
  ResetSeqNumFlag 141=Y discards that store: the member then asks for a replay (35=AD).
- No message log: the FileStore already holds every message sent, and a Python log
  callback per copy would cost the writers the GIL for nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import quickfix as fix

from drop_copy.entitlement import Entitlements, Member
from drop_copy.messages import business_reject
from drop_copy.requests import TradeRequestError, TradeRequestHandler, parse_trade_request
from drop_copy.store import Watermark, last_copy
from venue.fix.auth import AuthenticatedAcceptor, check_credentials
from venue.fix.settings import BEGIN_STRING, DATA_DICTIONARY, acceptor_settings, to_quickfix
from venue.fix.write_behind import WriteBehind

log = logging.getLogger(__name__)

BIND_WAIT_S = 10.0


class DropCopyAcceptor(AuthenticatedAcceptor):
    """The acceptor and the sink the feed sends through (`send`, thread-safe)."""

    kind = "drop-copy"

    def __init__(self, *, entitlements: Entitlements, comp_id: str, host: str, port: int, state_dir: Path,
                 on_trade_request: TradeRequestHandler) -> None:
        super().__init__()
        self.entitlements = entitlements
        self.comp_id = comp_id
        self.state_dir = state_dir
        self.on_trade_request = on_trade_request
        self.sids = {m.id: fix.SessionID(BEGIN_STRING, comp_id, m.sender_comp_id) for m in entitlements.members}
        self.settings = acceptor_settings(
            comp_id=comp_id, host=host, port=port, state_dir=state_dir,
            sessions=[(m.sender_comp_id, m.settings) for m in entitlements.members],
        )
        self.dd = fix.DataDictionary(str(DATA_DICTIONARY))
        self.logged_on: set[str] = set()
        self._lock = threading.Lock()
        self._sessions: dict[str, fix.Session] = {}
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._store: fix.FileStoreFactory | None = None
        self._requests = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-copy-request")
        self.write_behind = WriteBehind(self.store_dir)

    @property
    def store_dir(self) -> Path:
        return Path(self.settings[0]["FileStorePath"])

    def watermarks(self) -> dict[str, Watermark]:
        """Per member id, the last copy its FIX store holds (read before `start`)."""
        out: dict[str, Watermark] = {}
        for m in self.entitlements.members:
            w = last_copy(self.store_dir, BEGIN_STRING, self.comp_id, m.sender_comp_id)
            if w is not None:
                out[m.id] = w
        return out

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self.entitlements.members:  # quickfix refuses an acceptor without sessions
            log.info("drop copy: no clearing members configured, not listening")
            return
        settings = to_quickfix(*self.settings)
        self._store = fix.FileStoreFactory(settings)
        deadline = time.monotonic() + BIND_WAIT_S
        while True:  # a drop-copy process of a venue that just died may still hold the port
            self._acceptor = fix.ThreadedSocketAcceptor(self, self._store, settings)
            try:
                self._acceptor.start()
                break
            except fix.RuntimeError as exc:
                self._acceptor = None
                if time.monotonic() > deadline:
                    raise
                log.warning("drop copy cannot listen yet (%s); retrying", exc)
                time.sleep(0.25)
        for m in self.entitlements.members:
            self._sessions[m.id] = fix.Session.lookupSession(self.sids[m.id])
        self.write_behind.start()
        log.info("drop copy listening on port %s for %d clearing members", self.settings[0]["SocketAcceptPort"], len(self._sessions))

    def stop(self) -> None:
        """Log members out and stop listening (blocking: run off the loop)."""
        self._requests.shutdown(wait=True, cancel_futures=True)
        if self._acceptor is not None:
            self._acceptor.stop()
        self.write_behind.close()
        with self._lock:
            self._sessions.clear()
        self._acceptor = None

    # ------------------------------------------------------------------ sending

    def send(self, member: Member, raw: str) -> None:
        """Send (or, logged out, store for resend) one message to a member's session."""
        with self._lock:
            session = self._sessions.get(member.id)
        if session is None:
            raise RuntimeError(f"drop-copy session of {member.id} is not open")
        if not session.send(fix.Message(raw, self.dd, False)):
            raise RuntimeError(f"quickfix refused a message for {member.id}")

    # ------------------------------------------------------------------ quickfix callbacks

    def onCreate(self, sid: fix.SessionID) -> None:
        pass

    def onLogon(self, sid: fix.SessionID) -> None:
        name = sid.getTargetCompID().getValue()
        self.logged_on.add(name)
        log.info("clearing member session %s logged on", name)

    def onLogout(self, sid: fix.SessionID) -> None:
        name = sid.getTargetCompID().getValue()
        if name in self.logged_on:
            self.logged_on.discard(name)
            log.info("clearing member session %s logged out", name)

    def fromApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        try:
            raw = message.toString()
            member = self.entitlements.by_comp_id[sid.getTargetCompID().getValue()]
            header = message.getHeader()
            msg_type = header.getField(35)
            if msg_type == "AD":
                self._requests.submit(self._serve_request, member, raw)
            else:
                seq = header.getField(34) if header.isSetField(34) else "0"
                self.send(member, business_reject(seq, msg_type, 3, f"drop-copy sessions are read-only: MsgType {msg_type} is not accepted"))
        except Exception:
            log.exception("message from drop-copy session %s could not be handled", sid)

    # ------------------------------------------------------------------ inbound

    def _authenticate(self, message: fix.Message, sid: fix.SessionID) -> str | None:
        """None when the Logon may proceed, else the reason for the Logout."""
        member = self.entitlements.by_comp_id.get(sid.getTargetCompID().getValue())
        if member is None:
            return "unknown SenderCompID"
        if member.sender_comp_id in self.logged_on:
            return f"{member.sender_comp_id} is already logged on"
        return check_credentials(message, member.username, member.password_hash)

    def _serve_request(self, member: Member, raw: str) -> None:
        """Worker thread: answer a TradeCaptureReportRequest with an ack and the reports."""
        try:
            try:
                request = parse_trade_request(raw)
            except TradeRequestError as exc:
                self.send(member, exc.ack)
                return
            for out in self.on_trade_request(member, request):
                self.send(member, out)
        except Exception:
            log.exception("trade capture request from %s failed", member.id)
