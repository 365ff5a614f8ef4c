"""Where an acknowledgement's time goes: the venue's ack latency split into stages, per order.

    python3 bench/fix_stages.py                            # 1 session, 5,000 orders/s, resting orders
    python3 bench/fix_stages.py --sessions 4 --spread 0    # 4 sessions, half the orders trade
    python3 bench/fix_stages.py --rate 0                   # as fast as bench/fix_e2e.py's window allows

A diagnostic beside bench/fix_e2e.py, never a way to run a venue. The venue runs whole, as
`venue run` starts it (bench/fix_e2e.py's config), in a subprocess that wraps a few
methods to take a timestamp (time.perf_counter_ns, one clock for both processes) as each
order passes:

    client_send  the load generator hands the order to its socket (tools/loadgen.py)
    fromApp      quickfix's thread calls the gateway (inbound parse and validation done)
    submit       decoded, handed to the loop's inbox
    drain        the loop takes it from the inbox, into the sequencer's queue
    apply        the sequencer runs it through the core (risk, matching)
    publish      its batch is durable (journaled) and published to the gateway
    posted       rendered and posted to its session's outbox
    send         a sender thread calls quickfix's Session.send (store, then socket)
    sent         Session.send has returned
    client_recv  the load generator has read the acknowledgement

It prints percentiles of each step, and the cyclic GC's pauses during the run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = ("client_send", "fromApp", "submit", "drain", "apply", "publish", "posted", "send", "sent", "client_recv")


# ---------------------------------------------------------------------- the venue side


def serve(config: str, out: str) -> int:
    """`venue run` with stage timestamps; writes them to `out` when it stops."""
    import gc
    import logging

    from venue import app
    from venue.config import load_config
    from venue.core import VenueCore
    from venue.events import ExecReport
    from venue.fix import gateway as gw
    from venue.fix.sender import Outbox, Sender

    now = time.perf_counter_ns
    stamps: dict[str, dict[str, int]] = {}
    pauses: list[tuple[int, int, int]] = []
    local = threading.local()

    def stamp(cl: str, stage: str, t: int | None = None) -> None:
        seen = stamps.setdefault(cl, {})
        if stage not in seen:  # an order's first pass only (its cancel at logout passes again)
            seen[stage] = now() if t is None else t

    def wrap(cls: Any, name: str, before: Any, after: Any = None) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any) -> Any:
            before(self, *args)
            result = original(self, *args)
            if after is not None:
                after(self, *args)
            return result

        setattr(cls, name, wrapper)

    def from_app(self: Any, message: Any, sid: Any) -> None:
        local.t = now()

    def submit(self: Any, cmd: Any, note: Any = None) -> None:
        cl = getattr(cmd, "cl_ord_id", None)
        if cl:
            stamp(cl, "fromApp", getattr(local, "t", None))
            stamp(cl, "submit")

    def drain(self: Any) -> None:
        t = now()
        for cmd, _ in list(self._inbox):
            if getattr(cmd, "cl_ord_id", None):
                stamp(cmd.cl_ord_id, "drain", t)

    def apply(self: Any, seq: int, ts: int, cmd: Any) -> None:
        if getattr(cmd, "cl_ord_id", None):
            stamp(cmd.cl_ord_id, "apply")

    def reports(events: Any, stage: str) -> None:
        t = now()
        for ev in events:
            if isinstance(ev, ExecReport):
                stamp(ev.order.cl_ord_id, stage, t)

    class TimedSession:
        """Stands in for a quickfix Session in its outbox: stamps around its send."""

        def __init__(self, session: Any) -> None:
            self.session = session

        def send(self, message: Any) -> Any:
            cl = message.getField(11) if message.isSetField(11) else ""
            stamp(cl, "send")
            try:
                return self.session.send(message)
            finally:
                stamp(cl, "sent")

    outbox = Sender.outbox

    def timed_outbox(self: Sender, name: str, session: Any) -> Outbox:
        return outbox(self, name, TimedSession(session))

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            local.gc = now()
        else:
            pauses.append((getattr(local, "gc", now()), now(), info["generation"]))

    wrap(gw.OrderEntryGateway, "fromApp", from_app)
    wrap(gw.OrderEntryGateway, "_submit", submit)
    wrap(gw.OrderEntryGateway, "_drain", drain)
    wrap(VenueCore, "apply", apply)
    wrap(gw.OrderEntryGateway, "on_events", lambda self, events: reports(events, "publish"), lambda self, events: reports(events, "posted"))
    Sender.outbox = timed_outbox  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    logging.basicConfig(level=logging.WARNING)
    try:
        return app.run(load_config(config))
    finally:
        Path(out).write_text(json.dumps({"stamps": stamps, "gc": pauses}))


# ---------------------------------------------------------------------- the client side


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--rate", type=float, default=5000.0, help="offered orders/s (0: as fast as --window allows)")
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--spread", default="1000", help="as bench/fix_e2e.py: 1000 rests every order, 0 trades half")
    p.add_argument("--serve", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        return serve(*a.serve)

    import fix_e2e  # bench/ is on the path as this script's directory

    import tools.loadgen as lg

    sent: dict[str, int] = {}
    acked: dict[str, int] = {}
    send, acks = lg._send, lg._acks

    def timed_send(s: lg.LoadSession, data: bytes) -> None:
        i = data.index(b"\x0111=") + 4
        sent[data[i:data.index(b"\x01", i)].decode()] = time.perf_counter_ns()
        send(s, data)

    def timed_acks(s: lg.LoadSession) -> list[tuple[str, bool]]:
        out = acks(s)
        t = time.perf_counter_ns()
        for cl, _ in out:
            acked[cl] = t
        return out

    lg._send, lg._acks = timed_send, timed_acks
    with tempfile.TemporaryDirectory(prefix="fix-stages-") as tmp:
        root = Path(tmp)
        config = fix_e2e.bench_config(root)
        port = fix_e2e.yaml.safe_load(config.read_text())["venue"]["order_entry"]["port"]
        out = root / "stages.json"
        proc = fix_e2e.start([sys.executable, __file__, "--serve", str(config), str(out)], port, root / "venue.log")
        try:
            ss = fix_e2e.sessions(a.sessions)
            lg.connect(port, ss)
            try:
                lg.run(ss, duration=min(1.0, a.duration), window=a.window, spread=a.spread)  # warm up
                sent.clear()
                acked.clear()
                r = lg.run(ss, duration=a.duration, rate=a.rate or None, window=a.window, spread=a.spread)
            finally:
                lg.logout(ss)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        data = json.loads(out.read_text())
    print(lg.report(f"venue {a.sessions} sess {'@' + format(a.rate, ',.0f') + '/s' if a.rate else 'max'}", r))
    rows = []
    for cl, t in sent.items():
        st = data["stamps"].get(cl)
        if st is not None and cl in acked:
            row = {**st, "client_send": t, "client_recv": acked[cl]}
            if all(s in row for s in STAGES):
                rows.append(row)
    print(f"{len(rows)} orders with every stage; microseconds per step:")
    print(f"  {'step':26} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for x, y in [*pairwise(STAGES), (STAGES[0], STAGES[-1])]:
        xs = [(row[y] - row[x]) / 1000 for row in rows]
        print(f"  {x + ' -> ' + y:26} {pct(xs, 50):8,.0f} {pct(xs, 90):8,.0f} {pct(xs, 99):8,.0f} {max(xs, default=float('nan')):8,.0f}")
    t0, t1 = min(sent.values(), default=0), max(acked.values(), default=0)
    gcs = [(e - s) / 1e6 for s, e, _ in data["gc"] if t0 <= s <= t1]
    print(f"GC during the run: {len(gcs)} collections, longest {max(gcs, default=0):.1f} ms, {sum(gcs):.1f} ms in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
