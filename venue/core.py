"""The venue's core as the sequencer drives it: operator controls and throttle, risk, matching.

`VenueCore.apply(seq, ts, cmd)` is pure like the engine inside it (no clock: the throttle
counts on the command's `ts`), so a replay of the journal reproduces every event:

1. Operator commands (kill switch, limits, risk query, index and mark prices, collateral)
   are handled here: validated, applied to the risk state, answered with their event. A
   bad one is answered with CommandRejected naming what is wrong, and changes nothing.
   SetPhase (halt, resume) goes to the engine, which owns phases.
2. A client message (new, replace, cancel, mass cancel, status) first passes its session's
   throttle: a token bucket of `max_msgs_per_s` tokens refilled continuously, so a burst
   of up to the limit passes and then one message per 1/limit s. Over the limit it is
   answered with a THROTTLE reject on the message's own answer type; the session stays up.
3. The engine applies the command, asking the RiskEngine (its PreTradeCheck) before an
   order or replace can add exposure, and telling it of each change it makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from venue.commands import (
    AdjustCollateral,
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    QueryOrder,
    ReplaceOrder,
    SetIndexPrice,
    SetMarkPrice,
)
from venue.events import (
    BookDelta,
    CancelRejected,
    CollateralChanged,
    CommandRejected,
    Event,
    ExecReport,
    IndexPriceSet,
    MarkPriceSet,
    MassCancelDone,
    OrderView,
)
from venue.instruments import Instrument
from venue.limits import RiskConfig, scope_problem, typed, value_problem
from venue.matching import MatchingEngine
from venue.operator import KillScope, KillSwitch, KillSwitchSet, LimitSet, QueryRisk, RiskReport, SetLimit
from venue.rejects import RejectReason
from venue.risk import RiskEngine, money
from venue.types import ExecType, OrdStatus, OrdType, StpScope, TradingPhase

if TYPE_CHECKING:
    from venue.config import VenueConfig
    from venue.refdata import ReferenceData

_TOKEN: Final = 1_000_000  # one message, in token-micros: a bucket refills `rate` of these per µs
_CLIENT: Final = object()  # route of the client messages

AnyCommand = Command | KillSwitch | SetLimit | QueryRisk


class Bucket:
    """A session's token bucket: `tokens` in token-micros, as of `last` (µs). Its two ints
    live in the compiled object itself; in a list they were two new int objects per message."""

    __slots__ = ("tokens", "last")

    def __init__(self, tokens: int, last: int) -> None:
        self.tokens = tokens
        self.last = last


class VenueCore:
    """MatchingEngine + RiskEngine behind the sequencer's Core interface."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        accounts: Mapping[str, str],
        risk: RiskConfig | None = None,
        *,
        stp_scope: StpScope = StpScope.ACCOUNT,
        phase: TradingPhase = TradingPhase.OPEN,
    ) -> None:
        insts = list(instruments)
        self.risk = RiskEngine(insts, accounts, risk or RiskConfig())
        self.engine = MatchingEngine(insts, accounts, stp_scope=stp_scope, phase=phase, pre_trade=self.risk)
        self.firms = set(accounts.values())
        self.buckets: dict[str, Bucket] = {}  # session -> its throttle's tokens
        self._throttle: dict[str, int | None] = {}  # firm -> its sessions' max_msgs_per_s
        # type -> operator handler, or _CLIENT for a session's message (throttled); else the engine's
        self._route: dict[type, object] = {
            KillSwitch: self._kill_switch,
            SetLimit: self._set_limit,
            QueryRisk: self._query_risk,
            SetIndexPrice: self._set_index,
            SetMarkPrice: self._set_mark,
            AdjustCollateral: self._adjust_collateral,
            **dict.fromkeys((NewOrder, CancelOrder, ReplaceOrder, MassCancel, QueryOrder), _CLIENT),
        }

    # ------------------------------------------------------------------ the Core interface

    def apply(self, seq: int, ts: int, cmd: AnyCommand) -> list[Event]:
        route = self._route.get(type(cmd))
        if route is not None:
            if route is not _CLIENT:
                return route(seq, ts, cmd)  # type: ignore[operator]
            rate = self._throttle.get(cmd.firm, -1)  # type: ignore[union-attr]
            if rate == -1:
                rate = self._throttle[cmd.firm] = self.risk.limits.throttle(cmd.firm)  # type: ignore[union-attr]
            if rate is not None:
                refused = self._spend(seq, ts, cmd, rate)  # type: ignore[arg-type]
                if refused is not None:
                    return [refused]
        return self.engine.apply(seq, ts, cmd)  # type: ignore[arg-type]

    def _spend(self, seq: int, ts: int, cmd: NewOrder | CancelOrder | ReplaceOrder | MassCancel | QueryOrder, rate: int) -> Event | None:
        """Take a message's token from its session's bucket (see the module docstring); the
        refusal if it is empty. `rate` is an int parameter, not the `int | None` it comes
        from, so that the compiled arithmetic below runs on machine ints."""
        cap = rate * _TOKEN
        b = self.buckets.get(cmd.session)
        if b is None:
            b = self.buckets[cmd.session] = Bucket(cap, ts)
        tokens = b.tokens + (ts - b.last) * rate
        if tokens > cap:
            tokens = cap
        b.last = ts
        if tokens < _TOKEN:
            b.tokens = tokens
            return self._throttled(seq, ts, cmd, rate)
        b.tokens = tokens - _TOKEN
        return None

    def next_expiry(self) -> int | None:
        return self.engine.next_expiry()

    def drain_book_deltas(self, seq: int, ts: int) -> list[BookDelta]:
        return self.engine.drain_book_deltas(seq, ts)

    def validate(self) -> None:
        """Every invariant of the engine, and the risk state against it."""
        self.engine.validate()
        self.risk.validate(self.engine.orders, self.engine.positions)

    def snapshot_state(self) -> dict[str, object]:
        """The risk state and the throttle buckets (venue/snapshot.py's holder protocol;
        the engine is snapshotted on its own)."""
        return {"risk": self.risk.state(), "buckets": sorted((s, b.tokens, b.last) for s, b in self.buckets.items())}

    def restore_state(self, state: Mapping[str, Any]) -> None:
        self.risk.load_state(state["risk"])
        self.buckets = {s: Bucket(tokens, ts) for s, tokens, ts in state["buckets"]}
        self._throttle.clear()

    # ------------------------------------------------------------------ throttle

    def _throttled(self, seq: int, ts: int, cmd: NewOrder | CancelOrder | ReplaceOrder | MassCancel | QueryOrder, rate: int) -> Event:
        self.risk.tallies["throttle"] += 1
        reason, text = RejectReason.THROTTLE, f"risk: throttle {rate:,} messages/s exceeded on session {cmd.session}"
        engine = self.engine
        if isinstance(cmd, (CancelOrder, ReplaceOrder)):
            order = engine.by_cl_ord_id.get(cmd.firm, cmd.orig_cl_ord_id) if cmd.orig_cl_ord_id is not None else engine.orders.get(cmd.order_id or 0)
            status = order.status if order is not None else OrdStatus.REJECTED
            oid = order.order_id if order is not None else None
            return CancelRejected(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.orig_cl_ord_id, oid, isinstance(cmd, ReplaceOrder), status, reason, text)
        if isinstance(cmd, MassCancel):
            return MassCancelDone(seq, ts, cmd.session, cmd.firm, cmd.cl_ord_id, cmd.scope, cmd.symbol, cmd.account, 0, reason, text)
        eid = engine.next_exec_id
        engine.next_exec_id = eid + 1
        if isinstance(cmd, NewOrder):
            view = OrderView(0, cmd.cl_ord_id, None, cmd.qty, cmd.price, cmd.stop_px, cmd.ord_type, cmd)
            return ExecReport(seq, ts, eid, ExecType.REJECTED, OrdStatus.REJECTED, view, 0, 0, 0, reason, text)
        entry = NewOrder(session=cmd.session, firm=cmd.firm, account="", cl_ord_id=cmd.cl_ord_id or "", symbol=cmd.symbol, side=cmd.side, ord_type=OrdType.LIMIT, qty=0)
        view = OrderView(cmd.order_id or 0, cmd.cl_ord_id or "", None, 0, None, None, OrdType.LIMIT, entry)
        return ExecReport(seq, ts, eid, ExecType.ORDER_STATUS, OrdStatus.REJECTED, view, 0, 0, 0, reason, text)

    # ------------------------------------------------------------------ operator commands

    def _kill_switch(self, seq: int, ts: int, cmd: KillSwitch) -> list[Any]:
        risk = self.risk
        if cmd.scope is KillScope.VENUE:
            if cmd.target:
                return _refused(seq, ts, cmd, RejectReason.INVALID_ORDER, "a venue-wide kill switch takes no target")
            on = risk.venue_killed
        elif cmd.scope is KillScope.FIRM:
            if cmd.target not in self.firms:
                return _refused(seq, ts, cmd, RejectReason.UNKNOWN_ACCOUNT, f"unknown firm {cmd.target!r}")
            on = cmd.target in risk.killed_firms
        else:
            if cmd.target not in risk.accounts:
                return _refused(seq, ts, cmd, RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.target!r}")
            on = cmd.target in risk.killed_accounts
        what = "venue-wide" if cmd.scope is KillScope.VENUE else f"for {cmd.scope.value} {cmd.target}"
        if on == cmd.engaged:
            return _refused(seq, ts, cmd, RejectReason.INVALID_ORDER, f"kill switch {what} is already {'engaged' if on else 'released'}")
        events: list[Any] = []  # ExecReports, then KillSwitchSet (an operator event: venue/operator.py)
        risk.set_kill(cmd.scope, cmd.target, cmd.engaged)
        if cmd.engaged:
            scope, target = cmd.scope, cmd.target
            events = self.engine.cancel_where(
                seq, ts,
                lambda o: scope is KillScope.VENUE or (o.view.entry.firm if scope is KillScope.FIRM else o.view.entry.account) == target,
                OrdStatus.CANCELED, f"kill switch engaged {what}")
        events.append(KillSwitchSet(seq, ts, cmd.scope, cmd.target, cmd.engaged, len(events), cmd.reason))
        return events

    def limit_problem(self, cmd: SetLimit) -> str | None:
        """Why `cmd` would be refused for its scope or value, or None (the venue's first
        start checks its opening limits with it before journaling any)."""
        key = (cmd.firm, cmd.account, cmd.symbol)
        return scope_problem(key, self.firms, set(self.risk.accounts), set(self.risk.instruments)) or value_problem(key, cmd.name, cmd.value)

    def _set_limit(self, seq: int, ts: int, cmd: SetLimit) -> list[Any]:
        risk = self.risk
        key = (cmd.firm, cmd.account, cmd.symbol)
        problem = self.limit_problem(cmd)
        if problem is not None:
            return _refused(seq, ts, cmd, RejectReason.INVALID_ORDER, problem)
        previous = risk.limits.get(key, cmd.name)
        if cmd.value is None and previous is None:
            return _refused(seq, ts, cmd, RejectReason.INVALID_ORDER, f"{cmd.name} is not set on that rule")
        risk.set_limit(key, cmd.name, typed(cmd.name, cmd.value))
        self._throttle.clear()
        prev = None if previous is None else Decimal(previous)
        return [LimitSet(seq, ts, cmd.firm, cmd.account, cmd.symbol, cmd.name, cmd.value, prev)]

    def _query_risk(self, seq: int, ts: int, cmd: QueryRisk) -> list[Any]:
        risk = self.risk
        tallies = tuple(risk.tallies.items())
        if not cmd.account:
            return [RiskReport(seq, ts, "", tallies, ())]
        if cmd.account not in risk.accounts:
            return _refused(seq, ts, cmd, RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account!r}")
        a = cmd.account
        coll, im = risk.collateral.get(a, Decimal(0)), risk.margin_of(a)
        rows = [
            ("collateral", f"{money(coll)} {risk.currency}"),
            ("initial_margin", f"{money(im)} {risk.currency}"),
            ("available", f"{money(coll - im)} {risk.currency}"),
            ("open_orders", str(risk.open_orders(a))),
            ("killed", "yes" if risk.killed(risk.accounts[a], a) else "no"),
        ]
        for sym, e in sorted(risk.accts[a].exps.items() if a in risk.accts else ()):
            if e.pos or e.buy_qty or e.sell_qty:
                rows.append((sym, f"position {e.pos:,} open buy {e.buy_qty:,} open sell {e.sell_qty:,}"))
        return [RiskReport(seq, ts, a, tallies, tuple(rows))]

    def _set_index(self, seq: int, ts: int, cmd: SetIndexPrice) -> list[Any]:
        if not any(i.underlying == cmd.underlying for i in self.risk.instruments.values()):
            return _refused(seq, ts, cmd, RejectReason.UNKNOWN_SYMBOL, f"no instrument tracks index {cmd.underlying!r}")
        if not (cmd.price.is_finite() and cmd.price > 0):
            return _refused(seq, ts, cmd, RejectReason.INVALID_PRICE, f"index price must be positive, got {cmd.price}")
        self.risk.set_index(cmd.underlying, cmd.price)
        return [IndexPriceSet(seq, ts, cmd.underlying, cmd.price)]

    def _set_mark(self, seq: int, ts: int, cmd: SetMarkPrice) -> list[Any]:
        if cmd.symbol not in self.risk.instruments:
            return _refused(seq, ts, cmd, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}")
        if cmd.price <= 0:
            return _refused(seq, ts, cmd, RejectReason.INVALID_PRICE, f"mark price must be positive, got {cmd.price} ticks")
        self.risk.set_mark(cmd.symbol, cmd.price)
        return [MarkPriceSet(seq, ts, cmd.symbol, cmd.price)]

    def _adjust_collateral(self, seq: int, ts: int, cmd: AdjustCollateral) -> list[Any]:
        risk = self.risk
        if cmd.account not in risk.accounts:
            return _refused(seq, ts, cmd, RejectReason.UNKNOWN_ACCOUNT, f"unknown account {cmd.account!r}")
        if cmd.currency != risk.currency:
            return _refused(seq, ts, cmd, RejectReason.INVALID_ORDER, f"collateral is held in {risk.currency}, not {cmd.currency}")
        if not cmd.amount.is_finite() or cmd.amount == 0:
            return _refused(seq, ts, cmd, RejectReason.INVALID_QTY, f"amount must be a non-zero number, got {cmd.amount}")
        balance = risk.collateral.get(cmd.account, Decimal(0)) + cmd.amount
        if cmd.amount < 0:
            im = risk.margin_of(cmd.account)
            if balance < im or balance < 0:
                return _refused(seq, ts, cmd, RejectReason.RISK_LIMIT,
                                f"risk: credit: withdrawal would leave collateral {money(balance)} < initial margin {money(im)} {risk.currency}")
        risk.set_collateral(cmd.account, balance)
        return [CollateralChanged(seq, ts, cmd.account, cmd.amount, cmd.currency, balance, cmd.reference)]


def _refused(seq: int, ts: int, cmd: object, reason: RejectReason, text: str) -> list[Any]:
    return [CommandRejected(seq, ts, repr(cmd), reason, text)]


def new_core(cfg: VenueConfig, ref: ReferenceData) -> VenueCore:
    """A fresh core as the venue builds it: recovery replays into one, and the drop-copy
    replica and the ledger's catch-up into others, which must build it exactly alike.
    It starts with no limits: they are in the journal (venue/app.py journals the reference
    data's on the first start), so a replay never meets limits that were changed since."""
    return VenueCore(ref.instruments, ref.accounts(), RiskConfig(currency=cfg.risk.currency),
                     stp_scope=cfg.venue.stp_scope, phase=cfg.venue.opening_phase)
