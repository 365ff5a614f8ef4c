"""Settlement files: per clearing member and business day, a CSV statement and the same as
FIX 4.4 PositionReports (35=AP), written from the ledger after the settlement run.

The CSV has one header and one row shape, told apart by `record`:
- TRADE     each side of the period's trades of the member's accounts, with its fee, in
            TradeID order;
- POSITION  each account and instrument held or traded: long/short, quantity closed by
            expiry, settlement and prior settlement prices, average entry price, realised
            P&L (half-even to the cent), and the day's fees, premium, variation margin,
            funding, final settlement;
- ACCOUNT   each account with cash: opening balance, the day's deposits and withdrawals and
            each settlement amount, the net due from (+) or to (-) the clearing house, and
            the closing balance;
- TOTAL     the member: the sums of its ACCOUNT rows.
Amounts are the ledger's cash entries to the cent, so the file's totals equal the ledger's.
Prices are written without trailing zeros. DuckDB writes the CSV itself (COPY), so a day
of a million trades takes about a second, not a Python loop.

The FIX file holds one PositionReport per POSITION row, one message per line (standard
SOH delimiters, BodyLength and CheckSum): PosAmt 708 by PosAmtType 707 = FMTM (variation
margin), PREM (premium), SETL (final settlement), and the venue's FUND (funding) and FEES
(fees), which are not FIX 4.4 enumerations; their sum per account equals the ACCOUNT row's
net due. SettlPriceType 731 is 1 (final) for observed prices, 2 (theoretical) for Black-76
or carried prices.

Files are written once (to a temporary name, fsynced, then renamed); a rerun leaves them.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb

from venue.clearing.ledger import one, utc

COLUMNS = [
    "record", "business_date", "clearing_member", "firm", "account", "symbol", "trade_id", "side", "qty", "price",
    "long_qty", "short_qty", "closed_qty", "settlement_price", "settlement_method", "prior_settlement_price", "avg_price",
    "realised_pnl", "fees", "premium", "variation_margin", "funding", "final_settlement", "deposits_withdrawals",
    "opening_balance", "net_due", "closing_balance", "currency",
]
KINDS = {"fees": "FEE", "premium": "PREMIUM", "variation_margin": "VM", "funding": "FUNDING", "final_settlement": "FINAL_SETTLEMENT"}
POS_AMT_TYPES = {"variation_margin": "FMTM", "premium": "PREM", "final_settlement": "SETL", "funding": "FUND", "fees": "FEES"}
OBSERVED = ("vwap", "mid", "index", "final")
SOH = "\x01"

# num(x): a decimal as text without trailing zeros ('' for NULL); money(x): to the cent, 0.00 for NULL
_MACROS = """
CREATE OR REPLACE TEMP MACRO stmt_num(x) AS CASE WHEN x IS NULL THEN '' ELSE
    coalesce(nullif(rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.'), ''), '0') END;
CREATE OR REPLACE TEMP MACRO stmt_money(x) AS CAST(coalesce(x, 0) AS DECIMAL(18,2));
"""


def paths(out_dir: Path, member: str, day: date) -> tuple[Path, Path]:
    stem = f"{member}-{day:%Y%m%d}"
    return out_dir / str(day) / f"{stem}.csv", out_dir / str(day) / f"{stem}.fix"


def write_statements(con: duckdb.DuckDBPyConnection, day: date, out_dir: Path, *, currency: str, comp_id: str) -> list[Path]:
    """Write every clearing member's files for a settled day; return the paths written."""
    run = one(con, "SELECT cutoff_us, prev_cutoff_us FROM eod_runs WHERE business_date = ?", (day,))
    if run is None:
        raise ValueError(f"{day} has not been settled; run `venue eod --date {day}` first")
    cutoff, prev_cutoff = run
    con.execute(_MACROS)
    start = prev_cutoff if prev_cutoff is not None else -(2**62)
    con.execute(f"CREATE OR REPLACE TEMP TABLE statement_rows AS {_STATEMENT}", {"day": day, "start": start, "cutoff": cutoff})
    members = [m for (m,) in con.execute("SELECT DISTINCT member FROM statement_rows ORDER BY 1").fetchall()]
    written: list[Path] = []
    for member in members:
        csv_path, fix_path = paths(out_dir, member, day)
        if csv_path.exists() and fix_path.exists():
            continue
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv_path.with_suffix(".csv.tmp")
        con.execute(
            f"COPY (SELECT {', '.join(_OUT)} FROM statement_rows WHERE member = $member ORDER BY ord, sort_trade, sort_side, sort_account, sort_symbol)"
            f" TO '{_quoted(tmp)}' (HEADER, DELIMITER ',')", {"member": member, "day": day, "currency": currency})
        _publish(tmp, csv_path)
        _atomic(fix_path, _fix_text(con, member, day, cutoff, comp_id, currency))
        written += [csv_path, fix_path]
    con.execute("DROP TABLE statement_rows")
    return written


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _publish(tmp: Path, path: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="ascii", newline="") as f:
        f.write(text)
    _publish(tmp, path)


_AMOUNTS = ", ".join(f"sum(amount) FILTER (WHERE kind = '{k}') AS {c}" for c, k in KINDS.items())
_MONEY = ", ".join(f"stmt_money({c}) AS {c}" for c in KINDS)

# Typed columns, NULL where a record has no value (COPY writes NULL as an empty field), so
# the million-row TRADE section is not turned into text column by column here.
_STATEMENT = f"""
WITH acc AS (SELECT account, firm, clearing_member AS member FROM accounts WHERE clearing_member <> ''),
day_trades AS MATERIALIZED (  -- each price written once per trade, not per side
    SELECT trade_id, symbol, qty, stmt_num(price) AS price, buy_member, buy_account, buy_firm, buy_fee,
           sell_member, sell_account, sell_firm, sell_fee
    FROM trades WHERE ts_us >= $start AND ts_us < $cutoff),
day_cash AS MATERIALIZED (
    SELECT acc.member, c.account, c.symbol, c.kind, sum(c.amount) AS amount FROM cash_entries c JOIN acc USING (account)
    WHERE c.business_date = $day GROUP BY ALL),
by_position AS (SELECT account, symbol, {_AMOUNTS} FROM day_cash WHERE symbol IS NOT NULL GROUP BY ALL),
by_account AS (
    SELECT account, {_AMOUNTS}, sum(amount) FILTER (WHERE kind IN ('DEPOSIT', 'WITHDRAWAL')) AS deposits,
           sum(amount) FILTER (WHERE kind NOT IN ('DEPOSIT', 'WITHDRAWAL')) AS net_due
    FROM day_cash GROUP BY ALL),
opening AS (
    SELECT c.account, sum(c.amount) AS balance FROM cash_entries c JOIN acc USING (account)
    WHERE c.business_date < $day GROUP BY ALL),
accounts_out AS (
    SELECT acc.member, acc.account, acc.firm, coalesce(o.balance, 0) AS opening, b.* EXCLUDE (account)
    FROM acc LEFT JOIN opening o USING (account) LEFT JOIN by_account b USING (account)
    WHERE o.account IS NOT NULL OR b.account IS NOT NULL)
SELECT member, 1 AS ord, trade_id AS sort_trade, side AS sort_side, NULL::VARCHAR AS sort_account, NULL::VARCHAR AS sort_symbol,
       'TRADE' AS record, firm, account, symbol, trade_id, side, qty, price,
       NULL::BIGINT AS long_qty, NULL::BIGINT AS short_qty, NULL::BIGINT AS closed_qty, NULL::VARCHAR AS settlement_price,
       NULL::VARCHAR AS settlement_method, NULL::VARCHAR AS prior_settlement_price, NULL::VARCHAR AS avg_price,
       NULL::DECIMAL(18,2) AS realised_pnl, CAST(-fee AS DECIMAL(18,2)) AS fees, NULL::DECIMAL(18,2) AS premium,
       NULL::DECIMAL(18,2) AS variation_margin, NULL::DECIMAL(18,2) AS funding, NULL::DECIMAL(18,2) AS final_settlement,
       NULL::DECIMAL(18,2) AS deposits_withdrawals, NULL::DECIMAL(18,2) AS opening_balance, NULL::DECIMAL(18,2) AS net_due,
       NULL::DECIMAL(18,2) AS closing_balance
FROM (SELECT buy_member AS member, trade_id, symbol, 'BUY' AS side, buy_account AS account, buy_firm AS firm, qty, price, buy_fee AS fee
      FROM day_trades WHERE buy_member <> ''
      UNION ALL
      SELECT sell_member, trade_id, symbol, 'SELL', sell_account, sell_firm, qty, price, sell_fee
      FROM day_trades WHERE sell_member <> '')
UNION ALL
SELECT acc.member, 2, NULL, NULL, e.account, e.symbol, 'POSITION', acc.firm, e.account, e.symbol, NULL, NULL, NULL, NULL,
       greatest(e.qty, 0), greatest(-e.qty, 0), e.closed_qty,
       stmt_num(e.settlement_price), s.method, nullif(stmt_num(e.prior_settlement_price), ''), stmt_num(e.avg_price),
       CAST(round_even(e.realised, 2) AS DECIMAL(18,2)),
       {", ".join(f"stmt_money(p.{c})" for c in KINDS)}, NULL, NULL, NULL, NULL
FROM eod_positions e JOIN acc USING (account) LEFT JOIN settlement_prices s USING (business_date, symbol)
LEFT JOIN by_position p ON p.account = e.account AND p.symbol = e.symbol
WHERE e.business_date = $day
UNION ALL
SELECT member, 3, NULL, NULL, account, NULL, 'ACCOUNT', firm, account, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, {_MONEY}, stmt_money(deposits), stmt_money(opening), stmt_money(net_due),
       stmt_money(opening + coalesce(deposits, 0) + coalesce(net_due, 0))
FROM accounts_out
UNION ALL
SELECT member, 4, NULL, NULL, NULL, NULL, 'TOTAL', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, {", ".join(f"stmt_money(sum({c}))" for c in KINDS)}, stmt_money(sum(deposits)),
       stmt_money(sum(opening)), stmt_money(sum(net_due)), stmt_money(sum(opening + coalesce(deposits, 0) + coalesce(net_due, 0)))
FROM accounts_out GROUP BY member
"""
_OUT = ["record", "CAST($day AS VARCHAR) AS business_date", "member AS clearing_member", *COLUMNS[3:-1], "$currency AS currency"]


def _fix_text(con: duckdb.DuckDBPyConnection, member: str, day: date, cutoff: int, comp_id: str, currency: str) -> str:
    """PositionReports: DuckDB renders each report's fields from Account to the last PosAmt;
    here each gets its header fields and numbers, BeginString, BodyLength and CheckSum."""
    amounts = " || ".join(f"'707={code}{SOH}708=' || {col} || '{SOH}'" for col, code in POS_AMT_TYPES.items())
    tails = con.execute(f"""
        SELECT '1=' || account || '{SOH}581=1{SOH}15=' || $currency || '{SOH}730=' || settlement_price
            || '{SOH}731=' || CASE WHEN settlement_method IN {OBSERVED} THEN '1' ELSE '2' END
            || CASE WHEN prior_settlement_price IS NULL THEN '' ELSE '{SOH}734=' || prior_settlement_price END
            || '{SOH}453=1{SOH}448=' || $member || '{SOH}447=D{SOH}452=4{SOH}55=' || symbol || '{SOH}702=1{SOH}703=TOT{SOH}704=' || long_qty
            || '{SOH}705=' || short_qty || '{SOH}753={len(POS_AMT_TYPES)}{SOH}' || {amounts}
        FROM statement_rows WHERE member = $member AND record = 'POSITION' ORDER BY account, symbol""",
        {"member": member, "currency": currency}).fetchall()
    sending = utc(cutoff).strftime("%Y%m%d-%H:%M:%S.%f")
    head = f"35=AP{SOH}49={comp_id}{SOH}56={member}{SOH}"
    report = f"{SOH}52={sending}{SOH}721={member}-{day:%Y%m%d}-"
    middle = f"{SOH}727={len(tails)}{SOH}728=0{SOH}715={day:%Y%m%d}{SOH}"
    lines = []
    for n, (tail,) in enumerate(tails, 1):
        body = f"{head}34={n}{report}{n}{middle}{tail}"
        begin = f"8=FIX.4.4{SOH}9={len(body)}{SOH}"
        lines.append(f"{begin}{body}10={sum((begin + body).encode('ascii')) % 256:03d}{SOH}")
    return "\n".join(lines) + ("\n" if lines else "")
