"""Pre-trade risk: the checks an order passes before it can add exposure, and their state.

Rules this file keeps (h11's `_state.py` manner):

1. Pure. No clock, I/O or logging. State changes only in `on_events` (what the core did)
   and in the operator methods VenueCore calls while applying an operator command, so a
   replay of the journal rebuilds exposures, kill switches, limits and tallies exactly.
2. A check returns (reason, text) or None and never raises. The text names the check and
   the limit, in prices and the venue currency: `risk: notional 2,500,000 > limit
   1,000,000 USD`. Each refusal is counted in `tallies` under its check's name.
3. Exact arithmetic: ticks and lots are ints; limits become ints once per (account,
   symbol) (venue/limits.py), so the hot path compares ints and never touches a float.

State, per account and instrument (an `Exposure`): the position and, per side, the live
orders' remaining quantity and value (price x leaves, tick-lots). Live means resting or
parked: an untriggered stop counts at its limit price, a stop-market at its stop price.
It follows the events alone, without per-order records: NEW adds the order's leaves; a
Fill takes the fill's quantity off both orders and moves both positions; CANCELED and
EXPIRED take off what was left (qty - cum_qty); REPLACED swaps the old terms (noted when
`check_replace` passed it, which the engine asks last, right before it replaces) for the
new. An order's value always uses its own price (its limit, else its stop, else 0 for a
market order, whose NEW and fills cancel out within its command).

The checks, in order (each skipped while its limit is unset):
- kill switch (venue, firm, account);
- max order quantity (lots); price band (a limit price within N% and/or N ticks of the
  reference: last trade, else mark, else index, else the instrument's reference price);
  max order notional (price x qty x multiplier);
- open orders per account (only for orders that can rest: market, IOC, FOK never do);
- position per instrument and per underlying: the position plus every live order on the
  order's side plus this order, i.e. where the position goes if all of them fill;
- credit: collateral >= the account's initial margin with this order. Per instrument,
  im_rate x max(long, short), long being the long position valued at the mark (else the
  reference) plus the live buys' value, short the same on the other side: so an order that
  reduces a position adds no margin. This simple rate stands in for the clearing margin
  model until it lands.
Market orders count at the collar (the band's edge), or the reference price when the
instrument has no band. Reduce-only orders cannot add exposure (the engine refuses those
that would), so they skip the position and credit checks. A replace that neither raises
the remaining quantity nor moves the price only reduces exposure: only the kill switch
applies. Otherwise every check runs on the replace's new terms.

Known limitations: the band checks a stop-limit's limit price at entry, not at trigger;
the market collar uses the instrument's band, not an account's own; options count toward
the underlying position at delta one. Cost: a few dict lookups and int operations per
order and per event; the credit check sums over the instruments the account has
exposure in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal

from venue.book import Book, Order
from venue.commands import NewOrder, ReplaceOrder
from venue.events import Event, ExecReport, Fill
from venue.instruments import Instrument
from venue.limits import MARGIN_SCALE, LimitBook, Resolved, RiskConfig, RuleKey, underlying_scales
from venue.operator import KillScope
from venue.rejects import RejectReason
from venue.types import ExecType, InstrumentKind, OrdType, Side, TimeInForce

Refusal = tuple[RejectReason, str]

CHECKS = ("kill_switch", "throttle", "max_order_qty", "price_band", "max_order_notional", "open_orders", "position",
          "underlying_position", "credit")
_BUY = Side.BUY
_MARKET = OrdType.MARKET
_RESTING_TIFS = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD)
_X_NEW, _X_CANCELED, _X_EXPIRED, _X_REPLACED = ExecType.NEW, ExecType.CANCELED, ExecType.EXPIRED, ExecType.REPLACED
_RISK, _BAND = RejectReason.RISK_LIMIT, RejectReason.PRICE_BAND


def money(d: Decimal | int) -> str:
    """1,250.5: thousands separated, no exponent, no trailing zeros."""
    return f"{Decimal(d).normalize():,f}"


class Exposure:
    """One account's position and live orders in one instrument; `res` caches its limits."""

    __slots__ = ("symbol", "pos", "buy_qty", "sell_qty", "buy_val", "sell_val", "res")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.pos = 0
        self.buy_qty = 0
        self.sell_qty = 0
        self.buy_val = 0  # sum of price x leaves over live buys, tick-lots
        self.sell_val = 0
        self.res: Resolved | None = None


class RiskEngine:
    """The venue's PreTradeCheck (venue/matching.py) and the state its checks read."""

    def __init__(self, instruments: Iterable[Instrument], accounts: Mapping[str, str], config: RiskConfig) -> None:
        insts = list(instruments)
        self.instruments = {i.symbol: i for i in insts}
        self.accounts = dict(accounts)
        self.currency = config.currency
        self.units_per_lot, self.unit_scale = underlying_scales(insts)
        self.members: dict[str, tuple[tuple[str, int], ...]] = {}  # underlying -> (symbol, units per lot)
        for i in insts:
            self.members[i.underlying] = self.members.get(i.underlying, ()) + ((i.symbol, self.units_per_lot[i.symbol]),)
        self.limits = LimitBook(config.limits, self.accounts, self.instruments, self.unit_scale)
        self.collateral: dict[str, Decimal] = {}
        self.collateral_units: dict[str, int] = {}  # floor(collateral x MARGIN_SCALE)
        self.last_trade: dict[str, int] = {}
        self.marks: dict[str, int] = {}
        self.index: dict[str, int] = {}  # symbol -> its underlying's index, in the symbol's ticks
        self.ref: dict[str, int] = {i.symbol: i.reference_ticks for i in insts}  # band reference
        self.val: dict[str, int] = dict(self.ref)  # margin valuation: mark, else the reference
        self.venue_killed = False
        self.killed_firms: set[str] = set()
        self.killed_accounts: set[str] = set()
        self.any_killed = False  # any of the three: the hot path asks this one flag
        self.tallies: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.exposure: dict[str, dict[str, Exposure]] = {}  # account -> symbol -> Exposure
        self.open_orders: dict[str, int] = {}
        self._replacing: tuple[int, int, int] = (0, 0, 0)  # (order id, price, leaves) before a replace

    # ------------------------------------------------------------------ PreTradeCheck

    def check_new(self, ts: int, cmd: NewOrder, book: Book) -> Refusal | None:
        account, symbol = cmd.account, cmd.symbol
        if self.any_killed and self.killed(cmd.firm, account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(cmd.firm, account))
        exps = self.exposure.get(account)
        exp = exps.get(symbol) if exps is not None else None
        res = exp.res if exp is not None else None
        if res is None:
            res = self._resolve(account, symbol, exp)
        qty = cmd.qty
        max_qty, band_num, band_ticks, notional, max_open, max_pos, max_und, im = res.hot
        if max_qty is not None and qty > max_qty:
            return self._refuse("max_order_qty", _RISK, f"risk: order qty {qty:,} > limit {max_qty:,} lots")
        price = cmd.price
        buy = cmd.side is _BUY
        if price is None:
            price = cmd.stop_px if cmd.stop_px is not None else self._market_price(buy, book)
        elif band_num or band_ticks is not None:
            ref = self.ref[symbol]
            off = price - ref if price > ref else ref - price
            if (band_num and off * res.band_den > ref * band_num) or (band_ticks is not None and off > band_ticks):
                return self._band_refusal(res, symbol, price)
        if notional is not None and price * qty > notional:
            return self._refuse("max_order_notional", _RISK,
                                f"risk: notional {money(book.instrument.notional(price, qty))} > limit {money(res.max_notional)} {self.currency}")  # type: ignore[arg-type]
        if max_open is not None and cmd.ord_type is not _MARKET and cmd.tif in _RESTING_TIFS:
            n = self.open_orders.get(account, 0)
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
            refusal = self._underlying_check(account, symbol, res, buy, qty)
            if refusal is not None:
                return refusal
        if im is not None:
            return self._credit_check(account, symbol, buy, price * qty)
        return None

    def check_replace(self, ts: int, order: Order, cmd: ReplaceOrder, book: Book) -> Refusal | None:
        view = order.view
        entry = view.entry
        old_price = view.price if view.price is not None else (view.stop_px or 0)
        self._replacing = (order.order_id, old_price, order.leaves)
        if self.any_killed and self.killed(entry.firm, entry.account):
            return self._refuse("kill_switch", RejectReason.KILL_SWITCH, self._kill_text(entry.firm, entry.account))
        leaves = cmd.qty - order.cum
        price = cmd.price if cmd.price is not None else (cmd.stop_px if cmd.stop_px is not None else old_price)
        if leaves <= order.leaves and price == old_price:
            return None  # only less of the same order
        account, symbol = entry.account, entry.symbol
        exps = self.exposure.get(account)
        exp = exps.get(symbol) if exps is not None else None
        res = exp.res if exp is not None and exp.res is not None else self._resolve(account, symbol, exp)
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
            return self._refuse("max_order_notional", _RISK,
                                f"risk: notional {money(book.instrument.notional(price, cmd.qty))} > limit {money(res.max_notional)} {self.currency}")  # type: ignore[arg-type]
        if entry.reduce_only:
            return None
        return self._exposure_checks(account, symbol, exp, res, buy, leaves - order.leaves, price * leaves - old_price * order.leaves)

    def market_collar(self, side: Side, book: Book) -> int | None:
        res = self.limits.resolved("", book.symbol)
        if not res.band_num and res.band_ticks is None:
            return None
        lo, hi = self.band(res, book.symbol)
        return hi if side is _BUY else lo

    # ------------------------------------------------------------------ the checks

    def _resolve(self, account: str, symbol: str, exp: Exposure | None) -> Resolved:
        res = self.limits.resolved(account, symbol)
        if exp is not None:
            exp.res = res
        return res

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

    def _market_price(self, buy: bool, book: Book) -> int:
        """What a market order counts at: its worst fill price (the collar), else the reference."""
        collar = self.market_collar(_BUY if buy else Side.SELL, book)
        return collar if collar is not None else self.ref[book.symbol]

    def _exposure_checks(self, account: str, symbol: str, exp: Exposure | None, res: Resolved, buy: bool, d_qty: int, d_val: int) -> Refusal | None:
        """Position, underlying position and credit, were `d_qty` lots of value `d_val`
        (tick-lots) added to the account's live orders on one side of `symbol`."""
        if res.max_position is not None:
            if exp is None:
                worst = d_qty
            else:
                worst = exp.pos + exp.buy_qty + d_qty if buy else exp.sell_qty - exp.pos + d_qty
            if worst > res.max_position:
                return self._position_refusal(symbol, buy, worst, res.max_position)
        if res.underlying_units is not None:
            refusal = self._underlying_check(account, symbol, res, buy, d_qty)
            if refusal is not None:
                return refusal
        if res.im_units is not None:
            return self._credit_check(account, symbol, buy, d_val)
        return None

    def _position_refusal(self, symbol: str, buy: bool, worst: int, limit: int) -> Refusal:
        return self._refuse("position", _RISK, f"risk: position {symbol} {'long' if buy else 'short'} {worst:,}"
                                               f" with open orders > limit {limit:,} lots")

    def _credit_check(self, account: str, symbol: str, buy: bool, d_val: int) -> Refusal | None:
        need = self.margin_units(account, symbol, buy, d_val)
        if need <= self.collateral_units.get(account, 0):
            return None
        return self._refuse("credit", _RISK, f"risk: credit: initial margin {money(_decimal(need))}"
                                             f" > collateral {money(self.collateral.get(account, Decimal(0)))} {self.currency}")

    def _underlying_check(self, account: str, symbol: str, res: Resolved, buy: bool, d_qty: int) -> Refusal | None:
        inst = self.instruments[symbol]
        worst = d_qty * self.units_per_lot[symbol]
        exps = self.exposure.get(account)
        if exps is not None:
            for sym, units in self.members[inst.underlying]:
                e = exps.get(sym)
                if e is not None:
                    worst += (e.pos + e.buy_qty if buy else e.sell_qty - e.pos) * units
        if worst <= res.underlying_units:  # type: ignore[operator]
            return None
        return self._refuse("underlying_position", _RISK,
                            f"risk: position {inst.underlying} {'long' if buy else 'short'} {money(Decimal(worst) / self.unit_scale[symbol])}"
                            f" with open orders > limit {money(res.max_underlying)}")  # type: ignore[arg-type]

    def margin_units(self, account: str, symbol: str = "", buy: bool = True, extra: int = 0) -> int:
        """The account's initial margin in 10^-12 of the venue currency, with `extra`
        tick-lots more live value on one side of `symbol` (a prospective order)."""
        total = 0
        seen = False
        val = self.val
        exps = self.exposure.get(account)
        for e in (exps.values() if exps is not None else ()):
            res = e.res if e.res is not None else self._resolve(account, e.symbol, e)
            im = res.im_units
            if im is None:
                continue
            pos = e.pos
            if pos > 0:
                long, short = e.buy_val + pos * val[e.symbol], e.sell_val
            elif pos < 0:
                long, short = e.buy_val, e.sell_val - pos * val[e.symbol]
            else:
                long, short = e.buy_val, e.sell_val
            if e.symbol == symbol:
                seen = True
                if buy:
                    long += extra
                else:
                    short += extra
            total += im * (long if long > short else short)
        if not seen and extra > 0:
            im = self.limits.resolved(account, symbol).im_units
            total += im * extra if im is not None else 0
        return total

    def margin(self, account: str) -> Decimal:
        """The account's initial margin in the venue currency."""
        return _decimal(self.margin_units(account))

    # ------------------------------------------------------------------ state from events

    def on_events(self, events: Sequence[Event]) -> None:
        """Follow what the core did: live orders per side, positions, last trades. (Written
        out inline: this runs for every event, and a call per event would double its cost.)"""
        exposure = self.exposure
        for ev in events:
            t = type(ev)
            if t is ExecReport:
                et = ev.exec_type  # type: ignore[union-attr]
                if et is _X_NEW:
                    qty, opened = ev.leaves_qty, 1  # type: ignore[union-attr]
                elif et is _X_CANCELED or et is _X_EXPIRED:
                    qty, opened = ev.cum_qty - ev.order.qty, -1  # type: ignore[union-attr]
                elif et is _X_REPLACED:
                    self._replaced(ev)  # type: ignore[arg-type]
                    continue
                else:
                    continue
                view = ev.order  # type: ignore[union-attr]
                e = view.entry
                account = e.account
                exps = exposure.get(account)
                if exps is None:
                    exps = exposure[account] = {}
                exp = exps.get(e.symbol)
                if exp is None:
                    exp = exps[e.symbol] = Exposure(e.symbol)
                price = view.price if view.price is not None else (view.stop_px or 0)
                if e.side is _BUY:
                    exp.buy_qty += qty
                    exp.buy_val += price * qty
                else:
                    exp.sell_qty += qty
                    exp.sell_val += price * qty
                self.open_orders[account] = self.open_orders.get(account, 0) + opened
            elif t is Fill:
                symbol, qty = ev.symbol, ev.qty  # type: ignore[union-attr]
                view = ev.taker  # type: ignore[union-attr]
                e = view.entry
                exp = exposure[e.account][symbol]
                price = view.price if view.price is not None else (view.stop_px or 0)
                buy = e.side is _BUY
                if buy:
                    exp.buy_qty -= qty
                    exp.buy_val -= price * qty
                    exp.pos += qty
                else:
                    exp.sell_qty -= qty
                    exp.sell_val -= price * qty
                    exp.pos -= qty
                if not ev.taker_leaves:  # type: ignore[union-attr]
                    self.open_orders[e.account] -= 1
                view = ev.maker  # type: ignore[union-attr]
                e = view.entry
                exp = exposure[e.account][symbol]
                price = view.price  # a resting order always has its own price
                if buy:
                    exp.sell_qty -= qty
                    exp.sell_val -= price * qty
                    exp.pos -= qty
                else:
                    exp.buy_qty -= qty
                    exp.buy_val -= price * qty
                    exp.pos += qty
                if not ev.maker_leaves:  # type: ignore[union-attr]
                    self.open_orders[e.account] -= 1
                price = ev.price  # type: ignore[union-attr]
                self.last_trade[symbol] = price
                self.ref[symbol] = price
                if symbol not in self.marks:
                    self.val[symbol] = price

    def _replaced(self, ev: ExecReport) -> None:
        view = ev.order
        oid, old_price, old_leaves = self._replacing
        assert oid == view.order_id, f"replace of order {view.order_id} was not checked"
        e = view.entry
        price = view.price if view.price is not None else (view.stop_px or 0)
        exp = self.exposure[e.account][e.symbol]
        d_qty, d_val = ev.leaves_qty - old_leaves, price * ev.leaves_qty - old_price * old_leaves
        if e.side is _BUY:
            exp.buy_qty += d_qty
            exp.buy_val += d_val
        else:
            exp.sell_qty += d_qty
            exp.sell_val += d_val

    # ------------------------------------------------------------------ operator state

    def set_limit(self, key: RuleKey, name: str, value: int | Decimal | None) -> None:
        self.limits.set(key, name, value)
        for exps in self.exposure.values():
            for e in exps.values():
                e.res = None

    def set_kill(self, scope: KillScope, target: str, engaged: bool) -> None:
        if scope is KillScope.VENUE:
            self.venue_killed = engaged
        else:
            names = self.killed_firms if scope is KillScope.FIRM else self.killed_accounts
            (names.add if engaged else names.discard)(target)
        self.any_killed = bool(self.venue_killed or self.killed_firms or self.killed_accounts)

    def set_collateral(self, account: str, balance: Decimal) -> None:
        self.collateral[account] = balance
        self.collateral_units[account] = int((balance * MARGIN_SCALE).to_integral_value(rounding=ROUND_FLOOR))

    def set_mark(self, symbol: str, ticks: int) -> None:
        self.marks[symbol] = ticks
        self.val[symbol] = ticks
        if symbol not in self.last_trade:
            self.ref[symbol] = ticks

    def set_index(self, underlying: str, price: Decimal) -> None:
        """The index, as each non-option contract's nearest tick: the reference of futures and
        perpetuals until they trade or get a mark (an option's price is not its index)."""
        for sym, inst in self.instruments.items():
            if inst.underlying != underlying or inst.kind is InstrumentKind.OPTION:
                continue
            ticks = int((price / inst.tick_size).to_integral_value())
            self.index[sym] = ticks
            if sym not in self.last_trade and sym not in self.marks:
                self.ref[sym] = ticks
                self.val[sym] = ticks

    def state(self) -> dict[str, object]:
        """Everything replay would rebuild, as plain data sharing nothing with live state
        (for snapshots: venue/snapshot.py)."""
        return {
            "rules": [(k, sorted(v.items())) for k, v in sorted(self.limits.rules.items())],
            "collateral": sorted(self.collateral.items()),
            "last_trade": sorted(self.last_trade.items()), "marks": sorted(self.marks.items()),
            "index": sorted(self.index.items()), "ref": sorted(self.ref.items()), "val": sorted(self.val.items()),
            "kills": (self.venue_killed, sorted(self.killed_firms), sorted(self.killed_accounts)),
            "tallies": sorted(self.tallies.items()),
            "exposure": sorted((a, s, e.pos, e.buy_qty, e.sell_qty, e.buy_val, e.sell_val) for a, exps in self.exposure.items() for s, e in exps.items()),
            "open_orders": sorted((a, n) for a, n in self.open_orders.items() if n),
        }

    def load_state(self, state: Mapping[str, object]) -> None:
        """Restore what `state()` returned, into a freshly built engine."""
        self.limits.replace_rules({tuple(k): dict(v) for k, v in state["rules"]})  # type: ignore[attr-defined, misc]
        for account, balance in state["collateral"]:  # type: ignore[attr-defined]
            self.set_collateral(account, balance)
        self.last_trade, self.marks, self.index, self.ref, self.val = (dict(state[k]) for k in ("last_trade", "marks", "index", "ref", "val"))  # type: ignore[call-overload]
        venue, firms, accounts = state["kills"]  # type: ignore[misc]
        self.venue_killed, self.killed_firms, self.killed_accounts = venue, set(firms), set(accounts)
        self.any_killed = bool(venue or firms or accounts)
        self.tallies = dict(state["tallies"])  # type: ignore[call-overload]
        self.exposure = {}
        for a, s, pos, bq, sq, bv, sv in state["exposure"]:  # type: ignore[attr-defined]
            e = self.exposure.setdefault(a, {}).setdefault(s, Exposure(s))
            e.pos, e.buy_qty, e.sell_qty, e.buy_val, e.sell_val = pos, bq, sq, bv, sv
        self.open_orders = dict(state["open_orders"])  # type: ignore[call-overload]

    def validate(self, orders: Mapping[int, Order], positions: Mapping[tuple[str, str], int]) -> None:
        """Check the counted state against the engine's (tests call it after each command)."""
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
        assert {a: n for a, n in self.open_orders.items() if n} == opens, f"open orders {self.open_orders} != {opens}"
        have = {(a, s): [e.buy_qty, e.sell_qty, e.buy_val, e.sell_val, e.pos] for a, exps in self.exposure.items() for s, e in exps.items()}
        have = {k: v for k, v in have.items() if any(v)}
        want = {k: v for k, v in want.items() if any(v)}
        assert have == want, f"counted [buy, sell, buy value, sell value, position] {have} != {want}"


def _decimal(units: int) -> Decimal:
    return Decimal(units).scaleb(-12)
