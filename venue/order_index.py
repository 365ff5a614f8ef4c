"""The ClOrdID index: (firm, ClOrdID) -> order, for every order the core remembers.

Why not one dict. The index keeps done orders too (a status request or a late cancel is
answered about them, and a ClOrdID stays taken for the trading day), so it grows with
every order until the day ends (EndOfDay starts a new index with the live orders
alone): millions on a busy day. A CPython dict that fills up rebuilds its whole
table on the insert that found it full, on the sequencer's thread, while every order
waits. Measured here (one dict, the slowest of its inserts): 12 ms at 350,000 entries,
23 ms at 700,000, 44 ms at 1.4 million, 92 ms at 2.8 million; at 5,000 orders/s the
venue passes 2.8 million in under ten minutes. So the index is a dict per firm, split
over SHARDS dicts, each holding about a SHARDS-th of the firm's orders and rebuilding
only that; keyed by the ClOrdID alone, it also spares a (firm, ClOrdID) tuple per entry.

The shard is a mix of the ClOrdID's last three characters, not its hash: `hash()` in
compiled code boxes a 64-bit int, and that made the core 12-19% slower in
bench/engine.py; this way it ran 660,000-679,000 orders/s against 684,000-697,000 with
one dict, in the same session (and its slowest command at 2 million orders took 4 ms
against 71 ms). It spreads numbered ClOrdIDs
(the commonest scheme) over every shard; ClOrdIDs that all end alike share one shard,
which is one dict, as before. Being a function of the string alone, it also keeps
iteration order the same in every process for the same history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from venue.book import Order

SHARDS: Final = 256
_MASK: Final = SHARDS - 1


def shard_of(cl_ord_id: str) -> int:
    """Which of SHARDS dicts holds `cl_ord_id` (any string, empty included)."""
    n = len(cl_ord_id)
    if n >= 3:
        return (ord(cl_ord_id[n - 1]) + 11 * ord(cl_ord_id[n - 2]) + 121 * ord(cl_ord_id[n - 3])) & _MASK
    return (ord(cl_ord_id[0]) + 11 * ord(cl_ord_id[n - 1])) & _MASK if n else 0


class ClOrdIndex:
    """(firm, ClOrdID) -> order; see the module docstring for the layout."""

    def __init__(self, entries: Iterable[tuple[tuple[str, str], Order]] = ()) -> None:
        self._firms: dict[str, list[dict[str, Order]]] = {}
        for (firm, cl_ord_id), order in entries:
            self.put(firm, cl_ord_id, order)

    def get(self, firm: str, cl_ord_id: str) -> Order | None:
        shards = self._firms.get(firm)
        if shards is None:
            return None
        return shards[shard_of(cl_ord_id)].get(cl_ord_id)

    def has(self, firm: str, cl_ord_id: str) -> bool:
        shards = self._firms.get(firm)
        return shards is not None and cl_ord_id in shards[shard_of(cl_ord_id)]

    def put(self, firm: str, cl_ord_id: str, order: Order) -> None:
        shards = self._firms.get(firm)
        if shards is None:
            shards = self._firms[firm] = [{} for _ in range(SHARDS)]
        shards[shard_of(cl_ord_id)][cl_ord_id] = order

    def shed(self, n: int) -> bool:
        """Drop up to `n` entries, in no particular order; False once none is left. How a
        retired index is freed (venue/phases.py `_end_of_day`): a few entries per command,
        not millions of orders deallocated in one pause."""
        firms = self._firms
        while n > 0 and firms:
            firm = next(iter(firms))
            shards = firms[firm]
            while shards and n > 0:
                shard = shards[-1]
                if shard:
                    shard.popitem()
                    n -= 1
                else:
                    shards.pop()
            if not shards:
                del firms[firm]
        return bool(firms)

    def items(self) -> Iterator[tuple[tuple[str, str], Order]]:
        for firm, shards in self._firms.items():
            for shard in shards:
                for cl_ord_id, order in shard.items():
                    yield (firm, cl_ord_id), order

    def copy(self) -> ClOrdIndex:
        """A copy of the index (not of the orders), at C speed per shard."""
        out = ClOrdIndex()
        out._firms = {firm: [shard.copy() for shard in shards] for firm, shards in self._firms.items()}
        return out

    def __len__(self) -> int:
        return sum(len(shard) for shards in self._firms.values() for shard in shards)
