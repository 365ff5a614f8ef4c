"""Pre-trade risk: the checks an order passes before it can add exposure, and their state.

Rules this file keeps (h11's `_state.py` manner):

1. Pure. No clock, I/O or logging; state changes only in `on_events` (what the core
   did), and in the operator methods VenueCore calls while it applies an operator command.
   So a replay of the journal rebuilds the exposures, kill switches, limits and tallies.
2. A check returns (reason, text) or None and never raises. The text names the check and
   the limit, in the instrument's price and the venue currency:
   `risk: notional 2,500,000 > limit 1,000,000 USD`.
3. Exact arithmetic: ticks and lots are ints, money is Decimal; limits are turned into ints
   once per (account, symbol) (venue/limits.py) so the hot path compares ints.

What is counted, per account and instrument (an `Exposure`): the position, and the live
orders' remaining quantity and value (price x leaves, in tick-lots) per side. Live means
resting or parked (an untriggered stop counts at its limit price, or its stop price for a
stop-market). The state follows the core's events: ExecReport (new, replaced, triggered,
canceled, expired) and Fill carry each order's leaves after the change.

The checks, in order (each skipped when its limit is unset):
- kill switch (venue, firm, account);
- max order quantity (lots), price band (limit price within N% or N ticks of the
  reference: last trade, else mark, else index, else the instrument's reference price),
  max order notional (price x qty x multiplier);
- open orders per account (orders that can rest: market, IOC and FOK orders never do);
- position per instrument and per underlying: the position plus every live order on the
  order's side plus this order, i.e. the position if all of them filled;
- credit: collateral >= initial margin of the account. Per instrument, margin is
  im_rate x max(long, short) where long is the long position valued at the mark (else the
  reference) plus the live buys' value, short the same for the other side; so an order
  that reduces a position adds no margin. This simple rate stands in until the clearing
  margin model lands.
Market orders count at the collar price (the band edge), or the reference price when the
instrument has no band. Reduce-only orders cannot add exposure (the engine refuses those
that would), so they skip the position and credit checks.

A replace that neither raises the remaining quantity nor moves the price only reduces
exposure: only the kill switch applies to it. Otherwise every check runs on its new terms.

Known limitations: the band applies to a stop-limit's limit price at entry, not when it
triggers; the market collar uses the instrument's band, not an account's own.
Cost: a handful of dict lookups and int comparisons per order, plus one Decimal product
per instrument the account has exposure in for the credit check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from venue.book import Book, Order
from venue.commands import NewOrder, ReplaceOrder
from venue.events import Event, ExecReport, Fill, OrderView
from venue.instruments import Instrument
from venue.limits import LimitBook, Resolved, RiskConfig, underlying_scales
from venue.rejects import RejectReason
from venue.types import ExecType, InstrumentKind, OrdStatus, OrdType, Side, TimeInForce

Refusal = tuple[RejectReason, str]

CHECKS = ("kill_switch", "throttle", "max_order_qty", "price_band", "max_order_notional", "open_orders", "position",
          "underlying_position", "credit")
_BUY = Side.BUY
_ENDED = (OrdStatus.CANCELED, OrdStatus.EXPIRED, OrdStatus.REJECTED, OrdStatus.FILLED)
_RESTING_TIFS = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD)
_STATUS = ExecType.ORDER_STATUS


def money(d: Decimal | int) -> str:
    """1,250.5: thousands separated, no exponent, no trailing zeros."""
    return f"{Decimal(d).normalize():,f}"


class Exposure:
    """One account's position and live orders in one instrument."""

    __slots__ = ("symbol", "pos", "buy_qty", "sell_qty", "buy_val", "sell_val")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.pos = 0
        self.buy_qty = 0
        self.sell_qty = 0
        self.buy_val = 0  # sum of price x leaves over live buys, tick-lots
        self.sell_val = 0


class UnderlyingExposure:
    """One account's position and live orders summed over every contract on one underlying,
    in the underlying's integer unit (venue/limits.py underlying_scales)."""

    __slots__ = ("net", "buy", "sell")

    def __init__(self) -> None:
        self.net = 0
        self.buy = 0
        self.sell = 0


class _Live:
    """What one live order contributes: kept so a change subtracts exactly what was added."""

    __slots__ = ("account", "exp", "und", "buy", "price", "leaves", "units")

    def __init__(self, account: str, exp: Exposure, und: UnderlyingExposure, buy: bool, units: int) -> None:
        self.account = account
        self.exp = exp
        self.und = und
        self.buy = buy
        self.price = 0
        self.leaves = 0
        self.units = units  # underlying units per lot


class RiskEngine:
    """The venue's PreTradeCheck (venue/matching.py) and the state its checks read."""

    def __init__(self, instruments: Iterable[Instrument], accounts: Mapping[str, str], config: RiskConfig) -> None:
        insts = list(instruments)
        self.instruments = {i.symbol: i for i in insts}
        self.accounts = dict(accounts)
        self.currency = config.currency
        self.units_per_lot, self.unit_scale = underlying_scales(insts)
        self.limits = LimitBook(config.limits, self.accounts, self.instruments, self.unit_scale)
        self.collateral: dict[str, Decimal] = {}
        self.last_trade: dict[str, int] = {}
        self.marks: dict[str, int] = {}
        self.index: dict[str, int] = {}  # symbol -> its underlying's index, in the symbol's ticks
        self.ref: dict[str, int] = {i.symbol: i.reference_ticks for i in insts}  # band reference
        self.val: dict[str, int] = dict(self.ref)  # margin valuation: mark, else the reference
        self.venue_killed = False
        self.killed_firms: set[str] = set()
        self.killed_accounts: set[str] = set()
        self.tallies: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.exposure: dict[str, dict[str, Exposure]] = {}  # account -> symbol -> Exposure
        self.underlying: dict[tuple[str, str], UnderlyingExposure] = {}  # (account, underlying)
        self.open_orders: dict[str, int] = {}
        self.live: dict[int, _Live] = {}

    # ------------------------------------------------------------------ PreTradeCheck

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None:
        if (self.venue_killed or self.killed_firms or self.killed_accounts) and self.killed(cmd.firm, cmd.account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(cmd.firm, cmd.account))
        symbol, account, qty = cmd.symbol, cmd.account, cmd.qty
        res = self.limits.resolved(account, symbol)
        if res.max_qty is not None and qty > res.max_qty:
            return self._refuse("max_order_qty", RejectReason.RISK_LIMIT, f"risk: order qty {qty:,} > limit {res.max_qty:,} lots")
        buy = cmd.side is _BUY
        price = cmd.price
        if price is not None and (res.band_pct is not None or res.band_ticks is not None):
            refusal = self._band(res, symbol, price)
            if refusal is not None:
                return refusal
        if price is None:
            price = cmd.stop_px if cmd.stop_px is not None else self._market_price(buy, book)
        if res.notional_ticklots is not None and price * qty > res.notional_ticklots:
            return self._refuse("max_order_notional", RejectReason.RISK_LIMIT,
                                f"risk: notional {money(book.instrument.notional(price, qty))} > limit {money(res.max_notional)} {self.currency}")  # type: ignore[arg-type]
        if res.max_open is not None and cmd.ord_type is not OrdType.MARKET and cmd.tif in _RESTING_TIFS:
            n = self.open_orders.get(account, 0)
            if n >= res.max_open:
                return self._refuse("open_orders", RejectReason.RISK_LIMIT, f"risk: open orders {n:,} at limit {res.max_open:,}")
        if cmd.reduce_only:
            return None
        return self._exposure_checks(account, symbol, buy, price, qty, res, None)

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        entry = order.view.entry
        if (self.venue_killed or self.killed_firms or self.killed_accounts) and self.killed(entry.firm, entry.account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(entry.firm, entry.account))
        rec = self.live.get(order.order_id)
        leaves = cmd.qty - order.cum
        old_price = order.view.price if order.view.price is not None else order.view.stop_px
        new_price = cmd.price if cmd.price is not None else cmd.stop_px
        if new_price is None:
            new_price = old_price
        if rec is not None and leaves <= rec.leaves and new_price == old_price:
            return None  # only less of the same order
        symbol, account = entry.symbol, entry.account
        res = self.limits.resolved(account, symbol)
        if res.max_qty is not None and cmd.qty > res.max_qty:
            return self._refuse("max_order_qty", RejectReason.RISK_LIMIT, f"risk: order qty {cmd.qty:,} > limit {res.max_qty:,} lots")
        if cmd.price is not None and cmd.price != order.view.price and (res.band_pct is not None or res.band_ticks is not None):
            refusal = self._band(res, symbol, cmd.price)
            if refusal is not None:
                return refusal
        buy = order.side is _BUY
        price = new_price if new_price is not None else self._market_price(buy, book)
        if res.notional_ticklots is not None and price * cmd.qty > res.notional_ticklots:
            return self._refuse("max_order_notional", RejectReason.RISK_LIMIT,
                                f"risk: notional {money(book.instrument.notional(price, cmd.qty))} > limit {money(res.max_notional)} {self.currency}")  # type: ignore[arg-type]
        if entry.reduce_only:
            return None
        return self._exposure_checks(account, symbol, buy, price, leaves, res, rec)

    def market_collar(self, side: Side, book: Book) -> int | None:
        res = self.limits.resolved("", book.symbol)
        if res.band_pct is None and res.band_ticks is None:
            return None
        lo, hi = self.band(res, book.symbol)
        return hi if side is _BUY else max(lo, 1)

    # ------------------------------------------------------------------ the checks

    def _refuse(self, check: str, reason: RejectReason, text: str) -> Refusal:
        self.tallies[check] += 1
        return reason, text

    def killed(self, firm: str, account: str) -> bool:
        return self.venue_killed or firm in self.killed_firms or account in self.killed_accounts

    def _kill_text(self, firm: str, account: str) -> str:
        if self.venue_killed:
            return "risk: kill switch engaged venue-wide"
        if firm in self.killed_firms:
            return f"risk: kill switch engaged for firm {firm}"
        return f"risk: kill switch engaged for account {account}"

    def band(self, res: Resolved, symbol: str) -> tuple[int, int]:
        """The lowest and highest price (ticks) the band admits around the reference."""
        ref = self.ref[symbol]
        lo, hi = 1, None
        if res.band_pct is not None:
            num, den = res.band_num, res.band_den
            lo, hi = -(-ref * (den - num) // den), ref * (den + num) // den
        if res.band_ticks is not None:
            lo = max(lo, ref - res.band_ticks)
            hi = ref + res.band_ticks if hi is None else min(hi, ref + res.band_ticks)
        assert hi is not None
        return lo, hi

    def _band(self, res: Resolved, symbol: str, price: int) -> Refusal | None:
        lo, hi = self.band(res, symbol)
        if lo <= price <= hi:
            return None
        inst = self.instruments[symbol]
        width = " and ".join(w for w in (
            f"{money(res.band_pct)}%" if res.band_pct is not None else "",
            f"{res.band_ticks:,} ticks" if res.band_ticks is not None else "") if w)
        return self._refuse("price_band", RejectReason.PRICE_BAND,
                            f"risk: price {money(inst.price(price))} outside band {money(inst.price(lo))}..{money(inst.price(hi))}"
                            f" ({width} of reference {money(inst.price(self.ref[symbol]))})")

    def _market_price(self, buy: bool, book: Book) -> int:
        """What a market order counts at: its worst fill price (the collar), else the reference."""
        collar = self.market_collar(_BUY if buy else Side.SELL, book)
        return collar if collar is not None else self.ref[book.symbol]

    def _exposure_checks(self, account: str, symbol: str, buy: bool, price: int, leaves: int, res: Resolved, rec: _Live | None) -> Refusal | None:
        """Position, underlying position and credit, with this order's leaves at `price`
        (replacing `rec`'s contribution for a replace)."""
        exps = self.exposure.get(account)
        exp = exps.get(symbol) if exps is not None else None
        old_leaves = rec.leaves if rec is not None else 0
        if res.max_position is not None:
            pos = exp.pos if exp is not None else 0
            if buy:
                worst = pos + (exp.buy_qty if exp is not None else 0) + leaves - old_leaves
            else:
                worst = -(pos - (exp.sell_qty if exp is not None else 0) - leaves + old_leaves)
            if worst > res.max_position:
                side = "long" if buy else "short"
                return self._refuse("position", RejectReason.RISK_LIMIT,
                                    f"risk: position {symbol} {side} {worst:,} with open orders > limit {res.max_position:,} lots")
        if res.underlying_units is not None:
            inst = self.instruments[symbol]
            und = self.underlying.get((account, inst.underlying))
            units = (leaves - old_leaves) * self.units_per_lot[symbol]
            if und is None:
                worst = units
            else:
                worst = und.net + und.buy + units if buy else -(und.net - und.sell - units)
            if worst > res.underlying_units:
                side = "long" if buy else "short"
                return self._refuse("underlying_position", RejectReason.RISK_LIMIT,
                                    f"risk: position {inst.underlying} {side} {money(Decimal(worst) / self.unit_scale[symbol])}"
                                    f" with open orders > limit {money(res.max_underlying)}")  # type: ignore[arg-type]
        if res.im_per_ticklot is not None:
            delta = price * leaves - (rec.price * rec.leaves if rec is not None else 0)
            need = self.margin(account, symbol, buy, delta)
            have = self.collateral.get(account, Decimal(0))
            if need > have:
                return self._refuse("credit", RejectReason.RISK_LIMIT,
                                    f"risk: credit: initial margin {money(need)} > collateral {money(have)} {self.currency}")
        return None

    def margin(self, account: str, symbol: str = "", buy: bool = True, extra: int = 0) -> Decimal:
        """The account's initial margin, with `extra` tick-lots more live value on one side
        of `symbol` (a prospective order)."""
        total = Decimal(0)
        exps = self.exposure.get(account, {})
        limits, val = self.limits, self.val
        for sym, e in exps.items():
            im = limits.resolved(account, sym).im_per_ticklot
            if im is None:
                continue
            pos = e.pos
            long = (pos * val[sym] if pos > 0 else 0) + e.buy_val
            short = (-pos * val[sym] if pos < 0 else 0) + e.sell_val
            if sym == symbol:
                if buy:
                    long += extra
                else:
                    short += extra
            worst = long if long > short else short
            if worst:
                total += im * worst
        if symbol and symbol not in exps and extra > 0:
            im = limits.resolved(account, symbol).im_per_ticklot
            if im is not None:
                total += im * extra
        return total

    # ------------------------------------------------------------------ state from events

    def on_events(self, events: Sequence[Event]) -> None:
        """Follow what the core did: live orders' leaves and prices, positions, last trades."""
        for ev in events:
            t = type(ev)
            if t is ExecReport:
                view = ev.order  # type: ignore[union-attr]
                oid = view.order_id
                if oid:
                    status = ev.status  # type: ignore[union-attr]
                    if status in _ENDED:
                        self._track(oid, view, 0)
                    elif ev.exec_type is not _STATUS:  # type: ignore[union-attr]
                        self._track(oid, view, ev.leaves_qty)  # type: ignore[union-attr]
            elif t is Fill:
                symbol, qty, price = ev.symbol, ev.qty, ev.price  # type: ignore[union-attr]
                self._track(ev.taker.order_id, ev.taker, ev.taker_leaves)  # type: ignore[union-attr]
                self._track(ev.maker.order_id, ev.maker, ev.maker_leaves)  # type: ignore[union-attr]
                buy_view, sell_view = (ev.taker, ev.maker) if ev.aggressor is _BUY else (ev.maker, ev.taker)  # type: ignore[union-attr]
                self._fill(buy_view.entry.account, symbol, qty)
                self._fill(sell_view.entry.account, symbol, -qty)
                self.last_trade[symbol] = price
                self.ref[symbol] = price
                if symbol not in self.marks:
                    self.val[symbol] = price

    def _fill(self, account: str, symbol: str, qty: int) -> None:
        self._exposure(account, symbol).pos += qty
        self._underlying(account, symbol).net += qty * self.units_per_lot[symbol]

    def _exposure(self, account: str, symbol: str) -> Exposure:
        exps = self.exposure.get(account)
        if exps is None:
            exps = self.exposure[account] = {}
        e = exps.get(symbol)
        if e is None:
            e = exps[symbol] = Exposure(symbol)
        return e

    def _underlying(self, account: str, symbol: str) -> UnderlyingExposure:
        key = (account, self.instruments[symbol].underlying)
        u = self.underlying.get(key)
        if u is None:
            u = self.underlying[key] = UnderlyingExposure()
        return u

    def _track(self, oid: int, view: OrderView, leaves: int) -> None:
        """Set one order's counted contribution to `leaves` at its current price (0: gone)."""
        rec = self.live.get(oid)
        if rec is None:
            if leaves == 0:
                return
            e = view.entry
            rec = _Live(e.account, self._exposure(e.account, e.symbol), self._underlying(e.account, e.symbol), e.side is _BUY, self.units_per_lot[e.symbol])
            self.live[oid] = rec
            self.open_orders[e.account] = self.open_orders.get(e.account, 0) + 1
        price = view.price if view.price is not None else (view.stop_px or 0)
        if price == rec.price and leaves == rec.leaves:
            return
        d_qty = leaves - rec.leaves
        d_val = price * leaves - rec.price * rec.leaves
        d_units = d_qty * rec.units
        if rec.buy:
            rec.exp.buy_qty += d_qty
            rec.exp.buy_val += d_val
            rec.und.buy += d_units
        else:
            rec.exp.sell_qty += d_qty
            rec.exp.sell_val += d_val
            rec.und.sell += d_units
        rec.price, rec.leaves = price, leaves
        if leaves == 0:
            del self.live[oid]
            self.open_orders[rec.account] -= 1

    # ------------------------------------------------------------------ operator state

    def set_mark(self, symbol: str, ticks: int) -> None:
        self.marks[symbol] = ticks
        self.val[symbol] = ticks
        if symbol not in self.last_trade:
            self.ref[symbol] = ticks

    def set_index(self, underlying: str, price: Decimal) -> None:
        """The index, as each non-option contract's ticks (the nearest tick): a reference for
        futures and perpetuals until they trade or get a mark; an option's price is not its index."""
        for sym, inst in self.instruments.items():
            if inst.underlying != underlying or inst.kind is InstrumentKind.OPTION:
                continue
            ticks = int((price / inst.tick_size).to_integral_value())
            self.index[sym] = ticks
            if sym not in self.last_trade and sym not in self.marks:
                self.ref[sym] = ticks
                self.val[sym] = ticks

    def validate(self, orders: Mapping[int, Order], positions: Mapping[tuple[str, str], int]) -> None:
        """Check the counted state against the engine's (tests call it after each command)."""
        want: dict[tuple[str, str], list[int]] = {}
        opens: dict[str, int] = {}
        for oid, o in orders.items():
            e = o.view.entry
            rec = self.live.get(oid)
            assert rec is not None and rec.leaves == o.leaves, f"order {oid}: counted {rec and rec.leaves}, live {o.leaves}"
            w = want.setdefault((e.account, e.symbol), [0, 0, 0, 0])
            price = o.view.price if o.view.price is not None else (o.view.stop_px or 0)
            w[0 if o.side is _BUY else 1] += o.leaves
            w[2 if o.side is _BUY else 3] += price * o.leaves
            opens[e.account] = opens.get(e.account, 0) + 1
        assert len(self.live) == len(orders), f"{len(self.live)} orders counted, {len(orders)} live"
        assert {a: n for a, n in self.open_orders.items() if n} == opens, f"open orders {self.open_orders} != {opens}"
        for account, exps in self.exposure.items():
            for sym, e in exps.items():
                w = want.get((account, sym), [0, 0, 0, 0])
                assert [e.buy_qty, e.sell_qty, e.buy_val, e.sell_val] == w, f"{account} {sym}: counted {e.buy_qty, e.sell_qty, e.buy_val, e.sell_val} != {w}"
                assert e.pos == positions.get((account, sym), 0), f"{account} {sym}: position {e.pos} != {positions.get((account, sym), 0)}"
        for (account, und), u in self.underlying.items():
            syms = [s for s, i in self.instruments.items() if i.underlying == und]
            net = sum(positions.get((account, s), 0) * self.units_per_lot[s] for s in syms)
            assert u.net == net, f"{account} {und}: net {u.net} != {net}"

