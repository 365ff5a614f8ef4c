"""Every reason the venue refuses something, and how each one is said in FIX.

One closed enum, numbered by the stage that refuses (exchange-core's CommandResultCode):
1xx the request itself (format, grid, fields), 2xx the order's or instrument's state,
3xx pre-trade risk and operator controls, 4xx matching. Each member knows the FIX reason
code it is rendered with; which message carries it (ExecutionReport 39=8,
OrderCancelReject 35=9, BusinessMessageReject 35=j) follows from the request that was
refused, so the gateway keeps one table from request type to message.
"""

from __future__ import annotations

from enum import Enum


class RejectReason(Enum):
    """value = (code, OrdRejReason 103, CxlRejReason 102, BusinessRejectReason 380)."""

    # 1xx: the request
    INVALID_QTY = (101, 13, 99, 0)
    INVALID_PRICE = (102, 18, 99, 0)
    INVALID_ORDER = (103, 11, 99, 0)  # unsupported combination of type, TIF and flags
    INVALID_EXPIRE_TIME = (104, 4, 99, 0)
    MISSING_FIELD = (105, 99, 99, 5)
    UNSUPPORTED_MESSAGE = (106, 99, 99, 3)
    # 2xx: state
    UNKNOWN_SYMBOL = (201, 1, 99, 2)
    UNKNOWN_ACCOUNT = (202, 15, 99, 0)
    ACCOUNT_NOT_PERMITTED = (203, 15, 99, 6)
    DUPLICATE_CL_ORD_ID = (204, 6, 6, 0)
    UNKNOWN_ORDER = (205, 5, 1, 1)
    ORDER_DONE = (206, 5, 0, 0)
    PHASE_CLOSED = (207, 2, 99, 4)
    PHASE_HALTED = (208, 2, 99, 4)
    NOT_IN_PRE_OPEN = (209, 2, 99, 4)
    STOP_WOULD_TRIGGER = (210, 99, 99, 0)
    QTY_BELOW_FILLED = (211, 13, 99, 0)
    # 3xx: risk and operator controls
    RISK_LIMIT = (301, 3, 99, 0)
    PRICE_BAND = (302, 16, 99, 0)
    KILL_SWITCH = (303, 3, 2, 0)
    THROTTLE = (304, 3, 2, 0)
    # 4xx: matching
    POST_ONLY_WOULD_CROSS = (401, 99, 99, 0)
    REDUCE_ONLY_WOULD_INCREASE = (402, 99, 99, 0)

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def ord_rej_reason(self) -> int:
        return self.value[1]

    @property
    def cxl_rej_reason(self) -> int:
        return self.value[2]

    @property
    def business_reject_reason(self) -> int:
        return self.value[3]
