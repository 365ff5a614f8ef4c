"""The cyclic GC as the venue process runs it (venue/app.py calls `tune_gc` once started).

Its own module, free of quickfix and duckdb, so the benchmarks run the core under the
same policy the venue does.
"""

from __future__ import annotations

import atexit
import gc

# Tracked objects allocated (net) between two collections. A collection's pause grows with
# the orders those objects belong to: when the ClOrdID index stopped allocating a key tuple
# per order (venue/order_index.py), 5,000 came to span 1.75 times as many orders and each
# collection in bench/engine.py's sequencer took 460-490 µs instead of 250-270 µs (the same
# total); 3,000 brings the pause back.
YOUNG_GC_THRESHOLD = 3_000


def tune_gc() -> None:
    """Keep the cyclic GC's pauses short. A collection walks every tracked object of the
    generations it collects, and a venue's objects mostly live long (resting orders, their
    views, the risk state): a full pass over a book of 50,000 resting orders stalled acks
    for ~100 ms, and young collections of 50,000 objects for 8-35 ms on a busy machine.

    The objects alive after startup (reference data, the recovered book, modules) are
    frozen out of collection. Then every collection examines only what was allocated since
    the previous one (at most YOUNG_GC_THRESHOLD objects, well under a millisecond), and
    what survives it is frozen too (`_freeze_survivors`), so it is never walked again:
    the older generations stay empty and no pass ever grows with the book. What this gives
    up: a reference cycle among objects that have already survived a collection is not
    reclaimed. Measured (bench/fix_e2e.py loads, rest and trade, 1 and 4 sessions, and
    after cancel-on-disconnect): a full collection found no cyclic garbage at all; what
    the venue drops is freed by reference counting, which freezing does not stop."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, 10, 10)
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
        atexit.register(_untune)


def _untune() -> None:
    """At exit: stop freezing and hand every frozen object back to the collector, so that
    interpreter shutdown frees them (else extension modules such as duckdb's report their
    objects as leaked)."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.unfreeze()


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """gc callback: after each collection, move its survivors out of the collected generations."""
    if phase == "stop":
        gc.freeze()
