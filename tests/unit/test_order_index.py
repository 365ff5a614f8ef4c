"""The ClOrdID index: a mapping (firm, ClOrdID) -> order, per firm, over shards that keep
every table small; the engine's duplicate checks read it per firm; the day roll starts a
fresh one from the live orders and frees the old one a few entries per command."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from matching_support import BTC, BUY, brief, cancel, new_engine, order, replace

from venue.book import Order
from venue.commands import Command, EndOfDay, QueryOrder
from venue.events import ExecReport
from venue.matching import SHED_PER_COMMAND
from venue.order_index import SHARDS, ClOrdIndex, shard_of
from venue.rejects import RejectReason
from venue.types import TimeInForce


def _orders(n: int) -> list[Order]:
    engine = new_engine()
    for i in range(n):
        engine.apply(i + 1, 1, order(f"o{i}", BUY, 1, 100 + i, symbol=BTC))
    return list(engine.orders.values())


def test_lookups_are_per_firm_and_cover_any_cl_ord_id() -> None:
    a, b, c = _orders(3)
    index = ClOrdIndex()
    for firm, cl, o in (("F1", "X-1", a), ("F2", "X-1", b), ("F1", "", c), ("F1", "7", b), ("F1", "ab", a)):
        index.put(firm, cl, o)
    assert index.get("F1", "X-1") is a and index.get("F2", "X-1") is b
    assert index.get("F1", "") is c and index.get("F1", "7") is b and index.get("F1", "ab") is a
    assert index.has("F1", "X-1") and not index.has("F3", "X-1") and not index.has("F2", "")
    assert index.get("F3", "X-1") is None and index.get("F1", "X-2") is None
    assert len(index) == 5
    assert sorted(k for k, _ in index.items()) == [("F1", ""), ("F1", "7"), ("F1", "X-1"), ("F1", "ab"), ("F2", "X-1")]


def test_a_copy_and_a_rebuild_hold_the_same_entries_independently() -> None:
    a, b = _orders(2)
    index = ClOrdIndex()
    index.put("F1", "A", a)
    copy = index.copy()
    rebuilt = ClOrdIndex(index.items())
    index.put("F1", "B", b)
    assert copy.get("F1", "A") is a and not copy.has("F1", "B")
    assert list(rebuilt.items()) == [(("F1", "A"), a)]
    assert len(index) == 2 and len(copy) == 1


def test_numbered_cl_ord_ids_spread_over_every_shard() -> None:
    """The commonest scheme, a prefix and a counter: no shard holds much more than its
    share, so none rebuilds a table much bigger than the rest."""
    sizes = Counter(shard_of(f"FIRM1-{i}") for i in range(100_000))
    assert len(sizes) == SHARDS
    assert max(sizes.values()) < 2 * 100_000 / SHARDS
    assert all(0 <= shard_of(s) < SHARDS for s in ("", "x", "xy", "é€😀"))


def test_a_cl_ord_id_is_taken_per_firm() -> None:
    engine = new_engine()
    first = engine.apply(1, 1, order("dup", BUY, 1, 100, account="A1"))
    other_firm = engine.apply(2, 2, order("dup", BUY, 1, 100, account="B1"))
    again = engine.apply(3, 3, order("dup", BUY, 1, 100, account="A2"))
    assert isinstance(first[0], ExecReport) and first[0].text == ""
    assert isinstance(other_firm[0], ExecReport) and other_firm[0].text == ""
    assert isinstance(again[0], ExecReport) and again[0].reason is RejectReason.DUPLICATE_CL_ORD_ID


def test_a_retired_index_is_shed_a_few_entries_at_a_time() -> None:
    (o,) = _orders(1)
    index = ClOrdIndex(((firm, f"c{i}"), o) for firm in ("F1", "F2") for i in range(50))
    left = []
    while index.shed(30):
        left.append(len(index))
    assert left == [70, 40, 10] and len(index) == 0 and not index.shed(30)


def test_the_day_roll_keeps_live_orders_by_their_last_two_cl_ord_ids_and_frees_the_rest_gradually() -> None:
    engine = new_engine()
    seq = iter(range(1, 10**6))

    def apply(cmd: Command) -> list[tuple[object, ...]]:
        return brief(engine.apply(next(seq), 1, cmd))

    apply(order("a", BUY, 1, 100))
    apply(replace("b", "a", 2, 100))
    apply(replace("c", "b", 3, 100))
    apply(order("x", BUY, 1, 90, tif=TimeInForce.IOC))
    apply(order("d", BUY, 1, 95, tif=TimeInForce.DAY))
    for i in range(200):
        apply(order(f"done{i}", BUY, 1, 90, tif=TimeInForce.IOC))
    assert apply(EndOfDay()) == [("EXPIRED", "d", "EXPIRED", 0, 0, None)]
    index = engine.by_cl_ord_id
    assert sorted(k for k, _ in index.items()) == [("F1", "b"), ("F1", "c")]
    assert index.get("F1", "b") is index.get("F1", "c") is engine.orders[1]
    assert len(engine.retired) == 1 and len(engine.retired[0]) == 205
    assert apply(order("x", BUY, 1, 90, tif=TimeInForce.IOC))[0][0] == "NEW"  # free again
    assert apply(cancel("y", "b")) == [("CXL_REJECT", "y", False, "NEW", "UNKNOWN_ORDER")]  # b was replaced by c
    left = []
    while engine.retired:
        left.append(len(engine.retired[0]))
        apply(QueryOrder(session="S-F1", firm="F1", cl_ord_id="c", symbol=BTC, side=BUY))
    assert left[0] == 205 - 2 * SHED_PER_COMMAND and all(a - b == SHED_PER_COMMAND for a, b in pairwise(left))
    assert apply(cancel("z", "c")) == [("CANCELED", "z", "CANCELED", 0, 0, None)]
