"""Clearing ledger benchmark: trade ingest into DuckDB, and the daily settlement run.

One seeded day of trading (UTC 2026-12-24): `--accounts` accounts of 100 firms, cleared by
10 members, trading `--instruments` contracts (half perpetuals, a quarter futures, a
quarter options on them, none expiring that day), `--trades` trades spread over the day,
hourly index prints, marks every 4 hours, one deposit per account.

  ingest   the Fill events handed to the ledger's LedgerWriter in sequencer-sized batches
           (512 commands' worth), timed from the first hand-over until all are committed
           (each ingest one DuckDB transaction, its WAL synced): trades/s as the venue
           sustains it (the prepare and DuckDB stages overlap), with the cyclic GC tuned as
           the venue's processes run it (venue/gc_tuning.py; --gc default: CPython's)
  eod      venue.clearing.eod.run_eod for the day: settlement prices, fees, premiums,
           variation margin, three funding rounds on the perpetuals, positions snapshot,
           one transaction (targets: ingest >= 200,000 trades/s, eod < 10 s)
  files    the 10 members' CSV statements and PositionReport files for the day

The ledger runs in the venue's drop-copy process (venue/clearing/host.py), off the venue's
own interpreter lock; what it costs the venue's acknowledgements shows in bench/fix_e2e.py.

    python3 bench/ledger.py [--trades 1000000] [--accounts 10000] [--instruments 20] [--seed 7]
                            [--gc venue|default] [--dir var/bench-ledger]

The ledger file is written under --dir (a real disk, as the venue's var/: /tmp may be
tmpfs, where a sync costs nothing) and removed afterwards.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from venue.clearing.eod import day_cutoff, run_eod
from venue.clearing.files import write_statements
from venue.clearing.ledger import Ledger
from venue.clearing.settings import ClearingConfig, FeeRates
from venue.clearing.writer import LedgerWriter
from venue.commands import NewOrder
from venue.events import CollateralChanged, Event, Fill, IndexPriceSet, MarkPriceSet, OrderView
from venue.gc_tuning import tune_gc
from venue.instruments import Instrument
from venue.types import InstrumentKind, OptionRight, OrdType, Side

DAY = date(2026, 12, 24)
DAY_START = day_cutoff(DAY - timedelta(days=1))
BATCH = 512
CLEARING = ClearingConfig(fees=FeeRates(maker=Decimal("0.0001"), taker=Decimal("0.0005")), implied_vol={"BTC-USD": Decimal("0.6")})


def instruments(n: int) -> list[Instrument]:
    expiry = datetime(2027, 3, 26, 8, tzinfo=UTC)
    out: list[Instrument] = []
    n_perp, n_fut = n // 2, n // 4
    for i in range(n_perp):
        out.append(Instrument(symbol=f"PERP{i}", kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD",
                              tick_size=Decimal("0.5"), lot_size=Decimal(1), multiplier=Decimal("0.001"),
                              reference_price=Decimal(100000), funding_interval_s=28800))
    for i in range(n_fut):
        out.append(Instrument(symbol=f"FUT{i}", kind=InstrumentKind.FUTURE, underlying="BTC-USD", quote_currency="USD",
                              tick_size=Decimal("0.5"), lot_size=Decimal(1), multiplier=Decimal("0.001"),
                              reference_price=Decimal(101000), expiry=expiry + timedelta(days=7 * i)))
    for i in range(n - n_perp - n_fut):
        out.append(Instrument(symbol=f"OPT{i}", kind=InstrumentKind.OPTION, underlying="BTC-USD", quote_currency="USD",
                              tick_size=Decimal(5), lot_size=Decimal(1), multiplier=Decimal("0.001"), reference_price=Decimal(4000),
                              expiry=expiry, strike=Decimal(95000 + 2500 * i), right=OptionRight.CALL if i % 2 else OptionRight.PUT))
    return out


def views(n_accounts: int) -> tuple[dict[str, tuple[str, str]], list[tuple[OrderView, OrderView]]]:
    accounts = [f"F{i % 100}-A{i}" for i in range(n_accounts)]
    mapping = {a: (a.split("-")[0], f"M{int(a.split('-')[0][1:]) % 10}") for a in accounts}
    out = []
    for k, a in enumerate(accounts):
        pair = []
        for side in (Side.BUY, Side.SELL):
            entry = NewOrder(session=a, firm=mapping[a][0], account=a, cl_ord_id="c", symbol="X", side=side, ord_type=OrdType.LIMIT, qty=1, price=1)
            pair.append(OrderView(k, "c", None, 1, 1, None, OrdType.LIMIT, entry))
        out.append((pair[0], pair[1]))
    return mapping, out


def stream(n_trades: int, insts: list[Instrument], pairs: list[tuple[OrderView, OrderView]], seed: int) -> list[list[Event]]:
    """The day's events in sequencer batches, in sequence order."""
    rnd = random.Random(seed)
    events: list[Event] = []
    seq = 0
    step = (86_400 * 1_000_000 - 1) // max(n_trades, 1)
    for b, _ in pairs:
        seq += 1
        events.append(CollateralChanged(seq, DAY_START + 1, b.entry.account, Decimal(1_000_000), "USD", Decimal(1_000_000), "opening"))
    ticks = [i.reference_ticks for i in insts]
    n_acc = len(pairs)
    for t in range(1, n_trades + 1):
        seq += 1
        ts = DAY_START + t * step
        if t % max(n_trades // 24, 1) == 0:
            events.append(IndexPriceSet(seq, ts, "BTC-USD", Decimal(100000 + rnd.randrange(-500, 500))))
            seq += 1
        if t % max(n_trades // 6, 1) == 0:
            for i in insts:
                if i.kind is InstrumentKind.PERPETUAL:
                    events.append(MarkPriceSet(seq, ts, i.symbol, i.reference_ticks + rnd.randrange(-400, 400)))
            seq += 1
        j = rnd.randrange(len(insts))
        ticks[j] = max(1, ticks[j] + rnd.randrange(-3, 4))
        buyer, seller = pairs[rnd.randrange(n_acc)][0], pairs[rnd.randrange(n_acc)][1]
        agg = Side.BUY if t & 1 else Side.SELL
        taker, maker = (buyer, seller) if agg is Side.BUY else (seller, buyer)
        events.append(Fill(seq, ts, t, insts[j].symbol, ticks[j], rnd.randrange(1, 20), agg, taker, 2 * t, 0, 1, 1, maker, 2 * t + 1, 0, 1, 1))
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trades", type=int, default=1_000_000)
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--instruments", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--gc", choices=("venue", "default"), default="venue", help="ingest and eod: the venue process's GC tuning, or CPython's default")
    p.add_argument("--dir", type=Path, default=Path("var/bench-ledger"), help="where the ledger file is written (and removed)")
    a = p.parse_args()
    insts = instruments(a.instruments)
    mapping, pairs = views(a.accounts)
    t0 = time.perf_counter()
    batches = stream(a.trades, insts, pairs, a.seed)
    print(f"generated {a.trades:,} trades for {a.accounts:,} accounts x {a.instruments} instruments in {time.perf_counter() - t0:.1f} s")
    a.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        ledger = Ledger(Path(tmp) / "ledger.duckdb", instruments=insts, accounts=mapping, clearing=CLEARING)
        writer = LedgerWriter(ledger)
        if a.gc == "venue":
            tune_gc()  # as venue/app.py does once started: what is alive now (the day's events here) is frozen
        t0 = time.perf_counter()
        for b in batches:
            writer(b)
        writer.flush(timeout=600)
        ingest = time.perf_counter() - t0
        assert writer.failed is None and writer.trades == a.trades, (writer.failed, writer.trades)
        print(f"ingest  {a.trades / ingest:>12,.0f} trades/s  ({a.trades:,} trades in {ingest:.2f} s, {a.gc} GC;"
              f" target >= 200,000: {a.trades / ingest / 200_000:.2f}x)")
        t0 = time.perf_counter()
        result = writer.submit(lambda led: run_eod(led, DAY, now_us=day_cutoff(DAY) + 1)).result(600)
        eod = time.perf_counter() - t0
        positions = ledger.con.execute("SELECT count(*) FROM eod_positions").fetchall()[0][0]
        print(f"eod     {eod:>12.2f} s        ({positions:,} positions, {result.movements:,} cash movements; target < 10 s: {eod / 10:.2f}x)")
        t0 = time.perf_counter()
        files = writer.submit(lambda led: write_statements(led.con, DAY, Path(tmp) / "out", currency="USD", comp_id="VENUE")).result(600)
        print(f"files   {time.perf_counter() - t0:>12.2f} s        ({len(files)} files for 10 members)")
        unbalanced = ledger.con.execute("SELECT count(*) FROM unbalanced_movements").fetchall()[0][0]
        total = ledger.con.execute("SELECT sum(amount) FROM cash_entries").fetchall()[0][0]
        assert unbalanced == 0 and total == 0, (unbalanced, total)
        writer.close(60)


if __name__ == "__main__":
    main()
