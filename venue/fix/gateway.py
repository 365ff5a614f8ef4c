"""The FIX 4.4 order-entry gateway: a quickfix acceptor on one side, the sequencer on the
other.

Threads. quickfix calls back on its own threads (one per connection). Those callbacks
authenticate logons, decode application messages into commands and hand them to the
loop through an inbox (one loop wake-up carries all that arrived meanwhile), where they
are submitted to the sequencer; they never touch venue state. The sequencer publishes
each batch's events to `on_events` on its loop thread, which renders them as FIX strings
for the session that owns each order (both sides of a trade get their own
ExecutionReport) and posts them to the sessions' outboxes (venue/fix/sender.py), which
sender threads empty with quickfix's costly `Session.send`, in order per session, no
session holding up another. Market data runs on the loop.

Edge rules (quickfix's facts that shape this file):
- An exception escaping a callback, other than quickfix's own (RejectLogon,
  UnsupportedMessageType, ...), ends the process: every callback catches at its edge and
  answers a message it could not handle with a BusinessMessageReject (35=j).
- quickfix resets a session's store on a Logon with ResetSeqNumFlag before the
  application sees it; authentication happens in fromAdmin on every Logon, reset or not,
  so a reset never skips it.
- Sessions are addressed by the client's SenderCompID (our TargetCompID): that is the
  `session` on every command, and where its answers go. A session logged out still has
  its store: what is sent to it then (cancel-on-disconnect reports) is kept and reaches
  the client by resend when it logs on again.
- No quickfix message log: its FileLog writes each Logon as received, Password (554) in
  clear, and a Python Log deadlocks quickfix 1.16's binding. Session events (logons,
  refusals, logouts) go to Python logging here, outgoing messages stay in the FileStore
  (that is what resend reads), and every accepted request is in the journal.
- quickfix itself refuses a connection whose CompIDs match no configured session, and a
  second connection to a session already logged on, by closing it: no Logout, because
  no session exists to send one on. Every configured session's logon is authenticated.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import quickfix as fix

from venue.commands import CancelSessionOrders, Command
from venue.events import CancelRejected, Event, ExecReport, Fill, MassCancelDone
from venue.fix import thread_state
from venue.fix.auth import AuthenticatedAcceptor, check_credentials
from venue.fix.codec import (
    NOTE_REASONS,
    EdgeNote,
    decode_cancel,
    decode_mass_cancel,
    decode_new_order,
    decode_replace,
    decode_status,
    field_map,
    split_fields,
)
from venue.fix.marketdata import MarketData
from venue.fix.reports import HEAD, TAIL, Renderer
from venue.fix.security_list import security_list
from venue.fix.sender import Outbox, Sender
from venue.fix.settings import DATA_DICTIONARY, acceptor_settings, to_quickfix
from venue.fix.write_behind import WriteBehind
from venue.refdata import FirmRecord, ReferenceData, SessionRecord
from venue.sequencer import Sequencer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Session:
    record: SessionRecord
    firm: FirmRecord
    sid: fix.SessionID
    session: fix.Session | None = None
    logged_on: bool = False
    outbox: Outbox | None = None  # its messages, until a sender thread sends them (from start())


class OrderEntryGateway(AuthenticatedAcceptor):
    """The order-entry acceptor: FIX in, commands to the sequencer; events out, to the
    owning session (see the module docstring)."""

    kind = "order-entry"

    def __init__(self, *, reference: ReferenceData, sequencer: Sequencer, comp_id: str, host: str, port: int, state_dir: Path,
                 send_threads: int = 1) -> None:
        super().__init__()
        self.sequencer = sequencer
        self.instruments = {i.symbol: i for i in reference.instruments}
        self.renderer = Renderer(self.instruments)
        self.md = MarketData(self.renderer, self._send_from_loop)
        self.state_dir = state_dir
        firms = {f.id: f for f in reference.firms}
        self.sessions: dict[str, _Session] = {
            s.sender_comp_id: _Session(s, firms[s.firm], fix.SessionID("FIX.4.4", comp_id, s.sender_comp_id)) for s in reference.sessions
        }
        self.settings = acceptor_settings(
            comp_id=comp_id, host=host, port=port, state_dir=state_dir,
            sessions=[(s.sender_comp_id, s.settings) for s in reference.sessions],
        )
        self.dd = fix.DataDictionary(str(DATA_DICTIONARY))
        self.sender = Sender(self.dd, min(send_threads, max(1, len(self.sessions))))
        self.write_behind = WriteBehind(Path(self.settings[0]["FileStorePath"]))
        self._batch: dict[Outbox, list[str]] | None = None  # while on_events runs: what each session gets
        self._notes: dict[tuple[str, str], str] = {}
        self._inbox: deque[tuple[Command, EdgeNote | None]] = deque()  # quickfix threads -> loop
        self._drain_scheduled = False
        self._response_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._qf_settings: fix.SessionSettings | None = None  # quickfix keeps references to these two
        self._store: fix.FileStoreFactory | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen (on the loop thread, after the sequencer is running)."""
        self._loop = asyncio.get_running_loop()
        self._qf_settings = settings = to_quickfix(*self.settings)
        self._store = fix.FileStoreFactory(settings)
        self._acceptor = fix.ThreadedSocketAcceptor(self, self._store, settings)
        self._acceptor.start()
        for name, st in self.sessions.items():
            st.session = fix.Session.lookupSession(st.sid)
            st.outbox = self.sender.outbox(name, st.session)
        self.sender.start()
        self.write_behind.start()
        log.info("order entry listening on port %s for %d sessions", self.settings[0]["SocketAcceptPort"], len(self.sessions))

    async def stop(self) -> None:
        """Log every session out and stop listening. Sessions stay addressable (their
        stores take what is still sent to them) until `close()`."""
        if self._acceptor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._acceptor.stop)

    def close(self, timeout: float = 30.0) -> None:
        """After the sequencer has drained: send what is queued (to the sessions' stores,
        for resend), then release quickfix's sessions."""
        self.sender.close(timeout)
        self.write_behind.close()
        for st in self.sessions.values():
            st.session = st.outbox = None
        self._acceptor = None

    # ------------------------------------------------------------------ quickfix callbacks

    def onCreate(self, sid: fix.SessionID) -> None:
        pass

    def onLogon(self, sid: fix.SessionID) -> None:
        try:
            st = self.sessions.get(sid.getTargetCompID().getValue())
            if st is not None:
                st.logged_on = True
                log.info("session %s (firm %s) logged on", st.record.sender_comp_id, st.firm.id)
        except Exception:
            log.exception("logon of %s", sid)

    def onLogout(self, sid: fix.SessionID) -> None:
        thread_state.release()  # the connection's thread is done calling us (venue/fix/thread_state.py)
        try:
            st = self.sessions.get(sid.getTargetCompID().getValue())
            if st is None or not st.logged_on:
                return  # a refused logon: it never had a session to cancel
            st.logged_on = False
            name = st.record.sender_comp_id
            log.info("session %s logged out", name)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self.md.drop_session, name)
            if st.firm.cancel_on_disconnect and st.firm.cancel_on_disconnect_tifs:
                self._submit(CancelSessionOrders(session=name, tifs=st.firm.cancel_on_disconnect_tifs))
        except Exception:
            log.exception("logout of %s", sid)

    def fromApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        thread_state.hold()
        try:
            taken = self._from_app(message.toString())
        except Exception:
            log.exception("message from %s could not be handled", sid)
            try:
                self._business_reject(sid.getTargetCompID().getValue(), message, "0", "the venue could not process this message")
            except Exception:
                log.exception("could not answer %s", sid)
            return
        if not taken:  # quickfix answers with BusinessMessageReject 35=j, reason 3
            del self, message, sid  # see refuse_logon: the leaked exception must pin nothing
            _unsupported_message_type()

    # ------------------------------------------------------------------ inbound

    def _authenticate(self, message: fix.Message, sid: fix.SessionID) -> str | None:
        """None when the Logon may proceed, else the reason for the Logout."""
        st = self.sessions.get(sid.getTargetCompID().getValue())
        if st is None:
            return "unknown SenderCompID"
        rec = st.record
        if st.logged_on:
            return f"{rec.sender_comp_id} is already logged on"
        return check_credentials(message, rec.username, rec.password_hash)

    def _from_app(self, raw: str) -> bool:
        """Decode and hand over one application message; False for a type the venue does
        not take. The session is the message's SenderCompID (49), which quickfix has checked
        against the session's before calling us: reading it from the string spares two
        calls into quickfix, each of which lets go of the interpreter lock and must win it
        back from the loop and the sender threads."""
        f = field_map(raw)
        msg_type = f[35]
        name = f[49]
        st = self.sessions[name]
        firm = st.firm.id
        if msg_type == "D":
            self._submit(decode_new_order(f, name, firm, self.instruments, st.firm.stp_mode))
        elif msg_type == "F":
            self._submit(decode_cancel(f, name, firm))
        elif msg_type == "G":
            cmd, note = decode_replace(f, name, firm, self.instruments)
            self._submit(cmd, note)
        elif msg_type == "H":
            self._submit(decode_status(f, name, firm))
        elif msg_type == "q":
            self._submit(decode_mass_cancel(f, name, firm))
        elif msg_type == "V":
            self._call_on_loop(self.md.request, name, split_fields(raw))
        elif msg_type == "x":
            self.send(name, security_list(f, self.instruments, f"SL{next(self._response_ids)}"))
        else:
            return False
        return True

    def _submit(self, cmd: Command, note: EdgeNote | None = None) -> None:
        """Hand a command to the loop (from any thread). Under load one wake-up of the loop
        carries many commands: each call_soon_threadsafe is a syscall and a loop turn."""
        self._inbox.append((cmd, note))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._call_on_loop(self._drain)

    def _drain(self) -> None:
        """On the loop: queue everything handed in, in arrival order. The flag is cleared
        before draining, so a command appended meanwhile is drained now or wakes us again."""
        self._drain_scheduled = False
        inbox, submit, notes = self._inbox, self.sequencer.submit, self._notes
        while inbox:
            cmd, note = inbox.popleft()
            if note is not None:
                notes[(note.firm, note.cl_ord_id)] = note.text
            submit(cmd)

    def _call_on_loop(self, fn: object, *args: object) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("gateway is not started")
        loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]

    def _business_reject(self, name: str, message: fix.Message, reason: str, text: str) -> None:
        header = message.getHeader()
        ref_seq = header.getField(34) if header.isSetField(34) else "0"
        ref_type = header.getField(35) if header.isSetField(35) else ""
        self.send(name, f"{HEAD}35=j\x0145={ref_seq}\x01372={ref_type}\x01380={reason}\x0158={text}\x01{TAIL}")

    # ------------------------------------------------------------------ outbound

    def send(self, name: str, raw: str) -> None:
        """Send a rendered message to a session, from any thread (logged on or not:
        quickfix stores it for resend). Never raises."""
        st = self.sessions.get(name)
        if st is not None and st.outbox is not None:
            self.sender.post(st.outbox, (raw,))

    def _send_from_loop(self, name: str, raw: str) -> None:
        """As `send`, on the loop thread: during on_events, collected per session and posted
        once per batch (one hand-off for the batch, not per message)."""
        st = self.sessions.get(name)
        if st is None or st.outbox is None:
            return
        batch = self._batch
        if batch is None:
            self.sender.post(st.outbox, (raw,))
        else:
            batch.setdefault(st.outbox, []).append(raw)

    def on_events(self, events: Sequence[Event]) -> None:
        """Sequencer subscriber: each event to the session(s) it belongs to."""
        batch: dict[Outbox, list[str]] = {}
        self._batch = batch
        try:
            self._render(events)
            self.md.on_events(events)
        finally:
            self._batch = None
            if batch:
                self.sender.post_many(batch)

    def _render(self, events: Sequence[Event]) -> None:
        send, r = self._send_from_loop, self.renderer
        for ev in events:
            try:
                if isinstance(ev, ExecReport):
                    send(ev.order.entry.session, r.execution_report(ev))
                elif isinstance(ev, Fill):
                    taker, maker = r.fill_reports(ev)
                    send(ev.taker.entry.session, taker)
                    send(ev.maker.entry.session, maker)
                elif isinstance(ev, CancelRejected):
                    note = self._notes.pop((ev.firm, ev.cl_ord_id), None) if self._notes else None
                    send(ev.session, r.cancel_reject(ev, note if note is not None and ev.reason in NOTE_REASONS else None))
                elif isinstance(ev, MassCancelDone):
                    send(ev.session, r.mass_cancel_report(ev))
            except Exception:  # one event that cannot be rendered must not cost the batch's others
                log.exception("could not render %r", ev)


def _unsupported_message_type() -> NoReturn:
    """Raised from a frame that holds nothing (see venue/fix/auth.py refuse_logon)."""
    raise fix.UnsupportedMessageType()
