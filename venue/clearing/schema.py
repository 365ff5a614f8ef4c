"""The clearing ledger's DuckDB schema: tables, keys and the views people query.

Keys are what make the ledger idempotent. A trade is its venue TradeID: the writer skips
any TradeID at or below the highest it holds (they are strictly increasing and a journal
replay reproduces them); a primary key here cost 40% of ingest, and reconcile proves each
is held once. A mark is its sequence number, a deposit its (sequence number, account), a
settlement run its business date: every settlement movement is written in that run's
transaction. Replaying the event stream or re-running a day inserts nothing twice.

Money is DECIMAL(18,2) in the settlement currency; prices DECIMAL(18,8); quantities BIGINT
lots. Times are `ts_us`, UTC microseconds as the sequencer stamped them, with a TIMESTAMP
beside it for people. Venue-side accounts in the cash ledger are named `CH` (the clearing
house, every member's counterparty), `CH:FEES` (fee income), `CH:BANK` (money in and out of
the venue) and `CH:ROUNDING` (cents left by rounding payments that net to zero).
"""

from __future__ import annotations

CLEARING_HOUSE = "CH"
FEE_ACCOUNT = "CH:FEES"
BANK_ACCOUNT = "CH:BANK"
ROUNDING_ACCOUNT = "CH:ROUNDING"

DDL = """
-- the sequence number of the last event the ledger holds: restart catch-up replays after it
-- and the TradeID the positions table is current to (a reopen replays the trades after it)
CREATE TABLE IF NOT EXISTS ledger_state (last_seq BIGINT NOT NULL, positions_trade_id BIGINT NOT NULL);
INSERT INTO ledger_state SELECT 0, 0 WHERE NOT EXISTS (SELECT 1 FROM ledger_state);
CREATE TABLE IF NOT EXISTS instruments (
    symbol VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, underlying VARCHAR NOT NULL, currency VARCHAR NOT NULL,
    tick_size DECIMAL(18,8) NOT NULL, lot_size DECIMAL(18,8) NOT NULL, multiplier DECIMAL(18,8) NOT NULL,
    contract_size DECIMAL(18,8) NOT NULL,                     -- lot_size x multiplier: underlying units per lot
    expiry_us BIGINT, strike DECIMAL(18,8), option_right VARCHAR, funding_interval_s INTEGER,
    status VARCHAR NOT NULL DEFAULT 'active',                 -- active | expired
    final_price DECIMAL(18,8)
);
-- fee in cents = half-even(tick-lots x num / den): formulas.FeeRule's integers per instrument (for reference:
-- the ledger computes trades' fees as it writes them, ledger.TradeTerms)
CREATE TABLE IF NOT EXISTS fee_rules (
    symbol VARCHAR PRIMARY KEY, maker_num HUGEINT NOT NULL, maker_den HUGEINT NOT NULL,
    taker_num HUGEINT NOT NULL, taker_den HUGEINT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account VARCHAR PRIMARY KEY, firm VARCHAR NOT NULL, clearing_member VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    trade_id BIGINT NOT NULL, seq BIGINT NOT NULL, ts_us BIGINT NOT NULL, ts TIMESTAMP NOT NULL,
    symbol VARCHAR NOT NULL, price_ticks BIGINT NOT NULL, price DECIMAL(18,8) NOT NULL, qty BIGINT NOT NULL,
    aggressor VARCHAR NOT NULL,                               -- BUY | SELL
    buy_account VARCHAR NOT NULL, buy_firm VARCHAR NOT NULL, buy_member VARCHAR NOT NULL,
    buy_order_id BIGINT NOT NULL, buy_exec_id BIGINT NOT NULL, buy_fee DECIMAL(18,2) NOT NULL,
    sell_account VARCHAR NOT NULL, sell_firm VARCHAR NOT NULL, sell_member VARCHAR NOT NULL,
    sell_order_id BIGINT NOT NULL, sell_exec_id BIGINT NOT NULL, sell_fee DECIMAL(18,2) NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    account VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    qty BIGINT NOT NULL,                                      -- signed lots
    avg_ticks DECIMAL(38,9) NOT NULL,                         -- average entry price, ticks (average-cost method)
    flow_ticks DECIMAL(38,9) NOT NULL,                        -- sum of -signed qty x price: realised = flow + qty x avg
    PRIMARY KEY (account, symbol)
);
CREATE TABLE IF NOT EXISTS cash_entries (
    movement_id VARCHAR NOT NULL, account VARCHAR NOT NULL, business_date DATE NOT NULL, ts_us BIGINT NOT NULL,
    kind VARCHAR NOT NULL,            -- DEPOSIT WITHDRAWAL FEE PREMIUM VM FUNDING FINAL_SETTLEMENT ROUNDING
    symbol VARCHAR, amount DECIMAL(18,2) NOT NULL, currency VARCHAR NOT NULL, reference VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS index_prices (
    seq BIGINT NOT NULL, ts_us BIGINT NOT NULL, underlying VARCHAR NOT NULL, price DECIMAL(18,8) NOT NULL,
    PRIMARY KEY (seq, underlying)
);
CREATE TABLE IF NOT EXISTS mark_prices (
    seq BIGINT NOT NULL, ts_us BIGINT NOT NULL, symbol VARCHAR NOT NULL, price DECIMAL(18,8) NOT NULL,
    PRIMARY KEY (seq, symbol)
);
CREATE TABLE IF NOT EXISTS book_tops (
    symbol VARCHAR PRIMARY KEY, best_bid DECIMAL(18,8), best_ask DECIMAL(18,8), seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS settlement_prices (
    business_date DATE NOT NULL, symbol VARCHAR NOT NULL, price DECIMAL(18,8) NOT NULL,
    method VARCHAR NOT NULL,          -- vwap | mid | index | black76 | previous | reference | final
    detail VARCHAR NOT NULL, PRIMARY KEY (business_date, symbol)
);
CREATE TABLE IF NOT EXISTS funding_rates (
    business_date DATE NOT NULL, symbol VARCHAR NOT NULL, funding_ts_us BIGINT NOT NULL,
    mark DECIMAL(18,8) NOT NULL, index_price DECIMAL(18,8) NOT NULL, rate DECIMAL(18,8) NOT NULL,
    PRIMARY KEY (symbol, funding_ts_us)
);
CREATE TABLE IF NOT EXISTS eod_positions (
    business_date DATE NOT NULL, account VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    qty BIGINT NOT NULL,                                      -- held at the cutoff (0 once expired)
    closed_qty BIGINT NOT NULL,                               -- closed by expiry at the final settlement price
    bought BIGINT NOT NULL, sold BIGINT NOT NULL,             -- lots traded in the period
    avg_price DECIMAL(38,9) NOT NULL, realised DECIMAL(38,9) NOT NULL,
    settlement_price DECIMAL(18,8), prior_settlement_price DECIMAL(18,8)
);
CREATE TABLE IF NOT EXISTS eod_runs (
    business_date DATE PRIMARY KEY, cutoff_us BIGINT NOT NULL, prev_cutoff_us BIGINT,
    run_at_us BIGINT NOT NULL, trades BIGINT NOT NULL, movements BIGINT NOT NULL, summary VARCHAR NOT NULL
);
-- The margin run (its own issue) writes here inside the settlement run's transaction.
CREATE TABLE IF NOT EXISTS margin_calls (
    business_date DATE NOT NULL, account VARCHAR NOT NULL, currency VARCHAR NOT NULL,
    required DECIMAL(18,2) NOT NULL, collateral DECIMAL(18,2) NOT NULL, call_amount DECIMAL(18,2) NOT NULL,
    status VARCHAR NOT NULL, PRIMARY KEY (business_date, account)
);
CREATE OR REPLACE VIEW positions_v AS
SELECT p.account, p.symbol, p.qty,
       CAST(p.avg_ticks * i.tick_size AS DECIMAL(38,9)) AS avg_price,
       CAST((p.flow_ticks + p.qty * p.avg_ticks) AS DECIMAL(38,9)) * CAST(i.tick_size * i.contract_size AS DECIMAL(18,8)) AS realised
FROM positions p JOIN instruments i USING (symbol);
CREATE OR REPLACE VIEW cash_balances AS
SELECT account, currency, sum(amount) AS balance FROM cash_entries GROUP BY account, currency;
-- Double entry: every movement's legs sum to zero. This view lists the ones that do not (none).
CREATE OR REPLACE VIEW unbalanced_movements AS
SELECT movement_id, sum(amount) AS net, count(*) AS legs FROM cash_entries GROUP BY movement_id HAVING sum(amount) <> 0 OR count(*) <> 2;
"""
