"""Engine benchmark: the pure core and the sequencer against a minimal price-time book.

One seeded synthetic stream (passive adds around a drifting mid, cancels of live orders,
aggressive limit orders that sweep several levels) runs through:
  baseline   a minimal price-time book that does nothing but match (bench/minimal_book.py),
             interpreted, and compiled by mypyc in a temporary directory (when mypyc is
             installed) as the venue's core is at install (setup.py)
  core       MatchingEngine.apply: full events, every order type's checks, STP, ids
  sequencer  the asyncio Sequencer driving the core (no journal: fsync is bench/journal.py's),
             with the cyclic GC on and tuned as the venue process runs it (venue/gc_tuning.py)

It prints orders/s (the best of --rounds interleaved passes, each on fresh state, in CPU
time so that other work on a shared machine counts as little as it can; the sequencer's
rate is wall time, since its loop waits) and per-order latency percentiles (a further
pass timing each command), and the core/baseline ratio.

    python3 bench/engine.py [--orders 200000] [--seed 7] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import venue.matching
from minimal_book import MinimalBook
from venue.commands import CancelOrder, Command, NewOrder
from venue.events import Event
from venue.gc_tuning import tune_gc
from venue.instruments import Instrument
from venue.matching import MatchingEngine
from venue.sequencer import Sequencer
from venue.types import InstrumentKind, OrdType, Side, TimeInForce

SYMBOL = "BTC-PERP"
ACCOUNTS = [f"ACC{i}" for i in range(20)]
INSTRUMENT = Instrument(
    symbol=SYMBOL, kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD", tick_size=Decimal("0.5"),
    lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(100000), funding_interval_s=28800,
)


def stream(n: int, seed: int) -> list[tuple]:
    """(kind, id, side, price, qty): 'A' passive add, 'X' aggressive (sweeps levels), 'C'
    cancel of an order that is resting at that moment (a minimal book tracks which are)."""
    rng = random.Random(seed)
    mid = 200_000  # ticks
    tracker = MinimalBook()
    out: list[tuple] = []
    for oid in range(1, n + 1):
        mid += rng.choice((-1, 0, 0, 1))
        r = rng.random()
        if r < 0.30 and tracker.orders:
            live = list(tracker.orders) if len(tracker.orders) < 64 else [next(iter(tracker.orders))]
            op: tuple = ("C", rng.choice(live) if rng.random() < 0.5 else list(tracker.orders)[rng.randrange(len(tracker.orders))], None, 0, 0)
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            if r < 0.85:
                off = rng.randint(1, 20)
                op = ("A", oid, side, mid - off if side is Side.BUY else mid + off, rng.randint(1, 10))
            else:
                reach = rng.randint(2, 6)
                op = ("X", oid, side, mid + reach if side is Side.BUY else mid - reach, rng.randint(10, 60))
        tracker.apply(op)
        out.append(op)
    return out


def commands(ops: Sequence[tuple]) -> list[Command]:
    cmds: list[Command] = []
    for kind, oid, side, price, qty in ops:
        acct = ACCOUNTS[oid % len(ACCOUNTS)]
        if kind == "C":
            cmds.append(CancelOrder(session="S", firm="F", cl_ord_id=f"c{len(cmds)}", orig_cl_ord_id=str(oid)))
        else:
            tif = TimeInForce.IOC if kind == "X" else TimeInForce.GTC
            cmds.append(NewOrder(session="S", firm="F", account=acct, cl_ord_id=str(oid), symbol=SYMBOL, side=side,
                                 ord_type=OrdType.LIMIT, qty=qty, price=price, tif=tif))
    return cmds


def percentiles(samples_ns: list[int]) -> str:
    s = sorted(samples_ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1000  # noqa: E731
    return f"p50 {pick(0.50):6.2f} µs  p99 {pick(0.99):6.2f} µs  p99.9 {pick(0.999):7.2f} µs  max {s[-1] / 1000:9.2f} µs"


def rate(run: Callable[[], None], n: int) -> float:
    """Orders per second of CPU time for one pass (other work on the machine does not count)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        run()
        return n / (time.process_time() - t0)
    finally:
        gc.enable()


def latencies(apply: Callable[[Any], object], items: Sequence[Any]) -> list[int]:
    """Each item's wall time through `apply`, on fresh state."""
    gc.collect()
    gc.disable()
    try:
        lat = []
        clock = time.perf_counter_ns
        for it in items:
            t = clock()
            apply(it)
            lat.append(clock() - t)
        return lat
    finally:
        gc.enable()


async def run_sequencer(cmds: list[Command]) -> tuple[float, list[int]]:
    engine = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS})
    sent: list[int] = []
    lat: list[int] = []
    clock = time.perf_counter_ns

    def on_batch(events: Sequence[Event]) -> None:
        now = clock()
        top = events[-1].seq
        while len(lat) < top and len(lat) < len(sent):
            lat.append(now - sent[len(lat)])

    seqr = Sequencer(engine, subscribers=[on_batch], max_batch=256)
    task = asyncio.create_task(seqr.run())
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    chunk = 64
    for i in range(0, len(cmds), chunk):
        for c in cmds[i:i + chunk]:
            sent.append(clock())
            seqr.submit(c)
        await asyncio.sleep(0)
    seqr.stop()
    await asyncio.wait_for(task, 600)
    rate = len(cmds) / (time.perf_counter() - t0)
    return rate, lat


def compiled_minimal_book(workdir: Path) -> type[MinimalBook] | None:
    """bench/minimal_book.py compiled by mypyc (as setup.py compiles the core), under another
    module name; None, with the reason printed, where mypyc is not installed or fails."""
    shutil.copy(Path(__file__).with_name("minimal_book.py"), workdir / "minimal_book_compiled.py")
    try:
        subprocess.run([sys.executable, "-m", "mypyc", "--ignore-missing-imports", "minimal_book_compiled.py"],
                       cwd=workdir, check=True, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"(no compiled baseline: mypyc failed: {exc})")
        return None
    sys.path.insert(0, str(workdir))
    module = importlib.import_module("minimal_book_compiled")
    return module.MinimalBook  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ops = stream(args.orders, args.seed)
    cmds = commands(ops)
    mix = {k: sum(1 for o in ops if o[0] == k) for k in "ACX"}
    print(f"stream: {len(ops):,} commands (seed {args.seed}): {mix['A']:,} passive adds, {mix['C']:,} cancels, {mix['X']:,} aggressive sweeps")

    with tempfile.TemporaryDirectory() as tmp:
        compiled = compiled_minimal_book(Path(tmp))

    def baseline(book: type[MinimalBook]) -> Callable[[], None]:
        def run() -> None:
            apply = book().apply
            for op in ops:
                apply(op)
        return run

    def core() -> None:
        apply = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS}).apply
        for seq, c in enumerate(cmds, 1):
            apply(seq, 1, c)

    base_rate = compiled_rate = core_rate = 0.0
    for _ in range(args.rounds):  # interleaved, so all see the same machine; the best round of each
        base_rate = max(base_rate, rate(baseline(MinimalBook), len(ops)))
        if compiled is not None:
            compiled_rate = max(compiled_rate, rate(baseline(compiled), len(ops)))
        core_rate = max(core_rate, rate(core, len(cmds)))
    base_lat = latencies(MinimalBook().apply, ops)
    compiled_lat = latencies(compiled().apply, ops) if compiled is not None else []
    engine = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS})
    seqs = iter(range(1, 10**9))
    core_lat = latencies(lambda c: engine.apply(next(seqs), 1, c), cmds)
    engine = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS})
    n_events = sum(len(engine.apply(i, 1, c)) for i, c in enumerate(cmds, 1))
    tune_gc()  # last: the sequencer runs as in the venue process, the cyclic GC tuned and on
    seq_rate, seq_lat = asyncio.run(run_sequencer(cmds))
    how = "compiled" if Path(venue.matching.__file__).suffix != ".py" else "interpreted"
    print(f"{'baseline (minimal book)':<28} {base_rate:>11,.0f} orders/s   {percentiles(base_lat)}")
    if compiled is not None:
        print(f"{'baseline, compiled by mypyc':<28} {compiled_rate:>11,.0f} orders/s   {percentiles(compiled_lat)}")
    print(f"{f'core ({how})':<28} {core_rate:>11,.0f} orders/s   {percentiles(core_lat)}   ({n_events:,} events)")
    print(f"{'sequencer (asyncio+core)':<28} {seq_rate:>11,.0f} orders/s   {percentiles(seq_lat)}   (submit to publish)")
    best = max(base_rate, compiled_rate)
    print(f"core / baseline throughput: {core_rate / base_rate:.2f}"
          + (f"   core / the faster baseline: {core_rate / best:.2f}" if compiled is not None else "")
          + f"   sequencer / core: {seq_rate / core_rate:.2f}")


if __name__ == "__main__":
    main()
