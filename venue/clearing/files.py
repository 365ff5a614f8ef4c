"""Settlement files: per clearing member and business day, a CSV statement and the same as
FIX 4.4 PositionReports (35=AP), written from the ledger after the settlement run.

The CSV has one header and one row shape, told apart by `record`:
- TRADE     each side of the period's trades of the member's accounts, with its fee;
- POSITION  each account and instrument held or traded: long/short, quantity closed by
            expiry, settlement and prior settlement prices, average entry price, realised
            P&L, and the day's fees, premium, variation margin, funding, final settlement;
- ACCOUNT   each account: opening balance, the day's deposits and withdrawals and each
            settlement amount, the net due from (+) or to (-) the clearing house, and the
            closing balance;
- TOTAL     the member: the sums of its ACCOUNT rows.
Amounts are the ledger's cash entries to the cent, so the file's totals equal the ledger's.

The FIX file holds one PositionReport per POSITION row, one message per line (standard
SOH delimiters, BodyLength and CheckSum): PosAmt 708 by PosAmtType 707 = FMTM (variation
margin), PREM (premium), SETL (final settlement), and the venue's FUND (funding) and FEES
(fees), which are not FIX 4.4 enumerations; their sum per account equals the ACCOUNT row's
net due. SettlPriceType 731 is 1 (final) for observed prices, 2 (theoretical) for Black-76
or carried prices.

Files are written once (to a temporary name, then renamed); a rerun leaves existing ones.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import simplefix

from venue.clearing.formulas import to_cents
from venue.clearing.ledger import one, utc

KINDS = {"FEE": "fees", "PREMIUM": "premium", "VM": "variation_margin", "FUNDING": "funding", "FINAL_SETTLEMENT": "final_settlement"}
POS_AMT_TYPES = {"variation_margin": "FMTM", "premium": "PREM", "final_settlement": "SETL", "funding": "FUND", "fees": "FEES"}
COLUMNS = [
    "record", "business_date", "clearing_member", "firm", "account", "symbol", "trade_id", "side", "qty", "price",
    "long_qty", "short_qty", "closed_qty", "settlement_price", "settlement_method", "prior_settlement_price", "avg_price",
    "realised_pnl", "fees", "premium", "variation_margin", "funding", "final_settlement", "deposits_withdrawals",
    "opening_balance", "net_due", "closing_balance", "currency",
]
OBSERVED = {"vwap", "mid", "index", "final"}


def paths(out_dir: Path, member: str, day: date) -> tuple[Path, Path]:
    stem = f"{member}-{day:%Y%m%d}"
    return out_dir / str(day) / f"{stem}.csv", out_dir / str(day) / f"{stem}.fix"


def write_statements(con: duckdb.DuckDBPyConnection, day: date, out_dir: Path, *, currency: str, comp_id: str) -> list[Path]:
    """Write every clearing member's files for a settled day; return the paths written."""
    run = one(con, "SELECT cutoff_us, prev_cutoff_us FROM eod_runs WHERE business_date = ?", (day,))
    if run is None:
        raise ValueError(f"{day} has not been settled; run `venue eod --date {day}` first")
    cutoff, prev_cutoff = run
    members = [m for (m,) in con.execute("SELECT DISTINCT clearing_member FROM accounts WHERE clearing_member <> '' ORDER BY 1").fetchall()]
    written: list[Path] = []
    for member in members:
        csv_path, fix_path = paths(out_dir, member, day)
        if csv_path.exists() and fix_path.exists():
            continue
        rows = _statement(con, member, day, cutoff, prev_cutoff, currency)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic(csv_path, _csv_text(rows))
        _atomic(fix_path, _fix_text(rows, member, day, cutoff, comp_id))
        written += [csv_path, fix_path]
    return written


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _statement(con: duckdb.DuckDBPyConnection, member: str, day: date, cutoff: int, prev_cutoff: int | None, currency: str) -> list[dict[str, object]]:
    base = {"business_date": str(day), "clearing_member": member, "currency": currency}
    firms = dict(con.execute("SELECT account, firm FROM accounts WHERE clearing_member = ?", (member,)).fetchall())
    rows: list[dict[str, object]] = []
    start = prev_cutoff if prev_cutoff is not None else -(2**62)
    for tid, sym, side, acct, firm, qty, price, fee in con.execute(
        "SELECT trade_id, symbol, 'BUY', buy_account, buy_firm, qty, price, buy_fee FROM trades"
        " WHERE buy_member = ? AND ts_us >= ? AND ts_us < ?"
        " UNION ALL SELECT trade_id, symbol, 'SELL', sell_account, sell_firm, qty, price, sell_fee FROM trades"
        " WHERE sell_member = ? AND ts_us >= ? AND ts_us < ? ORDER BY 1, 3",
        (member, start, cutoff, member, start, cutoff),
    ).fetchall():
        rows.append({**base, "record": "TRADE", "firm": firm, "account": acct, "symbol": sym, "trade_id": tid, "side": side,
                     "qty": qty, "price": _num(price), "fees": -fee})
    amounts: dict[tuple[str, str | None], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for acct, sym, kind, amount in con.execute(
        "SELECT c.account, c.symbol, c.kind, sum(c.amount) FROM cash_entries c JOIN accounts a USING (account)"
        " WHERE a.clearing_member = ? AND c.business_date = ? GROUP BY ALL ORDER BY ALL", (member, day)
    ).fetchall():
        amounts[(acct, sym)][KINDS.get(kind, "deposits_withdrawals")] += amount
    per_account: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (acct, _), kinds in amounts.items():
        for k, v in kinds.items():
            per_account[acct][k] += v
    for acct, sym, qty, closed, avg, realised, px, method, prior in con.execute(
        "SELECT e.account, e.symbol, e.qty, e.closed_qty, e.avg_price, e.realised, e.settlement_price, s.method, e.prior_settlement_price"
        " FROM eod_positions e JOIN accounts a USING (account) LEFT JOIN settlement_prices s USING (business_date, symbol)"
        " WHERE a.clearing_member = ? AND e.business_date = ? ORDER BY 1, 2", (member, day)
    ).fetchall():
        got = amounts.get((acct, sym), {})
        rows.append({**base, "record": "POSITION", "firm": firms.get(acct, ""), "account": acct, "symbol": sym,
                     "long_qty": max(qty, 0), "short_qty": max(-qty, 0), "closed_qty": closed, "settlement_price": _num(px),
                     "settlement_method": method or "", "prior_settlement_price": _num(prior), "avg_price": _num(avg),
                     "realised_pnl": to_cents(realised), **{k: got.get(k, Decimal("0.00")) for k in KINDS.values()}})
    opening = dict(con.execute(
        "SELECT c.account, sum(c.amount) FROM cash_entries c JOIN accounts a USING (account)"
        " WHERE a.clearing_member = ? AND c.business_date < ? GROUP BY 1", (member, day)
    ).fetchall())
    total: dict[str, Decimal] = defaultdict(Decimal)
    for acct in sorted(set(firms) & (set(per_account) | set(opening))):
        day_amounts = per_account.get(acct, {})
        values = {k: day_amounts.get(k, Decimal("0.00")) for k in (*KINDS.values(), "deposits_withdrawals")}
        values["net_due"] = sum((values[k] for k in KINDS.values()), Decimal("0.00"))
        values["opening_balance"] = opening.get(acct, Decimal("0.00"))
        values["closing_balance"] = values["opening_balance"] + values["deposits_withdrawals"] + values["net_due"]
        rows.append({**base, "record": "ACCOUNT", "firm": firms[acct], "account": acct, **values})
        for k, v in values.items():
            total[k] += v
    rows.append({**base, "record": "TOTAL", **{k: total.get(k, Decimal("0.00")) for k in (*KINDS.values(), "deposits_withdrawals", "net_due", "opening_balance", "closing_balance")}})
    return rows


def _num(value: Decimal | None) -> str:
    """A price as plain text without trailing zeros (100020.50000000 -> 100020.5)."""
    return "" if value is None else format(value.normalize(), "f")


def _csv_text(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    return buf.getvalue()


def _fix_text(rows: list[dict[str, object]], member: str, day: date, cutoff: int, comp_id: str) -> str:
    positions = [r for r in rows if r["record"] == "POSITION"]
    sending = utc(cutoff).strftime("%Y%m%d-%H:%M:%S.%f")
    lines = []
    for n, r in enumerate(positions, 1):
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4")
        m.append_pair(35, "AP")
        m.append_pair(49, comp_id)
        m.append_pair(56, member)
        m.append_pair(34, n)
        m.append_pair(52, sending)
        m.append_pair(721, f"{member}-{day:%Y%m%d}-{n}")
        m.append_pair(727, len(positions))
        m.append_pair(728, 0)
        m.append_pair(715, f"{day:%Y%m%d}")
        m.append_pair(1, r["account"])
        m.append_pair(581, 1)
        m.append_pair(15, r["currency"])
        m.append_pair(730, r["settlement_price"])
        m.append_pair(731, 1 if r["settlement_method"] in OBSERVED else 2)
        if r["prior_settlement_price"] != "":
            m.append_pair(734, r["prior_settlement_price"])
        m.append_pair(453, 1)
        m.append_pair(448, member)
        m.append_pair(447, "D")
        m.append_pair(452, 4)
        m.append_pair(55, r["symbol"])
        m.append_pair(702, 1)
        m.append_pair(703, "TOT")
        m.append_pair(704, r["long_qty"])
        m.append_pair(705, r["short_qty"])
        m.append_pair(753, len(POS_AMT_TYPES))
        for field, code in POS_AMT_TYPES.items():
            m.append_pair(707, code)
            m.append_pair(708, r[field])
        lines.append(m.encode().decode("ascii"))
    return "\n".join(lines) + ("\n" if lines else "")
