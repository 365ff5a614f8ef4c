"""The clearing ledger (DESIGN.md: "clearing ledger: trades -> DuckDB"), by concern:

    settings.py   the `clearing:` config section: fees, funding, windows, vols
    formulas.py   pure Decimal arithmetic: fees, variation margin, funding, settlement
                  prices, Black-76, rounding that nets to zero
    schema.py     the DuckDB tables and views, and the venue's own cash accounts
    ledger.py     Ledger: batched, idempotent ingest of the sequencer's events
    positions.py  positions per account and instrument (average cost), kept in memory
    writer.py     LedgerWriter: the sequencer subscriber and its two writer threads
    prices.py     the day's settlement prices by the documented rules
    eod.py        the settlement run, once per business day
    files.py      members' CSV statements and FIX PositionReport files
    reconcile.py  the ledger checked against a journal replay
    service.py    opening, journal catch-up, settle and check as the venue runs them
    operator.py   `venue eod`, `venue clearing reconcile` and their admin handlers
"""
