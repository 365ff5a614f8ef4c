"""The compiled framers (venue/journal_frames.py) write what the codec's generated ones do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from journal_streams import stream

from venue import journal_codec
from venue.commands import CancelOrder, NewOrder
from venue.journal_codec import Codec, _build_encoder, _layout
from venue.journal_frames import FRAMERS, CancelOrderFramer, NewOrderFramer
from venue.types import OrdType, Side, StpMode, TimeInForce

CODEC = Codec()
TAG = {cls: tag for tag, cls in journal_codec.TAGS.items()}
GENERATED = {cls: _build_encoder(TAG[cls], cls, _layout(cls), framed=True) for cls in FRAMERS}

ids = st.text(min_size=1, max_size=12)
maybe_int = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
new_orders = st.builds(
    NewOrder, session=ids, firm=ids, account=ids, cl_ord_id=ids, symbol=ids, side=st.sampled_from(Side),
    ord_type=st.sampled_from(OrdType), qty=st.integers(min_value=0, max_value=2**63 - 1), price=maybe_int, stop_px=maybe_int,
    tif=st.sampled_from(TimeInForce), expire_time=maybe_int, display_qty=maybe_int, post_only=st.booleans(),
    reduce_only=st.booleans(), stp=st.sampled_from(StpMode),
)
cancels = st.builds(CancelOrder, session=ids, firm=ids, cl_ord_id=ids, orig_cl_ord_id=st.none() | ids, order_id=maybe_int)


def test_the_codec_frames_new_orders_and_cancels_with_them() -> None:
    assert isinstance(CODEC.framers[NewOrder], NewOrderFramer)
    assert isinstance(CODEC.framers[CancelOrder], CancelOrderFramer)


@given(cmd=new_orders | cancels, seq=st.integers(min_value=0, max_value=2**64 - 1), ts=st.integers(min_value=0, max_value=2**63 - 1))
def test_same_bytes_as_the_generated_framer(cmd: NewOrder | CancelOrder, seq: int, ts: int) -> None:
    assert CODEC.framers[type(cmd)](seq, ts, cmd) == GENERATED[type(cmd)](seq, ts, cmd)


def test_same_bytes_over_a_journal_stream() -> None:
    n = 0
    for seq, ts, cmd in stream(3, 2_000):
        if type(cmd) in FRAMERS:
            assert CODEC.framers[type(cmd)](seq, ts, cmd) == GENERATED[type(cmd)](seq, ts, cmd)
            n += 1
    assert n > 1_000


def test_a_layout_it_does_not_write_keeps_the_generated_framer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were NewOrder's fields to change, the compiled framer would no longer match: the codec
    falls back to generating one rather than writing the old layout."""
    layout, framer = FRAMERS[NewOrder]
    monkeypatch.setitem(FRAMERS, NewOrder, (layout[:-1], framer))
    codec = Codec()
    assert not isinstance(codec.framers[NewOrder], NewOrderFramer)
    cmd = next(c for _, _, c in stream(3, 100) if isinstance(c, NewOrder))
    assert codec.framers[NewOrder](1, 2, cmd) == GENERATED[NewOrder](1, 2, cmd)


def test_a_value_the_record_cannot_hold_is_refused_as_before() -> None:
    cmd = next(c for _, _, c in stream(3, 100) if isinstance(c, NewOrder))
    big = NewOrder(**{**{f: getattr(cmd, f) for f in NewOrder.__dataclass_fields__}, "qty": 2**80})
    for framer in (CODEC.framers[NewOrder], GENERATED[NewOrder]):
        with pytest.raises(journal_codec.ENCODE_ERRORS):
            framer(1, 2, big)
