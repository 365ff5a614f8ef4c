"""Load generator: several FIX sessions sending NewOrderSingles at an offered rate (or as
fast as a window of unacknowledged orders allows) for a duration; prints throughput and
ack-latency percentiles.

    python -m tools.loadgen --port 9876 --session FIRM1:firm1:firm1-secret:FIRM1-A \\
        --session FIRM2:firm2:firm2-secret:FIRM2-A --rate 2000 --duration 10

An order is acknowledged by its first ExecutionReport (new or rejected); its latency is
from the moment its bytes were handed to the socket to the moment that report was read.
Each session alternates a buy and a sell of one lot (between two accounts when it is given
two, so they trade rather than self-trade). With --spread 0 both are at --price, so half
the orders trade and the book stays small; with --spread S the buys are S below and the
sells S above, so nothing trades and every order rests (pure order entry).

One thread, non-blocking sockets and hand-built FIX strings (simplefix costs more per
message than the venue does): the generator must not be the bottleneck it measures.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")


def frame(body: str) -> bytes:
    """A complete FIX 4.4 message from its body (35=... onward)."""
    head = f"8=FIX.4.4\x019={len(body)}\x01{body}".encode()
    return head + b"10=%03d\x01" % (sum(head) % 256)


@dataclass
class LoadSession:
    sender: str
    username: str
    password: str
    accounts: tuple[str, ...]
    target: str = "VENUE"
    sock: socket.socket | None = None
    seq: int = 1
    buf: bytes = b""
    out: bytearray = field(default_factory=bytearray)
    sent_at: dict[str, float] = field(default_factory=dict)
    next_order: int = 0

    def message(self, msg_type: str, fields: str) -> bytes:
        data = frame(f"35={msg_type}\x0149={self.sender}\x0156={self.target}\x0134={self.seq}\x0152={_utc()}\x01{fields}")
        self.seq += 1
        return data

    def order(self, symbol: str, prices: tuple[str, str]) -> tuple[str, bytes]:
        """The next order: buys at prices[0], sells at prices[1]."""
        n = self.next_order
        self.next_order += 1
        cl = f"{self.sender}-{n}"
        side = 1 + n % 2
        account = self.accounts[n % len(self.accounts)]
        now = _utc()
        return cl, self.message("D", f"11={cl}\x011={account}\x0155={symbol}\x0154={side}\x0160={now}\x0138=1\x0140=2\x0144={prices[side - 1]}\x0159=1\x01")


@dataclass
class LoadResult:
    sessions: int
    sent: int
    acked: int
    rejected: int
    elapsed: float
    latencies_us: list[float]

    @property
    def throughput(self) -> float:
        return self.acked / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_us:
            return float("nan")
        xs = sorted(self.latencies_us)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def connect(port: int, sessions: Sequence[LoadSession], host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Connect and log every session on (blocking, bounded)."""
    for s in sessions:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        creds = (f"553={s.username}\x01" if s.username else "") + (f"554={s.password}\x01" if s.password else "")
        sock.sendall(s.message("A", f"98=0\x01108=30\x01141=Y\x01{creds}"))
        deadline = time.monotonic() + timeout
        data = b""
        while b"\x0135=A\x01" not in data:
            if b"\x0135=5\x01" in data or time.monotonic() > deadline:
                raise ConnectionError(f"{s.sender}: logon failed: {data!r}")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"{s.sender}: connection closed at logon: {data!r}")
            data += chunk
        sock.setblocking(False)
        s.sock = sock


def logout(sessions: Sequence[LoadSession]) -> None:
    for s in sessions:
        if s.sock is not None:
            try:
                s.sock.setblocking(True)
                s.sock.settimeout(2)
                s.sock.sendall(s.message("5", ""))
                s.sock.recv(65536)
            except OSError:
                pass
            s.sock.close()
            s.sock = None


def run(sessions: Sequence[LoadSession], *, duration: float, rate: float | None = None, window: int = 64,
        symbol: str = "BTC-PERP", price: str = "100000", spread: str = "0", drain_s: float = 3.0) -> LoadResult:
    """Send for `duration` seconds at `rate` orders/s in total (round robin over the
    sessions), or with `rate` None as fast as `window` unacknowledged orders per session
    allow; then wait up to `drain_s` for the last acks. Buys go `spread` below `price`,
    sells `spread` above."""
    mid, gap = Decimal(price), Decimal(spread)
    prices = (str(mid - gap), str(mid + gap))
    sel = selectors.DefaultSelector()
    for s in sessions:
        assert s.sock is not None, "connect() first"
        sel.register(s.sock, selectors.EVENT_READ, s)
    lat: list[float] = []
    sent = acked = rejected = 0
    start = time.perf_counter()
    end = start + duration
    interval = 1.0 / rate if rate else 0.0
    next_send = start
    turn = 0
    last_ack = start
    while True:
        now = time.perf_counter()
        sending = now < end
        if not sending and (all(not s.sent_at for s in sessions) or now > end + drain_s):
            break
        if sending:
            if rate:
                while next_send <= now < end:
                    s = sessions[turn % len(sessions)]
                    turn += 1
                    cl, data = s.order(symbol, prices)
                    _send(s, data)
                    s.sent_at[cl] = time.perf_counter()
                    sent += 1
                    next_send += interval
            else:
                for s in sessions:
                    while len(s.sent_at) < window:
                        cl, data = s.order(symbol, prices)
                        _send(s, data)
                        s.sent_at[cl] = time.perf_counter()
                        sent += 1
        wait = max(0.0, min(next_send - time.perf_counter(), 0.001)) if rate and sending else 0.001
        for key, _ in sel.select(wait):
            s = key.data
            try:
                chunk = s.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError(f"{s.sender}: venue closed the connection")
            got = time.perf_counter()
            s.buf += chunk
            for cl, is_reject in _acks(s):
                t0 = s.sent_at.pop(cl, None)
                if t0 is not None:
                    acked += 1
                    rejected += is_reject
                    lat.append((got - t0) * 1e6)
                    last_ack = got
        for s in sessions:
            if s.out:
                _flush(s)
    sel.close()
    return LoadResult(len(sessions), sent, acked, rejected, max(last_ack, min(end, time.perf_counter())) - start, lat)


def _send(s: LoadSession, data: bytes) -> None:
    s.out += data
    _flush(s)


def _flush(s: LoadSession) -> None:
    assert s.sock is not None
    try:
        n = s.sock.send(s.out)
    except BlockingIOError:
        return
    del s.out[:n]


def _acks(s: LoadSession) -> list[tuple[str, bool]]:
    """ClOrdIDs of the complete ExecutionReports in the buffer that acknowledge an
    order (ExecType new or rejected), consuming every complete message."""
    out = []
    buf = s.buf
    pos = 0
    while True:
        end = buf.find(b"\x0110=", pos)
        if end < 0 or len(buf) < end + 8:
            break
        msg = buf[pos:end + 8]
        pos = end + 8
        if b"\x0135=8\x01" not in msg:
            continue
        if b"\x01150=0\x01" in msg or b"\x01150=8\x01" in msg:
            i = msg.index(b"\x0111=") + 4
            out.append((msg[i:msg.index(b"\x01", i)].decode(), b"\x01150=8\x01" in msg))
    s.buf = buf[pos:]
    return out


def parse_session(text: str) -> LoadSession:
    """SENDER:USERNAME:PASSWORD:ACCOUNT[,ACCOUNT]"""
    sender, user, pw, accounts = text.split(":", 3)
    return LoadSession(sender, user, pw, tuple(accounts.split(",")))


def report(label: str, r: LoadResult) -> str:
    return (f"{label:<28} sessions={r.sessions} sent={r.sent} acked={r.acked} rejected={r.rejected} "
            f"throughput={r.throughput:,.0f}/s p50={r.percentile(50):,.0f}us p99={r.percentile(99):,.0f}us p99.9={r.percentile(99.9):,.0f}us")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9876)
    p.add_argument("--session", action="append", required=True, help="SENDER:USERNAME:PASSWORD:ACCOUNT[,ACCOUNT] (repeat)")
    p.add_argument("--rate", type=float, default=None, help="offered orders/s over all sessions (default: as fast as --window allows)")
    p.add_argument("--window", type=int, default=64, help="unacknowledged orders per session when --rate is not given")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--symbol", default="BTC-PERP")
    p.add_argument("--price", default="100000")
    p.add_argument("--spread", default="0", help="buys this far below --price, sells above: 0 trades half the orders, > 0 none")
    a = p.parse_args(argv)
    sessions = [parse_session(s) for s in a.session]
    connect(a.port, sessions, a.host)
    try:
        r = run(sessions, duration=a.duration, rate=a.rate, window=a.window, symbol=a.symbol, price=a.price, spread=a.spread)
    finally:
        logout(sessions)
    print(report(f"rate={a.rate or 'max'}", r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
