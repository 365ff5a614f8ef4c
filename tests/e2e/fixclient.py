"""A small blocking FIX 4.4 client for end-to-end tests (simplefix over a socket).

It keeps its own sequence numbers across reconnects (like a real client's store), answers
TestRequests and ResendRequests (with a gap fill: it never needs to resend an order), and
asks for a resend itself when the venue's MsgSeqNum jumps ahead. Every wait is bounded:
`expect` raises TimeoutError naming what it waited for and what it saw instead.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import simplefix

Pred = Callable[[simplefix.FixMessage], bool]


def get(msg: simplefix.FixMessage, tag: int) -> str | None:
    v = msg.get(tag)
    return v.decode() if v is not None else None


def show(msg: simplefix.FixMessage) -> str:
    return str(msg.encode(raw=True).replace(b"\x01", b"|"), "ascii", "replace")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")


class FixClient:
    def __init__(self, port: int, sender: str, *, username: str = "", password: str = "", target: str = "VENUE", host: str = "127.0.0.1") -> None:
        self.host, self.port, self.sender, self.target = host, port, sender, target
        self.username, self.password = username, password
        self.next_out = 1
        self.next_in = 1
        self.sock: socket.socket | None = None
        self.parser = simplefix.FixParser()
        self.inbox: list[simplefix.FixMessage] = []  # application messages not yet taken
        self.seen: list[simplefix.FixMessage] = []  # everything received, in order
        self.logout_text: str | None = None
        self.auto_resend = True

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=5)
        self.parser = simplefix.FixParser()
        self.logout_text = None

    def logon(self, *, reset: bool = False, heartbeat: int = 30, extra: Iterable[tuple[int, str]] = (), timeout: float = 15.0) -> simplefix.FixMessage:
        """Connect, send a Logon and return the venue's answer: its Logon, or a Logout.
        Raises TimeoutError (or ConnectionError if the venue closes without a word).
        The default wait is long because quickfix holds a session that just disconnected
        for up to 5 s before a new connection may take it."""
        if self.sock is None:
            self.connect()
        if reset:
            self.next_out = self.next_in = 1
        fields: list[tuple[int, str]] = [(98, "0"), (108, str(heartbeat))]
        if reset:
            fields.append((141, "Y"))
        if self.username:
            fields.append((553, self.username))
        if self.password:
            fields.append((554, self.password))
        fields += list(extra)
        self.send("A", fields)
        return self.expect_admin(lambda m: get(m, 35) in ("A", "5"), timeout=timeout)

    def logon_again(self, within: float = 15.0, *, reset: bool = False) -> simplefix.FixMessage:
        """Log this client on again after it logged out or dropped its connection, keeping
        its sequence numbers (unless `reset`). Like a FIX engine's reconnect interval, it tries
        again when the venue closes the connection without a word: quickfix does that to a
        connection that arrives while the session's previous one is still being torn down."""
        deadline = time.monotonic() + within
        while True:
            seq = self.next_out
            try:
                return self.logon(reset=reset, timeout=max(0.1, deadline - time.monotonic()))
            except ConnectionError:
                self.close()
                self.next_out = seq  # that Logon never reached the session
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)

    def logout(self, timeout: float = 5.0) -> None:
        self.send("5", [])
        try:
            self.expect_admin(lambda m: get(m, 35) == "5", timeout=timeout)
        except (TimeoutError, ConnectionError):
            pass
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # ------------------------------------------------------------------ sending

    def send(self, msg_type: str, fields: Iterable[tuple[int, object]], *, seq: int | None = None, header: Iterable[tuple[int, object]] = (),
             sending_time: str | None = None) -> int:
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, self.sender, header=True)
        m.append_pair(56, self.target, header=True)
        num = self.next_out if seq is None else seq
        m.append_pair(34, num, header=True)
        m.append_pair(52, sending_time or utc_now(), header=True)
        for tag, value in header:
            m.append_pair(tag, value, header=True)
        for tag, value in fields:
            m.append_pair(tag, value)
        self.send_raw(m.encode())
        if seq is None:
            self.next_out += 1
        return num

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None, "not connected"
        self.sock.sendall(data)

    def new_order(self, cl: str, symbol: str, side: int | str, qty: object, price: object | None = None, *, account: str | None = None,
                  ord_type: str | None = None, tif: str = "1", extra: Iterable[tuple[int, object]] = ()) -> int:
        fields: list[tuple[int, object]] = [(11, cl)]
        if account is not None:
            fields.append((1, account))
        fields += [(55, symbol), (54, side), (60, utc_now()), (38, qty)]
        fields.append((40, ord_type or ("2" if price is not None else "1")))
        if price is not None:
            fields.append((44, price))
        fields.append((59, tif))
        fields += list(extra)
        return self.send("D", fields)

    def cancel(self, cl: str, orig: str, symbol: str, side: int | str, extra: Iterable[tuple[int, object]] = ()) -> int:
        return self.send("F", [(41, orig), (11, cl), (55, symbol), (54, side), (60, utc_now()), *extra])

    def replace(self, cl: str, orig: str, symbol: str, side: int | str, qty: object, price: object | None, ord_type: str = "2") -> int:
        fields: list[tuple[int, object]] = [(41, orig), (11, cl), (55, symbol), (54, side), (60, utc_now()), (38, qty), (40, ord_type)]
        if price is not None:
            fields.append((44, price))
        return self.send("G", fields)

    # ------------------------------------------------------------------ receiving

    def _read(self, deadline: float) -> simplefix.FixMessage | None:
        """The next message off the wire, handling the session layer; None at the deadline."""
        assert self.sock is not None, "not connected"
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                self._session_layer(msg)
                self.seen.append(msg)
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise ConnectionError(f"venue closed the connection (logout text: {self.logout_text!r})")
            self.parser.append_buffer(data)

    def _session_layer(self, msg: simplefix.FixMessage) -> None:
        mt, seq = get(msg, 35), int(get(msg, 34) or 0)
        poss_dup = get(msg, 43) == "Y"
        if mt == "4":  # SequenceReset, gap fill or reset: the next number is NewSeqNo
            self.next_in = int(get(msg, 36) or self.next_in)
            return
        if seq > self.next_in and mt != "5" and self.auto_resend and not poss_dup:
            self.send("2", [(7, self.next_in), (16, 0)])
        if seq >= self.next_in:
            self.next_in = seq + 1
        if mt == "1":
            self.send("0", [(112, get(msg, 112) or "")])
        elif mt == "2":
            begin = int(get(msg, 7) or 1)
            self.send("4", [(123, "Y"), (36, self.next_out)], seq=begin, header=[(43, "Y")])
        elif mt == "5":
            self.logout_text = get(msg, 58)

    def expect_admin(self, pred: Pred, timeout: float = 5.0) -> simplefix.FixMessage:
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(deadline)
            if msg is None:
                raise TimeoutError(f"{self.sender}: no matching session message in {timeout}s")
            if pred(msg):
                return msg
            if get(msg, 35) not in ("0", "1", "2", "4", "A", "5", "3"):
                self.inbox.append(msg)

    def expect(self, pred: Pred, timeout: float = 5.0, what: str = "message") -> simplefix.FixMessage:
        """The first application message (or session Reject) matching `pred`, taken from
        the inbox or read within `timeout` seconds."""
        for i, msg in enumerate(self.inbox):
            if pred(msg):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(deadline)
            if msg is None:
                recent = "\n  ".join(show(m) for m in self.inbox[-5:])
                raise TimeoutError(f"{self.sender}: no {what} within {timeout}s; unmatched:\n  {recent}")
            if get(msg, 35) in ("0", "1", "2", "4", "A", "5"):
                continue
            if pred(msg):
                return msg
            self.inbox.append(msg)

    def expect_type(self, msg_type: str, timeout: float = 5.0, **tags: str) -> simplefix.FixMessage:
        """The next message of a type whose fields match `tags` (given as t11="x")."""
        want = {int(k[1:]): v for k, v in tags.items()}
        return self.expect(lambda m: get(m, 35) == msg_type and all(get(m, t) == v for t, v in want.items()), timeout, f"35={msg_type} {tags}")

    def quiet(self, seconds: float = 0.3) -> list[simplefix.FixMessage]:
        """Read for `seconds` and return the application messages that arrived."""
        deadline = time.monotonic() + seconds
        while self._read(deadline) is not None:
            msg = self.seen[-1]
            if get(msg, 35) not in ("0", "1", "2", "4", "A", "5"):
                self.inbox.append(msg)
        out, self.inbox = self.inbox, []
        return out
