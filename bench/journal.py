"""Journal benchmark: codec cost, append throughput, end-to-end cost, restart time.

One seeded stream of the commands a busy venue sees (passive limit orders around a
drifting mid from 20 accounts of 5 firms, cancels and replaces of live orders, aggressive
limit and IOC orders that sweep levels) feeds:
  codec     encode and decode cost per command (the encode runs once per command, live)
  append    Journal.append_batch + flush alone, in batches of 64 and 512 commands, with
            fsync per batch and with fsync off (FsyncPolicy.NEVER: survives a kill -9,
            not a power loss)
  sync      one command per synced write, as at 5,000 orders/s where most orders are a
            write of their own: wall and CPU time per write into a preallocated segment
            (the journal's default) against plain appends (journal.preallocate: false),
            interleaved rounds, median of each
  e2e       the Sequencer driving MatchingEngine, then VenueCore (risk around it), with
            no journal, a journal with fsync off, and a journal with fsync per batch; the
            journal's cost is the drop in commands/s against no journal (target: < 20%),
            under the venue process's GC tuning (--gc default: CPython's)
  restart   a journal of --commands records (1,000,000 by default) and a snapshot at
            --commands - 100,000, both of VenueCore (the core the venue runs): time to
            recover from the journal alone, and from the snapshot plus the last 100,000
            records (target: < 5 s)

Files go under --dir (default var/bench-journal, a real disk: /tmp may be tmpfs, where
fsync costs nothing) and are removed at the end.

    python3 bench/journal.py [--commands 1000000] [--e2e 200000] [--rounds 3] [--seed 7] [--dir var/bench-journal]
                             [--gc venue|default] [--only codec|append|sync|e2e|restart ...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import time
from decimal import Decimal
from pathlib import Path

from venue.commands import CancelOrder, Command, NewOrder, ReplaceOrder
from venue.core import VenueCore
from venue.gc_tuning import tune_gc
from venue.instruments import Instrument
from venue.journal import FsyncPolicy, Journal, JournalConfig, JournalReader
from venue.journal_codec import Decoder, codec
from venue.limits import RiskConfig
from venue.matching import MatchingEngine
from venue.recovery import recover
from venue.sequencer import Core, Sequencer
from venue.snapshot import capture, write
from venue.types import InstrumentKind, OrdType, Side, TimeInForce

SYMBOLS = ("BTC-PERP", "ETH-PERP")
FIRMS = [f"FIRM{i}" for i in range(5)]
ACCOUNTS = {f"{f}-A{j}": f for f in FIRMS for j in range(4)}
T0 = 1_790_000_000_000_000


def instrument(symbol: str, ref: int) -> Instrument:
    return Instrument(symbol=symbol, kind=InstrumentKind.PERPETUAL, underlying=symbol[:3] + "-USD", quote_currency="USD",
                      tick_size=Decimal("0.5"), lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(ref),
                      funding_interval_s=28800)


def new_engine() -> MatchingEngine:
    return MatchingEngine([instrument("BTC-PERP", 100_000), instrument("ETH-PERP", 3_500)], ACCOUNTS)


def command_stream(n: int, seed: int) -> list[Command]:
    """55% passive adds 1..20 ticks from a drifting mid, 25% cancels and 5% replaces of
    recent live orders, 15% aggressive orders reaching 2..6 ticks through the mid."""
    rng = random.Random(seed)
    mid = {"BTC-PERP": 200_000, "ETH-PERP": 70_000}
    live: list[tuple[str, str, str, Side, int]] = []  # (firm, cl_ord_id, symbol, side, price)
    accounts = list(ACCOUNTS)
    out: list[Command] = []
    for i in range(n):
        symbol = SYMBOLS[0] if rng.random() < 0.7 else SYMBOLS[1]
        mid[symbol] += rng.choice((-1, 0, 0, 1))
        r = rng.random()
        cl = f"o{i}"
        if r < 0.30 and live:
            firm, orig, sym, side, price = live.pop(rng.randrange(max(0, len(live) - 200), len(live)))
            if r < 0.25:
                out.append(CancelOrder(session=firm, firm=firm, cl_ord_id=cl, orig_cl_ord_id=orig))
            else:
                out.append(ReplaceOrder(session=firm, firm=firm, cl_ord_id=cl, orig_cl_ord_id=orig, qty=rng.randint(1, 10), price=price))
                live.append((firm, cl, sym, side, price))
            continue
        account = rng.choice(accounts)
        firm = ACCOUNTS[account]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1 if side is Side.BUY else -1
        if r < 0.85:
            price = mid[symbol] - sign * rng.randint(1, 20)
            out.append(NewOrder(session=firm, firm=firm, account=account, cl_ord_id=cl, symbol=symbol, side=side,
                                ord_type=OrdType.LIMIT, qty=rng.randint(1, 10), price=price))
            live.append((firm, cl, symbol, side, price))
        else:
            out.append(NewOrder(session=firm, firm=firm, account=account, cl_ord_id=cl, symbol=symbol, side=side,
                                ord_type=OrdType.LIMIT, qty=rng.randint(10, 60), price=mid[symbol] + sign * rng.randint(2, 6),
                                tif=rng.choice((TimeInForce.IOC, TimeInForce.GTC))))
    return out


def bench_codec(cmds: list[Command]) -> None:
    c = codec()
    dec = Decoder(c.schema())
    sample = cmds[:100_000]
    for kind in (NewOrder, CancelOrder):
        some = [x for x in sample if type(x) is kind]
        t = time.perf_counter()
        data = [c.encode(x) for x in some]
        enc = (time.perf_counter() - t) / len(some)
        t = time.perf_counter()
        for d in data:
            dec.decode(d, 0, len(d))
        dcd = (time.perf_counter() - t) / len(some)
        avg = sum(map(len, data)) / len(data)
        print(f"  {kind.__name__:<12} encode {enc * 1e6:5.2f} µs   decode {dcd * 1e6:5.2f} µs   {avg:5.1f} bytes + 16 framing")


def bench_append(cmds: list[Command], base: Path) -> None:
    sample = cmds[:200_000]
    for fsync in (FsyncPolicy.BATCH, FsyncPolicy.NEVER):
        for batch in (64, 512):
            d = base / f"append-{fsync.value}-{batch}"
            j = Journal.open(d, JournalConfig(fsync=fsync))
            n = len(sample) if fsync is FsyncPolicy.NEVER else min(len(sample), 2_000 * batch)
            t = time.perf_counter()
            for i in range(0, n, batch):
                end = min(i + batch, n)
                j.append_batch(i + 1, range(T0 + i, T0 + end), sample[i:end])
                j.flush()
            took = time.perf_counter() - t
            j.close()
            print(f"  fsync {fsync.value:<5} batch {batch:>3}: {n / took:>10,.0f} commands/s  {took / j.flushes * 1e3:6.2f} ms/flush"
                  f"  {j.bytes_written / took / 1e6:6.1f} MB/s")
            shutil.rmtree(d)


def bench_sync(cmds: list[Command], base: Path, rounds: int, writes: int = 2_000) -> None:
    sample = cmds[:writes]
    got: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(rounds):
        for preallocate in (True, False):
            d = base / f"sync-{preallocate}-{r}"
            j = Journal.open(d, JournalConfig(preallocate=preallocate))
            j.append_batch(1, (T0,), sample[:1])
            j.flush()  # the segment exists (and is allocated) before the clock starts
            t, c = time.perf_counter(), time.thread_time()
            for i in range(1, len(sample)):
                j.append_batch(i + 1, (T0 + i,), sample[i:i + 1])
                j.flush()
            n = len(sample) - 1
            got[preallocate].append(((time.perf_counter() - t) / n * 1e6, (time.thread_time() - c) / n * 1e6))
            j.close()
            shutil.rmtree(d)
    for preallocate, label in ((True, "preallocated (default)"), (False, "appended")):
        wall = statistics.median(w for w, _ in got[preallocate])
        cpu = statistics.median(c for _, c in got[preallocate])
        print(f"  {label:<23} {wall:7.1f} µs/write  {cpu:6.1f} µs CPU/write")
    ratio = statistics.median(w for w, _ in got[True]) / statistics.median(w for w, _ in got[False])
    print(f"  -> preallocated/appended wall time = {ratio:.2f} ({rounds} rounds of {writes - 1:,} writes)")


def new_venue_core() -> VenueCore:
    """The core the venue runs: risk (no limits configured) and operator controls around the engine."""
    return VenueCore([instrument("BTC-PERP", 100_000), instrument("ETH-PERP", 3_500)], ACCOUNTS, RiskConfig())


async def _drive(core: Core, cmds: list[Command], journal: Journal | None, max_batch: int) -> tuple[float, float]:
    """(commands per wall second, commands per CPU second of this process, all threads)."""
    seq = Sequencer(core, journal=journal, max_batch=max_batch)
    task = asyncio.create_task(seq.run())
    await asyncio.sleep(0)
    t, c0 = time.perf_counter(), time.process_time()
    for c in cmds:
        seq.submit(c)
    seq.stop()
    await asyncio.wait_for(task, 600)
    return len(cmds) / (time.perf_counter() - t), len(cmds) / (time.process_time() - c0)


def bench_e2e(cmds: list[Command], base: Path, rounds: int, gc_policy: str) -> None:
    """Best of `rounds` interleaved runs per setting, in wall time and in this process's CPU
    time: the machine is shared, and CPU time is what other loads disturb least (it does
    not count waiting for fsync, which the wall figure does).

    gc_policy "venue" runs the cyclic GC as the venue process does (venue/gc_tuning.py:
    what exists before the run frozen, and so is what survives each collection; it stays
    on for the rest of the bench). Under CPython's
    default thresholds full collections walk the whole stream and book every few batches,
    and how many fall in a run moves with how long the unpublished batches' events live:
    noise that is not the venue's, and that inflates every setting's time alike."""
    setups = (("no journal", None), ("fsync off", FsyncPolicy.NEVER), ("fsync per batch", FsyncPolicy.BATCH))
    for core_name, build in (("MatchingEngine", new_engine), ("VenueCore", new_venue_core)):
        for max_batch in (512, 64):
            wall: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for _ in range(rounds):
                for name, fsync in setups:
                    d = base / f"e2e-{name.replace(' ', '-')}"
                    j = Journal.open(d, JournalConfig(fsync=fsync)) if fsync is not None else None
                    core = build()
                    if gc_policy == "venue":
                        tune_gc()
                    else:
                        gc.collect()
                    w, c = asyncio.run(_drive(core, cmds, j, max_batch))
                    wall[name], cpu[name] = max(wall.get(name, 0.0), w), max(cpu.get(name, 0.0), c)
                    if j is not None:
                        j.close()
                        shutil.rmtree(d)
            for label, rates in (("wall", wall), ("cpu ", cpu)):
                base_rate = rates["no journal"]
                print(f"  {core_name:<14} batches <= {max_batch:>3} {label}: " + "   ".join(
                    f"{k} {v:>8,.0f}/s" + ("" if k == "no journal" else f" (cost {100 * (1 - v / base_rate):4.1f}%)") for k, v in rates.items()))


def bench_restart(cmds: list[Command], base: Path, tail: int) -> None:
    jdir, sdir = base / "restart" / "journal", base / "restart" / "snapshots"
    core = new_venue_core()
    j = Journal.open(jdir, JournalConfig(fsync=FsyncPolicy.NEVER))  # setup only: restart reads what the OS has
    at = len(cmds) - tail
    t = time.perf_counter()
    for i, c in enumerate(cmds, 1):
        core.apply(i, T0 + i, c)
        j.append(i, T0 + i, c)
        if i % 512 == 0:
            j.flush()
        if i == at:
            core.drain_book_deltas(i, T0 + i)
            t_cap = time.perf_counter()
            snap = capture(core, i, T0 + i)
            pause = time.perf_counter() - t_cap
            t_w = time.perf_counter()
            path = write(sdir, snap)
            wrote = time.perf_counter() - t_w
    j.close()
    setup = time.perf_counter() - t
    live = len(core.engine.orders)
    remembered = len({id(o) for _, o in core.engine.by_cl_ord_id.items()})
    size = sum(p.stat().st_size for p in jdir.iterdir())
    print(f"  journal: {len(cmds):,} commands, {size / 1e6:.1f} MB (built in {setup:.1f} s); at the end {live:,} live orders,"
          f" {remembered:,} orders remembered")
    print(f"  snapshot at seq {at:,}: {path.stat().st_size / 1e6:.1f} MB; capture pause {pause * 1e3:.0f} ms (loop thread),"
          f" encode+write+fsync {wrote:.2f} s (worker thread)")
    del core, snap
    gc.collect()
    t = time.perf_counter()
    n = sum(1 for _ in JournalReader(jdir).records(1))
    print(f"  read + decode alone: {n:,} records in {time.perf_counter() - t:.2f} s")
    for name, snaps in (("journal only", base / "no-snapshots"), ("snapshot + tail", sdir)):
        gc.collect()
        rec = recover(new_venue_core, jdir, snaps, JournalConfig(fsync=FsyncPolicy.NEVER))
        rec.journal.close()
        print(f"  restart, {name:<16}: {rec.seconds:6.2f} s  ({rec.replayed:,} records replayed"
              f"{', snapshot ' + rec.snapshot.name if rec.snapshot else ''})")
        del rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=1_000_000, help="journal size for the restart figures")
    ap.add_argument("--tail", type=int, default=100_000, help="records after the snapshot")
    ap.add_argument("--e2e", type=int, default=200_000, help="commands through the sequencer per e2e run")
    ap.add_argument("--rounds", type=int, default=3, help="e2e runs per setting; the best is shown")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gc", choices=("venue", "default"), default="venue", help="e2e: the venue process's GC tuning, or CPython's default")
    ap.add_argument("--dir", type=Path, default=Path("var/bench-journal"))
    ap.add_argument("--only", choices=("codec", "append", "sync", "e2e", "restart"), action="append", help="run only these parts (repeatable)")
    args = ap.parse_args()
    parts = set(args.only or ("codec", "append", "sync", "e2e", "restart"))
    if not 0 < args.tail < args.commands:
        ap.error("--tail must be between 1 and --commands")
    base = args.dir
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    try:
        cmds = command_stream(max(args.commands, args.e2e), args.seed)
        kinds = {k: sum(1 for c in cmds if type(c) is k) for k in (NewOrder, CancelOrder, ReplaceOrder)}
        print(f"stream: {len(cmds):,} commands, seed {args.seed}: " + ", ".join(f"{k.__name__} {v:,}" for k, v in kinds.items()))
        if "codec" in parts:
            print("codec (per command):")
            bench_codec(cmds)
        if "append" in parts:
            print(f"journal append + flush alone (files under {base}):")
            bench_append(cmds, base)
        if "sync" in parts:
            print("one command per synced write:")
            bench_sync(cmds, base, args.rounds)
        if "e2e" in parts:
            print(f"end to end: the Sequencer driving a core, {args.e2e:,} commands submitted at once, best of {args.rounds}, {args.gc} GC:")
            bench_e2e(cmds[:args.e2e], base, args.rounds, args.gc)
        if "restart" in parts:
            print("restart (VenueCore: the engine, risk state and throttle buckets):")
            bench_restart(cmds[:args.commands], base, args.tail)
        print(f"load average while it ran: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
