"""venue/gc_tuning.py tune_gc: each collection walks only what is new since the previous one;
its survivors are frozen, and young cyclic garbage is still reclaimed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from venue.gc_tuning import YOUNG_GC_THRESHOLD, _freeze_survivors, _untune, tune_gc


@pytest.fixture
def tuned() -> Iterator[None]:
    threshold = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        _untune()
        gc.set_threshold(*threshold)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_survivors_are_frozen_and_young_cycles_still_collected(tuned: None) -> None:
    assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    frozen = gc.get_freeze_count()
    alive = [Node() for _ in range(1000)]
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b  # a cycle only the collector can free
    assert gc.collect(0) >= 2
    assert gc.get_freeze_count() >= frozen + len(alive)  # walked once, never again
    assert gc.get_objects(1) == [] and gc.get_objects(2) == []  # the older generations stay empty


def test_exit_hands_frozen_objects_back(tuned: None) -> None:
    """What runs at exit (atexit): no more freezing, nothing left frozen, so shutdown frees
    extension objects instead of reporting them leaked."""
    assert _freeze_survivors in gc.callbacks and gc.get_freeze_count() > 0
    _untune()
    assert _freeze_survivors not in gc.callbacks and gc.get_freeze_count() == 0
