"""`venue journal inspect | verify | replay`: look into the journal without changing it.

    inspect   segments, record count, seq and time range, counts by command type;
              `--records` lists records (seq, UTC time, the command's one-line repr)
    verify    every record's checksum and the sequence's continuity; exit 0 clean, 1 not
    replay    rebuild the core from the journal up to a seq or a time (a fresh core as the
              venue builds it from its reference database, no snapshot) and print books,
              live orders, positions, counters and the state digest

All three only read the journal: a torn tail is reported (the venue's next start cuts it),
never cut here. (replay opens the reference database, seeding it from the config if the
venue never has.) The journal is found from the config (`--config`, its var_dir and journal.dir) or
given as `--dir`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from venue.config import load_config
from venue.journal import JournalError, JournalReader, SegmentScan
from venue.recovery import replay
from venue.snapshot import find_engine, state_digest
from venue.types import Side


def add_parser(sub: Any) -> None:
    """Register `journal` and its subcommands on the `venue` command line."""
    j = sub.add_parser("journal", help="inspect, verify or replay the command journal (read only)")
    jsub = j.add_subparsers(dest="journal_command", required=True)
    for name, func, help_ in (
        ("inspect", _inspect, "records, counts by type, seq and time range"),
        ("verify", _verify, "check every record's checksum and the sequence's continuity"),
        ("replay", _replay, "replay to a seq or time and print the books, orders and positions"),
    ):
        p = jsub.add_parser(name, help=help_)
        p.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
        p.add_argument("--dir", default=None, help="the journal directory (default: from the config)")
        p.set_defaults(func=func)
        if name == "inspect":
            p.add_argument("--records", action="store_true", help="list records")
            p.add_argument("--from", dest="from_seq", type=_positive, default=1, help="first seq listed (default 1)")
            p.add_argument("--limit", type=_positive, default=100, help="records listed at most (default 100)")
        elif name == "replay":
            to = p.add_mutually_exclusive_group()
            to.add_argument("--to-seq", type=_positive, default=None, help="last seq applied (default: the end)")
            to.add_argument("--to-time", type=_utc_micros, default=None, help="apply records stamped up to this UTC time (ISO 8601)")
            p.add_argument("--depth", type=_positive, default=5, help="price levels shown per side (default 5)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {n}")
    return n


def _utc_micros(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2026-11-21T20:50:00Z, got {text!r}") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def iso(ts: int) -> str:
    """UTC µs as ISO 8601 with microseconds."""
    return datetime.fromtimestamp(ts // 1_000_000, UTC).replace(microsecond=ts % 1_000_000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _journal_dir(args: argparse.Namespace) -> Path:
    if args.dir is not None:
        return Path(args.dir)
    cfg = load_config(args.config)
    return cfg.var_path() / cfg.journal.dir


def _fail(message: str) -> int:
    print(f"venue journal: {message}", file=sys.stderr)
    return 1


def _scan_all(directory: Path) -> tuple[list[SegmentScan], str]:
    """Every segment's scan, and the first problem found ("" if none)."""
    scans: list[SegmentScan] = []
    try:
        scans.extend(JournalReader(directory).scans())
    except JournalError as exc:
        return scans, str(exc)
    for i, scan in enumerate(scans):
        if scan.problem:
            last = i == len(scans) - 1
            kind = "torn tail (the next start cuts it)" if last and scan.torn else "corruption"
            return scans, f"{scan.path}: offset {scan.good_end}: {scan.problem}: {kind}, {scan.size - scan.good_end} bytes"
    return scans, ""


def _summary(directory: Path, scans: list[SegmentScan]) -> list[str]:
    recs = [r for s in scans for r in s.records]
    size = sum(s.size for s in scans)
    lines = [f"journal {directory}: {len(scans)} segment(s), {len(recs):,} records, {size:,} bytes"]
    if recs:
        lines.append(f"  seq   {recs[0][0]} .. {recs[-1][0]}")
        lines.append(f"  time  {iso(recs[0][1])} .. {iso(recs[-1][1])}")
    return lines


def _inspect(args: argparse.Namespace) -> int:
    directory = _journal_dir(args)
    scans, problem = _scan_all(directory)
    if not scans and problem:
        return _fail(problem)
    lines = _summary(directory, scans)
    counts: Counter[str] = Counter()
    for s in scans:
        data = s.path.read_bytes()
        for _, _, start, _ in s.records:
            counts[s.decoder.tag_name(data, start)] += 1  # type: ignore[union-attr]
    if counts:
        lines.append("  by type:")
        lines += [f"    {name:<22} {n:>12,}" for name, n in counts.most_common()]
    for s in scans:
        span = f"{s.records[0][0]} .. {s.records[-1][0]}" if s.records else "empty"
        lines.append(f"  segment {s.path.name}  seq {span}  {s.size:,} bytes")
    if problem:
        lines.append(f"  problem: {problem}")
    print("\n".join(lines))
    if args.records:
        shown = 0
        try:
            for rec in JournalReader(directory).records(args.from_seq):
                if shown == args.limit:
                    break
                print(f"{rec.seq:>10} {iso(rec.ts)} {rec.cmd!r}")
                shown += 1
        except JournalError as exc:
            return _fail(str(exc))
    return 1 if problem else 0


def _verify(args: argparse.Namespace) -> int:
    directory = _journal_dir(args)
    scans, problem = _scan_all(directory)
    if not scans and problem:
        return _fail(problem)
    print("\n".join(_summary(directory, scans)))
    if problem:
        return _fail(problem)
    print("  verify: every checksum holds; seqs are consecutive")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from venue.app import new_core  # the core exactly as the venue builds it
    from venue.refdata import open_reference

    cfg = load_config(args.config)
    directory = Path(args.dir) if args.dir is not None else cfg.var_path() / cfg.journal.dir
    core = new_core(cfg, open_reference(cfg))
    try:
        n, seq, ts = replay(core, JournalReader(directory).records(1), to_seq=args.to_seq, to_ts=args.to_time)
    except JournalError as exc:
        return _fail(str(exc))
    if n == 0:
        print(f"journal {directory}: nothing to replay up to there")
        return 0
    print(f"replayed {n:,} records: seq 1 .. {seq}, up to {iso(ts)}")
    e = find_engine(core)
    print(f"  state digest {state_digest(core)} (compare with another replay or a snapshot's)")
    print(f"  next ids: order {e.next_order_id}, exec {e.next_exec_id}, trade {e.next_trade_id}; live orders {len(e.orders):,}; "
          f"orders remembered {len({id(o) for _, o in e.by_cl_ord_id.items()}):,}")
    for book in e.books.values():
        bids, asks = book.levels(Side.BUY), book.levels(Side.SELL)
        resting = sum(lv.count for lv in bids + asks)
        print(f"\n{book.symbol}: {book.phase.name}, last {book.last_px}, {resting} resting, "
              f"{len(book.buy_stops) + len(book.sell_stops)} stops parked")
        if bids or asks:
            print(book.ladder(args.depth))
    held = [(k, q) for k, q in e.positions.items() if q]
    if held:
        print("\npositions (lots):")
        for (account, symbol), q in sorted(held):
            print(f"  {account:<16} {symbol:<24} {q:>+10}")
    return 0
