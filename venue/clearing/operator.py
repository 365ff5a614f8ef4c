"""`venue eod` and `venue clearing reconcile|index-file`: the operator's clearing commands.

DuckDB admits one writing process, and while the venue runs that is its drop-copy
process, which holds the ledger (drop_copy/process.py). So each command first asks the
running venue over the admin channel (venue/admin.py: the handlers below are registered
there as `eod`, `reconcile` and `index-file`); the venue sends the work to the ledger as a
job (venue/clearing/jobs.py). Only when no venue answers does the command open the DuckDB
file itself (catching it up with the journal first) and run the same job there.

Bad input (a malformed date, a day not yet ended, a day before the last settled one, an
expiry without an index, a bad price file) is an error with a message and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from venue import admin
from venue.clearing import jobs
from venue.clearing.eod import EodError, EodResult
from venue.clearing.ledger import utc
from venue.clearing.service import account_map, catch_up, open_ledger
from venue.commands import SetPhase
from venue.config import load_config
from venue.types import TradingPhase

T = TypeVar("T")

EOD_TIMEOUT_S = 600.0
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


# ---------------------------------------------------------------------------- inside the venue


async def _run(venue: Any, job: Callable[[jobs.LedgerContext], T], timeout: float) -> T:
    """`job` where the running venue's ledger is; a refused request (EodError) or a ledger
    that is not there answers the operator with the reason."""
    clearing: jobs.LedgerRunner | None = getattr(venue, "clearing", None)
    if clearing is None:
        raise admin.AdminError("this venue runs without a clearing ledger")
    try:
        return await clearing.run(job, timeout)
    except (EodError, jobs.LedgerUnavailable) as exc:
        raise admin.AdminError(str(exc)) from None


async def _eod_handler(venue: Any, args: list[str]) -> str:
    opts = admin.parser("eod", "run the day's settlement and write the clearing members' files")
    opts.add_argument("--date", default=None)
    ns = admin.parse(opts, args)
    now = venue.sequencer.clock()
    try:
        day = parse_day(ns.date, now)
    except EodError as exc:
        raise admin.AdminError(str(exc)) from None
    result, files = await _run(venue, partial(jobs.settle_day, day, now), EOD_TIMEOUT_S)
    for symbol in result.expired:  # settled: stop trading it (journaled, like any operator command)
        await venue.sequencer.call(SetPhase(symbol=symbol, phase=TradingPhase.EXPIRED))
    return render(result, files)


async def _reconcile_handler(venue: Any, args: list[str]) -> str:
    admin.parse(admin.parser("reconcile", "check the clearing ledger against the journal"), args)
    report = await _run(venue, jobs.reconcile_journal, RECONCILE_TIMEOUT_S)
    if report.breaks:
        raise admin.AdminError(report.render())
    return report.render()


async def _index_file_handler(venue: Any, args: list[str]) -> str:
    opts = admin.parser("index-file", "load index prints from a CSV price file into the ledger")
    opts.add_argument("path")
    ns = admin.parse(opts, args)
    n, added = await _run(venue, partial(jobs.load_index_file, ns.path), EOD_TIMEOUT_S)
    return jobs.index_prints_message(ns.path, n, added)


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


def _offline(config: str | None, job: Callable[[jobs.LedgerContext], T]) -> T:
    """Run `job` on a stopped venue's ledger file, caught up with its journal first."""
    from venue.app import new_core  # the core the venue runs
    from venue.refdata import open_reference

    cfg = load_config(config)
    ref = open_reference(cfg)
    try:
        ledger = open_ledger(cfg, account_map(ref.accounts(), ref.clearing_members), ref.instruments)
    except duckdb.IOException as exc:
        raise EodError(f"cannot open the ledger: {exc} (is a venue running on {cfg.var_path()}?)") from None
    try:
        journal_dir = cfg.var_path() / cfg.journal.dir
        catch_up(ledger, lambda: new_core(cfg, ref), journal_dir)
        ctx = jobs.LedgerContext(ledger=ledger, tops=None, core_factory=lambda: new_core(cfg, ref), journal_dir=journal_dir,
                                 out_dir=cfg.var_path() / cfg.clearing.settlement_dir, comp_id=cfg.venue.comp_id,
                                 underlyings=jobs.underlyings(ref.instruments))
        return job(ctx)
    finally:
        ledger.close()


def _answered(answer: tuple[bool, str]) -> int:
    print(answer[1], file=sys.stdout if answer[0] else sys.stderr)
    return 0 if answer[0] else 1


def _eod_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    forwarded = ["--date", args.date] if args.date else []
    answer = _ask_running_venue(cfg.var_path(), "eod", forwarded, EOD_TIMEOUT_S + 10)
    if answer is not None:
        return _answered(answer)
    try:
        now = time.time_ns() // 1000
        result, files = _offline(args.config, partial(jobs.settle_day, parse_day(args.date, now), now))
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
        return _answered(answer)
    try:
        report = _offline(args.config, jobs.reconcile_journal)
    except EodError as exc:
        print(f"venue clearing reconcile: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    return 1 if report.breaks else 0


def _index_file_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    path = str(Path(args.path).resolve())
    answer = _ask_running_venue(cfg.var_path(), "index-file", [path], EOD_TIMEOUT_S + 10)
    if answer is not None:
        return _answered(answer)
    try:
        n, added = _offline(args.config, partial(jobs.load_index_file, path))
    except EodError as exc:
        print(f"venue clearing index-file: {exc}", file=sys.stderr)
        return 1
    print(jobs.index_prints_message(path, n, added))
    return 0
