"""Engine benchmark: the pure core and the sequencer against a minimal price-time book.

One seeded synthetic stream (passive adds around a drifting mid, cancels of live orders,
aggressive limit orders that sweep several levels) runs through:
  baseline   a minimal price-time book that does nothing but match (below, ~50 lines)
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
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from decimal import Decimal

from sortedcontainers import SortedList

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


class MinimalBook:
    """The baseline: price-time matching and nothing else (no events, no checks, no ids)."""

    def __init__(self) -> None:
        self.levels = {Side.BUY: {}, Side.SELL: {}}
        self.prices = {Side.BUY: SortedList(), Side.SELL: SortedList()}
        self.orders: dict[int, list] = {}
        self.trades = 0

    def add(self, oid: int, side: Side, price: int, qty: int) -> None:
        opp = Side.SELL if side is Side.BUY else Side.BUY
        prices, levels = self.prices[opp], self.levels[opp]
        while qty and prices:
            best = prices[0] if side is Side.BUY else prices[-1]
            if (best > price) if side is Side.BUY else (best < price):
                break
            q = levels[best]
            while q and qty:
                o = q[0]
                take = min(qty, o[1])
                o[1] -= take
                qty -= take
                self.trades += 1
                if o[1] == 0:
                    q.popleft()
                    self.orders.pop(o[0], None)
            if not q:
                del levels[best]
                prices.remove(best)
        if qty:
            o = [oid, qty, side, price]
            lv = self.levels[side].get(price)
            if lv is None:
                lv = self.levels[side][price] = deque()
                self.prices[side].add(price)
            lv.append(o)
            self.orders[oid] = o

    def cancel(self, oid: int) -> None:
        o = self.orders.pop(oid, None)
        if o is not None:
            lv = self.levels[o[2]][o[3]]
            lv.remove(o)
            if not lv:
                del self.levels[o[2]][o[3]]
                self.prices[o[2]].remove(o[3])

    def apply(self, op: tuple) -> None:
        if op[0] == "C":
            self.cancel(op[1])
        elif op[0] == "X":
            self.add(op[1], op[2], op[3], op[4])
            self.cancel(op[1])  # IOC: the remainder does not rest
        else:
            self.add(op[1], op[2], op[3], op[4])


def percentiles(samples_ns: list[int]) -> str:
    s = sorted(samples_ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1000  # noqa: E731
    return f"p50 {pick(0.50):6.2f} µs  p99 {pick(0.99):6.2f} µs  p99.9 {pick(0.999):7.2f} µs"


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

    def baseline() -> None:
        apply = MinimalBook().apply
        for op in ops:
            apply(op)

    def core() -> None:
        apply = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS}).apply
        for seq, c in enumerate(cmds, 1):
            apply(seq, 1, c)

    base_rate = core_rate = 0.0
    for _ in range(args.rounds):  # interleaved, so both see the same machine; the best round of each
        base_rate = max(base_rate, rate(baseline, len(ops)))
        core_rate = max(core_rate, rate(core, len(cmds)))
    base_lat = latencies(MinimalBook().apply, ops)
    engine = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS})
    seqs = iter(range(1, 10**9))
    core_lat = latencies(lambda c: engine.apply(next(seqs), 1, c), cmds)
    engine = MatchingEngine([INSTRUMENT], {a: "F" for a in ACCOUNTS})
    n_events = sum(len(engine.apply(i, 1, c)) for i, c in enumerate(cmds, 1))
    tune_gc()  # last: the sequencer runs as in the venue process, the cyclic GC tuned and on
    seq_rate, seq_lat = asyncio.run(run_sequencer(cmds))
    print(f"{'baseline (minimal book)':<26} {base_rate:>11,.0f} orders/s   {percentiles(base_lat)}")
    print(f"{'core (MatchingEngine)':<26} {core_rate:>11,.0f} orders/s   {percentiles(core_lat)}   ({n_events:,} events)")
    print(f"{'sequencer (asyncio+core)':<26} {seq_rate:>11,.0f} orders/s   {percentiles(seq_lat)}   (submit to publish)")
    print(f"core / baseline throughput: {core_rate / base_rate:.2f}   sequencer / core: {seq_rate / core_rate:.2f}")


if __name__ == "__main__":
    main()
