"""A seeded stream of every kind of command, for journal and snapshot tests.

It is not meant to be realistic (bench/journal.py's stream is): it is meant to reach every
corner of the state a snapshot must carry: resting and parked orders, icebergs, GTD expiry,
replaces that keep and lose priority, reduce-only orders, cancels and mass cancels, done
orders looked up again, phase changes and operator commands.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from matching_support import ACCOUNTS, BTC, ETH, T0, order

from venue.commands import (
    AdjustCollateral,
    CancelOrder,
    CancelSessionOrders,
    Command,
    EndOfDay,
    ExpireOrders,
    MassCancel,
    NewOrder,
    QueryOrder,
    RejectRequest,
    ReplaceOrder,
    SetIndexPrice,
    SetMarkPrice,
    SetPhase,
)
from venue.rejects import RejectReason
from venue.types import MassCancelScope, OrdType, Side, TimeInForce, TradingPhase

SYMBOLS = (BTC, ETH)


def stream(seed: int, n: int, *, operator: bool = False) -> Iterator[tuple[int, int, Command]]:
    """n stamped commands (seq from 1, ts rising by 1..2000 µs). `operator` adds index,
    mark and collateral commands, which MatchingEngine alone does not take."""
    rnd = random.Random(seed)
    ts = T0
    mid = {BTC: 100, ETH: 100}
    sent: list[tuple[str, str, str, Side]] = []  # (firm, cl_ord_id, symbol, side) of every order sent
    accounts = list(ACCOUNTS)
    for seq in range(1, n + 1):
        ts += rnd.randint(1, 2000)
        symbol = rnd.choice(SYMBOLS)
        mid[symbol] = max(20, mid[symbol] + rnd.choice((-1, 0, 0, 1)))
        m = mid[symbol]
        account = rnd.choice(accounts)
        firm = ACCOUNTS[account]
        side = rnd.choice((Side.BUY, Side.SELL))
        sign = 1 if side is Side.BUY else -1
        cl = f"c{seq}"
        r = rnd.random()
        cmd: Command
        if r < 0.35:
            tif = rnd.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.GTD))
            cmd = order(cl, side, rnd.randint(1, 9), m - sign * rnd.randint(1, 6), account=account, symbol=symbol, tif=tif,
                        expire_time=ts + rnd.randint(1000, 200_000) if tif is TimeInForce.GTD else None,
                        display_qty=rnd.choice((None, None, None, 2)), post_only=rnd.random() < 0.1)
        elif r < 0.45:
            cmd = order(cl, side, rnd.randint(1, 12), m + sign * rnd.randint(0, 3), account=account, symbol=symbol,
                        tif=rnd.choice((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)))
        elif r < 0.49:
            cmd = order(cl, side, rnd.randint(1, 5), None, account=account, symbol=symbol, tif=TimeInForce.IOC)
        elif r < 0.53:
            stop = m + sign * rnd.randint(1, 4)
            cmd = order(cl, side, rnd.randint(1, 4), rnd.choice((None, stop + sign)), account=account, symbol=symbol, stop_px=stop)
        elif r < 0.56:
            cmd = order(cl, side, rnd.randint(1, 3), m - sign * 2, account=account, symbol=symbol, reduce_only=True)
        elif r < 0.74 and sent:
            f, orig, _, _ = rnd.choice(sent[-60:])
            cmd = CancelOrder(session=f"S-{f}", firm=f, cl_ord_id=cl, orig_cl_ord_id=orig)
            sent.append((f, cl, symbol, side))
        elif r < 0.84 and sent:
            f, orig, sym, sd = rnd.choice(sent[-60:])
            s = 1 if sd is Side.BUY else -1
            cmd = ReplaceOrder(session=f"S-{f}", firm=f, cl_ord_id=cl, orig_cl_ord_id=orig, qty=rnd.randint(1, 10),
                               price=mid[sym] - s * rnd.randint(0, 5))
            sent.append((f, cl, sym, sd))
        elif r < 0.87 and sent:
            f, orig, sym, sd = rnd.choice(sent)
            cmd = QueryOrder(session=f"S-{f}", firm=f, symbol=sym, side=sd, cl_ord_id=orig)
        elif r < 0.88:
            cmd = MassCancel(session=f"S-{firm}", firm=firm, cl_ord_id=cl, scope=rnd.choice(list(MassCancelScope)), symbol=symbol,
                             account=rnd.choice((None, account)))
        elif r < 0.90:
            cmd = ExpireOrders()
        elif r < 0.905:
            cmd = CancelSessionOrders(session=f"S-{firm}", tifs=frozenset({TimeInForce.DAY}))
        elif r < 0.91:
            cmd = RejectRequest(session=f"S-{firm}", firm=firm, cl_ord_id=cl, symbol=symbol, side=side,
                                reason=RejectReason.INVALID_PRICE, text="off the tick grid", account=account)
        elif r < 0.913:
            cmd = SetPhase(symbol=symbol, phase=rnd.choice((TradingPhase.HALTED, TradingPhase.PRE_OPEN, TradingPhase.OPEN, TradingPhase.OPEN)))
        elif r < 0.925:
            cmd = EndOfDay()
        elif r < 0.94 and operator:
            cmd = SetIndexPrice(underlying=symbol.split("-")[0] + "-USD", price=Decimal(m) + Decimal("0.25"))
        elif r < 0.95 and operator:
            cmd = SetMarkPrice(symbol=symbol, price=m)
        elif r < 0.955 and operator:
            cmd = AdjustCollateral(account=account, amount=Decimal(rnd.randint(-500, 5000)) / 100, reference=cl)
        else:
            cmd = order(cl, side, rnd.randint(1, 9), m - sign * rnd.randint(1, 6), account=account, symbol=symbol,
                        ord_type=OrdType.LIMIT)
        if isinstance(cmd, NewOrder):
            sent.append((firm, cl, symbol, side))
        yield seq, ts, cmd
