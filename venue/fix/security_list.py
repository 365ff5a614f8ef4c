"""SecurityListRequest (x) answered with SecurityList (y): the listed contracts' specs.

Reference data only (read at startup), so it is answered on the requesting session's
quickfix thread without going through the sequencer. SecurityListRequestType 0 asks for
one Symbol, 4 for every instrument. Each entry carries what a client needs to build
orders the venue will accept: SecurityType (FUT for futures and perpetuals, OPT for
options), SecurityDesc (perpetual / future / option), MaturityDate and StrikePrice /
PutOrCall where they apply, ContractMultiplier, Currency, RoundLot (the lot size),
MinPriceIncrement (969, the tick size) and the underlying index.
"""

from __future__ import annotations

from collections.abc import Mapping

from venue.fix.reports import HEAD, TAIL, decimal_text
from venue.instruments import Instrument
from venue.types import InstrumentKind, OptionRight


def _entry(inst: Instrument) -> str:
    parts = [f"55={inst.symbol}", f"167={'OPT' if inst.kind is InstrumentKind.OPTION else 'FUT'}"]
    if inst.expiry is not None:
        parts += [f"200={inst.expiry:%Y%m}", f"541={inst.expiry:%Y%m%d}"]
    if inst.strike is not None:
        parts.append(f"202={decimal_text(inst.strike)}")
    if inst.right is not None:
        parts.append(f"201={'1' if inst.right is OptionRight.CALL else '0'}")
    parts += [
        f"231={decimal_text(inst.multiplier)}",
        f"107={inst.kind.value}",
        "711=1",
        f"311={inst.underlying}",
        f"15={inst.quote_currency}",
        f"561={decimal_text(inst.lot_size)}",
        f"969={decimal_text(inst.tick_size)}",
    ]
    return "\x01".join(parts) + "\x01"


def security_list(fields: Mapping[int, str], instruments: Mapping[str, Instrument], response_id: str) -> str:
    """The SecurityList answering one request (tag -> value). SecurityRequestResult 0
    valid, 2 no instruments found, 1 invalid request (a type the venue does not take)."""
    req_id, kind = fields.get(320, ""), fields.get(559, "")
    head = f"{HEAD}35=y\x01320={req_id}\x01322={response_id}\x01"
    if kind == "0":
        symbol = fields.get(55, "")
        chosen = [instruments[symbol]] if symbol in instruments else []
        if not chosen:
            return f"{head}560=2\x01{TAIL}"  # y has no Text outside its entries
    else:
        chosen = [instruments[s] for s in sorted(instruments)]
    body = "".join(_entry(i) for i in chosen)
    return f"{head}560=0\x01393={len(chosen)}\x01893=Y\x01146={len(chosen)}\x01{body}{TAIL}"
