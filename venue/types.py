"""Enums shared by every part of the venue, valued as FIX 4.4 renders them.

Each enum's value is its FIX wire value where FIX has one, so the gateway maps with
`Side(msg_value)` / `side.value` and never keeps a second table.

Every enum here hashes as its value's type does (`__hash__ = str.__hash__`): Enum's own
`__hash__` hashes the member name in Python code, which costs ~90 ns on the matching hot
path and disagrees with the str/int equality these mixin enums have.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Final


class Side(IntEnum):
    __hash__ = int.__hash__

    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: a fill changes a position by sign * qty."""
        return 1 if self is Side.BUY else -1


class OrdType(str, Enum):
    __hash__ = str.__hash__

    MARKET = "1"
    LIMIT = "2"
    STOP = "3"
    STOP_LIMIT = "4"


class TimeInForce(str, Enum):
    __hash__ = str.__hash__

    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"
    GTD = "6"


class OrdStatus(str, Enum):
    __hash__ = str.__hash__

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"


class ExecType(str, Enum):
    __hash__ = str.__hash__

    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"
    RESTATED = "D"
    TRADE = "F"
    ORDER_STATUS = "I"
    TRIGGERED = "L"


class TradingPhase(str, Enum):
    """An instrument's phase. PRE_OPEN collects orders without matching; OPEN uncrosses
    what was collected at one price, then matches continuously."""

    __hash__ = str.__hash__

    PRE_OPEN = "pre_open"
    OPEN = "open"
    HALTED = "halted"
    CLOSED = "closed"
    EXPIRED = "expired"


class StpMode(str, Enum):
    """Self-trade prevention: what happens when an order would trade with its own
    account (or firm, per StpScope)."""

    __hash__ = str.__hash__

    CANCEL_RESTING = "cancel_resting"
    CANCEL_AGGRESSING = "cancel_aggressing"
    CANCEL_BOTH = "cancel_both"


class StpScope(str, Enum):
    __hash__ = str.__hash__

    ACCOUNT = "account"
    FIRM = "firm"


class InstrumentKind(str, Enum):
    __hash__ = str.__hash__

    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


class OptionRight(str, Enum):
    __hash__ = str.__hash__

    CALL = "call"
    PUT = "put"


class MassCancelScope(str, Enum):
    """FIX MassCancelRequestType (530) values the venue takes. Either may be narrowed to
    one account by the request's Account (1)."""

    __hash__ = str.__hash__

    INSTRUMENT = "1"
    ALL = "7"


# Enum members as module constants: in Python 3.11 `Enum.MEMBER` costs ~50 ns a lookup
# and a module global ~10 ns, and the hot path makes dozens of them per order. Final, so
# that the compiled core (setup.py) reads them from C statics, not from a module's dict.
BUY: Final = Side.BUY
OT_LIMIT: Final = OrdType.LIMIT
OT_MARKET: Final = OrdType.MARKET
OT_STOP: Final = OrdType.STOP
OT_STOP_LIMIT: Final = OrdType.STOP_LIMIT
PH_CLOSED: Final = TradingPhase.CLOSED
PH_EXPIRED: Final = TradingPhase.EXPIRED
PH_HALTED: Final = TradingPhase.HALTED
PH_OPEN: Final = TradingPhase.OPEN
PH_PRE_OPEN: Final = TradingPhase.PRE_OPEN
STP_CANCEL_AGGRESSING: Final = StpMode.CANCEL_AGGRESSING
STP_CANCEL_RESTING: Final = StpMode.CANCEL_RESTING
S_CANCELED: Final = OrdStatus.CANCELED
S_EXPIRED: Final = OrdStatus.EXPIRED
S_FILLED: Final = OrdStatus.FILLED
S_NEW: Final = OrdStatus.NEW
S_PARTIALLY_FILLED: Final = OrdStatus.PARTIALLY_FILLED
S_REJECTED: Final = OrdStatus.REJECTED
TIF_DAY: Final = TimeInForce.DAY
TIF_FOK: Final = TimeInForce.FOK
TIF_GTC: Final = TimeInForce.GTC
TIF_GTD: Final = TimeInForce.GTD
TIF_IOC: Final = TimeInForce.IOC
X_CANCELED: Final = ExecType.CANCELED
X_EXPIRED: Final = ExecType.EXPIRED
X_NEW: Final = ExecType.NEW
X_ORDER_STATUS: Final = ExecType.ORDER_STATUS
X_REJECTED: Final = ExecType.REJECTED
X_REPLACED: Final = ExecType.REPLACED
X_TRIGGERED: Final = ExecType.TRIGGERED
SELL: Final = Side.SELL
