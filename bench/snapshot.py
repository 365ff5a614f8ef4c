"""What a snapshot costs the venue's acknowledgements: taken by the drop-copy process's replica,
by the venue in a forked child, or by the venue in a worker thread.

    python3 bench/snapshot.py                      # about 2 minutes
    python3 bench/snapshot.py --orders 50000 --paths replica,child

For each path in turn, a fresh venue (`venue run`, bench/fix_e2e.py's config, the
snapshots' `fork` option set) in a subprocess: one FIX session rests --orders orders as fast
as its window allows, then sends --rate orders/s for --duration seconds; --arm seconds into
that paced run the bench has the venue take one snapshot (SIGUSR1: periodic snapshots are
otherwise off, so exactly one falls in the run, at the same moment for every path). The
`replica` path is the venue as `venue run` starts it, where the drop-copy process takes the
periodic snapshots (drop_copy/snapshots.py): `every` is set so that its first one falls
about --arm seconds into the paced run, and the bench watches the snapshot directory for
its files. Printed per path, all from that paced run:

    pause at snap      the Snapshotter call that starts it: fork(), or the capture
                       (replica: not the venue's to pay, so not printed)
    ready after        from that call (replica: its tmp file appearing) to the file renamed
                       into place
    longest pause      the loop's longest gap while orders were sent, as seen by a task
                       that wakes every millisecond
    during snap        the same, from the snapshot's start until it is ready
    p50 ... max        the load generator's acknowledgement latency, all orders

`none` arms nothing: the same run with no snapshot, for reference. Timestamps are
time.perf_counter_ns in both processes (one clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PATHS = ("replica", "child", "thread", "none")
NEVER = 10**12  # snapshots.every: no periodic snapshot in the run


# ---------------------------------------------------------------------- the venue side


def serve(config: str, out: str) -> int:
    """`venue run`, with the loop's pauses recorded and one snapshot taken on SIGUSR1."""
    import logging

    from venue import app
    from venue.config import load_config
    from venue.recovery import Snapshotter
    from venue.sequencer import Sequencer

    now = time.perf_counter_ns
    pauses: list[tuple[int, int]] = []  # (start, length) of loop gaps over 2 ms
    snaps: list[dict[str, int]] = []
    armed = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: armed.set())

    async def watch_loop() -> None:
        last = now()
        while True:
            await asyncio.sleep(0.001)
            t = now()
            if t - last > 2_000_000:
                pauses.append((last, t - last))
            last = t

    run = Sequencer.run

    async def watched_run(self: Sequencer) -> None:
        watcher = asyncio.ensure_future(watch_loop())
        try:
            await run(self)
        finally:
            watcher.cancel()

    call, written = Snapshotter.__call__, Snapshotter._written

    def armed_call(self: Snapshotter, events: Any) -> None:
        if armed.is_set():
            armed.clear()
            self.last_seq = self.sequencer.next_seq - 1 - self.config.every  # due now
            t = now()
            call(self, events)
            snaps.append({"at": t, "call": now() - t, "seq": self.last_seq})
        else:
            call(self, events)

    def timed_written(self: Snapshotter, fut: Any) -> None:
        written(self, fut)
        if snaps and "ready" not in snaps[-1] and not fut.cancelled() and fut.exception() is None:
            snaps[-1]["ready"] = now()

    Sequencer.run = watched_run  # type: ignore[method-assign]
    Snapshotter.__call__ = armed_call  # type: ignore[method-assign]
    Snapshotter._written = timed_written  # type: ignore[method-assign]
    logging.basicConfig(level=logging.WARNING)
    try:
        return app.run(load_config(config))
    finally:
        Path(out).write_text(json.dumps({"pauses": pauses, "snaps": snaps}))


# ---------------------------------------------------------------------- the client side


class _SnapshotWatch:
    """When the drop-copy process's snapshot file appears (`at`, as its tmp file) and when it
    is installed (`ready`), polled every millisecond on this machine's monotonic clock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.001) and "ready" not in self.seen:
            names = [p.name for p in self.directory.glob("*.snap*")] if self.directory.is_dir() else []
            if "at" not in self.seen and names:
                self.seen["at"] = time.perf_counter_ns()
            if any(n.endswith(".snap") for n in names):
                self.seen.setdefault("at", time.perf_counter_ns())
                self.seen["ready"] = time.perf_counter_ns()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(5)


def measure(path: str, a: argparse.Namespace) -> dict[str, Any]:
    import fix_e2e  # bench/ is on the path as this script's directory
    import yaml

    import tools.loadgen as lg

    with tempfile.TemporaryDirectory(prefix=f"snapshot-{path}-") as tmp:
        root = Path(tmp)
        config = fix_e2e.bench_config(root)
        data = yaml.safe_load(config.read_text())
        if path == "replica":
            data["snapshots"] = {"every": a.orders + int(a.arm * a.rate), "taken_by": "drop_copy"}
        else:
            data["snapshots"] = {"every": NEVER, "fork": path == "child", "taken_by": "venue"}
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        port = data["venue"]["order_entry"]["port"]
        out = root / "venue.json"
        proc = fix_e2e.start([sys.executable, __file__, "--serve", str(config), str(out)], port, root / "venue.log")
        watcher: _SnapshotWatch | None = None
        try:
            ss = fix_e2e.sessions(1)
            lg.connect(port, ss)
            try:
                resting = 0
                while resting < a.orders:  # in steps, so the count lands near --orders
                    step = lg.run(ss, duration=min(1.0, (a.orders - resting) / 15_000 + 0.01), window=64, spread="1000")
                    resting += step.acked - step.rejected
                t0 = time.perf_counter_ns()
                arm = threading.Timer(a.arm, proc.send_signal, (signal.SIGUSR1,)) if path in ("child", "thread") else None
                if arm is not None:
                    arm.start()
                watcher = _SnapshotWatch(root / "var" / "snapshots") if path == "replica" else None
                paced = lg.run(ss, duration=a.duration, rate=a.rate, spread="1000")
                if watcher is not None:
                    watcher.stop()
            finally:
                lg.logout(ss)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        got = json.loads(out.read_text())
        if watcher is not None and watcher.seen:
            got["snaps"] = [watcher.seen]
    # sending stops: what follows holds up no order (the logout right after cancels the
    # session's 100,000 resting orders, cancel-on-disconnect: a long batch on the loop)
    end = t0 + int(a.duration * 1e9) - 1_000_000
    snap = got["snaps"][0] if got["snaps"] else None
    during = (snap["at"], snap.get("ready", end)) if snap else (0, 0)
    return {
        "resting": resting, "paced": paced, "snap": snap,
        "longest": max((n for t, n in got["pauses"] if t0 <= t <= end), default=0) / 1e6,
        "during": max((n for t, n in got["pauses"] if during[0] <= t <= during[1]), default=0) / 1e6,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000, help="resting orders before the paced run")
    p.add_argument("--rate", type=float, default=5000.0, help="offered orders/s in the paced run")
    p.add_argument("--duration", type=float, default=8.0,
                   help="seconds of paced run: long enough for the paced child of 100,000 orders (about 3 s, venue/snapshot_fork.py)")
    p.add_argument("--arm", type=float, default=1.0, help="seconds into the paced run when the snapshot is taken")
    p.add_argument("--rounds", type=int, default=1, help="repeat the paths, interleaved")
    p.add_argument("--paths", default=",".join(PATHS), help="which of child, thread, none, in this order")
    p.add_argument("--serve", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        return serve(*a.serve)
    print(f"load average {os.getloadavg()[0]:.2f}; {a.orders:,} resting orders, then {a.rate:,.0f}/s for {a.duration:.0f} s, "
          f"the snapshot at {a.arm:.1f} s; 1 session", flush=True)
    print(f"{'round':5} {'path':7} {'resting':>8} {'pause at snap':>14} {'ready after':>12} {'longest pause':>14} {'during snap':>12} "
          f"{'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>7}  (ms)", flush=True)
    p99: dict[str, list[float]] = {}
    for k in range(1, a.rounds + 1):
        for path in a.paths.split(","):
            r = measure(path, a)
            snap, paced = r["snap"], r["paced"]
            at = f"{snap['call'] / 1e6:14.1f}" if snap and "call" in snap else f"{'-':>14}"
            ready = f"{(snap['ready'] - snap['at']) / 1e6:12.0f}" if snap and "ready" in snap else f"{'-':>12}"
            during = f"{r['during']:12.1f}" if snap else f"{'-':>12}"
            if path != "none" and (snap is None or "ready" not in snap):
                print(f"  ({path}: no snapshot was installed during the run)")
            p99.setdefault(path, []).append(paced.percentile(99) / 1000)
            print(f"{k:5} {path:7} {r['resting']:8,} {at} {ready} {r['longest']:14.1f} {during} {paced.percentile(50) / 1000:7.2f} "
                  f"{p99[path][-1]:7.2f} {paced.percentile(99.9) / 1000:7.2f} {max(paced.latencies_us, default=0) / 1000:7.2f}", flush=True)
    medians = ", ".join(f"{path} {median(v):.2f} ms" for path, v in p99.items())
    print(f"-> ack p99, median of {a.rounds} round(s): {medians}; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
