"""Index price files: the operator's way to load index prints for settlement (for
instance to settle past days), read the same whether the venue runs or not.

CSV with a header `time,underlying,price`, time in ISO 8601 UTC (no zone means UTC). Any
bad line stops the load with the file and line named; nothing is loaded then.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from venue.clearing.eod import EodError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_price_file(path: Path, underlyings: set[str]) -> list[tuple[int, str, Decimal]]:
    """An index price file: CSV with a header `time,underlying,price`, time in ISO 8601 UTC.
    Any bad line stops the load with the file and line named; nothing is loaded then."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise EodError(f"{path}: cannot read: {exc.strerror}") from None
    if not rows or [c.strip().lower() for c in rows[0]] != ["time", "underlying", "price"]:
        raise EodError(f"{path}:1: expected the header time,underlying,price")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != 3:
            raise EodError(f"{path}:{n}: expected 3 fields, got {len(row)}")
        when, underlying, price = (c.strip() for c in row)
        try:
            dt = datetime.fromisoformat(when)
        except ValueError:
            raise EodError(f"{path}:{n}: time {when!r} is not ISO 8601") from None
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
        if underlying not in underlyings:
            raise EodError(f"{path}:{n}: no instrument tracks index {underlying!r}")
        try:
            px = Decimal(price)
        except InvalidOperation:
            raise EodError(f"{path}:{n}: price {price!r} is not a decimal number") from None
        if not px.is_finite() or px <= 0:
            raise EodError(f"{path}:{n}: price must be positive, got {price}")
        out.append(((dt - _EPOCH) // timedelta(microseconds=1), underlying, px))
    return out
