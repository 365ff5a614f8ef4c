"""End-to-end FIX order entry: the venue against a bare quickfix acceptor, side by side.

    python3 bench/fix_e2e.py                 # about 1 minute
    python3 bench/fix_e2e.py --duration 10   # steadier figures

For 1 and 4 client sessions it measures, against each server in turn (a fresh subprocess
and a fresh var dir each time):
  - throughput: orders acknowledged per second, each session keeping --window orders
    unacknowledged (tools/loadgen.py);
  - ack latency p50/p99/p99.9 at --rate orders/s offered (5,000 by default).
The venue runs whole (`venue run`): reference database, matching, pre-trade risk, the
journal with its group commit (one fdatasync per batch), market data, and its drop-copy
process with the members' copies and the clearing ledger. The baseline is quickfix with the same session settings (FileStore, the
venue's data dictionary) whose application acknowledges each NewOrderSingle with an
ExecutionReport and does nothing else. Two workloads (tools/loadgen.py): `rest`, where no
order trades (every order is one acknowledgement, as at the baseline), and `trade`, where
half the orders trade, so the venue also sends two fill reports per trade and writes the
trade to the ledger. The ratio is taken on `rest`, the like-for-like comparison; `trade`
is printed beside it. The load generator runs in this process, on the same machine.
Each line ends with the CPU each process used during that run, as a share of one core
(from /proc: the server, the venue's drop-copy process with the ledger, the load generator), and says
when a snapshot was being written during it (a forked child of the venue or of its drop
copy, which competes for the cores: venue/snapshot_fork.py).
Where the venue's ack latency goes, stage by stage: bench/fix_stages.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.loadgen import LoadResult, LoadSession, connect, logout, report, run

SESSIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(root: Path) -> Path:
    """The demo venue with four bench firms (two accounts each, so a session's buys and
    sells trade with each other) and risk limits that a few seconds of load never reach."""
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    data["venue"]["order_entry"]["port"] = free_port()
    data["venue"]["drop_copy"]["port"] = free_port()
    data["venue"]["var_dir"] = str(root / "var")
    for k in range(1, SESSIONS + 1):
        data["firms"].append({"id": f"BENCH{k}", "accounts": [f"BENCH{k}-A", f"BENCH{k}-B"],
                              "sessions": [{"sender_comp_id": f"BENCH{k}", "username": f"bench{k}", "password": f"bench{k}-secret"}]})
        for acc in ("A", "B"):
            data["risk"]["collateral"][f"BENCH{k}-{acc}"] = 10**12
    data["risk"]["limits"][0].update(max_open_orders=10**9, max_msgs_per_s=10**9, max_position=10**9, max_underlying_position=10**9)
    data["clearing_members"][0]["firms"] += [f"BENCH{k}" for k in range(1, SESSIONS + 1)]
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sessions(n: int) -> list[LoadSession]:
    return [LoadSession(f"BENCH{k}", f"bench{k}", f"bench{k}-secret", (f"BENCH{k}-A", f"BENCH{k}-B")) for k in range(1, n + 1)]


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60.0) -> None:
    """Until a server process accepts connections on `port`; raises if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{proc.args!r} did not listen on {port}")


def start(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server process (its output appended to `log`) and wait until it listens on
    `port`; one that never does is killed before the error goes up."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(proc, port, log)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    return proc


class Server:
    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.root = kind, root
        self.config = bench_config(root)
        self.port = yaml.safe_load(self.config.read_text())["venue"]["order_entry"]["port"]
        self.log = root / f"{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        args = {
            "venue": [sys.executable, "-m", "venue", "--log-level", "WARNING", "run", "--config", str(self.config)],
            "baseline": [sys.executable, str(REPO / "bench" / "fix_baseline.py"), "--config", str(self.config)],
        }[self.kind]
        self.proc = start(args, self.port, self.log)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Run(NamedTuple):
    """One load run: the load generator's result, the CPU each process used during it
    (share of one core: the server, its children, this process), and whether a snapshot
    was being written meanwhile (a fork: venue/snapshot_fork.py)."""

    load: LoadResult
    cpu: dict[str, float]
    snapshot: bool

    def line(self, label: str) -> str:
        cpu = ", ".join(f"{name} {share:.0%}" for name, share in self.cpu.items())
        return f"{report(label, self.load)}  cpu: {cpu}" + ("  [a snapshot was being written]" if self.snapshot else "")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every process's parent and command line (NUL-separated argv), from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = (int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]), (d / "cmdline").read_bytes())
            except (OSError, ValueError):
                continue
    return out


def _children(pid: int) -> dict[str, int]:
    """A process's children, named by the module they run (`python -m NAME`)."""
    out = {}
    for child, (parent, cmdline) in _processes().items():
        if parent == pid:
            argv = cmdline.split(b"\0")
            with contextlib.suppress(ValueError):
                name = argv[argv.index(b"-m") + 1].decode() if b"-m" in argv else str(child)
                out[name.replace("_", " ")] = child
    return out


def _forks(pid: int) -> set[int]:
    """The processes below `pid` that are forks of their parent (the same command line): a
    snapshot being written (venue/snapshot_fork.py), by the venue or by its drop copy."""
    procs = _processes()
    below, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [k for k, (parent, _) in procs.items() if parent == p]
        below.update(kids)
        todo += kids
    return {k for k in below if procs[k][0] in procs and procs[k][1] == procs[procs[k][0]][1]}


def observed(server: Server, load: Callable[[], LoadResult]) -> Run:
    """Run `load`, noting the CPU of the server, its child processes (the venue's drop copy)
    and this process (the load generator), on Linux; elsewhere only the load's result. A
    snapshot counts if its file appeared during the run or its child was writing at the
    start or at the end (a paced child takes seconds: venue/snapshot_fork.py)."""
    assert server.proc is not None
    snaps = server.root / "var" / "snapshots"
    before_snaps = set(snaps.glob("*.snap*")) if snaps.is_dir() else set()
    writing = bool(_forks(server.proc.pid))
    procs = {server.kind: server.proc.pid, **_children(server.proc.pid), "load generator": os.getpid()}
    try:
        before = {name: _cpu_seconds(pid) for name, pid in procs.items()}
    except OSError:
        before = {}
    t0 = time.perf_counter()
    result = load()
    elapsed = time.perf_counter() - t0
    cpu = {}
    for name, start in before.items():
        with contextlib.suppress(OSError):
            cpu[name] = (_cpu_seconds(procs[name]) - start) / elapsed
    after_snaps = set(snaps.glob("*.snap*")) if snaps.is_dir() else set()
    writing = writing or bool(_forks(server.proc.pid))
    return Run(result, cpu, writing or bool(after_snaps - before_snaps))


def measure(kind: str, n: int, *, duration: float, rate: float, window: int, spread: str) -> tuple[Run, Run]:
    with tempfile.TemporaryDirectory(prefix=f"fix-e2e-{kind}-") as tmp, Server(kind, Path(tmp)) as server:
        ss = sessions(n)
        connect(server.port, ss)
        try:
            run(ss, duration=min(1.0, duration), window=window, spread=spread)  # warm up
            peak = observed(server, lambda: run(ss, duration=duration, window=window, spread=spread))
            paced = observed(server, lambda: run(ss, duration=duration, rate=rate, spread=spread))
        finally:
            logout(ss)
    return peak, paced


def main() -> int:
    p = argparse.ArgumentParser(description="venue vs bare quickfix: FIX order-entry throughput and ack latency")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--rate", type=float, default=5000.0, help="offered orders/s for the latency measurement")
    p.add_argument("--window", type=int, default=64, help="unacknowledged orders per session for the throughput measurement")
    a = p.parse_args()
    print(f"duration {a.duration}s per run, window {a.window}/session, latency at {a.rate:,.0f} orders/s offered; {os.cpu_count()} cpus")
    for n in (1, SESSIONS):
        kw = {"duration": a.duration, "rate": a.rate, "window": a.window}
        base_peak, base_paced = measure("baseline", n, spread="1000", **kw)
        rest_peak, rest_paced = measure("venue", n, spread="1000", **kw)
        trade_peak, trade_paced = measure("venue", n, spread="0", **kw)
        at = f"@{a.rate:,.0f}/s"
        for label, r in ((f"baseline      {n} sess max", base_peak), (f"venue rest    {n} sess max", rest_peak), (f"venue trade   {n} sess max", trade_peak),
                         (f"baseline      {n} sess {at}", base_paced), (f"venue rest    {n} sess {at}", rest_paced), (f"venue trade   {n} sess {at}", trade_paced)):
            print(r.line(label), flush=True)
        base = base_peak.load.throughput
        ratio = rest_peak.load.throughput / base if base else float("nan")
        trade_ratio = trade_peak.load.throughput / base if base else float("nan")
        print(f"-> {n} session(s): venue/baseline throughput = {ratio:.0%} rest, {trade_ratio:.0%} trade (target >= 75%); "
              f"venue p99 ack {at} = {rest_paced.load.percentile(99) / 1000:.2f} ms rest, {trade_paced.load.percentile(99) / 1000:.2f} ms trade (target < 2 ms)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
