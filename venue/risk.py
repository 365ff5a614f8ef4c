"""Pre-trade risk: the checks an order passes before it can add exposure.

Rules this file keeps (h11's `_state.py` manner):

1. Pure. No clock, I/O or logging. State changes only as the engine reports what it did
   (`live`, `gone`, `traded`: venue/risk_state.py) and in the operator methods VenueCore
   calls while applying an operator command, so a replay of the journal rebuilds
   exposures, kill switches, limits and tallies exactly.
2. A check returns (reason, text) or None and never raises. The text names the check and
   the limit, in prices and the venue currency: `risk: notional 2,500,000 > limit
   1,000,000 USD`. Each refusal is counted in `tallies` under its check's name.
3. Exact arithmetic: ticks and lots are ints; limits become ints once per (account,
   symbol) (venue/limits.py), so the hot path compares ints and never touches a float.

The state the checks read (exposures per account and instrument and per underlying, a
running initial margin per account, reference prices, collateral, kill switches, limits,
tallies) lives in venue/risk_state.py, which RiskEngine extends with the checks.

The checks, in order (each skipped while its limit is unset):
- kill switch (venue, firm, account);
- max order quantity (lots); price band (a limit price within N% and/or N ticks of the
  reference: last trade, else mark, else index, else the instrument's reference price);
  max order notional (price x qty x multiplier);
- open orders per account (only for orders that can rest: market, IOC, FOK never do);
- position per instrument and per underlying: the position plus every live order on the
  order's side plus this order, i.e. where the position goes if all of them fill;
- credit: collateral >= the account's initial margin with this order (venue/risk_state.py:
  per instrument im_rate x the worse side, positions at the margin price, orders at their
  own price, so an order that reduces a position adds no margin). This simple rate stands
  in for the clearing margin model until it lands.
Market orders count at the collar (the band's edge), or the reference price when the
instrument has no band. Reduce-only orders cannot add exposure (the engine refuses those
that would), so they skip the position and credit checks. A replace that neither raises
the remaining quantity nor moves the price only reduces exposure: only the kill switch
applies. Otherwise every check runs on the replace's new terms.

Known limitations: the band checks a stop-limit's limit price at entry, not at trigger;
the market collar uses the instrument's band, not an account's own; options count toward
the underlying position at delta one. Cost: a few dict lookups and int operations per
order, and a few int operations per change the engine reports, whatever the number of
instruments an account trades.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from venue.book import Book, Order
from venue.commands import NewOrder, ReplaceOrder
from venue.limits import Resolved
from venue.rejects import RejectReason
from venue.risk_state import CHECKS, AccountRisk, Exposure, RiskState, from_units, money
from venue.types import OrdType, Side, TimeInForce

__all__ = ["CHECKS", "RiskEngine", "money"]

Refusal = tuple[RejectReason, str]

_BUY: Final = Side.BUY
_MARKET: Final = OrdType.MARKET
_RESTING_TIFS: Final = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD)
_RISK: Final = RejectReason.RISK_LIMIT
_BAND: Final = RejectReason.PRICE_BAND


class RiskEngine(RiskState):
    """The venue's PreTradeCheck (venue/matching.py): the checks, over RiskState."""

    # ------------------------------------------------------------------ PreTradeCheck

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None:
        account, symbol = cmd.account, cmd.symbol
        if self.any_killed and self.killed(cmd.firm, account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(cmd.firm, account))
        acct = self.accts.get(account)
        exp = acct.exps.get(symbol) if acct is not None else None
        if exp is not None:
            res = exp.res
            self._checked_cmd, self._checked = cmd, exp
        else:
            res = self.limits.resolved(account, symbol)
        qty = cmd.qty
        max_qty, band_num, band_ticks, notional, max_open, max_pos, max_und, rate = res.hot
        if max_qty is not None and qty > max_qty:
            return self._refuse("max_order_qty", _RISK, f"risk: order qty {qty:,} > limit {max_qty:,} lots")
        buy = cmd.side is _BUY
        limit_px = cmd.price
        price: int  # an int, not the `int | None` of the field: machine arithmetic when compiled
        if limit_px is None:
            price = cmd.stop_px if cmd.stop_px is not None else self._market_price(buy, book)
        else:
            price = limit_px
            if band_num or band_ticks is not None:
                ref = self.ref[symbol]
                off = price - ref if price > ref else ref - price
                if (band_num and off * res.band_den > ref * band_num) or (band_ticks is not None and off > band_ticks):
                    return self._band_refusal(res, symbol, price)
        if notional is not None and price * qty > notional:
            return self._notional_refusal(res, book, price, qty)
        if max_open is not None and cmd.ord_type is not _MARKET and cmd.tif in _RESTING_TIFS:
            n = acct.open if acct is not None else 0
            if n >= max_open:
                return self._refuse("open_orders", _RISK, f"risk: open orders {n:,} at limit {max_open:,}")
        if cmd.reduce_only:
            return None
        if max_pos is not None:
            if exp is None:
                worst = qty
            else:
                worst = exp.pos + exp.buy_qty + qty if buy else exp.sell_qty - exp.pos + qty
            if worst > max_pos:
                return self._position_refusal(symbol, buy, worst, max_pos)
        if max_und is not None:
            und = exp.und if exp is not None else self.underlying.get((account, self.underlying_of[symbol]))
            worst = qty * (exp.units if exp is not None else self.units_per_lot[symbol])
            if und is not None:
                worst += und.net + und.buy if buy else und.sell - und.net
            if worst > max_und:
                return self._underlying_refusal(res, symbol, buy, worst)
        if rate is not None:
            return self._credit(account, acct, exp, rate, buy, price * qty)
        return None

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        view = order.view
        entry = view.entry
        old_price = view.price if view.price is not None else (view.stop_px or 0)
        if self.any_killed and self.killed(entry.firm, entry.account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(entry.firm, entry.account))
        leaves = cmd.qty - order.cum
        price = cmd.price if cmd.price is not None else (cmd.stop_px if cmd.stop_px is not None else old_price)
        if leaves <= order.leaves and price == old_price:
            return None  # only less of the same order
        account, symbol = entry.account, entry.symbol
        exp = self.accts[account].exps[symbol]  # a live order's exposure exists
        res = exp.res
        if res.max_qty is not None and cmd.qty > res.max_qty:
            return self._refuse("max_order_qty", _RISK, f"risk: order qty {cmd.qty:,} > limit {res.max_qty:,} lots")
        if cmd.price is not None and cmd.price != view.price and (res.band_num or res.band_ticks is not None):
            ref = self.ref[symbol]
            off = abs(cmd.price - ref)
            if (res.band_num and off * res.band_den > ref * res.band_num) or (res.band_ticks is not None and off > res.band_ticks):
                return self._band_refusal(res, symbol, cmd.price)
        buy = order.side is _BUY
        if price == 0:  # a stop-market keeps no price of its own
            price = self._market_price(buy, book)
        if res.notional_ticklots is not None and price * cmd.qty > res.notional_ticklots:
            return self._notional_refusal(res, book, price, cmd.qty)
        if entry.reduce_only:
            return None
        d_qty = leaves - order.leaves
        if res.max_position is not None:
            worst = exp.pos + exp.buy_qty + d_qty if buy else exp.sell_qty - exp.pos + d_qty
            if worst > res.max_position:
                return self._position_refusal(symbol, buy, worst, res.max_position)
        if res.underlying_units is not None:
            und = exp.und
            worst = d_qty * exp.units + (und.net + und.buy if buy else und.sell - und.net)
            if worst > res.underlying_units:
                return self._underlying_refusal(res, symbol, buy, worst)
        if res.im_units is not None:
            return self._credit(account, exp.acct, exp, res.im_units, buy, price * leaves - old_price * order.leaves)
        return None

    def market_collar(self, side: Side, book: Book) -> int | None:
        res = self.limits.resolved("", book.symbol)
        if not res.band_num and res.band_ticks is None:
            return None
        lo, hi = self.band(res, book.symbol)
        return hi if side is _BUY else lo

    # ------------------------------------------------------------------ helpers

    def _credit(self, account: str, acct: AccountRisk | None, exp: Exposure | None, rate: int, buy: bool, extra: int) -> Refusal | None:
        """Collateral against the account's margin with `extra` tick-lots more live value
        on one side of `exp`'s instrument (that instrument's margin counted afresh)."""
        if acct is None:
            need, have = rate * extra, 0
        else:
            need, have = acct.margin, acct.collateral
            if exp is None:
                need += rate * extra
            else:
                long, short = exp.long, exp.short
                if buy:
                    long += extra
                else:
                    short += extra
                need += rate * (long if long > short else short) - exp.im
        if need <= have:
            return None
        return self._refuse("credit", _RISK, f"risk: credit: initial margin {money(from_units(need))}"
                                             f" > collateral {money(self.collateral.get(account, Decimal(0)))} {self.currency}")

    def _refuse(self, check: str, reason: RejectReason, text: str) -> Refusal:
        self.tallies[check] += 1
        return reason, text

    def _kill_text(self, firm: str, account: str) -> str:
        if self.venue_killed:
            return "risk: kill switch engaged venue-wide"
        if firm in self.killed_firms:
            return f"risk: kill switch engaged for firm {firm}"
        return f"risk: kill switch engaged for account {account}"

    def band(self, res: Resolved, symbol: str) -> tuple[int, int]:
        """The lowest and highest price (ticks, at least 1) the band admits around the reference."""
        ref = self.ref[symbol]
        lo, hi = 1, ref * 2 + (res.band_ticks or 0)
        if res.band_num:
            num, den = res.band_num, res.band_den
            lo, hi = max(1, -(-ref * (den - num) // den)), ref * (den + num) // den
        if res.band_ticks is not None:
            lo, hi = max(lo, ref - res.band_ticks), min(hi, ref + res.band_ticks)
        return lo, hi

    def _band_refusal(self, res: Resolved, symbol: str, price: int) -> Refusal:
        lo, hi = self.band(res, symbol)
        inst = self.instruments[symbol]
        widths = []
        if res.band_pct is not None:
            widths.append(f"{money(res.band_pct)}%")
        if res.band_ticks is not None:
            widths.append(f"{res.band_ticks:,} ticks")
        return self._refuse("price_band", _BAND,
                            f"risk: price {money(inst.price(price))} outside band {money(inst.price(lo))}..{money(inst.price(hi))}"
                            f" ({' and '.join(widths)} of reference {money(inst.price(self.ref[symbol]))})")

    def _notional_refusal(self, res: Resolved, book: Book, price: int, qty: int) -> Refusal:
        return self._refuse("max_order_notional", _RISK, f"risk: notional {money(book.instrument.notional(price, qty))}"
                                                         f" > limit {money(res.max_notional)} {self.currency}")  # type: ignore[arg-type]

    def _position_refusal(self, symbol: str, buy: bool, worst: int, limit: int) -> Refusal:
        return self._refuse("position", _RISK, f"risk: position {symbol} {'long' if buy else 'short'} {worst:,}"
                                               f" with open orders > limit {limit:,} lots")

    def _underlying_refusal(self, res: Resolved, symbol: str, buy: bool, worst: int) -> Refusal:
        return self._refuse("underlying_position", _RISK,
                            f"risk: position {self.underlying_of[symbol]} {'long' if buy else 'short'} {money(Decimal(worst) / self.unit_scale[symbol])}"
                            f" with open orders > limit {money(res.max_underlying)}")  # type: ignore[arg-type]

    def _market_price(self, buy: bool, book: Book) -> int:
        """What a market order counts at: its worst fill price (the collar), else the reference."""
        collar = self.market_collar(_BUY if buy else Side.SELL, book)
        return collar if collar is not None else self.ref[book.symbol]
