"""`venue eod` and `venue clearing reconcile`: the operator's clearing commands.

DuckDB admits one writing process, and while the venue runs that is the venue. So each
command first asks the running venue over the admin channel (venue/admin.py: the handlers
below are registered there as `eod` and `reconcile` and run on the ledger's writer thread);
only when no venue answers does it open the DuckDB file itself (catching it up with the
journal first). Either way the same code settles and reconciles.

Bad input (a malformed date, a day not yet ended, a day before the last settled one, an
expiry without an index) is an error with a message and changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb

from venue import admin
from venue.clearing.eod import EodError, EodResult
from venue.clearing.ledger import utc
from venue.clearing.service import account_map, catch_up, check, open_ledger, settle
from venue.commands import SetPhase
from venue.config import load_config
from venue.types import TradingPhase

EOD_TIMEOUT_S = 600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECONCILE_TIMEOUT_S = 600.0


def parse_day(text: str | None, now_us: int) -> date:
    """`--date YYYY-MM-DD`, or by default the UTC day before `now`."""
    if text is None:
        return (utc(now_us) - timedelta(days=1)).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise EodError(f"--date: expected YYYY-MM-DD, got {text!r}") from None


def render(result: EodResult, files: list[Path]) -> str:
    lines = [result.message]
    if result.ran:
        lines.append("settlement prices:")
        lines += [f"  {s:<24} {p.price.normalize():>16f}  {p.method:<9} {p.detail}" for s, p in sorted(result.prices.items())]
        lines.append("paid to accounts (+) / by accounts (-): " + ", ".join(f"{k} {v}" for k, v in result.totals.items()))
    lines += [f"wrote {f}" for f in files]
    return "\n".join(lines)


def read_price_file(path: Path, underlyings: set[str]) -> list[tuple[int, str, Decimal]]:
    """An index price file: CSV with a header `time,underlying,price`, time in ISO 8601 UTC.
    Any bad line stops the load with the file and line named; nothing is loaded then."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise EodError(f"{path}: cannot read: {exc.strerror}") from None
    if not rows or [c.strip().lower() for c in rows[0]] != ["time", "underlying", "price"]:
        raise EodError(f"{path}:1: expected the header time,underlying,price")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != 3:
            raise EodError(f"{path}:{n}: expected 3 fields, got {len(row)}")
        when, underlying, price = (c.strip() for c in row)
        try:
            dt = datetime.fromisoformat(when)
        except ValueError:
            raise EodError(f"{path}:{n}: time {when!r} is not ISO 8601") from None
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
        if underlying not in underlyings:
            raise EodError(f"{path}:{n}: no instrument tracks index {underlying!r}")
        try:
            px = Decimal(price)
        except InvalidOperation:
            raise EodError(f"{path}:{n}: price {price!r} is not a decimal number") from None
        if not px.is_finite() or px <= 0:
            raise EodError(f"{path}:{n}: price must be positive, got {price}")
        out.append(((dt - _EPOCH) // timedelta(microseconds=1), underlying, px))
    return out


# ---------------------------------------------------------------------------- inside the venue


async def _eod_handler(venue: Any, args: list[str]) -> str:
    opts = admin.parser("eod", "run the day's settlement and write the clearing members' files")
    opts.add_argument("--date", default=None)
    ns = admin.parse(opts, args)
    clearing = getattr(venue, "clearing", None)
    if clearing is None:
        raise admin.AdminError("this venue runs without a clearing ledger")
    now = venue.sequencer.clock()
    try:
        result, files = await clearing.settle(parse_day(ns.date, now), now, EOD_TIMEOUT_S)
    except EodError as exc:
        raise admin.AdminError(str(exc)) from None
    for symbol in result.expired:  # settled: stop trading it (journaled, like any operator command)
        await venue.sequencer.call(SetPhase(symbol=symbol, phase=TradingPhase.EXPIRED))
    return render(result, files)


async def _reconcile_handler(venue: Any, args: list[str]) -> str:
    admin.parse(admin.parser("reconcile", "check the clearing ledger against the journal"), args)
    clearing = getattr(venue, "clearing", None)
    if clearing is None:
        raise admin.AdminError("this venue runs without a clearing ledger")
    report = await clearing.check(RECONCILE_TIMEOUT_S)
    if report.breaks:
        raise admin.AdminError(report.render())
    return report.render()


async def _index_file_handler(venue: Any, args: list[str]) -> str:
    opts = admin.parser("index-file", "load index prints from a CSV price file into the ledger")
    opts.add_argument("path")
    ns = admin.parse(opts, args)
    clearing = getattr(venue, "clearing", None)
    if clearing is None:
        raise admin.AdminError("this venue runs without a clearing ledger")
    try:
        prints = read_price_file(Path(ns.path), {i.underlying for i in clearing.ledger.instruments.values()})
    except EodError as exc:
        raise admin.AdminError(str(exc)) from None
    added = await clearing.writer.run(lambda led: led.load_index_prints(prints), EOD_TIMEOUT_S)
    return _loaded(ns.path, prints, added)


def _loaded(path: str, prints: list[tuple[int, str, Decimal]], added: int) -> str:
    return f"{path}: {len(prints)} index prints, {added} new, {len(prints) - added} already held"


admin.register("eod", _eod_handler, "run the day's settlement and write members' files [--date YYYY-MM-DD]", timeout_s=EOD_TIMEOUT_S + 5)
admin.register("index-file", _index_file_handler, "load index prints (CSV time,underlying,price) into the ledger: PATH", timeout_s=EOD_TIMEOUT_S + 5)
admin.register("reconcile", _reconcile_handler, "check the clearing ledger against the journal", timeout_s=RECONCILE_TIMEOUT_S + 5)


# ---------------------------------------------------------------------------- the command line


def add_parsers(sub: Any) -> None:
    """Register `eod` and `clearing reconcile` on the `venue` command line."""
    e = sub.add_parser("eod", help="run the day's settlement (once) and write the clearing members' files")
    e.add_argument("--date", default=None, help="business day YYYY-MM-DD (default: yesterday, UTC)")
    e.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
    e.set_defaults(func=_eod_cli)
    c = sub.add_parser("clearing", help="clearing ledger tools")
    csub = c.add_subparsers(dest="clearing_command", required=True)
    r = csub.add_parser("reconcile", help="check the ledger against the journal: every trade once, positions, cash nets to zero")
    r.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
    r.set_defaults(func=_reconcile_cli)
    x = csub.add_parser("index-file", help="load index prints (CSV: time,underlying,price) for settlement, e.g. to settle past days")
    x.add_argument("path", help="the price file")
    x.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
    x.set_defaults(func=_index_file_cli)


def _ask_running_venue(var: Path, command: str, args: list[str], timeout: float) -> tuple[bool, str] | None:
    """The running venue's answer, or None when no venue is running on this var directory."""
    if not (var / admin.SOCKET_NAME).exists():
        return None
    ok, out = admin.request(var, command, args, timeout)
    if not ok and out.startswith(("cannot reach", "cannot read")):
        return None  # a stale socket from a venue that did not stop cleanly
    return ok, out


def _offline(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from venue.app import new_core  # the core the venue runs
    from venue.refdata import open_reference

    cfg = load_config(args.config)
    ref = open_reference(cfg)
    try:
        ledger = open_ledger(cfg, account_map(ref.accounts(), ref.clearing_members), ref.instruments)
    except duckdb.IOException as exc:
        raise EodError(f"cannot open the ledger: {exc} (is a venue running on {cfg.var_path()}?)") from None
    def core_factory() -> Any:
        return new_core(cfg, ref)

    catch_up(ledger, core_factory, cfg.var_path() / cfg.journal.dir)
    return cfg, ledger, core_factory


def _eod_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    forwarded = ["--date", args.date] if args.date else []
    answer = _ask_running_venue(cfg.var_path(), "eod", forwarded, EOD_TIMEOUT_S + 10)
    if answer is not None:
        print(answer[1], file=sys.stdout if answer[0] else sys.stderr)
        return 0 if answer[0] else 1
    try:
        now = time.time_ns() // 1000
        day = parse_day(args.date, now)
        cfg, ledger, _ = _offline(args)
        try:
            result, files = settle(ledger, day, now_us=now, out_dir=cfg.var_path() / cfg.clearing.settlement_dir, comp_id=cfg.venue.comp_id)
        finally:
            ledger.close()
    except EodError as exc:
        print(f"venue eod: {exc}", file=sys.stderr)
        return 1
    print(render(result, files))
    if result.expired:
        print(f"expired: {', '.join(result.expired)} (the venue is stopped: they move to the expired phase when it next starts)")
    return 0


def _reconcile_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    answer = _ask_running_venue(cfg.var_path(), "reconcile", [], RECONCILE_TIMEOUT_S + 10)
    if answer is not None:
        print(answer[1], file=sys.stdout if answer[0] else sys.stderr)
        return 0 if answer[0] else 1
    try:
        cfg, ledger, core_factory = _offline(args)
    except EodError as exc:
        print(f"venue clearing reconcile: {exc}", file=sys.stderr)
        return 1
    try:
        report = check(ledger, core_factory(), cfg.var_path() / cfg.journal.dir)
    finally:
        ledger.close()
    print(report.render())
    return 1 if report.breaks else 0


def _index_file_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    path = str(Path(args.path).resolve())
    answer = _ask_running_venue(cfg.var_path(), "index-file", [path], EOD_TIMEOUT_S + 10)
    if answer is not None:
        print(answer[1], file=sys.stdout if answer[0] else sys.stderr)
        return 0 if answer[0] else 1
    try:
        prints = read_price_file(Path(path), {i.underlying for i in cfg.instruments})
        _, ledger, _ = _offline(args)
    except EodError as exc:
        print(f"venue clearing index-file: {exc}", file=sys.stderr)
        return 1
    try:
        added = ledger.load_index_prints(prints)
    finally:
        ledger.close()
    print(_loaded(path, prints, added))
    return 0
