"""The load generator's hand-built FIX: frames a FIX engine accepts, and acknowledgements
found in a stream cut at any point."""

from __future__ import annotations

import simplefix

from tools.loadgen import LoadSession, _acks, frame


def test_frame_has_length_and_checksum_a_parser_accepts() -> None:
    s = LoadSession("B1", "", "", ("A", "B"))
    cl, data = s.order("BTC-PERP", ("99999.5", "100000.5"))
    p = simplefix.FixParser()
    p.append_buffer(data)
    m = p.get_message()
    assert m is not None and m.get(11) == cl.encode() and m.get(54) == b"1" and m.get(44) == b"99999.5" and m.get(1) == b"A"
    body = data[data.index(b"35="):data.index(b"10=")]
    assert int(m.get(9)) == len(body) and int(m.get(10)) == sum(data[:data.index(b"10=")]) % 256
    assert s.order("BTC-PERP", ("1", "2"))[1].count(b"\x0154=2\x01") == 1  # then a sell, from account B


def test_acks_from_a_split_stream() -> None:
    msgs = [frame("35=8\x0111=X1\x01150=0\x01"), frame("35=0\x01"), frame("35=8\x0111=X2\x01150=F\x01"), frame("35=8\x0111=X3\x01150=8\x0158=no\x01")]
    stream = b"".join(msgs)
    s = LoadSession("B1", "", "", ("A",))
    got = []
    for i in range(0, len(stream), 7):  # arrives in 7-byte pieces
        s.buf += stream[i:i + 7]
        got += _acks(s)
    assert got == [("X1", False), ("X3", True)] and s.buf == b""
