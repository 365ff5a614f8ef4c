"""Risk benchmark: the per-order cost of every pre-trade check, against matching alone.

One seeded stream (passive adds around a drifting mid on three instruments, two of them
on one underlying, cancels of live orders, aggressive IOC orders that sweep levels; 40 accounts
of 4 firms, 4 sessions) runs, in the same process and interleaved rounds, through:
  matching   MatchingEngine.apply, no pre-trade check
  tracking   VenueCore.apply with no limit set: the risk state following every event
  risk       VenueCore.apply: session throttle, kill switch, max qty, price band, max
             notional, open orders, position per instrument and per underlying, credit,
             and the risk state following every event; every limit set, none binding,
             so both runs do the same matching and produce the same events (checked)
It prints the best round's CPU time per command for each, and the added cost as a ratio.
Target: the checks add less than 25%.

    python3 bench/risk.py [--orders 100000] [--rounds 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from venue.commands import AdjustCollateral, CancelOrder, Command, NewOrder
from venue.core import VenueCore
from venue.events import Event
from venue.instruments import Instrument
from venue.limits import LimitRule, RiskConfig
from venue.matching import MatchingEngine
from venue.types import InstrumentKind, OrdType, Side, TimeInForce

INSTRUMENTS = [
    Instrument(symbol="BTC-PERP", kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD", tick_size=Decimal("0.5"),
               lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(100000), funding_interval_s=28800),
    Instrument(symbol="BTC-27MAR27", kind=InstrumentKind.FUTURE, underlying="BTC-USD", quote_currency="USD", tick_size=Decimal("0.5"),
               lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(100000)),
    Instrument(symbol="ETH-PERP", kind=InstrumentKind.PERPETUAL, underlying="ETH-USD", quote_currency="USD", tick_size=Decimal("0.05"),
               lot_size=Decimal(1), multiplier=Decimal("0.01"), reference_price=Decimal(3500), funding_interval_s=28800),
]
SYMBOLS = ("BTC-PERP", "BTC-27MAR27", "ETH-PERP")
ACCOUNTS = {f"F{i}-A{j}": f"F{i}" for i in range(4) for j in range(10)}
ACCOUNT_IDS = list(ACCOUNTS)
LIMITS = RiskConfig(
    limits=[LimitRule(band_pct=Decimal(10), max_order_qty=100_000, max_order_notional=Decimal(10**9), max_position=10**7,
                      max_underlying_position=Decimal(10**6), max_open_orders=10**6, im_rate=Decimal("0.1"), max_msgs_per_s=10**6),
            LimitRule(symbol="ETH-PERP", band_pct=Decimal(15)),
            LimitRule(firm="F1", max_order_qty=50_000)],
)


def stream(n: int, seed: int) -> list[Command]:
    rng = random.Random(seed)
    mids = {"BTC-PERP": 200_000, "BTC-27MAR27": 200_000, "ETH-PERP": 70_000}
    live: list[tuple[str, str]] = []  # (firm, ClOrdID)
    out: list[Command] = []
    for oid in range(1, n + 1):
        symbol = rng.choices(SYMBOLS, weights=(5, 2, 3))[0]
        mids[symbol] += rng.choice((-1, 0, 0, 1))
        mid = mids[symbol]
        account = ACCOUNT_IDS[rng.randrange(len(ACCOUNT_IDS))]
        firm = ACCOUNTS[account]
        r = rng.random()
        if r < 0.30 and live:
            f, victim = live.pop(rng.randrange(len(live)))
            out.append(CancelOrder(session=f"S-{f}", firm=f, cl_ord_id=f"c{oid}", orig_cl_ord_id=victim))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if r < 0.85:
            off = rng.randint(1, 20)
            price, qty, tif = (mid - off if side is Side.BUY else mid + off), rng.randint(1, 10), TimeInForce.GTC
            live.append((firm, str(oid)))
        else:
            reach = rng.randint(2, 6)
            price, qty, tif = (mid + reach if side is Side.BUY else mid - reach), rng.randint(10, 60), TimeInForce.IOC
        out.append(NewOrder(session=f"S-{firm}", firm=firm, account=account, cl_ord_id=str(oid), symbol=symbol, side=side,
                            ord_type=OrdType.LIMIT, qty=qty, price=price, tif=tif))
    return out


def matching() -> Callable[[int, int, Command], list[Event]]:
    return MatchingEngine(INSTRUMENTS, ACCOUNTS).apply


def risk() -> Callable[[int, int, Command], list[Event]]:
    core = VenueCore(INSTRUMENTS, ACCOUNTS, LIMITS)
    for i, a in enumerate(ACCOUNT_IDS):
        core.apply(i + 1, 0, AdjustCollateral(account=a, amount=Decimal(10**9)))
    return core.apply


def tracking() -> Callable[[int, int, Command], list[Event]]:
    """VenueCore with no limit set: the wrapper and the risk state following every event,
    without the checks' own work (the split the figures report)."""
    return VenueCore(INSTRUMENTS, ACCOUNTS, RiskConfig()).apply


def run(factory: Callable[[], Callable[[int, int, Command], list[Event]]], cmds: Sequence[Command]) -> tuple[float, list[Event]]:
    """Seconds for the whole stream on fresh state, and the last command's events."""
    apply = factory()
    out: list[Event] = []
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()  # CPU time: other work on the machine does not count
        for seq, cmd in enumerate(cmds, 1000):
            out = apply(seq, seq * 1000, cmd)  # ts 1 ms apart: well inside the throttle
        return time.process_time() - t0, out
    finally:
        gc.enable()


def same_events(cmds: Sequence[Command]) -> int:
    """Both runs answer every command with the same events (so the checks changed nothing)."""
    a, b = matching(), risk()
    n = 0
    for seq, cmd in enumerate(cmds, 1000):
        ea, eb = a(seq, seq * 1000, cmd), b(seq, seq * 1000, cmd)
        assert ea == eb, f"diverged at {cmd!r}"
        n += len(ea)
    return n


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    cmds = stream(args.orders, args.seed)
    events = same_events(cmds)
    runs = {"matching": matching, "tracking": tracking, "risk": risk}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):  # interleaved, so all see the same machine load
        for name, factory in runs.items():
            best[name] = min(best[name], run(factory, cmds)[0])
    per = {k: v / len(cmds) * 1e6 for k, v in best.items()}
    base = per["matching"]
    print(f"stream: {len(cmds):,} commands (seed {args.seed}), {events:,} events, identical with and without risk")
    print(f"matching alone                   {base:6.2f} µs/command  ({len(cmds) / best['matching']:>9,.0f} commands/s)")
    print(f"matching + risk, no limits set   {per['tracking']:6.2f} µs/command  (state tracking: +{per['tracking'] - base:.2f} µs)")
    print(f"matching + risk, every check     {per['risk']:6.2f} µs/command  ({len(cmds) / best['risk']:>9,.0f} commands/s)")
    print(f"risk adds                        {per['risk'] - base:6.2f} µs/command = {per['risk'] / base - 1:.1%} (target < 25%)")


if __name__ == "__main__":
    main()
