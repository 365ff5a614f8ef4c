"""The journal's command codec: exact round trips, loud failures, schema evolution."""

from __future__ import annotations

import dataclasses
import json
import struct
import typing
import zlib
from decimal import Decimal

import pytest
from journal_streams import stream

from venue.commands import Command, NewOrder, SetIndexPrice
from venue.journal_codec import TAGS, Codec, CodecError, Decoder, codec, register
from venue.types import OrdType, Side, TimeInForce


def roundtrip(cmd: Command) -> Command:
    data = codec().encode(cmd)
    return Decoder(codec().schema()).decode(data, 0, len(data))


def test_every_command_type_has_a_tag() -> None:
    assert set(typing.get_args(Command)) <= set(TAGS.values())


def test_stream_round_trips_exactly() -> None:
    dec = Decoder(codec().schema())
    n = 0
    for _, _, cmd in stream(3, 3000, operator=True):
        data = codec().encode(cmd)
        back = dec.decode(data, 0, len(data))
        assert back == cmd and type(back) is type(cmd)
        n += 1
    assert n == 3000


@pytest.mark.parametrize("text", ["0.1", "-1.50E+3", "1E-30", "123456789012345678901234567890.000000001", "-0", "0.00"])
def test_decimal_round_trips_exponent_and_sign(text: str) -> None:
    back = roundtrip(SetIndexPrice(underlying="BTC-USD", price=Decimal(text)))
    assert isinstance(back, SetIndexPrice)
    assert str(back.price) == text and back.price.as_tuple() == Decimal(text).as_tuple()


def test_optional_fields_and_unicode() -> None:
    o = NewOrder(session="S", firm="F", account="A", cl_ord_id="ordre-é-✓", symbol="BTC-PERP", side=Side.SELL, ord_type=OrdType.STOP,
                 qty=2**62, stop_px=-5, tif=TimeInForce.GTD, expire_time=0, display_qty=None, post_only=True)
    assert roundtrip(o) == o


def test_unknown_type_fails_loudly() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Mystery:
        x: int

    with pytest.raises(CodecError, match="Mystery has no journal tag"):
        codec().encode(Mystery(x=1))  # type: ignore[arg-type]


def test_field_type_the_codec_cannot_carry_is_refused_at_registration() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Floaty:
        x: float

    with pytest.raises(CodecError, match="cannot carry"):
        register(Floaty, 250)
    assert 250 not in TAGS


def test_out_of_range_int_is_a_codec_error() -> None:
    o = NewOrder(session="S", firm="F", account="A", cl_ord_id="c", symbol="X", side=Side.BUY, ord_type=OrdType.LIMIT, qty=2**64, price=1)
    with pytest.raises(CodecError, match="cannot journal"):
        codec().encode(o)


def test_unknown_tag_and_trailing_bytes_are_errors() -> None:
    dec = Decoder(codec().schema())
    with pytest.raises(CodecError, match="unknown command tag 200"):
        dec.decode(bytes([200, 0, 0]), 0, 3)
    data = codec().encode(SetIndexPrice(underlying="B", price=Decimal(1))) + b"x"
    with pytest.raises(CodecError, match="SetIndexPrice record is"):
        dec.decode(data, 0, len(data))


def test_reader_maps_old_layouts_by_name() -> None:
    """A journal written before a field was added (with a default) and with the enum
    members in another order still decodes to today's values."""
    old = json.loads(codec().schema())
    new_order = next(c for c in old["commands"] if c[1] == "NewOrder")
    new_order[2] = [f for f in new_order[2] if f[0] != "reduce_only"]
    old["enums"]["Side"] = ["SELL", "BUY"]
    old_schema = json.dumps(old).encode()
    o = NewOrder(session="S", firm="F", account="A", cl_ord_id="c", symbol="X", side=Side.BUY, ord_type=OrdType.LIMIT, qty=1, price=5)
    data = bytearray(codec().encode(o))
    fields = [f[0] for f in next(c for c in json.loads(codec().schema())["commands"] if c[1] == "NewOrder")[2]]
    assert fields[-2] == "reduce_only" and fields[-1] == "stp"
    # the old writer's record, by hand: today's without the reduce_only byte, BUY as code 1
    del data[_offset_of(fields, "reduce_only")]
    data[_offset_of(fields, "side")] = 1  # BUY is code 1 in the old enum order
    back = Decoder(old_schema).decode(bytes(data), 0, len(data))
    assert back == o


def _offset_of(fields: list[str], name: str) -> int:
    """Byte offset of a fixed field in a NewOrder record (tag, bitmap, then the fields)."""
    sizes = {"session": 2, "firm": 2, "account": 2, "cl_ord_id": 2, "symbol": 2, "side": 1, "ord_type": 1, "qty": 8, "price": 8,
             "stop_px": 8, "tif": 1, "expire_time": 8, "display_qty": 8, "post_only": 1, "reduce_only": 1, "stp": 1}
    off = 2
    for f in fields:
        if f == name:
            return off
        off += sizes[f]
    raise KeyError(name)


def test_reader_refuses_a_field_that_has_gone() -> None:
    old = json.loads(codec().schema())
    next(c for c in old["commands"] if c[1] == "SetMarkPrice")[2].append(["venue_id", "str"])
    with pytest.raises(CodecError, match="carry field 'venue_id'"):
        Decoder(json.dumps(old).encode())


def test_reader_refuses_an_unknown_enum_member() -> None:
    old = json.loads(codec().schema())
    old["enums"]["TimeInForce"].append("GOOD_TILL_CROSSING")
    with pytest.raises(CodecError, match="GOOD_TILL_CROSSING"):
        Decoder(json.dumps(old).encode())


def test_schema_is_stable_across_codec_instances() -> None:
    assert Codec().schema() == Codec().schema()


def test_framed_record_is_length_crc_then_stamped_command() -> None:
    cmd = SetIndexPrice(underlying="ETH-USD", price=Decimal("3500.05"))
    rec = codec().frame(7, -3, cmd)
    body = struct.pack("<Qq", 7, -3) + codec().encode(cmd)
    assert rec == struct.pack("<II", len(body), zlib.crc32(body)) + body
