"""The state pre-trade risk reads, kept current by the engine (pure: no I/O).

Per account and instrument, an `Exposure`: the position and, per side, the live orders'
remaining quantity and value (price x leaves, tick-lots). Live means resting or parked: an
untriggered stop counts at its limit price, a stop-market at its stop price. Per account and
underlying, an `UnderlyingExposure` sums the same in the underlying's integer unit. Per
account, an `AccountRisk`: its exposures, live-order count, collateral and initial margin,
the margin kept as a running total so the credit check costs the same however many
instruments the account trades.

The engine tells it of every change to a live order or a position as it makes it
(`live`, `gone`, `traded`: venue/matching.py's PreTradeCheck), so it needs no per-order
records and reads no events: a taker that never rests is counted only through its fills.

Margin per exposure is im_rate x max(long, short): long is the long position valued at
the margin price plus the live buys' value, short the same on the other side, so orders
that reduce a position add nothing. The margin price is the mark, else the index, else
the instrument's reference price; never the last trade, so a trade does not revalue other
accounts' positions (and cannot be used to move their margin). In 10^-12 of the venue
currency (venue/limits.py MARGIN_SCALE): ints throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

from venue.book import Order
from venue.commands import NewOrder
from venue.instruments import Instrument
from venue.limits import MARGIN_SCALE, LimitBook, Resolved, RiskConfig, RuleKey, underlying_scales
from venue.matching import PreTradeCheck
from venue.operator import KillScope
from venue.types import InstrumentKind, Side

CHECKS = ("kill_switch", "throttle", "max_order_qty", "price_band", "max_order_notional", "open_orders", "position",
          "underlying_position", "credit")
_BUY: Final = Side.BUY


def money(d: Decimal | int) -> str:
    """1,250.5: thousands separated, no exponent, no trailing zeros."""
    return f"{Decimal(d).normalize():,f}"


def from_units(units: int) -> Decimal:
    """Margin units (10^-12 of the currency) as an exact Decimal amount."""
    return Decimal(units).scaleb(-12)


class UnderlyingExposure:
    """One account's positions and live orders over every contract on one underlying."""

    __slots__ = ("buy", "net", "sell")

    def __init__(self) -> None:
        self.net = 0
        self.buy = 0
        self.sell = 0


class AccountRisk:
    """One account: its exposures by symbol, live orders, collateral and margin (units)."""

    __slots__ = ("collateral", "exps", "margin", "open")

    def __init__(self) -> None:
        self.exps: dict[str, Exposure] = {}
        self.open = 0
        self.collateral = 0  # floor(collateral x MARGIN_SCALE)
        self.margin = 0


class Exposure:
    """One account's position and live orders in one instrument. `long` and `short` are
    each side's value if everything filled (live orders at their price, the position at the
    margin price `v`); `res` and `rate` (margin units per tick-lot, 0 for none) cache its
    limits; `im` is the margin counted into the account's total."""

    __slots__ = ("acct", "buy_qty", "buy_val", "im", "long", "pos", "rate",
                 "res", "sell_qty", "sell_val", "short", "symbol", "und", "units", "v")

    def __init__(self, acct: AccountRisk, symbol: str, v: int, res: Resolved, und: UnderlyingExposure, units: int) -> None:
        self.acct = acct
        self.symbol = symbol
        self.pos = 0
        self.buy_qty = 0
        self.sell_qty = 0
        self.buy_val = 0
        self.sell_val = 0
        self.long = 0
        self.short = 0
        self.v = v
        self.res = res
        self.rate = res.im_units or 0
        self.im = 0
        self.und = und
        self.units = units  # underlying units per lot

    def revalue(self) -> None:
        """Recompute `long` and `short` after the position or the margin price moved."""
        pos, v = self.pos, self.v
        self.long = self.buy_val + (pos * v if pos > 0 else 0)
        self.short = self.sell_val - (pos * v if pos < 0 else 0)

    def remargin(self) -> None:
        """Recount this exposure's margin into its account's total."""
        long, short = self.long, self.short
        im = self.rate * (long if long > short else short)
        if im != self.im:
            self.acct.margin += im - self.im
            self.im = im


class RiskState(PreTradeCheck):
    """Accounts and their exposures, reference prices, kill switches, limits, tallies."""

    def __init__(self, instruments: Iterable[Instrument], accounts: Mapping[str, str], config: RiskConfig) -> None:
        insts = list(instruments)
        self.instruments = {i.symbol: i for i in insts}
        self.accounts = dict(accounts)
        self.currency = config.currency
        self.units_per_lot, self.unit_scale = underlying_scales(insts)
        self.underlying_of = {i.symbol: i.underlying for i in insts}
        self.limits = LimitBook(config.limits, self.accounts, self.instruments, self.unit_scale)
        self.accts: dict[str, AccountRisk] = {}
        # the command check_new last passed and the exposure it read for it: a new order's
        # first hook takes it from here instead of looking it up again (risk.py)
        self._checked_cmd: NewOrder | None = None
        self._checked: Exposure | None = None
        self.collateral: dict[str, Decimal] = {}  # the exact balances (AccountRisk keeps them as units)
        self.last_trade: dict[str, int] = {}
        self.marks: dict[str, int] = {}
        self.index: dict[str, int] = {}  # symbol -> its underlying's index, in the symbol's ticks
        self.ref: dict[str, int] = {i.symbol: i.reference_ticks for i in insts}  # band reference: last trade, mark, index
        self.val: dict[str, int] = dict(self.ref)  # margin price: mark, index, reference
        self.venue_killed = False
        self.killed_firms: set[str] = set()
        self.killed_accounts: set[str] = set()
        self.any_killed = False  # any of the three: the hot path asks this one flag
        self.tallies: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.underlying: dict[tuple[str, str], UnderlyingExposure] = {}  # (account, underlying)

    # ------------------------------------------------------------------ lookups

    def killed(self, firm: str, account: str) -> bool:
        return self.venue_killed or firm in self.killed_firms or account in self.killed_accounts

    def margin_of(self, account: str) -> Decimal:
        """The account's initial margin in the venue currency."""
        acct = self.accts.get(account)
        return from_units(acct.margin if acct is not None else 0)

    def open_orders(self, account: str) -> int:
        acct = self.accts.get(account)
        return acct.open if acct is not None else 0

    def exposures(self) -> Iterator[Exposure]:
        for acct in self.accts.values():
            yield from acct.exps.values()

    def _acct(self, account: str) -> AccountRisk:
        acct = self.accts.get(account)
        if acct is None:
            acct = self.accts[account] = AccountRisk()
        return acct

    def _exposure(self, account: str, symbol: str) -> Exposure:
        acct = self.accts.get(account)
        exp = acct.exps.get(symbol) if acct is not None else None
        if exp is None:
            acct = self._acct(account)
            key = (account, self.underlying_of[symbol])
            und = self.underlying.get(key)
            if und is None:
                und = self.underlying[key] = UnderlyingExposure()
            exp = acct.exps[symbol] = Exposure(acct, symbol, self.val[symbol], self.limits.resolved(account, symbol), und, self.units_per_lot[symbol])
        return exp

    def _exposure_of(self, order: Order) -> Exposure:
        """A new order's exposure, at its first hook, kept on the order: the one check_new
        read for its very command if it found one (no lookups), else looked up or made."""
        entry = order.view.entry
        exp = self._checked if entry is self._checked_cmd else None
        if exp is None:
            exp = self._exposure(entry.account, entry.symbol)
        order.risk = exp
        return exp

    def _remargin_all(self) -> None:
        """After limits or margin prices change: every exposure's limits and margin afresh."""
        for account, acct in self.accts.items():
            for exp in acct.exps.values():
                exp.res = self.limits.resolved(account, exp.symbol)
                exp.rate = exp.res.im_units or 0
                exp.v = self.val[exp.symbol]
                exp.revalue()
                exp.remargin()

    # ------------------------------------------------------------------ state from the engine

    def live(self, order: Order) -> None:
        """An order became live (rests, or parks as a stop): its leaves count, at its price."""
        self._count(order, order.leaves, 1)

    def gone(self, order: Order) -> None:
        """A live order left the book or the stops, leaves and all (canceled, expired,
        triggered, re-entered by a replace)."""
        self._count(order, -order.leaves, -1)

    def _count(self, order: Order, qty: int, opened: int) -> None:
        view = order.view
        exp = order.risk
        if exp is None:
            exp = self._exposure_of(order)
        price = view.price
        px: int = price if price is not None else view.stop_px  # type: ignore[assignment]  # a stop-market: its stop
        value = px * qty
        if order.side is _BUY:
            exp.buy_qty += qty
            exp.buy_val += value
            exp.long += value
            exp.und.buy += qty * exp.units
        else:
            exp.sell_qty += qty
            exp.sell_val += value
            exp.short += value
            exp.und.sell += qty * exp.units
        acct = exp.acct
        acct.open += opened
        if exp.rate:  # remargin(), inline
            long, short = exp.long, exp.short
            im = exp.rate * (long if long > short else short)
            acct.margin += im - exp.im
            exp.im = im

    def traded(self, symbol: str, price: int, qty: int, taker: Order, maker: Order, taker_live: bool) -> None:
        """A fill: both positions move; the maker's leaves (and the taker's, if it was
        resting: the opening auction) are `qty` fewer; `price` is the last trade."""
        self._filled(maker, symbol, qty, True)
        self._filled(taker, symbol, qty, taker_live)
        self.last_trade[symbol] = price
        self.ref[symbol] = price

    def _filled(self, order: Order, symbol: str, qty: int, was_live: bool) -> None:
        view = order.view
        exp = order.risk
        if exp is None:
            exp = self._exposure_of(order)
        units = qty * exp.units
        und = exp.und
        buy = order.side is _BUY
        if was_live:
            price = view.price
            px: int = price if price is not None else view.stop_px  # type: ignore[assignment]
            value = px * qty
            if buy:
                exp.buy_qty -= qty
                exp.buy_val -= value
                und.buy -= units
            else:
                exp.sell_qty -= qty
                exp.sell_val -= value
                und.sell -= units
            if not order.leaves:
                exp.acct.open -= 1
        if buy:
            exp.pos += qty
            und.net += units
        else:
            exp.pos -= qty
            und.net -= units
        pos, v = exp.pos, exp.v  # revalue() and remargin(), inline: twice per fill
        long = exp.long = exp.buy_val + (pos * v if pos > 0 else 0)
        short = exp.short = exp.sell_val - (pos * v if pos < 0 else 0)
        if exp.rate:
            im = exp.rate * (long if long > short else short)
            exp.acct.margin += im - exp.im
            exp.im = im

    # ------------------------------------------------------------------ operator state

    def set_kill(self, scope: KillScope, target: str, engaged: bool) -> None:
        if scope is KillScope.VENUE:
            self.venue_killed = engaged
        else:
            names = self.killed_firms if scope is KillScope.FIRM else self.killed_accounts
            (names.add if engaged else names.discard)(target)
        self.any_killed = bool(self.venue_killed or self.killed_firms or self.killed_accounts)

    def set_limit(self, key: RuleKey, name: str, value: int | Decimal | None) -> None:
        self.limits.set(key, name, value)
        self._remargin_all()

    def set_collateral(self, account: str, balance: Decimal) -> None:
        self.collateral[account] = balance
        self._acct(account).collateral = int((balance * MARGIN_SCALE).to_integral_value(rounding=ROUND_FLOOR))

    def set_mark(self, symbol: str, ticks: int) -> None:
        self.marks[symbol] = ticks
        self.val[symbol] = ticks
        if symbol not in self.last_trade:
            self.ref[symbol] = ticks
        self._remargin_all()

    def set_index(self, underlying: str, price: Decimal) -> None:
        """The index, as each non-option contract's nearest tick: the reference of futures and
        perpetuals until they trade or get a mark (an option's price is not its index)."""
        for sym, inst in self.instruments.items():
            if inst.underlying != underlying or inst.kind is InstrumentKind.OPTION:
                continue
            ticks = int((price / inst.tick_size).to_integral_value())
            self.index[sym] = ticks
            if sym not in self.marks:
                self.val[sym] = ticks
                if sym not in self.last_trade:
                    self.ref[sym] = ticks
        self._remargin_all()

    # ------------------------------------------------------------------ snapshots and invariants

    def state(self) -> dict[str, object]:
        """Everything replay would rebuild, as plain data sharing nothing with live state
        (for snapshots: venue/snapshot.py). Margins, values and underlying sums are derived."""
        return {
            "rules": [(k, sorted(v.items())) for k, v in sorted(self.limits.rules.items())],
            "collateral": sorted(self.collateral.items()),
            "last_trade": sorted(self.last_trade.items()), "marks": sorted(self.marks.items()),
            "index": sorted(self.index.items()), "ref": sorted(self.ref.items()), "val": sorted(self.val.items()),
            "kills": (self.venue_killed, sorted(self.killed_firms), sorted(self.killed_accounts)),
            "tallies": sorted(self.tallies.items()),
            "exposure": sorted((a, s, e.pos, e.buy_qty, e.sell_qty, e.buy_val, e.sell_val) for a, acct in self.accts.items() for s, e in acct.exps.items()),
            "open_orders": sorted((a, acct.open) for a, acct in self.accts.items() if acct.open),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what `state()` returned, into a freshly built one."""
        self.limits.replace_rules({tuple(k): dict(v) for k, v in state["rules"]})
        self.last_trade, self.marks, self.index, self.ref, self.val = (dict(state[k]) for k in ("last_trade", "marks", "index", "ref", "val"))
        venue, firms, accounts = state["kills"]
        self.venue_killed, self.killed_firms, self.killed_accounts = venue, set(firms), set(accounts)
        self.any_killed = bool(venue or firms or accounts)
        self.tallies = dict(state["tallies"])
        self.accts, self.underlying, self.collateral = {}, {}, {}
        self._checked_cmd = self._checked = None
        for account, balance in state["collateral"]:
            self.set_collateral(account, balance)
        for a, s, pos, bq, sq, bv, sv in state["exposure"]:
            exp = self._exposure(a, s)
            exp.pos, exp.buy_qty, exp.sell_qty, exp.buy_val, exp.sell_val = pos, bq, sq, bv, sv
            exp.und.net += pos * exp.units
            exp.und.buy += bq * exp.units
            exp.und.sell += sq * exp.units
        for a, n in state["open_orders"]:
            self._acct(a).open = n
        self._remargin_all()

    def validate(self, orders: Mapping[int, Order], positions: Mapping[tuple[str, str], int]) -> None:
        """Check the counted state against the engine's, and the running sums against a
        recount (tests call it after each command)."""
        want: dict[tuple[str, str], list[int]] = {}
        opens: dict[str, int] = {}
        for o in orders.values():
            e = o.view.entry
            w = want.setdefault((e.account, e.symbol), [0, 0, 0, 0, positions.get((e.account, e.symbol), 0)])
            price = o.view.price if o.view.price is not None else (o.view.stop_px or 0)
            w[0 if o.side is _BUY else 1] += o.leaves
            w[2 if o.side is _BUY else 3] += price * o.leaves
            opens[e.account] = opens.get(e.account, 0) + 1
        for (account, symbol), pos in positions.items():
            want.setdefault((account, symbol), [0, 0, 0, 0, pos])
        assert {a: acct.open for a, acct in self.accts.items() if acct.open} == opens, f"open orders != {opens}"
        have = {(a, s): [e.buy_qty, e.sell_qty, e.buy_val, e.sell_val, e.pos] for a, acct in self.accts.items() for s, e in acct.exps.items()}
        assert {k: v for k, v in have.items() if any(v)} == {k: v for k, v in want.items() if any(v)}, \
            f"counted [buy, sell, buy value, sell value, position] {have} != {want}"
        unds: dict[tuple[str, str], list[int]] = {}
        for a, acct in self.accts.items():
            margin = 0
            for s, x in acct.exps.items():
                u = unds.setdefault((a, self.underlying_of[s]), [0, 0, 0])
                u[0] += x.pos * x.units
                u[1] += x.buy_qty * x.units
                u[2] += x.sell_qty * x.units
                pos, v = x.pos, self.val[s]
                long, short = x.buy_val + max(pos, 0) * v, x.sell_val + max(-pos, 0) * v
                assert (x.long, x.short, x.v) == (long, short, v), f"{a} {s}: values {x.long, x.short, x.v} != {long, short, v}"
                margin += (self.limits.resolved(a, s).im_units or 0) * max(long, short)
            assert acct.margin == margin, f"{a}: margin {acct.margin} != recount {margin}"
        assert {k: [u.net, u.buy, u.sell] for k, u in self.underlying.items()} == unds, "underlying sums drifted"
