"""The risk and operator commands of `venue admin` (registered on import; see venue/admin.py).

Each parses its arguments, turns decimals into the core's units (a mark price into ticks,
refusing a price off the tick grid), submits one command through the sequencer and renders
its events. A CommandRejected becomes an AdminError carrying the core's text, so a bad
request changes nothing and tells the operator why.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from venue.admin import AdminError, commands, parse, parser, register
from venue.commands import AdjustCollateral, SetIndexPrice, SetMarkPrice, SetPhase
from venue.events import CollateralChanged, CommandRejected, Fill, IndexPriceSet, MarkPriceSet
from venue.limits import LIMIT_TYPES
from venue.operator import KillScope, KillSwitch, KillSwitchSet, LimitSet, QueryRisk, RiskReport, SetLimit
from venue.refdata import save_limits
from venue.risk import money
from venue.types import TradingPhase

# One thread writes the limits table, copies in the order they were taken: the last write
# is always the newest rules, however two `venue admin limit` calls interleave.
_LIMITS_WRITER = ThreadPoolExecutor(1, thread_name_prefix="limits-db")

T = TypeVar("T")


def _decimal(text: str, what: str) -> Decimal:
    try:
        d = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise AdminError(f"{what}: expected a decimal number, got {text!r}") from None
    if not d.is_finite():
        raise AdminError(f"{what}: expected a finite number, got {text!r}")
    return d


async def _submit(venue: Any, cmd: object) -> list[object]:
    """Sequence `cmd`; its events, once durable. A CommandRejected is the operator's error."""
    events: list[object] = await venue.sequencer.call(cmd)
    for ev in events:
        if isinstance(ev, CommandRejected):
            raise AdminError(f"refused: {ev.text}")
    return events


async def _answer(venue: Any, cmd: object, kind: type[T]) -> T:
    """Sequence `cmd` and return its answering event of type `kind`."""
    for ev in await _submit(venue, cmd):
        if isinstance(ev, kind):
            return ev
    raise AdminError(f"{cmd!r} was not answered with {kind.__name__}")


def _scope(args: list[str], name: str) -> tuple[KillScope, str, str]:
    p = parser(name, f"{name} a kill switch: venue | firm FIRM | account ACCOUNT")
    p.add_argument("scope", choices=[s.value for s in KillScope])
    p.add_argument("target", nargs="?", default="")
    p.add_argument("--reason", default="")
    ns = parse(p, args)
    scope = KillScope(ns.scope)
    if (scope is KillScope.VENUE) == bool(ns.target):
        raise AdminError(f"venue admin {name}: 'venue' takes no target; 'firm' and 'account' need one")
    return scope, ns.target, ns.reason


async def kill(venue: Any, args: list[str]) -> str:
    scope, target, reason = _scope(args, "kill")
    done = await _answer(venue, KillSwitch(scope=scope, target=target, engaged=True, reason=reason), KillSwitchSet)
    what = "venue-wide" if scope is KillScope.VENUE else f"for {scope.value} {target}"
    return f"kill switch engaged {what}: {done.canceled} orders canceled; new orders and replaces refused until released"


async def release(venue: Any, args: list[str]) -> str:
    scope, target, reason = _scope(args, "release")
    await _submit(venue, KillSwitch(scope=scope, target=target, engaged=False, reason=reason))
    return f"kill switch released {'venue-wide' if scope is KillScope.VENUE else f'for {scope.value} {target}'}"


async def _phase(venue: Any, args: list[str], name: str, phase: TradingPhase | None) -> str:
    p = parser(name, "move instruments to a trading phase")
    p.add_argument("symbols", nargs="+", metavar="SYMBOL")
    if phase is None:
        p.add_argument("--to", required=True, choices=[ph.value for ph in TradingPhase])
    ns = parse(p, args)
    target = phase or TradingPhase(ns.to)
    unknown = [s for s in ns.symbols if s not in venue.core.engine.books]
    if unknown:
        raise AdminError(f"unknown symbol {unknown[0]!r}")
    out = []
    for sym in ns.symbols:
        events = await _submit(venue, SetPhase(symbol=sym, phase=target))
        fills = sum(1 for e in events if isinstance(e, Fill))
        out.append(f"{sym}: {target.value}" + (f" ({fills} opening trades)" if fills else ""))
    return "\n".join(out)


async def halt(venue: Any, args: list[str]) -> str:
    return await _phase(venue, args, "halt", TradingPhase.HALTED)


async def resume(venue: Any, args: list[str]) -> str:
    return await _phase(venue, args, "resume", TradingPhase.OPEN)


async def phase(venue: Any, args: list[str]) -> str:
    return await _phase(venue, args, "phase", None)


async def index(venue: Any, args: list[str]) -> str:
    p = parser("index", "set an underlying's index price")
    p.add_argument("underlying")
    p.add_argument("price")
    ns = parse(p, args)
    ev = await _answer(venue, SetIndexPrice(underlying=ns.underlying, price=_decimal(ns.price, "price")), IndexPriceSet)
    return f"index {ev.underlying} = {money(ev.price)}"


async def mark(venue: Any, args: list[str]) -> str:
    p = parser("mark", "set an instrument's mark price")
    p.add_argument("symbol")
    p.add_argument("price")
    ns = parse(p, args)
    book = venue.core.engine.books.get(ns.symbol)
    if book is None:
        raise AdminError(f"unknown symbol {ns.symbol!r}")
    inst = book.instrument
    price = _decimal(ns.price, "price")
    ticks = inst.ticks(price)
    if ticks is None:
        raise AdminError(f"price {price} is not on {inst.symbol}'s tick grid {inst.tick_size}")
    ev = await _answer(venue, SetMarkPrice(symbol=ns.symbol, price=ticks), MarkPriceSet)
    return f"mark {ev.symbol} = {money(inst.price(ev.price))}"


async def collateral(venue: Any, args: list[str]) -> str:
    p = parser("collateral", "deposit (positive) or withdraw (negative) an account's collateral")
    p.add_argument("account")
    p.add_argument("amount")
    p.add_argument("--currency", default=venue.core.risk.currency)
    p.add_argument("--ref", default="", help="reference for the ledger")
    ns = parse(p, args)
    cmd = AdjustCollateral(account=ns.account, amount=_decimal(ns.amount, "amount"), currency=ns.currency, reference=ns.ref)
    ev = await _answer(venue, cmd, CollateralChanged)
    return f"{ev.account}: {'+' if ev.amount > 0 else ''}{money(ev.amount)} {ev.currency}, balance {money(ev.balance)} {ev.currency}"


async def limit(venue: Any, args: list[str]) -> str:
    p = parser("limit", "set or clear one limit on one rule (most specific rule wins)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--firm", default="")
    who.add_argument("--account", default="")
    p.add_argument("--symbol", default="")
    p.add_argument("name", choices=list(LIMIT_TYPES))
    p.add_argument("value", help="a number, or 'clear' to inherit from a wider rule")
    ns = parse(p, args)
    value = None if ns.value == "clear" else _decimal(ns.value, ns.name)
    ev = await _answer(venue, SetLimit(name=ns.name, value=value, firm=ns.firm, account=ns.account, symbol=ns.symbol), LimitSet)
    rules = {key: dict(values) for key, values in venue.core.risk.limits.rules.items()}  # copied on the loop, which changes them
    await asyncio.get_running_loop().run_in_executor(_LIMITS_WRITER, save_limits, venue.cfg, rules)
    scope = "/".join(x for x in (ev.firm, ev.account, ev.symbol) if x) or "venue default"
    return f"{scope}: {ev.name} {_shown(ev.previous)} -> {_shown(ev.value)}"


def _shown(value: Decimal | None) -> str:
    return "unset" if value is None else money(value)


async def limits(venue: Any, args: list[str]) -> str:
    p = parser("limits", "list the limit rules, or the limits that apply to one account and symbol")
    p.add_argument("--account", default="")
    p.add_argument("--symbol", default="")
    ns = parse(p, args)
    book = venue.core.risk.limits
    if ns.account or ns.symbol:
        if ns.account and ns.account not in book.accounts:
            raise AdminError(f"unknown account {ns.account!r}")
        if ns.symbol and ns.symbol not in book.instruments:
            raise AdminError(f"unknown symbol {ns.symbol!r}")
        values = book.values(book.accounts.get(ns.account, ""), ns.account, ns.symbol)
        return "\n".join(f"{n} = {money(values[n]) if n in values else 'unlimited'}" for n in LIMIT_TYPES)
    lines = []
    for (firm, account, symbol), rule in sorted(book.rules.items()):
        scope = "/".join(x for x in (firm, account, symbol) if x) or "default"
        lines.append(f"{scope}: " + ", ".join(f"{n}={money(v)}" for n, v in rule.items()))
    return "\n".join(lines) or "no limits set"


async def risk(venue: Any, args: list[str]) -> str:
    p = parser("risk", "reject tallies per check, and an account's exposure")
    p.add_argument("account", nargs="?", default="")
    ns = parse(p, args)
    ev = await _answer(venue, QueryRisk(account=ns.account), RiskReport)
    lines = ["rejects per check:"] + [f"  {name:<20} {n:>8,}" for name, n in ev.tallies]
    if ev.account:
        lines += [f"account {ev.account}:"] + [f"  {k:<20} {v}" for k, v in ev.exposure]
    return "\n".join(lines)


async def status(venue: Any, args: list[str]) -> str:
    parse(parser("status", "the venue's instruments, phases and kill switches"), args)
    core = venue.core
    lines = [f"venue {venue.cfg.venue.name}: next seq {venue.sequencer.next_seq}"]
    for sym, book in core.engine.books.items():
        px = book.instrument.price
        bid, ask = (money(px(p)) if p is not None else "-" for p in (book.best_bid, book.best_ask))
        lines.append(f"  {sym:<24} {book.phase.value:<9} bid {bid:>12} ask {ask:>12} last {money(px(book.last_px)):>12}")
    r = core.risk
    kills = (["venue"] if r.venue_killed else []) + [f"firm {f}" for f in sorted(r.killed_firms)] + [f"account {a}" for a in sorted(r.killed_accounts)]
    lines.append(f"  kill switches: {', '.join(kills) or 'none'}")
    return "\n".join(lines)


async def help_(venue: Any, args: list[str]) -> str:
    return "\n".join(f"{name:<12} {c.help}" for name, c in sorted(commands().items()))


register("help", help_, "list the commands")
register("status", status, "instruments, phases, kill switches")
register("kill", kill, "kill switch on: venue | firm FIRM | account ACCOUNT [--reason TEXT]")
register("release", release, "kill switch off: venue | firm FIRM | account ACCOUNT")
register("halt", halt, "halt trading: SYMBOL...")
register("resume", resume, "resume (open) trading: SYMBOL...")
register("phase", phase, "move instruments to a phase: SYMBOL... --to PHASE")
register("index", index, "set an index price: UNDERLYING PRICE")
register("mark", mark, "set a mark price: SYMBOL PRICE")
register("collateral", collateral, "deposit or withdraw: ACCOUNT AMOUNT [--ref TEXT]")
register("limit", limit, "set a limit: [--firm F | --account A] [--symbol S] NAME VALUE|clear")
register("limits", limits, "list limit rules, or resolve them: [--account A] [--symbol S]")
register("risk", risk, "reject tallies per check, and an account's exposure: [ACCOUNT]")
