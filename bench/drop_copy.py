"""Drop copy: latency from execution to copy received, and what members cost matching.

    python3 bench/drop_copy.py                  # about 1 minute
    python3 bench/drop_copy.py --duration 10    # steadier figures

Setup. The whole venue runs as `venue run` (a fresh subprocess and var dir per
measurement: reference database, matching, pre-trade risk, the journal with fsync per
batch, order entry, market data, drop copy). Ten bench firms trade over FIX order entry
(tools/loadgen.py, in this process: each session alternates a buy and a sell between its
two accounts, so half the orders trade; a member gets about 2 copies per order it
clears). Clearing members log on from a second process (`--consume`, raw sockets) that
stamps each copy on arrival.

  latency     copy received minus its TransactTime (60, the sequencer's stamp of the
              command, before the journal's fsync), p50/p99 over every copy, at --rate
              orders/s offered, with 1 member clearing all ten firms and with 10 members
              clearing one firm each (each execution side has one clearer, so the copy
              volume is the same; what grows is sessions, stores and writer threads);
  throughput  orders acknowledged per second at full speed (a window of --window
              unacknowledged orders per session), with no clearing members and with the
              10 members connected; the ratio is the figure (target: within 10%). The
              members' process runs at nice 19 here: it stands in for the members' own
              machines, and its CPU is not the venue's cost.
Both processes share this machine's cores with the load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fix_e2e import free_port, wait_listening  # bench/ is on the path as this script's directory

from tools.loadgen import LoadResult, LoadSession, connect, logout, run

FIRMS = 10


def bench_config(root: Path, members: int, nice: int = 10) -> Path:
    """The demo venue with ten bench firms (two accounts each) and `members` clearing
    members: 1 clears every bench firm, 10 clear one firm each, 0 none at all."""
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    data["venue"]["order_entry"]["port"] = free_port()
    data["venue"]["drop_copy"]["port"] = free_port()
    data["venue"]["var_dir"] = str(root / "var")
    data["venue"]["drop_copy_nice"] = nice
    for k in range(1, FIRMS + 1):
        data["firms"].append({"id": f"BENCH{k}", "accounts": [f"BENCH{k}-A", f"BENCH{k}-B"],
                              "sessions": [{"sender_comp_id": f"BENCH{k}", "username": f"bench{k}", "password": f"bench{k}-secret"}]})
        for acc in ("A", "B"):
            data["risk"]["collateral"][f"BENCH{k}-{acc}"] = 10**12
    data["risk"]["limits"][0].update(max_open_orders=10**9, max_msgs_per_s=10**9, max_position=10**9, max_underlying_position=10**9)
    bench_firms = [f"BENCH{k}" for k in range(1, FIRMS + 1)]
    data["clearing_members"] = [
        {"id": f"DCM{m}", "sender_comp_id": f"DCM{m}", "username": f"dcm{m}", "password": f"dcm{m}-secret",
         "firms": bench_firms if members == 1 else [bench_firms[m - 1]]}
        for m in range(1, members + 1)
    ]
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def firm_sessions() -> list[LoadSession]:
    return [LoadSession(f"BENCH{k}", f"bench{k}", f"bench{k}-secret", (f"BENCH{k}-A", f"BENCH{k}-B")) for k in range(1, FIRMS + 1)]


class Venue:
    """`venue run` on a bench config, in a subprocess."""

    def __init__(self, root: Path, members: int, nice: int) -> None:
        self.root = root
        self.config = bench_config(root, members, nice)
        cfg = yaml.safe_load(self.config.read_text())
        self.port, self.dc_port = cfg["venue"]["order_entry"]["port"], cfg["venue"]["drop_copy"]["port"]
        self.log = root / "venue.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Venue:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "venue", "--log-level", "WARNING", "run", "--config", str(self.config)],
                                         cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        wait_listening(self.proc, self.port, self.log)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Consumers:
    """The members' drop-copy sessions, in a process of their own (`--consume`)."""

    def __init__(self, root: Path, port: int, members: int, nice: int = 0) -> None:
        self.out = root / "latency.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--consume", "--port", str(port), "--members", str(members), "--out", str(self.out), "--nice", str(nice)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"members did not log on: {line}")

    def finish(self, quiet_s: float = 2.0, timeout: float = 60.0) -> dict[str, float]:
        """Let the members drain (until quiet for `quiet_s`), then collect the figures."""
        self.proc.send_signal(signal.SIGUSR1)  # start watching for quiet
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return json.loads(self.out.read_text())  # type: ignore[no-any-return]


def latency(members: int, *, duration: float, rate: float, nice: int) -> tuple[LoadResult, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix=f"dc-bench-{members}-") as tmp, Venue(Path(tmp), members, nice) as venue:
        consumers = Consumers(Path(tmp), venue.dc_port, members)
        ss = firm_sessions()
        connect(venue.port, ss)
        try:
            load = run(ss, duration=duration, rate=rate)
        finally:
            logout(ss)
        return load, consumers.finish()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(members: int, *, duration: float, window: int, nice: int) -> tuple[LoadResult, float]:
    """The peak run, and the venue process's CPU µs per order acknowledged in it."""
    with tempfile.TemporaryDirectory(prefix=f"dc-bench-{members}-") as tmp, Venue(Path(tmp), members, nice) as venue:
        # the members stand in for machines of their own: on this one they yield the CPU to the venue
        consumers = Consumers(Path(tmp), venue.dc_port, members, nice=19) if members else None
        ss = firm_sessions()
        connect(venue.port, ss)
        try:
            run(ss, duration=min(1.0, duration), window=window)  # warm up
            assert venue.proc is not None
            cpu0 = cpu_seconds(venue.proc.pid)
            peak = run(ss, duration=duration, window=window)
            cpu = cpu_seconds(venue.proc.pid) - cpu0
        finally:
            logout(ss)
        if consumers is not None:
            consumers.finish()
        return peak, 1e6 * cpu / max(peak.acked, 1)


# ---------------------------------------------------------------------- consumer process


def connect_when_listening(port: int, timeout: float = 30.0) -> socket.socket:
    """The drop-copy process listens a few seconds after the venue does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def consume(port: int, members: int, out: Path) -> int:
    """Log every member on, print "ready", stamp copies until SIGUSR1 and then 2 s of quiet.

    Raw sockets and a hand-rolled frame split, like tools/loadgen.py: the members' side
    shares this machine's two cores with the venue, so it must cost as little as it can
    (a quickfix initiator costs more per message than the venue's writer does)."""
    import calendar
    import re
    import selectors

    from tools.loadgen import frame

    head = re.compile(rb"8=FIX\.4\.4\x019=(\d+)\x01")
    seconds: dict[bytes, int] = {}
    lat: list[int] = []
    sel = selectors.DefaultSelector()
    pending = 0
    for m in range(1, members + 1):
        sock = connect_when_listening(port)
        sock.sendall(frame(f"35=A\x0149=DCM{m}\x0156=VENUE\x0134=1\x0152={time.strftime('%Y%m%d-%H:%M:%S', time.gmtime())}"
                           f"\x0198=0\x01108=30\x01141=Y\x01553=dcm{m}\x01554=dcm{m}-secret\x01"))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, [b"", False])
        pending += 1
    finishing = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: finishing.set())
    last = time.monotonic()
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            state = key.data
            state[0] += key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            if not state[1] and b"\x0135=A\x01" in state[0]:
                state[1] = True
                pending -= 1
    if pending:
        print("logon timeout", flush=True)
        return 1
    print("ready", flush=True)
    while not (finishing.is_set() and time.monotonic() - last > 2.0):
        for key, _ in sel.select(0.2):
            now = time.time_ns() // 1000
            state = key.data
            data = state[0] + key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            off = 0
            while (mt := head.match(data, off)) is not None:
                end = mt.end() + int(mt.group(1)) + 7  # body, then 10=nnn<SOH>
                if end > len(data):
                    break
                msg = data[off:end]
                off = end
                i = msg.find(b"\x0160=")
                if b"\x0135=8\x01" in msg and i > 0:
                    stamp = msg[i + 4:i + 28]
                    secs = seconds.get(stamp[:17])
                    if secs is None:
                        secs = seconds[stamp[:17]] = calendar.timegm(time.strptime(stamp[:17].decode(), "%Y%m%d-%H:%M:%S"))
                    lat.append(now - (secs * 1_000_000 + int(stamp[18:24])))
                    last = time.monotonic()
            state[0] = data[off:]
    xs = sorted(lat)
    pct = (lambda p: xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan"))
    out.write_text(json.dumps({"copies": len(xs), "p50_us": pct(50), "p99_us": pct(99), "max_us": xs[-1] if xs else float("nan")}))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description="drop-copy latency and the cost of members to matching")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--rate", type=float, default=5000.0, help="offered orders/s for the latency measurement")
    p.add_argument("--window", type=int, default=64, help="unacknowledged orders per session for the throughput measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved throughput runs with and without members")
    p.add_argument("--nice", type=int, default=10, help="venue.drop_copy_nice: the drop-copy process's CPU niceness")
    p.add_argument("--only", choices=("latency", "throughput"), help="run one of the two measurements")
    p.add_argument("--consume", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--members", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.consume:
        os.nice(a.nice)
        return consume(a.port, a.members, a.out)
    print(f"{FIRMS} firms over FIX order entry; duration {a.duration}s per run; {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f} at start; journal fsync per batch; drop-copy process nice {a.nice}")
    for members in (1, 10) if a.only != "throughput" else ():
        load, lat = latency(members, duration=a.duration, rate=a.rate, nice=a.nice)
        print(f"latency  {members:2d} member(s) @ {a.rate:,.0f} orders/s offered ({load.acked:,} orders acked): "
              f"{lat['copies']:,.0f} copies, p50 {lat['p50_us'] / 1000:.2f} ms, p99 {lat['p99_us'] / 1000:.2f} ms, max {lat['max_us'] / 1000:.1f} ms", flush=True)
    if a.only == "latency":
        return 0
    nones, tens, cpu_none, cpu_ten = [], [], [], []
    for _ in range(a.rounds):  # interleaved: the machine's load drifts between runs
        r, c = throughput(0, duration=a.duration, window=a.window, nice=a.nice)
        nones.append(r.throughput)
        cpu_none.append(c)
        r, c = throughput(10, duration=a.duration, window=a.window, nice=a.nice)
        tens.append(r.throughput)
        cpu_ten.append(c)
    none, ten = statistics.median(nones), statistics.median(tens)
    ratio = ten / none if none else float("nan")
    print(f"throughput (median of {a.rounds})  no members: {none:,.0f} orders/s {[round(x) for x in nones]}; "
          f"10 members connected: {ten:,.0f} orders/s {[round(x) for x in tens]}; ratio {ratio:.1%} (target >= 90%)", flush=True)
    print(f"venue process CPU per order (median)  no members: {statistics.median(cpu_none):.0f} µs; "
          f"10 members: {statistics.median(cpu_ten):.0f} µs (drop copy's own work runs in its process)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
