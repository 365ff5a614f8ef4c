"""The daily settlement run: prices, variation margin, funding, fees, premiums, expiries.

A business day is the UTC calendar day; its cutoff is 00:00 UTC the next day. The run for
day D settles the period since the previous run's cutoff (or since the first trade) up to
D's cutoff, so a skipped day is settled by the next run rather than lost, and a day is
refused until it has ended. The whole run is one DuckDB transaction keyed by the business
date: it happens exactly once, a second run of the same day changes nothing and says so,
and a run that fails (an expiring contract with no index, a bad date) changes nothing.

What it books, each movement a pair of cash entries netting to zero (schema.py names the
venue's accounts):
- fees of the period's trades: account <-> CH:FEES (per account and instrument);
- option premiums, paid in full: buyer -> CH -> seller (per account and instrument);
- variation margin of futures and perpetuals: positions carried in, marked from the
  previous settlement price, and the period's trades, marked from their trade price, to
  today's settlement price: account <-> CH;
- perpetual funding at each funding time in the period (multiples of the instrument's
  interval since 00:00 UTC): positions held at that time x mark x rate: account <-> CH;
- expiry: futures' last variation margin is to the final settlement price (FINAL_SETTLEMENT),
  options pay intrinsic value to longs; positions close, the instrument becomes expired.
Payments that net to zero exactly are rounded per account (half-even to the cent); the
rounding residual moves CH <-> CH:ROUNDING so the clearing house stays flat.

Seam for the margin issue: `margin_run(con, day, cutoff_us)` is called inside the same
transaction once settlement is booked, and writes the margin_calls table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa

from venue.clearing import formulas, schema
from venue.clearing.ledger import E9, Ledger, one, scalar, scanning, utc
from venue.clearing.prices import EodError, SettlementPrice, settlement_prices
from venue.clearing.settings import FundingSettings
from venue.instruments import Instrument
from venue.types import InstrumentKind

MarginRun = Callable[[duckdb.DuckDBPyConnection, date, int], int]
Row = tuple[str, str, int, int, int, Decimal, int, int]  # account, symbol, prev qty, bought qty, bought value (tick-lots), fees, bought, sold

__all__ = ["EodError", "EodResult", "day_cutoff", "run_eod"]


@dataclass(slots=True)
class EodResult:
    business_date: date
    ran: bool  # False: the day was settled before and nothing changed
    message: str
    prices: dict[str, SettlementPrice] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    movements: int = 0
    totals: dict[str, str] = field(default_factory=dict)


def day_cutoff(day: date) -> int:
    """The cutoff of business day `day`: 00:00 UTC the next day, in µs."""
    return int(datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC).timestamp()) * 1_000_000


def run_eod(ledger: Ledger, day: date, *, now_us: int, margin_run: MarginRun | None = None) -> EodResult:
    """Settle business day `day` once. Raises EodError (nothing changed) on bad input."""
    con = ledger.con
    done = one(con, "SELECT run_at_us, summary FROM eod_runs WHERE business_date = ?", (day,))
    if done is not None:
        return EodResult(day, False, f"{day} was settled at {utc(done[0]).isoformat()}; nothing changed", totals=json.loads(done[1]))
    last = one(con, "SELECT business_date, cutoff_us FROM eod_runs ORDER BY business_date DESC LIMIT 1")
    if last is not None and last[0] > day:
        raise EodError(f"cannot settle {day}: the ledger is already settled through {last[0]}")
    cutoff = day_cutoff(day)
    if cutoff > now_us:
        raise EodError(f"{day} has not ended: its cutoff is {utc(cutoff).isoformat()}, the venue's time is {utc(now_us).isoformat()}")
    con.execute("BEGIN")
    try:
        result = _Run(ledger, day, cutoff, last, now_us).book(margin_run)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        ledger.reload()
        raise
    return result


class _Run:
    def __init__(self, ledger: Ledger, day: date, cutoff: int, last: tuple[date, int] | None, now_us: int) -> None:
        self.ledger, self.con, self.day, self.cutoff, self.now_us = ledger, ledger.con, day, cutoff, now_us
        self.prev_date: date | None = last[0] if last else None
        self.prev_cutoff: int | None = last[1] if last else None
        # trades since the last run (the first run takes every trade before its cutoff);
        # funding from the last run, or from the start of the day on the first run
        self.start = self.prev_cutoff if self.prev_cutoff is not None else 0
        self.funding_start = self.prev_cutoff if self.prev_cutoff is not None else day_cutoff(day - timedelta(days=1))
        self.currency = ledger.cfg.currency
        # movements in groups: (kind, symbol, ref, counterparty, accounts, cents); a movement's
        # id is kind-ref-account, its two legs the account's and the counterparty's
        self.groups: list[tuple[str, str, str, str, list[str], list[int]]] = []
        self.movements = 0
        self.totals: dict[str, Decimal] = defaultdict(Decimal)

    # ------------------------------------------------------------------ booking

    def _pay(self, kind: str, symbol: str, ref: str, counter: str, amounts: dict[str, Decimal]) -> None:
        """Movements of whole cents: each amount to its account, its opposite to `counter`."""
        paid = {a: v for a, v in amounts.items() if v}
        if not paid:
            return
        self.groups.append((kind, symbol, ref, counter, list(paid), [int(v.scaleb(2)) for v in paid.values()]))
        self.movements += len(paid)
        if counter != schema.ROUNDING_ACCOUNT:
            self.totals[kind] += sum(paid.values(), Decimal(0))

    def _settle_netting(self, kind: str, symbol: str, ref: str, exact: dict[str, Decimal]) -> None:
        """Round payments that net to zero, pay them against CH, move the residual to rounding."""
        rounded, residual = formulas.round_netting(exact)
        self._pay(kind, symbol, ref, schema.CLEARING_HOUSE, rounded)
        self._pay("ROUNDING", symbol, f"{kind}-{ref}", schema.ROUNDING_ACCOUNT, {schema.CLEARING_HOUSE: residual})

    def book(self, margin_run: MarginRun | None) -> EodResult:
        con, ledger, day = self.con, self.ledger, self.day
        ledger.store_positions()  # the table current to the last trade: expiry closes and the snapshot read it
        statuses = dict(con.execute("SELECT symbol, status FROM instruments").fetchall())
        active = {s: i for s, i in ledger.instruments.items() if statuses.get(s) == "active"}
        expiring = {s for s, i in active.items() if i.expiry is not None and int(i.expiry.timestamp() * 1_000_000) <= self.cutoff}
        previous = {s: p for s, p in con.execute(
            "SELECT symbol, price FROM settlement_prices WHERE business_date = ?", (self.prev_date,)).fetchall()} if self.prev_date else {}
        prices = settlement_prices(con, active, cutoff_us=self.cutoff, previous=previous, expiring=expiring, cfg=ledger.cfg)
        con.executemany("INSERT INTO settlement_prices VALUES (?, ?, ?, ?, ?)",
                        [(day, s, p.price, p.method, p.detail) for s, p in sorted(prices.items())])
        con.execute(
            "CREATE OR REPLACE TEMP TABLE eod_sides AS"
            " SELECT buy_account AS account, symbol, ts_us, qty AS sq, CAST(price_ticks AS HUGEINT) * qty AS sv, buy_fee AS fee"
            " FROM trades WHERE ts_us >= ? AND ts_us < ?"
            " UNION ALL SELECT sell_account, symbol, ts_us, -qty, -(CAST(price_ticks AS HUGEINT) * qty), sell_fee"
            " FROM trades WHERE ts_us >= ? AND ts_us < ?",
            (self.start, self.cutoff, self.start, self.cutoff),
        )
        rows = con.execute(
            "SELECT coalesce(a.account, p.account), coalesce(a.symbol, p.symbol), coalesce(p.qty, 0), coalesce(a.sq, 0),"
            " coalesce(a.sv, 0), coalesce(a.fee, 0), coalesce(a.bought, 0), coalesce(a.sold, 0)"
            " FROM (SELECT account, symbol, sum(sq) AS sq, sum(sv) AS sv, sum(fee) AS fee,"
            "       coalesce(sum(sq) FILTER (WHERE sq > 0), 0) AS bought, coalesce(-sum(sq) FILTER (WHERE sq < 0), 0) AS sold"
            "       FROM eod_sides GROUP BY account, symbol) a"
            " FULL OUTER JOIN (SELECT account, symbol, qty FROM eod_positions WHERE business_date = ? AND qty <> 0) p"
            " ON a.account = p.account AND a.symbol = p.symbol",
            (self.prev_date,),
        ).fetchall()
        self._daily(rows, active, expiring, prices, previous)
        self._funding({s: i for s, i in active.items() if i.kind is InstrumentKind.PERPETUAL}, rows, previous)
        self._close_expired(expiring, prices)
        self._write_legs()
        calls = margin_run(con, day, self.cutoff) if margin_run is not None else 0
        totals = {k: str(v) for k, v in sorted(self.totals.items())}
        totals["margin_calls"] = str(calls)
        trades = scalar(con, "SELECT count(*) FROM trades WHERE ts_us >= ? AND ts_us < ?", (self.start, self.cutoff))
        movements = self.movements
        con.execute("INSERT INTO eod_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (day, self.cutoff, self.prev_cutoff, self.now_us, trades, movements, json.dumps(totals)))
        msg = (f"{day} settled: {trades} trades, {len(prices)} settlement prices, {movements} cash movements"
               + (f", expired {', '.join(sorted(expiring))}" if expiring else ""))
        return EodResult(day, True, msg, prices, sorted(expiring), movements, totals)

    def _daily(self, rows: list[Row], active: dict[str, Instrument], expiring: set[str], prices: dict[str, SettlementPrice],
               previous: dict[str, Decimal]) -> None:
        """Fees, premiums, variation margin, option expiry cash; and the day's position rows."""
        vm: dict[str, dict[str, Decimal]] = defaultdict(dict)
        fees: dict[str, dict[str, Decimal]] = defaultdict(dict)
        prem: dict[str, dict[str, Decimal]] = defaultdict(dict)
        final: dict[str, dict[str, Decimal]] = defaultdict(dict)
        eod: list[tuple[str, str, int, int, int, int]] = []
        day = self.day
        for account, symbol, prev_qty, sq, sv, fee, bought, sold in rows:
            inst = active.get(symbol)
            if inst is None:  # an expired contract's trades after expiry: reconcile reports them
                continue
            qty = prev_qty + sq
            cs = inst.lot_size * inst.multiplier
            if fee:
                fees[symbol][account] = -fee
            value = inst.tick_size * sv
            if inst.kind is InstrumentKind.OPTION:
                if sq or sv:
                    prem[symbol][account] = -value * cs
                if symbol in expiring and qty:
                    final[symbol][account] = qty * cs * prices[symbol].price
            else:
                p = formulas.variation_margin(prev_qty=prev_qty, prev_price=previous.get(symbol), bought_qty=sq, bought_value=value,
                                              price=prices[symbol].price, contract_size=cs)
                if p:
                    vm[symbol][account] = p
            closed = qty if symbol in expiring else 0
            eod.append((account, symbol, qty - closed, closed, bought, sold))
        for symbol, amounts in sorted(fees.items()):
            self._pay("FEE", symbol, f"{day}-{symbol}", schema.FEE_ACCOUNT, amounts)
        for symbol, amounts in sorted(prem.items()):
            self._settle_netting("PREMIUM", symbol, f"{day}-{symbol}", amounts)
        for symbol, amounts in sorted(vm.items()):
            self._settle_netting("FINAL_SETTLEMENT" if symbol in expiring else "VM", symbol, f"{day}-{symbol}", amounts)
        for symbol, amounts in sorted(final.items()):
            self._settle_netting("FINAL_SETTLEMENT", symbol, f"{day}-{symbol}", amounts)
        self._write_positions(eod)

    def _funding(self, perps: dict[str, Instrument], rows: list[Row], previous: dict[str, Decimal]) -> None:
        """Funding at every interval boundary in [start, cutoff) of each perpetual."""
        if not perps:
            return
        cfg = self.ledger.cfg.funding
        carried: dict[str, dict[str, int]] = defaultdict(dict)
        for account, symbol, prev_qty, *_ in rows:
            if symbol in perps and prev_qty:
                carried[symbol][account] = prev_qty
        for symbol, inst in sorted(perps.items()):
            assert inst.funding_interval_s is not None  # the config loader requires it of a perpetual
            step = inst.funding_interval_s * 1_000_000
            t = -(-self.funding_start // step) * step
            while t < self.cutoff:
                self._fund_at(symbol, inst, t, carried[symbol], cfg, previous)
                t += step

    def _fund_at(self, symbol: str, inst: Instrument, t: int, carried: dict[str, int], cfg: FundingSettings, previous: dict[str, Decimal]) -> None:
        con = self.con
        index = scalar(con, "SELECT arg_max(price, seq) FROM index_prices WHERE underlying = ? AND ts_us <= ?", (inst.underlying, t))
        if index is None:
            return  # no index yet: no premium to fund; the funding_rates table shows no row for t
        mark = scalar(con, "SELECT arg_max(price, seq) FROM mark_prices WHERE symbol = ? AND ts_us <= ?", (symbol, t))
        if mark is None:
            mark = scalar(con, "SELECT arg_max(price, trade_id) FROM trades WHERE symbol = ? AND ts_us < ?", (symbol, t))
        if mark is None:
            mark = previous.get(symbol, inst.reference_price)
        rate = formulas.funding_rate(mark=mark, index=index, interest_rate=cfg.interest_rate, clamp=cfg.clamp, cap=cfg.cap)
        con.execute("INSERT INTO funding_rates VALUES (?, ?, ?, ?, ?, ?)", (self.day, symbol, t, mark, index, rate))
        held = dict(carried)
        for account, sq in con.execute("SELECT account, sum(sq) FROM eod_sides WHERE symbol = ? AND ts_us < ? GROUP BY account", (symbol, t)).fetchall():
            held[account] = held.get(account, 0) + int(sq)
        cs = inst.lot_size * inst.multiplier
        exact = {a: formulas.funding_payment(qty=q, contract_size=cs, mark=mark, rate=rate) for a, q in held.items() if q}
        if rate and exact:
            self._settle_netting("FUNDING", symbol, f"{symbol}-{utc(t).strftime('%Y%m%dT%H%M%S')}", exact)

    def _close_expired(self, expiring: set[str], prices: dict[str, SettlementPrice]) -> None:
        """Close expired contracts' positions at the final price; mark the contracts expired."""
        ledger = self.ledger
        for symbol in sorted(expiring):
            inst = ledger.instruments[symbol]
            price_e9 = formulas.div_half_even(*((prices[symbol].price / inst.tick_size) * E9).as_integer_ratio())
            ledger.close_positions(symbol, price_e9)
            self.con.execute("UPDATE instruments SET status = 'expired', final_price = ? WHERE symbol = ?", (prices[symbol].price, symbol))
        ledger.store_positions()

    def _write_positions(self, eod: list[tuple[str, str, int, int, int, int]]) -> None:
        if not eod:
            return
        cols = list(zip(*eod))
        batch = pa.table({
            "account": pa.array(cols[0], pa.string()), "symbol": pa.array(cols[1], pa.string()),
            "qty": pa.array(cols[2], pa.int64()), "closed_qty": pa.array(cols[3], pa.int64()),
            "bought": pa.array(cols[4], pa.int64()), "sold": pa.array(cols[5], pa.int64()),
        })
        with scanning(self.con, batch=batch):
            self.con.execute(
                "INSERT INTO eod_positions SELECT ?::DATE, b.account, b.symbol, b.qty, b.closed_qty, b.bought, b.sold,"
                " coalesce(p.avg_price, 0), coalesce(CAST(p.realised AS DECIMAL(38,9)), 0), s.price, ps.price"
                " FROM batch b LEFT JOIN positions_v p ON p.account = b.account AND p.symbol = b.symbol"
                " LEFT JOIN settlement_prices s ON s.business_date = ? AND s.symbol = b.symbol"
                " LEFT JOIN settlement_prices ps ON ps.business_date = ? AND ps.symbol = b.symbol",
                (self.day, self.day, self.prev_date),
            )

    def _write_legs(self) -> None:
        """Every movement's two legs in two bulk INSERTs (amounts travel as whole cents)."""
        if not self.groups:
            return
        cols: dict[str, list[object]] = {"kind": [], "symbol": [], "ref": [], "counter": [], "account": [], "cents": []}
        for kind, symbol, ref, counter, accounts, cents in self.groups:
            n = len(accounts)
            cols["kind"] += [kind] * n
            cols["symbol"] += [symbol] * n
            cols["ref"] += [ref] * n
            cols["counter"] += [counter] * n
            cols["account"] += accounts
            cols["cents"] += cents
        batch = pa.table({k: pa.array(v, pa.int64() if k == "cents" else pa.string()) for k, v in cols.items()})
        with scanning(self.con, batch=batch):
            for leg, sign in (("account", ""), ("counter", "-")):
                self.con.execute(
                    f"INSERT INTO cash_entries SELECT kind || '-' || ref || '-' || account, {leg}, ?::DATE, ?, kind, symbol,"
                    f" {sign}CAST(cents AS DECIMAL(18,0)) * 0.01, ?, ? FROM batch",
                    (self.day, self.cutoff, self.currency, f"settlement {self.day}"),
                )
