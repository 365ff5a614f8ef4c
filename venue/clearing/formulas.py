"""Clearing arithmetic: pure functions, no I/O, Decimal in and Decimal out.

Rules this file keeps:

1. Money is Decimal. An amount is computed exactly (prices, quantities and contract sizes
   are exact decimals, so products are exact) and rounded once, to the currency's cents,
   ROUND_HALF_EVEN (banker's rounding: no drift up or down over many amounts).
2. A set of payments that nets to zero before rounding (variation margin, funding) is
   rounded per account with `round_netting`, which returns the rounded amounts and the
   residual the clearing house books so that the venue still nets to zero to the cent.
3. Divisions (funding premium, VWAP, averages) run in a 34-digit Decimal context and are
   then quantized: funding rates to 1e-8, settlement prices to the instrument's tick,
   final settlement prices to the cent. Each function says which.
4. Black-76 is computed in Decimal as well: Decimal's own exp, ln and sqrt at 34 digits and
   a series for the normal CDF accurate to better than 1e-25, so the only rounding in an
   option's theoretical price is the last one (to its tick). No binary floating point.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import TypeVar

from venue.types import OptionRight

K = TypeVar("K", bound=Hashable)

CENT = Decimal("0.01")
RATE_QUANTUM = Decimal("0.00000001")
PRECISION = 34
SECONDS_PER_YEAR = Decimal(365 * 24 * 3600)
_CTX = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN)


def to_cents(amount: Decimal) -> Decimal:
    """Round an amount to the cent, half to even."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN, context=_CTX)


def to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round to a multiple of `step` (a tick), half to even."""
    with localcontext(_CTX):
        return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step


def div_half_even(num: int, den: int) -> int:
    """num / den rounded half to even, in integers (den > 0): the fast path of `to_cents`
    for the ledger's hot loop."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def round_netting(amounts: Mapping[K, Decimal]) -> tuple[dict[K, Decimal], Decimal]:
    """Round each exact amount to the cent; return them and the residual (minus their sum)
    that the clearing house books so that everything still nets to zero to the cent.
    `amounts` should net to zero exactly; the residual is then a few cents at most."""
    rounded = {k: to_cents(v) for k, v in amounts.items()}
    return rounded, -sum(rounded.values(), Decimal(0))


# ---------------------------------------------------------------------------- fees


def fee(notional: Decimal, rate: Decimal) -> Decimal:
    """The fee one side pays on a trade: |notional| x rate, to the cent. A negative rate
    (maker rebate) gives a negative fee: the venue pays it."""
    return to_cents(abs(notional) * rate)


class FeeRule:
    """`fee()` for one instrument and rate in integer arithmetic: notional = tick-lots x
    (tick x lot x multiplier), so fee in cents = tick-lots x rate x that x 100, a fixed
    rational a/b per instrument; rounding half-even of an integer division equals
    `fee(notional, rate)` exactly (tests check it) at a fraction of the cost."""

    __slots__ = ("den", "num")

    def __init__(self, contract_value_per_tick_lot: Decimal, rate: Decimal) -> None:
        ratio = contract_value_per_tick_lot * rate * 100
        self.num, self.den = ratio.as_integer_ratio()

    def cents(self, tick_lots: int) -> int:
        return div_half_even(tick_lots * self.num, self.den)


# ---------------------------------------------------------------------------- variation margin


def variation_margin(
    *,
    prev_qty: int,
    prev_price: Decimal | None,
    bought_qty: int,
    bought_value: Decimal,
    price: Decimal,
    contract_size: Decimal,
) -> Decimal:
    """Exact variation margin of one account in one instrument for one settlement period.

    The position held at the previous settlement is marked from the previous settlement
    price to today's; each trade of the period from its trade price to today's. With
    `bought_qty` = sum of signed trade quantities (lots, buys positive) and `bought_value`
    = sum of signed qty x price, that is
        contract_size x (prev_qty x (price - prev_price) + bought_qty x price - bought_value).
    A positive amount is paid to the account.
    """
    held = Decimal(0)
    if prev_qty:
        if prev_price is None:
            raise ValueError("a position carried from a previous period needs that period's settlement price")
        held = prev_qty * (price - prev_price)
    return contract_size * (held + bought_qty * price - bought_value)


# ---------------------------------------------------------------------------- funding


def funding_rate(*, mark: Decimal, index: Decimal, interest_rate: Decimal, clamp: Decimal, cap: Decimal) -> Decimal:
    """One interval's funding rate (BitMEX's published formula):
        premium = (mark - index) / index
        rate    = premium + clamp(interest_rate - premium, -clamp, +clamp), capped to [-cap, cap]
    quantized half-even to 1e-8. Positive: longs pay shorts."""
    if index <= 0:
        raise ValueError(f"index price must be positive, got {index}")
    with localcontext(_CTX):
        premium = (mark - index) / index
        rate = premium + min(max(interest_rate - premium, -clamp), clamp)
        rate = min(max(rate, -cap), cap)
        return rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_EVEN)


def funding_payment(*, qty: int, contract_size: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Exact funding of one position for one interval, positive when received: a long
    (qty > 0) pays qty x contract_size x mark x rate, a short receives it. Over all
    accounts positions net to zero, so payments do too."""
    return -qty * contract_size * mark * rate


# ---------------------------------------------------------------------------- settlement prices


def vwap(value: Decimal, volume: int, tick: Decimal) -> Decimal | None:
    """Volume-weighted price (sum of price x qty over sum of qty) rounded half-even to the
    tick; None when there is no volume."""
    if volume == 0:
        return None
    with localcontext(_CTX):
        return to_step(value / volume, tick)


def daily_settlement_price(
    *, window_value: Decimal, window_volume: int, best_bid: Decimal | None, best_ask: Decimal | None,
    index: Decimal | None, tick: Decimal,
) -> tuple[Decimal, str] | None:
    """Futures and perpetuals: the VWAP of the last window's trades (given as their sum of
    price x qty and sum of qty), else the book's mid (both sides needed), else the index;
    each rounded half-even to the tick. Returns the price and the rule that gave it, or
    None when none applies."""
    p = vwap(window_value, window_volume, tick)
    if p is not None:
        return p, "vwap"
    if best_bid is not None and best_ask is not None:
        return to_step((best_bid + best_ask) / 2, tick), "mid"
    if index is not None:
        return to_step(index, tick), "index"
    return None


def final_settlement_price(index_prints: Iterable[Decimal]) -> Decimal | None:
    """Expiry: the arithmetic mean of the index prints in the configured window before
    expiry, rounded half-even to the cent. None when there is no print."""
    total, n = Decimal(0), 0
    for p in index_prints:
        total += p
        n += 1
    if n == 0:
        return None
    with localcontext(_CTX):
        return to_cents(total / n)


def intrinsic(*, right: OptionRight, underlying: Decimal, strike: Decimal) -> Decimal:
    """A European option's value at expiry per unit of the underlying."""
    if right is OptionRight.CALL:
        return max(underlying - strike, Decimal(0))
    return max(strike - underlying, Decimal(0))


def premium(*, price: Decimal, qty: int, contract_size: Decimal) -> Decimal:
    """Option premium of a trade, paid in full by the buyer at trade, to the cent."""
    return to_cents(price * qty * contract_size)


# ---------------------------------------------------------------------------- Black-76


def norm_cdf(x: Decimal) -> Decimal:
    """Standard normal CDF in Decimal, by Marsaglia's series
        Phi(x) = 1/2 + phi(x) x sum_{n>=0} x^(2n+1) / (1 x 3 x ... x (2n+1))
    whose terms are all positive for x > 0 (no cancellation); Phi(-x) = 1 - Phi(x). Beyond
    |x| = 12 the tail is under 2e-33 and returned as 0 or 1."""
    with localcontext(_CTX) as ctx:
        ctx.prec = PRECISION + 6
        if x < 0:
            return _CTX.plus(1 - norm_cdf(-x))
        if x > 12:
            return Decimal(1)
        term, total, n = x, x, 0
        x2 = x * x
        eps = Decimal(10) ** -(PRECISION + 4)
        while term > eps:
            n += 1
            term = term * x2 / (2 * n + 1)
            total += term
        pdf = (-(x2) / 2).exp() / (2 * _pi()).sqrt()
        result = Decimal("0.5") + pdf * total
    return _CTX.plus(result)


def _pi() -> Decimal:
    return Decimal("3.141592653589793238462643383279502884197")


def black76(*, right: OptionRight, forward: Decimal, strike: Decimal, years: Decimal, vol: Decimal, rate: Decimal = Decimal(0)) -> Decimal:
    """Black-76 price of a European option on a forward (cash-settled at expiry), per unit
    of the underlying, unrounded (34 significant digits):
        d1 = (ln(F/K) + vol^2 T / 2) / (vol sqrt T),  d2 = d1 - vol sqrt T
        call = e^(-rT) (F N(d1) - K N(d2)),  put = e^(-rT) (K N(-d2) - F N(-d1))
    At or after expiry (T <= 0) or with zero vol it is the discounted intrinsic value."""
    if forward <= 0 or strike <= 0:
        raise ValueError("forward and strike must be positive")
    if vol < 0:
        raise ValueError("volatility must not be negative")
    with localcontext(_CTX):
        discount = (-rate * max(years, Decimal(0))).exp()
        if years <= 0 or vol == 0:
            return discount * intrinsic(right=right, underlying=forward, strike=strike)
        sd = vol * years.sqrt()
        d1 = ((forward / strike).ln() + sd * sd / 2) / sd
        d2 = d1 - sd
        if right is OptionRight.CALL:
            return +(discount * (forward * norm_cdf(d1) - strike * norm_cdf(d2)))
        return +(discount * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1)))


def implied_vol(*, right: OptionRight, price: Decimal, forward: Decimal, strike: Decimal, years: Decimal, rate: Decimal = Decimal(0)) -> Decimal | None:
    """The volatility at which Black-76 gives `price`, by bisection on [0.0001, 10]
    (the price is monotone in vol) to 1e-6; None when the price is outside what any vol
    in that range gives (below intrinsic, above the forward or strike bound)."""
    if years <= 0:
        return None
    lo, hi = Decimal("0.0001"), Decimal(10)

    def at(vol: Decimal) -> Decimal:
        return black76(right=right, forward=forward, strike=strike, years=years, vol=vol, rate=rate)

    if not at(lo) <= price <= at(hi):
        return None
    while hi - lo > Decimal("0.000001"):
        mid = (lo + hi) / 2
        if at(mid) < price:
            lo = mid
        else:
            hi = mid
    return ((lo + hi) / 2).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def years_between(start_us: int, end_us: int) -> Decimal:
    """Time to expiry in years of 365 days (ACT/365), from µs timestamps."""
    with localcontext(_CTX):
        return Decimal(end_us - start_us) / 1_000_000 / SECONDS_PER_YEAR
