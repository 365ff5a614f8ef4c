"""Enums shared by every part of the venue, valued as FIX 4.4 renders them.

Each enum's value is its FIX wire value where FIX has one, so the gateway maps with
`Side(msg_value)` / `side.value` and never keeps a second table.

Every enum here hashes as its value's type does (`__hash__ = str.__hash__`): Enum's own
`__hash__` hashes the member name in Python code, which costs ~90 ns on the matching hot
path and disagrees with the str/int equality these mixin enums have.
"""

from __future__ import annotations

from enum import Enum, IntEnum


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
# and a module global ~10 ns, and the hot path makes dozens of them per order.
BUY = Side.BUY
OT_LIMIT = OrdType.LIMIT
OT_MARKET = OrdType.MARKET
OT_STOP = OrdType.STOP
OT_STOP_LIMIT = OrdType.STOP_LIMIT
PH_CLOSED = TradingPhase.CLOSED
PH_EXPIRED = TradingPhase.EXPIRED
PH_HALTED = TradingPhase.HALTED
PH_OPEN = TradingPhase.OPEN
PH_PRE_OPEN = TradingPhase.PRE_OPEN
STP_CANCEL_AGGRESSING = StpMode.CANCEL_AGGRESSING
STP_CANCEL_RESTING = StpMode.CANCEL_RESTING
S_CANCELED = OrdStatus.CANCELED
S_EXPIRED = OrdStatus.EXPIRED
S_FILLED = OrdStatus.FILLED
S_NEW = OrdStatus.NEW
S_PARTIALLY_FILLED = OrdStatus.PARTIALLY_FILLED
S_REJECTED = OrdStatus.REJECTED
TIF_DAY = TimeInForce.DAY
TIF_FOK = TimeInForce.FOK
TIF_GTC = TimeInForce.GTC
TIF_GTD = TimeInForce.GTD
TIF_IOC = TimeInForce.IOC
X_CANCELED = ExecType.CANCELED
X_EXPIRED = ExecType.EXPIRED
X_NEW = ExecType.NEW
X_ORDER_STATUS = ExecType.ORDER_STATUS
X_REJECTED = ExecType.REJECTED
X_REPLACED = ExecType.REPLACED
X_TRIGGERED = ExecType.TRIGGERED
SELL = Side.SELL
