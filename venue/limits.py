"""Risk limits: the config rules, their validation, and resolution to one order's limits.

A rule names its scope by up to two keys and sets any of the limits; unset limits inherit.
For an order of `account` (of `firm`) in `symbol`, each limit comes from the most specific
rule that sets it, in this order:

    account + symbol > account > firm + symbol > firm > symbol > venue default (no keys)

Units: quantities and positions in lots; notionals and collateral in the venue currency;
the underlying position in underlying units (lots x lot_size x multiplier, summed with sign
over every contract on the underlying: options count at delta one, a known simplification
the clearing margin model will replace); band_pct in percent of the reference price;
im_rate as a fraction of notional. `band_pct` and `band_ticks` may both apply: the narrower
band wins.

`Resolved` turns one (account, symbol)'s limits into integers once, so the per-order checks
compare ints only: the notional limit becomes a count of tick-lots (exact: an integer n
satisfies n x v <= L exactly when n <= floor(L / v), computed with Fractions), the underlying
limit a count of the underlying's smallest contract unit, and im_rate x tick value a count
of 10^-12 of the currency per tick-lot (rounded up: exact whenever that product has at most
12 decimals, and never understating margin). Resolutions are cached per (account, symbol)
and dropped whenever a rule changes. Pure: no I/O.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from venue.field_types import field_types
from venue.instruments import Instrument

RuleKey = tuple[str, str, str]  # (firm, account, symbol); "" = any
MARGIN_SCALE: typing.Final = 10**12  # margin and collateral are compared as ints of 10^-12 of the venue currency


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitRule:
    """One line of `risk.limits`: a scope and the limits it sets (None: inherit)."""

    firm: str = ""
    account: str = ""
    symbol: str = ""
    band_pct: Decimal | None = None
    band_ticks: int | None = None
    max_order_qty: int | None = None
    max_order_notional: Decimal | None = None
    max_position: int | None = None
    max_underlying_position: Decimal | None = None
    max_open_orders: int | None = None
    im_rate: Decimal | None = None
    max_msgs_per_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """The config's `risk:` section. `collateral` is each account's opening deposit, applied
    as AdjustCollateral commands when the venue starts on an empty journal."""

    currency: str = "USD"
    limits: list[LimitRule] = field(default_factory=list)
    collateral: dict[str, Decimal] = field(default_factory=dict)


_SCOPE_FIELDS = ("firm", "account", "symbol")
LIMIT_TYPES: dict[str, type] = {
    name: (int if int in typing.get_args(tp) else Decimal) for name, tp in field_types(LimitRule).items() if name not in _SCOPE_FIELDS
}
_NOT_PER_SYMBOL = ("max_open_orders", "max_msgs_per_s")


def rule_key(rule: LimitRule) -> RuleKey:
    return (rule.firm, rule.account, rule.symbol)


def rule_values(rule: LimitRule) -> dict[str, int | Decimal]:
    return {n: v for n in LIMIT_TYPES if (v := getattr(rule, n)) is not None}


def scope_problem(key: RuleKey, firms: set[str], accounts: set[str], symbols: set[str]) -> str | None:
    """Why a rule's scope is not acceptable, or None."""
    firm, account, symbol = key
    if firm and account:
        return "a rule names a firm or an account, not both"
    if firm and firm not in firms:
        return f"unknown firm {firm}"
    if account and account not in accounts:
        return f"unknown account {account}"
    if symbol and symbol not in symbols:
        return f"unknown symbol {symbol}"
    return None


def value_problem(key: RuleKey, name: str, value: int | Decimal | None) -> str | None:
    """Why `name = value` cannot be set on the rule `key`, or None. None clears."""
    kind = LIMIT_TYPES.get(name)
    if kind is None:
        return f"unknown limit {name!r} (known: {', '.join(LIMIT_TYPES)})"
    _, account, symbol = key
    if symbol and name in _NOT_PER_SYMBOL:
        return f"{name} applies per account or session, not per symbol"
    if name == "max_msgs_per_s" and account:
        return "max_msgs_per_s is set per firm (its sessions) or venue-wide"
    if value is None:
        return None
    if kind is int and (not isinstance(value, int) and not (isinstance(value, Decimal) and value == value.to_integral_value())):
        return f"{name} must be a whole number, got {value}"
    if not value > 0:
        return f"{name} must be positive, got {value}"
    if name == "band_pct" and value >= 100:
        return f"band_pct must be below 100, got {value}"
    if name == "im_rate" and value > 1:
        return f"im_rate is a fraction of notional (at most 1), got {value}"
    return None


def typed(name: str, value: Decimal | None) -> int | Decimal | None:
    """A SetLimit value (Decimal on the wire) as the limit's own type; check value_problem first."""
    if value is None or LIMIT_TYPES[name] is Decimal:
        return value
    return int(value)


class Resolved:
    """One (account, symbol)'s limits, as integers ready for the hot path (None: no limit)."""

    __slots__ = ("band_den", "band_num", "band_pct", "band_ticks", "hot", "im_rate", "im_units",
                 "max_notional", "max_open", "max_position", "max_qty", "max_underlying", "notional_ticklots", "underlying_units")

    def __init__(self, values: dict[str, int | Decimal], inst: Instrument, unit_scale: int) -> None:
        tick_value = inst.tick_size * inst.lot_size * inst.multiplier  # quote currency per tick x lot
        self.band_pct: Decimal | None = values.get("band_pct")  # type: ignore[assignment]
        band = Fraction(self.band_pct) / 100 if self.band_pct is not None else Fraction(0)
        self.band_num, self.band_den = band.numerator, band.denominator  # band_pct / 100, exactly
        self.band_ticks: int | None = values.get("band_ticks")  # type: ignore[assignment]
        self.max_qty: int | None = values.get("max_order_qty")  # type: ignore[assignment]
        self.max_notional: Decimal | None = values.get("max_order_notional")  # type: ignore[assignment]
        self.notional_ticklots = None if self.max_notional is None else floor(Fraction(self.max_notional) / Fraction(tick_value))
        self.max_position: int | None = values.get("max_position")  # type: ignore[assignment]
        self.max_underlying: Decimal | None = values.get("max_underlying_position")  # type: ignore[assignment]
        self.underlying_units = None if self.max_underlying is None else floor(Fraction(self.max_underlying) * unit_scale)
        self.max_open: int | None = values.get("max_open_orders")  # type: ignore[assignment]
        self.im_rate: Decimal | None = values.get("im_rate")  # type: ignore[assignment]
        # margin per tick-lot in 10^-12 of the venue currency, rounded up: exact for any rate
        # and tick value whose product has at most 12 decimals, and never understated
        self.im_units = None if self.im_rate is None else ceil(Fraction(self.im_rate) * Fraction(tick_value) * MARGIN_SCALE)
        # what check_new reads, in one tuple: one attribute load instead of eight
        self.hot = (self.max_qty, self.band_num, self.band_ticks, self.notional_ticklots, self.max_open,
                    self.max_position, self.underlying_units, self.im_units)


class LimitBook:
    """Every rule, mutable at run time through SetLimit, with a cache of resolved limits."""

    def __init__(self, rules: list[LimitRule], accounts: dict[str, str], instruments: dict[str, Instrument], unit_scales: dict[str, int]) -> None:
        self.rules: dict[RuleKey, dict[str, int | Decimal]] = {}
        for r in rules:
            self.rules.setdefault(rule_key(r), {}).update(rule_values(r))
        self.accounts = accounts
        self.instruments = instruments
        self.unit_scales = unit_scales
        self._cache: dict[tuple[str, str], Resolved] = {}
        self._throttle: dict[str, int | None] = {}

    def _chain(self, firm: str, account: str, symbol: str) -> tuple[RuleKey, ...]:
        return ((("", account, symbol), ("", account, "")) if account else ()) + (
            (firm, "", symbol), (firm, "", ""), ("", "", symbol), ("", "", ""))

    def values(self, firm: str, account: str, symbol: str) -> dict[str, int | Decimal]:
        """Each limit from the most specific rule that sets it."""
        out: dict[str, int | Decimal] = {}
        rules = self.rules
        for key in reversed(self._chain(firm, account, symbol)):
            r = rules.get(key)
            if r:
                out.update(r)
        return out

    def resolved(self, account: str, symbol: str) -> Resolved:
        r = self._cache.get((account, symbol))
        if r is None:
            inst = self.instruments[symbol]
            r = Resolved(self.values(self.accounts.get(account, ""), account, symbol), inst, self.unit_scales[symbol])
            self._cache[(account, symbol)] = r
        return r

    def throttle(self, firm: str) -> int | None:
        """A firm's sessions' message limit per second (None: unthrottled)."""
        if firm in self._throttle:
            return self._throttle[firm]
        rate = self.values(firm, "", "").get("max_msgs_per_s")
        self._throttle[firm] = rate  # type: ignore[assignment]
        return rate  # type: ignore[return-value]

    def get(self, key: RuleKey, name: str) -> int | Decimal | None:
        return self.rules.get(key, {}).get(name)

    def replace_rules(self, rules: dict[RuleKey, dict[str, int | Decimal]]) -> None:
        """Every rule at once (a snapshot's), dropping the resolved limits."""
        self.rules = rules
        self._cache.clear()
        self._throttle.clear()

    def set(self, key: RuleKey, name: str, value: int | Decimal | None) -> None:
        """Set or clear one limit (validated by the caller); resolved limits are rebuilt lazily."""
        rule = self.rules.setdefault(key, {})
        if value is None:
            rule.pop(name, None)
            if not rule:
                del self.rules[key]
        else:
            rule[name] = value
        self._cache.clear()
        self._throttle.clear()


def underlying_scales(instruments: list[Instrument]) -> tuple[dict[str, int], dict[str, int]]:
    """Per symbol: (units per lot, units per underlying unit) on an integer grid shared by every
    contract on the same underlying, so underlying positions add up exactly as ints."""
    exp: dict[str, int] = {}
    for i in instruments:
        e = (i.lot_size * i.multiplier).normalize().as_tuple().exponent
        exp[i.underlying] = max(exp.get(i.underlying, 0), -e if isinstance(e, int) else 0)
    per_lot = {i.symbol: int((i.lot_size * i.multiplier).scaleb(exp[i.underlying])) for i in instruments}
    scale = {i.symbol: 10 ** exp[i.underlying] for i in instruments}
    return per_lot, scale


def config_problems(cfg: RiskConfig, firms: set[str], accounts: set[str], quote_currency: dict[str, str]) -> list[tuple[str, str]]:
    """(dotted key under `risk`, what is wrong) for every problem in the config's section."""
    out: list[tuple[str, str]] = []
    for i, rule in enumerate(cfg.limits):
        key = rule_key(rule)
        problem = scope_problem(key, firms, accounts, set(quote_currency))
        if problem is not None:
            out.append((f"limits[{i}]", problem))
        for name, value in rule_values(rule).items():
            problem = value_problem(key, name, value)
            if problem is not None:
                out.append((f"limits[{i}].{name}", problem))
    for account, amount in cfg.collateral.items():
        if account not in accounts:
            out.append((f"collateral.{account}", f"unknown account {account}"))
        elif not amount > 0:
            out.append((f"collateral.{account}", f"opening collateral must be positive, got {amount}"))
    for symbol, ccy in quote_currency.items():
        if ccy != cfg.currency:
            out.append(("currency", f"{symbol} quotes in {ccy}, but collateral is held in {cfg.currency}"))
    return out
