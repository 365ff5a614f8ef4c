"""The ledger's ingest (fees, positions, idempotence, deposits), its writer threads, the
settlement run's refusals, and reconciliation finding each kind of break."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest

from venue.clearing import formulas, writer
from venue.clearing.eod import EodError, day_cutoff, run_eod
from venue.clearing.ledger import E9, Ledger, Position
from venue.clearing.price_file import read_price_file
from venue.clearing.reconcile import reconcile
from venue.clearing.service import account_map
from venue.clearing.settings import ClearingConfig, FeeRates
from venue.clearing.writer import LedgerWriter
from venue.commands import NewOrder
from venue.events import CollateralChanged, Fill, IndexPriceSet, OrderView
from venue.instruments import Instrument
from venue.types import InstrumentKind, OrdType, Side

PERP = Instrument(symbol="BTC-PERP", kind=InstrumentKind.PERPETUAL, underlying="BTC-USD", quote_currency="USD", tick_size=D("0.5"),
                  lot_size=D(1), multiplier=D("0.001"), reference_price=D(100000), funding_interval_s=28800)
FUT = Instrument(symbol="BTC-FUT", kind=InstrumentKind.FUTURE, underlying="BTC-USD", quote_currency="USD", tick_size=D("0.5"),
                 lot_size=D(1), multiplier=D("0.001"), reference_price=D(100000),
                 expiry=datetime(2026, 12, 26, 8, tzinfo=UTC))
FEES = ClearingConfig(fees=FeeRates(maker=D("0.0001"), taker=D("0.0005")))
DAY = date(2026, 12, 24)
T0 = int(datetime(2026, 12, 24, 10, tzinfo=UTC).timestamp()) * 1_000_000


def view(account: str, side: Side, order_id: int, symbol: str = "BTC-PERP") -> OrderView:
    firm = account.split("-")[0]
    entry = NewOrder(session=firm, firm=firm, account=account, cl_ord_id=f"c{order_id}", symbol=symbol, side=side,
                     ord_type=OrdType.LIMIT, qty=1_000, price=1)
    return OrderView(order_id, f"c{order_id}", None, 1_000, 1, None, OrdType.LIMIT, entry)


def fill(trade_id: int, buyer: str, seller: str, price: int, qty: int, *, aggressor: Side = Side.BUY, ts: int = T0, symbol: str = "BTC-PERP") -> Fill:
    b, s = view(buyer, Side.BUY, 2 * trade_id, symbol), view(seller, Side.SELL, 2 * trade_id + 1, symbol)
    taker, maker = (b, s) if aggressor is Side.BUY else (s, b)
    return Fill(trade_id, ts + trade_id, trade_id, symbol, price, qty, aggressor, taker, 10 * trade_id, 0, qty, 0, maker, 10 * trade_id + 1, 0, qty, 0)


def open_ledger(path: Path, cfg: ClearingConfig = FEES) -> Ledger:
    accounts = {"FIRM1-A": ("FIRM1", "CLEARER1"), "FIRM2-A": ("FIRM2", "CLEARER1"), "FIRM3-A": ("FIRM3", "CLEARER2")}
    return Ledger(path / "ledger.duckdb", instruments=[PERP, FUT], accounts=accounts, clearing=cfg)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path)
    yield led
    led.close()


def rows(led: Ledger, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return led.con.execute(sql, params).fetchall()


def test_trade_rows_carry_fees_members_and_exec_ids(ledger: Ledger) -> None:
    # 200,001 ticks x 3 lots x 0.5 x 0.001 = 300.0015 USD: taker 0.15000075 -> 0.15, maker 0.03
    ledger.ingest([fill(1, "FIRM1-A", "FIRM3-A", 200_001, 3, aggressor=Side.SELL)])
    assert rows(ledger, "SELECT trade_id, price, qty, aggressor, buy_member, sell_member, buy_fee, sell_fee, buy_exec_id, sell_exec_id FROM trades") == [
        (1, D("100000.5"), 3, "SELL", "CLEARER1", "CLEARER2", D("0.03"), D("0.15"), 11, 10)]


@pytest.mark.parametrize("rate", ["0.0005", "-0.0001", "0.00037"])
def test_fees_in_duckdb_equal_the_formula(tmp_path: Path, rate: str) -> None:
    led = open_ledger(tmp_path, ClearingConfig(fees=FeeRates(maker=D(rate), taker=D(rate))))
    trades = [fill(i, "FIRM1-A", "FIRM2-A", 199_990 + 7 * i, i % 13 + 1) for i in range(1, 400)]
    led.ingest(trades)
    got = dict(rows(led, "SELECT trade_id, buy_fee FROM trades"))
    for t in trades:
        assert got[t.trade_id] == formulas.fee(PERP.notional(t.price, t.qty), D(rate)), t.trade_id
    led.close()


def test_positions_average_cost_and_realised(ledger: Ledger) -> None:
    ledger.ingest([fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10), fill(2, "FIRM2-A", "FIRM1-A", 200_200, 4)])
    # FIRM1: +10 @ 100,000, -4 @ 100,100: avg 100,000, realised 4 x 100 x 0.001 = 0.4
    assert rows(ledger, "SELECT account, qty, avg_price, realised FROM positions_v ORDER BY 1") == [
        ("FIRM1-A", 6, D(100000), D("0.4")), ("FIRM2-A", -6, D(100000), D("-0.4"))]


def test_replayed_events_change_nothing_and_survive_a_reopen(tmp_path: Path) -> None:
    batch = [fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10), fill(2, "FIRM2-A", "FIRM1-A", 200_200, 4),
             CollateralChanged(3, T0, "FIRM1-A", D(5000), "USD", D(5000), "wire 1")]
    led = open_ledger(tmp_path)
    assert led.ingest(batch).trades == 2
    snapshot = rows(led, "SELECT * FROM positions ORDER BY 1"), rows(led, "SELECT * FROM cash_entries ORDER BY ALL")
    again = led.ingest(batch)
    assert (again.trades, again.duplicates, again.breaks) == (0, 2, 0)
    led.close()
    led = open_ledger(tmp_path)
    assert led.max_trade_id == 2 and led.last_seq == 3
    assert led.ingest(batch).trades == 0
    assert (rows(led, "SELECT * FROM positions ORDER BY 1"), rows(led, "SELECT * FROM cash_entries ORDER BY ALL")) == snapshot
    assert rows(led, "SELECT count(*) FROM trades") == [(2,)]
    led.close()


def test_a_reused_trade_id_is_a_break(ledger: Ledger) -> None:
    ledger.ingest([fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10)])
    res = ledger.ingest([fill(1, "FIRM1-A", "FIRM3-A", 200_000, 10)])
    assert res.breaks == 1 and "trade 1 replayed with different terms" in ledger.breaks[0]
    assert rows(ledger, "SELECT sell_account FROM trades") == [("FIRM2-A",)]


def test_deposits_are_double_entry(ledger: Ledger) -> None:
    ledger.ingest([CollateralChanged(5, T0, "FIRM1-A", D("2500.25"), "USD", D("2500.25"), "wire"),
                   CollateralChanged(6, T0, "FIRM1-A", D(-500), "USD", D("2000.25"), "out")])
    assert rows(ledger, "SELECT movement_id, account, kind, amount FROM cash_entries ORDER BY 1, 2") == [
        ("COLL-5-FIRM1-A", "CH:BANK", "DEPOSIT", D("-2500.25")), ("COLL-5-FIRM1-A", "FIRM1-A", "DEPOSIT", D("2500.25")),
        ("COLL-6-FIRM1-A", "CH:BANK", "WITHDRAWAL", D(500)), ("COLL-6-FIRM1-A", "FIRM1-A", "WITHDRAWAL", D(-500))]
    assert ledger.balance("FIRM1-A") == D("2000.25")
    assert rows(ledger, "SELECT * FROM unbalanced_movements") == []


def test_writer_jobs_see_every_batch_handed_over_before_them(ledger: Ledger) -> None:
    w = LedgerWriter(ledger)
    for i in range(1, 301):
        w([fill(i, "FIRM1-A", "FIRM2-A", 200_000, 1)])
    assert w.submit(lambda led: rows(led, "SELECT count(*) FROM trades")).result(30) == [(300,)]
    w.close(30)
    assert w.trades == 300 and w.failed is None


def test_a_backlog_is_ingested_without_a_sleep_per_ingest(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepare thread sleeps to gather batches, but not again while a full ingest left
    batches waiting: 20 batches handed over during the first sleep are 4 ingests, 1 sleep."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(writer, "time", SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(writer, "MAX_COALESCE", 10)
    monkeypatch.setattr(writer, "COALESCE_S", 0.5)  # every hand-over lands within the first sleep
    w = LedgerWriter(ledger)
    for i in range(1, 41, 2):
        w([fill(i, "FIRM1-A", "FIRM2-A", 200_000, 1), fill(i + 1, "FIRM2-A", "FIRM1-A", 200_000, 1)])
    w.flush(30)
    w.close(30)
    assert (w.trades, w.failed, sleeps) == (40, None, [0.5])


def test_account_map_prefers_an_account_entitlement_to_a_firm_one() -> None:
    members = [SimpleNamespace(id="M1", firms=["FIRM1", "FIRM2"], accounts=[]), SimpleNamespace(id="M2", firms=[], accounts=["FIRM2-B"])]
    got = account_map({"FIRM1-A": "FIRM1", "FIRM2-A": "FIRM2", "FIRM2-B": "FIRM2", "FIRM9-A": "FIRM9"}, members)  # type: ignore[arg-type]
    assert got == {"FIRM1-A": ("FIRM1", "M1"), "FIRM2-A": ("FIRM2", "M1"), "FIRM2-B": ("FIRM2", "M2"), "FIRM9-A": ("FIRM9", "")}


# ---------------------------------------------------------------------------- the settlement run refuses


def state(led: Ledger) -> tuple[object, ...]:
    return tuple(rows(led, f"SELECT * FROM {t} ORDER BY ALL") for t in ("cash_entries", "settlement_prices", "eod_runs", "positions", "instruments"))


def test_a_day_that_has_not_ended_is_refused(ledger: Ledger) -> None:
    ledger.ingest([fill(1, "FIRM1-A", "FIRM2-A", 200_000, 1)])
    before = state(ledger)
    with pytest.raises(EodError, match="has not ended"):
        run_eod(ledger, DAY, now_us=day_cutoff(DAY) - 1)
    assert state(ledger) == before


def test_a_day_before_the_last_settled_one_is_refused_and_a_rerun_changes_nothing(ledger: Ledger) -> None:
    ledger.ingest([IndexPriceSet(1, T0, "BTC-USD", D(100000)), fill(2, "FIRM1-A", "FIRM2-A", 200_000, 1)])
    assert run_eod(ledger, DAY, now_us=day_cutoff(DAY)).ran
    before = state(ledger)
    second = run_eod(ledger, DAY, now_us=day_cutoff(DAY))
    assert not second.ran and "nothing changed" in second.message
    with pytest.raises(EodError, match="already settled through 2026-12-24"):
        run_eod(ledger, date(2026, 12, 23), now_us=day_cutoff(DAY))
    assert state(ledger) == before


def test_an_expiry_without_index_prints_in_its_window_stops_the_run(ledger: Ledger) -> None:
    ledger.ingest([IndexPriceSet(1, T0, "BTC-USD", D(100000)), fill(2, "FIRM1-A", "FIRM2-A", 200_000, 1, symbol="BTC-FUT")])
    run_eod(ledger, DAY, now_us=day_cutoff(DAY) + 3 * 86_400_000_000)
    before, positions = state(ledger), {k: (p.qty, p.avg_e9, p.flow_e9) for k, p in ledger.positions.items()}
    expiry_day = date(2026, 12, 26)
    with pytest.raises(EodError, match="BTC-FUT expires at 2026-12-26T08:00:00Z but no BTC-USD index price was set"):
        run_eod(ledger, expiry_day, now_us=day_cutoff(expiry_day))
    assert state(ledger) == before and {k: (p.qty, p.avg_e9, p.flow_e9) for k, p in ledger.positions.items()} == positions


# ---------------------------------------------------------------------------- reconciliation


def test_reconcile_names_each_break(ledger: Ledger) -> None:
    journal = [fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10), fill(2, "FIRM2-A", "FIRM1-A", 200_200, 4), fill(3, "FIRM1-A", "FIRM2-A", 200_000, 1)]
    ledger.ingest(journal[:2] + [fill(4, "FIRM1-A", "FIRM2-A", 200_000, 2)])
    ledger.con.execute("INSERT INTO cash_entries VALUES ('X-1', 'FIRM1-A', '2026-12-24', 0, 'FEE', NULL, -1.00, 'USD', 'hand-made')")
    core_positions = {("FIRM1-A", "BTC-PERP"): 7, ("FIRM2-A", "BTC-PERP"): -7}
    breaks = reconcile(ledger.con, [journal], lambda: core_positions).breaks
    assert breaks == [
        "trade missing from the ledger: TradeID 3 (BTC-PERP, 1 lots) is in the journal only",
        "trade not in the journal: TradeID 4 (BTC-PERP, 2 lots) is in the ledger only",
        "position differs from the journal: FIRM1-A BTC-PERP: journal replay 7, ledger trades 8",
        "position differs from the journal: FIRM2-A BTC-PERP: journal replay -7, ledger trades -8",
        "unbalanced movement: X-1: legs sum to -1.00 over 1 entries (want 0 over 2)",
        "cash does not net to zero: USD sums to -1.00",
    ]


def test_reconcile_of_a_clean_ledger_has_no_breaks(ledger: Ledger) -> None:
    journal = [fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10), CollateralChanged(2, T0, "FIRM1-A", D(10), "USD", D(10), "w")]
    ledger.ingest(journal)
    report = reconcile(ledger.con, [journal], lambda: {("FIRM1-A", "BTC-PERP"): 10, ("FIRM2-A", "BTC-PERP"): -10})
    assert report.breaks == [] and "no breaks" in report.render()


def test_ingest_positions_equal_position_apply(ledger: Ledger) -> None:
    """The ingest loop inlines Position.apply; a seeded random stream must give the same."""
    import random

    rnd = random.Random(3)
    accounts = ["FIRM1-A", "FIRM2-A", "FIRM3-A"]
    fills = []
    for t in range(1, 2001):
        b, s = rnd.sample(accounts, 2)
        fills.append(fill(t, b, s, 199_900 + rnd.randrange(200), rnd.randrange(1, 9), aggressor=rnd.choice([Side.BUY, Side.SELL])))
    ledger.ingest(fills[:1000])
    ledger.ingest(fills[1000:])
    want: dict[tuple[str, str], Position] = {}
    for f in fills:
        for k, d in (((f.buy.entry.account, f.symbol), f.qty), ((f.sell.entry.account, f.symbol), -f.qty)):
            want[k] = want.get(k, Position()).apply(d, f.price * E9)
    assert ledger.positions == want


def test_positions_written_lazily_are_rebuilt_from_trades_on_reopen(tmp_path: Path) -> None:
    led = open_ledger(tmp_path)
    led.write(led.prepare([fill(1, "FIRM1-A", "FIRM2-A", 200_000, 10)], checkpoint=True))
    led.write(led.prepare([fill(2, "FIRM2-A", "FIRM1-A", 200_200, 4), fill(3, "FIRM3-A", "FIRM1-A", 199_000, 3, aggressor=Side.SELL)],
                          checkpoint=False))
    held = dict(led.positions)
    assert rows(led, "SELECT qty FROM positions WHERE account = 'FIRM1-A'") == [(10,)]  # the table lags
    led.close()  # as a crash would: no checkpoint
    led = open_ledger(tmp_path)
    assert led.positions == held
    led.checkpoint()
    assert rows(led, "SELECT account, qty FROM positions ORDER BY 1") == [("FIRM1-A", 3), ("FIRM2-A", -6), ("FIRM3-A", 3)]
    led.close()


def test_a_price_file_feeds_the_final_settlement_once(ledger: Ledger, tmp_path: Path) -> None:
    ledger.ingest([IndexPriceSet(1, T0, "BTC-USD", D(100000)), fill(2, "FIRM1-A", "FIRM2-A", 200_000, 3, symbol="BTC-FUT")])
    run_eod(ledger, DAY, now_us=day_cutoff(DAY))
    prices = tmp_path / "index.csv"
    prices.write_text("time,underlying,price\n2026-12-26T07:40:00Z,BTC-USD,101900\n2026-12-26T07:50:00Z,BTC-USD,102000\n"
                      "2026-12-26T08:00:00Z,BTC-USD,102101\n")
    prints = read_price_file(prices, {"BTC-USD"})
    assert ledger.load_index_prints(prints) == 3 and ledger.load_index_prints(prints) == 0
    expiry_day = date(2026, 12, 26)
    result = run_eod(ledger, expiry_day, now_us=day_cutoff(expiry_day))
    assert result.expired == ["BTC-FUT"] and result.prices["BTC-FUT"].price == D("102000.33")  # 306,001 / 3
    # 3 lots x 0.001 x (102,000.33 - 100,000 carried at the index) = 6.00099 -> 6.00
    assert rows(ledger, "SELECT amount FROM cash_entries WHERE kind = 'FINAL_SETTLEMENT' AND account = 'FIRM1-A'") == [(D("6.00"),)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("when,underlying,price\n", "expected the header time,underlying,price"),
        ("time,underlying,price\n2026-12-26T07:40:00Z,BTC-USD,1\n2026-13-26T07:50:00Z,BTC-USD,2\n", ":3: time '2026-13-26T07:50:00Z' is not ISO 8601"),
        ("time,underlying,price\n2026-12-26T07:40:00Z,DOGE-USD,1\n", ":2: no instrument tracks index 'DOGE-USD'"),
        ("time,underlying,price\n2026-12-26T07:40:00Z,BTC-USD,-5\n", ":2: price must be positive, got -5"),
        ("time,underlying,price\n2026-12-26T07:40:00Z,BTC-USD,abc\n", ":2: price 'abc' is not a decimal number"),
        ("time,underlying,price\n2026-12-26T07:40:00Z,BTC-USD\n", ":2: expected 3 fields, got 2"),
    ],
)
def test_a_bad_price_file_is_refused_naming_the_line(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "index.csv"
    path.write_text(text)
    with pytest.raises(EodError) as exc:
        read_price_file(path, {"BTC-USD"})
    assert error in str(exc.value)
