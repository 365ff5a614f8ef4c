"""`venue clearing reconcile`: the ledger checked against the journal, and against itself.

The journal is the truth for trades (DESIGN.md). Replaying it through a fresh core gives
every Fill the venue ever published; the ledger must hold each exactly once, with the same
terms, and nothing else. Then the ledger's own books must agree:
- every TradeID once (the trades table has no primary key: see schema.py);
- positions equal to the sum of trades (the incrementally kept positions table against a
  SQL sum over trades, and against the core's positions from the replay), expired
  contracts closed to zero;
- positions net to zero per instrument;
- cash nets to zero: every movement has two legs that sum to zero, and the whole venue
  (clearing house, fee, bank and rounding accounts included) sums to zero per currency;
- every deposit and withdrawal the core applied is in the cash ledger once, same amount.
Each break is one line of text; an empty list means the ledger reconciles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb
import pyarrow as pa

from venue.clearing.ledger import scanning
from venue.events import CollateralChanged, Event, Fill

MAX_LISTED = 20  # breaks of one kind printed in full; the rest are counted


@dataclass(slots=True)
class Report:
    journal_trades: int = 0
    ledger_trades: int = 0
    breaks: list[str] = field(default_factory=list)

    def render(self) -> str:
        head = f"reconcile: journal {self.journal_trades:,} trades, ledger {self.ledger_trades:,} trades"
        if not self.breaks:
            return head + "\n  no breaks: every trade once, positions = sum of trades, cash nets to zero"
        return "\n".join([head, f"  {len(self.breaks)} break(s):", *(f"  - {b}" for b in self.breaks)])


class _Collector:
    """Fills and collateral changes out of a replay's event stream."""

    def __init__(self) -> None:
        self.trades: list[tuple[int, str, int, int, str, str, int, int]] = []
        self.collateral: dict[str, Decimal] = {}

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            if type(ev) is Fill:
                b_exec, s_exec = (ev.taker_exec_id, ev.maker_exec_id) if ev.buy is ev.taker else (ev.maker_exec_id, ev.taker_exec_id)
                self.trades.append((ev.trade_id, ev.symbol, ev.price, ev.qty, ev.buy.entry.account, ev.sell.entry.account, b_exec, s_exec))
            elif type(ev) is CollateralChanged:
                self.collateral[f"COLL-{ev.seq}-{ev.account}"] = ev.amount


def reconcile(
    con: duckdb.DuckDBPyConnection, replayed: Iterable[Iterable[Event]], core_positions: Callable[[], Mapping[tuple[str, str], int]]
) -> Report:
    """Check the ledger on `con` against the events of a journal replay (batches of events)
    and the positions the replayed core ends with (asked for once the replay is read)."""
    got = _Collector()
    for batch in replayed:
        got.add(batch)
    rep = Report(journal_trades=len(got.trades), ledger_trades=int(con.execute("SELECT count(*) FROM trades").fetchall()[0][0]))
    _trades(con, got, rep)
    _positions(con, core_positions(), rep)
    _cash(con, got, rep)
    return rep


def _listed(rep: Report, kind: str, rows: Sequence[Sequence[object]], render: str) -> None:
    for r in rows[:MAX_LISTED]:
        rep.breaks.append(f"{kind}: " + render.format(*r))
    if len(rows) > MAX_LISTED:
        rep.breaks.append(f"{kind}: and {len(rows) - MAX_LISTED} more")


def _trades(con: duckdb.DuckDBPyConnection, got: _Collector, rep: Report) -> None:
    cols: list[Sequence[object]] = list(zip(*got.trades)) if got.trades else [[] for _ in range(8)]
    names = ["trade_id", "symbol", "price_ticks", "qty", "buy_account", "sell_account", "buy_exec_id", "sell_exec_id"]
    types = [pa.int64(), pa.string(), pa.int64(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64()]
    with scanning(con, journal=pa.Table.from_arrays([pa.array(c, t) for c, t in zip(cols, types)], names=names)):
        _trade_breaks(con, rep)


def _trade_breaks(con: duckdb.DuckDBPyConnection, rep: Report) -> None:
    _listed(rep, "trade held more than once", con.execute(
        "SELECT trade_id, count(*) FROM trades GROUP BY 1 HAVING count(*) > 1 ORDER BY 1").fetchall(), "TradeID {0} is in the ledger {1} times")
    _listed(rep, "trade missing from the ledger", con.execute(
        "SELECT j.trade_id, j.symbol, j.qty FROM journal j ANTI JOIN trades t USING (trade_id) ORDER BY 1").fetchall(),
        "TradeID {0} ({1}, {2} lots) is in the journal only")
    _listed(rep, "trade not in the journal", con.execute(
        "SELECT t.trade_id, t.symbol, t.qty FROM trades t ANTI JOIN journal j USING (trade_id) ORDER BY 1").fetchall(),
        "TradeID {0} ({1}, {2} lots) is in the ledger only")
    _listed(rep, "trade terms differ", con.execute(
        "SELECT DISTINCT j.trade_id, j.symbol || ' ' || j.qty || '@' || j.price_ticks || ' ' || j.buy_account || '/' || j.sell_account,"
        " t.symbol || ' ' || t.qty || '@' || t.price_ticks || ' ' || t.buy_account || '/' || t.sell_account"
        " FROM journal j JOIN trades t USING (trade_id)"
        " WHERE (j.symbol, j.price_ticks, j.qty, j.buy_account, j.sell_account, j.buy_exec_id, j.sell_exec_id)"
        " <> (t.symbol, t.price_ticks, t.qty, t.buy_account, t.sell_account, t.buy_exec_id, t.sell_exec_id) ORDER BY 1").fetchall(),
        "TradeID {0}: journal {1}, ledger {2}")


def _positions(con: duckdb.DuckDBPyConnection, core_positions: Mapping[tuple[str, str], int], rep: Report) -> None:
    summed = (
        "SELECT account, symbol, sum(q) AS q FROM (SELECT buy_account AS account, symbol, qty AS q FROM trades"
        " UNION ALL SELECT sell_account, symbol, -qty FROM trades) GROUP BY ALL"
    )
    _listed(rep, "position is not the sum of trades", con.execute(
        f"SELECT coalesce(p.account, s.account), coalesce(p.symbol, s.symbol), coalesce(p.qty, 0), coalesce(s.q, 0), i.status"
        f" FROM positions p FULL OUTER JOIN ({summed}) s ON p.account = s.account AND p.symbol = s.symbol"
        f" JOIN instruments i ON i.symbol = coalesce(p.symbol, s.symbol)"
        f" WHERE coalesce(p.qty, 0) <> CASE WHEN i.status = 'expired' THEN 0 ELSE coalesce(s.q, 0) END ORDER BY 1, 2").fetchall(),
        "{0} {1}: ledger position {2}, trades sum to {3} (instrument {4})")
    _listed(rep, "positions do not net to zero", con.execute(
        "SELECT symbol, sum(qty) FROM positions GROUP BY 1 HAVING sum(qty) <> 0 ORDER BY 1").fetchall(), "{0} nets to {1} lots")
    ledger = {(a, s): q for a, s, q in con.execute(f"SELECT account, symbol, q FROM ({summed}) WHERE q <> 0").fetchall()}
    core = {k: q for k, q in core_positions.items() if q}
    diff = sorted((k[0], k[1], core.get(k, 0), ledger.get(k, 0)) for k in set(core) | set(ledger) if core.get(k, 0) != ledger.get(k, 0))
    _listed(rep, "position differs from the journal", diff, "{0} {1}: journal replay {2}, ledger trades {3}")


def _cash(con: duckdb.DuckDBPyConnection, got: _Collector, rep: Report) -> None:
    _listed(rep, "unbalanced movement", con.execute("SELECT movement_id, net, legs FROM unbalanced_movements ORDER BY 1").fetchall(),
            "{0}: legs sum to {1} over {2} entries (want 0 over 2)")
    _listed(rep, "cash does not net to zero", con.execute(
        "SELECT currency, sum(amount) FROM cash_entries GROUP BY 1 HAVING sum(amount) <> 0").fetchall(), "{0} sums to {1}")
    held = dict(con.execute(
        "SELECT movement_id, amount FROM cash_entries WHERE kind IN ('DEPOSIT', 'WITHDRAWAL') AND NOT account LIKE 'CH%'").fetchall())
    missing = sorted((m, a) for m, a in got.collateral.items() if m not in held)
    differ = sorted((m, a, held[m]) for m, a in got.collateral.items() if m in held and held[m] != a)
    extra = sorted((m, a) for m, a in held.items() if m not in got.collateral)
    _listed(rep, "deposit missing from the ledger", missing, "{0}: {1}")
    _listed(rep, "deposit differs", differ, "{0}: journal {1}, ledger {2}")
    _listed(rep, "deposit not in the journal", extra, "{0}: {1}")
