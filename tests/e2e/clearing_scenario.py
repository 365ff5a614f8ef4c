"""Three simulated days of trading, index moves, funding and an expiry, worked by hand; the
direct (sequencer) and FIX end-to-end clearing tests both play it and check the files.

Config: the demo (fees maker 1 bp / taker 5 bp, options 2 / 3 bp; funding interest 0.0001,
clamp 0.0005, cap 0.0075 per 8 h; VWAP and final windows 30 min; BTC-USD vol 0.6).
Contract size 0.001 BTC for every BTC contract. FIRM1-A and FIRM2-A hold 10,000,000 USD.

Day 1, 2026-12-24
  07:00 index 100,000
  10:00 FIRM2 sells 10 BTC-PERP @ 100,000 (maker), FIRM1 buys (taker)      fees 0.50 / 0.10
  11:00 FIRM1 bids 5 BTC-26DEC26 @ 101,000 (maker), FIRM2 sells (taker)     fees 0.05 / 0.25
  12:00 mark BTC-PERP 100,200
  13:00 FIRM2 offers 20 CALL @ 4,000 (maker), FIRM1 buys (taker)            fees 0.02 / 0.02
        premium 20 x 0.001 x 4,000 = 80.00, FIRM1 -> FIRM2
  22:00 index 100,500
  23:45 FIRM1 offers 4 BTC-PERP @ 100,100 (maker), FIRM2 buys (taker)     fees 0.04 / 0.20
  settlement: PERP VWAP of 23:30-24:00 = 100,100; FUTURE index 100,500 (no trade in the
  window, empty book); CALL Black-76 (F 100,500, K 100,000, 32 h, vol 0.6) = 1,713.95 -> 1,715;
  PUT 1,213.95 -> 1,215; ETH-PERP nothing observed: reference 3,500
  VM PERP FIRM1 (+10 @ 100,000, -4 @ 100,100) to 100,100: 0.001 x (6 x 100,100 - 599,600) = 1.00
  VM FUTURE FIRM1 +5 @ 101,000 to 100,500: -2.50
  funding 08:00 rate 0.0001 (mark: reference 100,000) but no position; 16:00 mark 100,200,
  index 100,000: premium 0.002, rate 0.002 - 0.0005 = 0.0015; FIRM1 +10 pays
  10 x 0.001 x 100,200 x 0.0015 = 1.503 -> 1.50
  FIRM1 net due: -0.61 fees - 80.00 premium + 1.00 - 2.50 VM - 1.50 funding = -83.61
  FIRM2: -0.57 + 80.00 - 1.00 + 2.50 + 1.50 = +82.43; the fee account +1.18

Day 2, 2026-12-25
  12:00 index 101,000, mark BTC-PERP 101,000
  14:00 FIRM2 offers 2 BTC-26DEC26 @ 100,800 (maker), FIRM1 buys (taker)  fees 0.10 / 0.02
  funding 00:00 and 08:00: mark 100,200, index 100,500: premium -0.0029850746..., rate
  -0.00248507; FIRM1 +6 receives 6 x 0.001 x 100,200 x 0.00248507 = 1.494024 -> 1.49, twice;
  16:00 rate 0.0001 (no premium): FIRM1 pays 0.0606 -> 0.06. Funding FIRM1 +2.92
  settlement: PERP index 101,000; FUTURE index 101,000; CALL (F 101,000, 8 h) 1,333.76 -> 1,335
  VM PERP 6 x 900 x 0.001 = 5.40; FUTURE 5 x 500 + 2 x 200 = 2,900 x 0.001 = 2.90
  FIRM1 net: -0.10 + 2.92 + 5.40 + 2.90 = +11.12; FIRM2 -0.02 - 2.92 - 5.40 - 2.90 = -11.24

Day 3, 2026-12-26: expiry 08:00
  07:40 index 101,900; 07:50 102,000; 08:00 102,101: final (306,001 / 3) = 102,000.33
  FUTURE final settlement FIRM1 +7: 7 x 1,000.33 x 0.001 = 7.00231 -> 7.00
  CALL FIRM1 +20: intrinsic 2,000.33 x 20 x 0.001 = 40.0066 -> 40.01
  funding 00:00 rate 0.0001: -0.06; 08:00 and 16:00: index 102,101 vs mark 101,000, premium
  -0.0107834, rate capped at -0.0075: FIRM1 receives 6 x 0.001 x 101,000 x 0.0075 = 4.545,
  a tie, to the even cent 4.54, twice. Funding +9.02
  PERP settles at the index 102,101: VM 6 x 1,101 x 0.001 = 6.606 -> 6.61
  FIRM1 net: 7.00 + 40.01 + 9.02 + 6.61 = +62.64; FIRM2 -62.64
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Protocol

import simplefix

DAY1, DAY2, DAY3, DAY4 = date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 27)
PERP, FUT, CALL, PUT = "BTC-PERP", "BTC-26DEC26", "BTC-26DEC26-100000-C", "BTC-26DEC26-100000-P"


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC).timestamp()) * 1_000_000


# (time, action, arguments): trade = maker firm, maker side, taker firm, symbol, lots, price
SCRIPT: list[tuple[int, str, tuple[Any, ...]]] = [
    (at(DAY1, 7), "index", ("BTC-USD", "100000")),
    (at(DAY1, 10), "trade", ("FIRM2", "sell", "FIRM1", PERP, 10, "100000")),
    (at(DAY1, 11), "trade", ("FIRM1", "buy", "FIRM2", FUT, 5, "101000")),
    (at(DAY1, 12), "mark", (PERP, "100200")),
    (at(DAY1, 13), "trade", ("FIRM2", "sell", "FIRM1", CALL, 20, "4000")),
    (at(DAY1, 22), "index", ("BTC-USD", "100500")),
    (at(DAY1, 23, 45), "trade", ("FIRM1", "sell", "FIRM2", PERP, 4, "100100")),
    (at(DAY2, 0, 0, 5), "eod", (DAY1,)),
    (at(DAY2, 12), "index", ("BTC-USD", "101000")),
    (at(DAY2, 12, 0, 1), "mark", (PERP, "101000")),
    (at(DAY2, 14), "trade", ("FIRM2", "sell", "FIRM1", FUT, 2, "100800")),
    (at(DAY3, 0, 0, 5), "eod", (DAY2,)),
    (at(DAY3, 7, 40), "index", ("BTC-USD", "101900")),
    (at(DAY3, 7, 50), "index", ("BTC-USD", "102000")),
    (at(DAY3, 8), "index", ("BTC-USD", "102101")),
    (at(DAY4, 0, 0, 5), "eod", (DAY3,)),
]

Z = "0.00"
# (day, account, symbol) -> POSITION row fields
POSITIONS: dict[tuple[date, str, str], dict[str, str]] = {
    (DAY1, "FIRM1-A", PERP): {"long_qty": "6", "short_qty": "0", "settlement_price": "100100", "settlement_method": "vwap",
                               "prior_settlement_price": "", "avg_price": "100000", "realised_pnl": "0.40", "fees": "-0.54",
                               "variation_margin": "1.00", "funding": "-1.50", "premium": Z, "final_settlement": Z},
    (DAY1, "FIRM2-A", PERP): {"long_qty": "0", "short_qty": "6", "avg_price": "100000", "realised_pnl": "-0.40", "fees": "-0.30",
                               "variation_margin": "-1.00", "funding": "1.50"},
    (DAY1, "FIRM1-A", FUT): {"long_qty": "5", "settlement_price": "100500", "settlement_method": "index", "fees": "-0.05",
                              "variation_margin": "-2.50"},
    (DAY1, "FIRM2-A", FUT): {"short_qty": "5", "fees": "-0.25", "variation_margin": "2.50"},
    (DAY1, "FIRM1-A", CALL): {"long_qty": "20", "settlement_price": "1715", "settlement_method": "black76", "fees": "-0.02",
                               "premium": "-80.00", "variation_margin": Z},
    (DAY1, "FIRM2-A", CALL): {"short_qty": "20", "fees": "-0.02", "premium": "80.00"},
    (DAY2, "FIRM1-A", PERP): {"long_qty": "6", "settlement_price": "101000", "settlement_method": "index",
                               "prior_settlement_price": "100100", "fees": Z, "variation_margin": "5.40", "funding": "2.92"},
    (DAY2, "FIRM2-A", PERP): {"short_qty": "6", "variation_margin": "-5.40", "funding": "-2.92"},
    (DAY2, "FIRM1-A", FUT): {"long_qty": "7", "prior_settlement_price": "100500", "settlement_price": "101000",
                              "avg_price": "100942.857142857", "fees": "-0.10", "variation_margin": "2.90"},
    (DAY2, "FIRM2-A", FUT): {"short_qty": "7", "fees": "-0.02", "variation_margin": "-2.90"},
    (DAY2, "FIRM1-A", CALL): {"long_qty": "20", "settlement_price": "1335", "prior_settlement_price": "1715", "premium": Z},
    (DAY3, "FIRM1-A", FUT): {"long_qty": "0", "short_qty": "0", "closed_qty": "7", "settlement_price": "102000.33",
                              "settlement_method": "final", "final_settlement": "7.00", "variation_margin": Z},
    (DAY3, "FIRM2-A", FUT): {"closed_qty": "-7", "final_settlement": "-7.00"},
    (DAY3, "FIRM1-A", CALL): {"long_qty": "0", "closed_qty": "20", "settlement_price": "2000.33", "final_settlement": "40.01"},
    (DAY3, "FIRM2-A", CALL): {"closed_qty": "-20", "final_settlement": "-40.01"},
    (DAY3, "FIRM1-A", PERP): {"long_qty": "6", "settlement_price": "102101", "variation_margin": "6.61", "funding": "9.02"},
    (DAY3, "FIRM2-A", PERP): {"short_qty": "6", "variation_margin": "-6.61", "funding": "-9.02"},
}
# (day, account) -> ACCOUNT row fields
ACCOUNTS: dict[tuple[date, str], dict[str, str]] = {
    (DAY1, "FIRM1-A"): {"opening_balance": "10000000.00", "fees": "-0.61", "premium": "-80.00", "variation_margin": "-1.50",
                         "funding": "-1.50", "net_due": "-83.61", "closing_balance": "9999916.39"},
    (DAY1, "FIRM2-A"): {"opening_balance": "10000000.00", "fees": "-0.57", "premium": "80.00", "variation_margin": "1.50",
                         "funding": "1.50", "net_due": "82.43", "closing_balance": "10000082.43"},
    (DAY2, "FIRM1-A"): {"opening_balance": "9999916.39", "net_due": "11.12", "closing_balance": "9999927.51"},
    (DAY2, "FIRM2-A"): {"net_due": "-11.24", "closing_balance": "10000071.19"},
    (DAY3, "FIRM1-A"): {"final_settlement": "47.01", "funding": "9.02", "variation_margin": "6.61", "net_due": "62.64",
                         "closing_balance": "9999990.15"},
    (DAY3, "FIRM2-A"): {"net_due": "-62.64", "closing_balance": "10000008.55"},
}
EXPIRED = {DAY3: [FUT, CALL, PUT]}


class Driver(Protocol):
    """One way of running the venue: the sequencer directly, or over FIX."""

    out_dir: Path

    def set_time(self, ts_us: int) -> None: ...

    def index(self, underlying: str, price: str) -> Awaitable[None]: ...

    def mark(self, symbol: str, price: str) -> Awaitable[None]: ...

    def trade(self, maker: str, side: str, taker: str, symbol: str, qty: int, price: str) -> Awaitable[None]: ...

    def eod(self, day: date) -> Awaitable[str]: ...

    def ledger(self, sql: str, params: tuple[Any, ...] = ()) -> Awaitable[list[tuple[Any, ...]]]: ...


async def play(driver: Driver) -> list[str]:
    """Run the script; after each settlement run check the day's files and the ledger."""
    messages = []
    for ts, action, args in SCRIPT:
        driver.set_time(ts)
        if action == "eod":
            messages.append(await driver.eod(args[0]))
            await check_day(driver, args[0])
        else:
            await getattr(driver, action)(*args)
    return messages


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_fix(path: Path) -> list[simplefix.FixMessage]:
    parser = simplefix.FixParser()
    parser.append_buffer(path.read_bytes().replace(b"\n", b""))
    out = []
    while (m := parser.get_message()) is not None:
        out.append(m)
    return out


def _amounts(m: simplefix.FixMessage) -> dict[str, str]:
    types = [v.decode() for t, v in m.pairs if t == b"707"]
    values = [v.decode() for t, v in m.pairs if t == b"708"]
    return dict(zip(types, values))


async def check_day(driver: Driver, day: date) -> None:
    """The member's statement for `day`, field by field, and its totals against the ledger."""
    stem = f"CLEARER1-{day:%Y%m%d}"
    rows = read_csv(driver.out_dir / str(day) / f"{stem}.csv")
    pos = {(r["account"], r["symbol"]): r for r in rows if r["record"] == "POSITION"}
    for (d, account, symbol), want in POSITIONS.items():
        if d == day:
            got = pos[(account, symbol)]
            assert {k: got[k] for k in want} == want, f"{day} {account} {symbol}"
    accounts = {r["account"]: r for r in rows if r["record"] == "ACCOUNT"}
    for (d, account), want in ACCOUNTS.items():
        if d == day:
            assert {k: accounts[account][k] for k in want} == want, f"{day} {account}"
    # totals reconcile to the ledger to the cent
    ledger = {a: (D(due), D(bal)) for a, due, bal in await driver.ledger(
        "SELECT account, coalesce(sum(amount) FILTER (WHERE business_date = ? AND kind NOT IN ('DEPOSIT', 'WITHDRAWAL')), 0),"
        " coalesce(sum(amount) FILTER (WHERE business_date <= ?), 0) FROM cash_entries JOIN accounts USING (account)"
        " WHERE clearing_member = 'CLEARER1' GROUP BY 1", (day, day))}
    for account, row in accounts.items():
        assert (D(row["net_due"]), D(row["closing_balance"])) == ledger[account], account
    total = next(r for r in rows if r["record"] == "TOTAL")
    assert D(total["net_due"]) == sum(d for d, _ in ledger.values())
    assert D(total["closing_balance"]) == sum(b for _, b in ledger.values())
    trades = [r for r in rows if r["record"] == "TRADE"]
    assert sum(D(r["fees"]) for r in trades) == sum(D(r["fees"]) for r in accounts.values())
    # the FIX file: one PositionReport per POSITION row, same numbers
    reports = read_fix(driver.out_dir / str(day) / f"{stem}.fix")
    assert len(reports) == len(pos)
    for m in reports:
        row = pos[(m.get(1).decode(), m.get(55).decode())]
        assert m.get(35) == b"AP" and m.get(715) == f"{day:%Y%m%d}".encode() and m.get(448) == b"CLEARER1"
        assert (m.get(704).decode(), m.get(705).decode(), m.get(730).decode()) == (row["long_qty"], row["short_qty"], row["settlement_price"])
        assert _amounts(m) == {"FMTM": row["variation_margin"], "PREM": row["premium"], "SETL": row["final_settlement"],
                               "FUND": row["funding"], "FEES": row["fees"]}
    per_account: dict[str, D] = {}
    for m in reports:
        per_account[m.get(1).decode()] = per_account.get(m.get(1).decode(), D(0)) + sum(D(v) for v in _amounts(m).values())
    assert per_account == {a: D(r["net_due"]) for a, r in accounts.items() if a in per_account}
    # conservation: every movement two legs netting to zero, the venue nets to zero, positions net to zero
    assert await driver.ledger("SELECT * FROM unbalanced_movements") == []
    assert (await driver.ledger("SELECT sum(amount) FROM cash_entries"))[0][0] == 0
    assert await driver.ledger("SELECT symbol FROM positions GROUP BY 1 HAVING sum(qty) <> 0") == []
