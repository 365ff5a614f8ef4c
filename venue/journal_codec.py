"""The journal's command codec: every Command as a compact, self-describing binary record.

Wire format of one encoded command (all integers little-endian):

    u8 tag                      which command type (TAGS below; a tag is never reused)
    fixed part                  one struct, in the dataclass's field order:
        presence bitmap         u8/u16/u32, only if the type has optional fields
                                (bit i set: the i-th optional field is present)
        str, str|None           u16 byte length (the UTF-8 bytes follow in the tail)
        Decimal, Decimal|None   u16 byte length of str(d) (which round-trips exactly,
                                exponent included: Decimal("1.50") stays "1.50")
        int, int|None           i64 (0 when absent)
        bool                    u8
        Enum, Enum|None         u8 code
        frozenset[Enum]         u32 bitmask of codes
    tail                        the str and Decimal bytes, in field order

The layout is derived from the dataclass's type hints, so adding a command type is one
line: a new entry in TAGS (or `register(cls, tag)` for a command defined elsewhere).
Encoding an unregistered type, or a field type the codec cannot carry, fails loudly.

Stability: the writer describes its layout in a schema (`Codec.schema()`: every tag's
type name and (field, kind) list, and every enum's member names in code order) which
the journal stores at the head of each segment. A reader decodes with the schema the
segment was written with, mapped onto today's classes by field and member *name*: a
field added since (with a default) takes its default; a field or member that has gone
is an error naming it. So reordering fields or enum members never misreads old records.

Cost (bench/journal.py measures it): encoding is a generated function per type, one
struct.pack plus the string encodes: 0.6 µs for a NewOrder (90 bytes), 0.5 µs for a
CancelOrder. Decoding fills a slotted dataclass through its slot descriptors rather than
calling its frozen __init__ (which alone would cost more than the rest): 1.3 µs and 0.8 µs.
`Codec.frame` builds a whole journal record (seq, ts, command, length and crc32) in the
same generated function, so the journal's flush makes one call per command; NewOrder and
CancelOrder records are framed by compiled code instead (venue/journal_frames.py), byte for
byte the same.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import types
import typing
import zlib
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any

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
from venue.field_types import field_types
from venue.journal_frames import FRAMERS
from venue.operator import KillSwitch, QueryRisk, SetLimit

SCHEMA_VERSION = 1

# tag -> command type. Append only: a tag, once journaled, means that type forever.
TAGS: dict[int, type] = {
    1: NewOrder,
    2: CancelOrder,
    3: ReplaceOrder,
    4: QueryOrder,
    5: MassCancel,
    6: CancelSessionOrders,
    7: RejectRequest,
    8: SetPhase,
    9: ExpireOrders,
    10: EndOfDay,
    11: SetIndexPrice,
    12: SetMarkPrice,
    13: AdjustCollateral,
    14: KillSwitch,
    15: SetLimit,
    16: QueryRisk,
}


class CodecError(ValueError):
    """A command the codec cannot encode, or bytes it cannot decode."""


def register(cls: type, tag: int) -> None:
    """Give a command type defined outside venue/commands.py its journal tag."""
    known = TAGS.get(tag)
    if known is not None and known is not cls:
        raise CodecError(f"journal tag {tag} already belongs to {known.__name__}")
    if cls in TAGS.values() and known is not cls:
        raise CodecError(f"{cls.__name__} already has a journal tag")
    _layout(cls)  # refuse a type the codec cannot carry now, not at the first journal write
    TAGS[tag] = cls
    _CODEC.clear()


Kind = str  # "str", "str?", "int", "int?", "bool", "dec", "dec?", "enum:Side", "enum?:Side", "set:TimeInForce"

_FIXED = {"str": "H", "dec": "H", "int": "q", "bool": "?", "enum": "B", "set": "I"}


def _kind(tp: Any, where: str) -> tuple[Kind, type[Enum] | None]:
    """The codec kind of a type hint, and the enum class it names if any."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise CodecError(f"{where}: the journal codec cannot carry {tp}")
        tp, optional = args[0], True
    q = "?" if optional else ""
    if typing.get_origin(tp) is frozenset:
        (item,) = typing.get_args(tp)
        if not optional and isinstance(item, type) and issubclass(item, Enum) and len(item) <= 32:
            return f"set:{item.__name__}", item
    elif isinstance(tp, type) and issubclass(tp, Enum):
        if len(tp) > 255:
            raise CodecError(f"{where}: enum {tp.__name__} has more than 255 members")
        return f"enum{q}:{tp.__name__}", tp
    elif tp is str:
        return f"str{q}", None
    elif tp is Decimal:
        return f"dec{q}", None
    elif tp is bool and not optional:
        return "bool", None
    elif tp is int:
        return f"int{q}", None
    raise CodecError(f"{where}: the journal codec cannot carry {tp}")


def _layout(cls: type) -> list[tuple[str, Kind, type[Enum] | None]]:
    if not dataclasses.is_dataclass(cls):
        raise CodecError(f"{cls!r} is not a command dataclass")
    hints = field_types(cls)
    return [(f.name, *_kind(hints[f.name], f"{cls.__name__}.{f.name}")) for f in dataclasses.fields(cls)]


def _base(kind: Kind) -> str:
    return kind.split(":")[0].rstrip("?")


_HEAD = struct.Struct("<II").pack  # a record's body length and crc32


def _bitmap(layout: list[tuple[str, Kind, type[Enum] | None]]) -> str:
    """The struct code of the presence bitmap: none, or as wide as the optional fields need."""
    n_opt = sum(1 for _, k, _ in layout if "?" in k)
    return "" if n_opt == 0 else "B" if n_opt <= 8 else "H" if n_opt <= 16 else "I"


def _format(layout: list[tuple[str, Kind, type[Enum] | None]], framed: bool) -> str:
    """The struct format of the fixed part: seq and ts (framed), tag, bitmap, fields."""
    return ("<Qq" if framed else "<") + "B" + _bitmap(layout) + "".join(_FIXED[_base(k)] for _, k, _ in layout)


def _compiled_framer(tag: int, cls: type, layout: list[tuple[str, Kind, type[Enum] | None]]) -> Callable[..., bytes] | None:
    """The compiled framer of venue/journal_frames.py for `cls`, if it writes exactly the
    layout the codec would generate; else None (the generated framer serves)."""
    known = FRAMERS.get(cls)
    if known is None or known[0] != [(name, kind) for name, kind, _ in layout]:
        return None
    codes = {name: {m: code for code, m in enumerate(enum)} for name, _, enum in layout if enum is not None}
    return known[1](tag, struct.Struct(_format(layout, framed=True)).pack, _HEAD, codes)


def _build_encoder(tag: int, cls: type, layout: list[tuple[str, Kind, type[Enum] | None]], framed: bool) -> Callable[..., bytes]:
    """Generate, for one type, straight-line code with one struct.pack: `encode(cmd)`, the
    command alone; or (framed) `frame(seq, ts, cmd)`, a whole journal record: u32 body
    length, u32 crc32(body), body = u64 seq, i64 ts, the command (venue/journal.py)."""
    bitmap = _bitmap(layout)
    env: dict[str, Any] = {"_pack": struct.Struct(_format(layout, framed)).pack, "_head": _HEAD, "_crc": zlib.crc32, "_join": b"".join}
    body, args, tail = ["    bm = 0"], [], []
    bit = 0
    for i, (name, kind, enum) in enumerate(layout):
        base, opt = _base(kind), "?" in kind
        v = f"v{i}"
        body.append(f"    {v} = c.{name}")
        if base in ("str", "dec"):
            conv = f"{v}.encode()" if base == "str" else f"str({v}).encode()"
            if opt:
                body += [f"    if {v} is None:", f"        b{i} = b''", "    else:", f"        bm |= {1 << bit}", f"        b{i} = {conv}"]
            else:
                body.append(f"    b{i} = {conv}")
            args.append(f"len(b{i})")
            tail.append(f"b{i}")
        elif base == "enum":
            env[f"_e{i}"] = {m: code for code, m in enumerate(enum)}  # type: ignore[arg-type]
            if opt:
                body += [f"    if {v} is None:", f"        {v} = 0", "    else:", f"        bm |= {1 << bit}", f"        {v} = _e{i}[{v}]"]
            else:
                body.append(f"    {v} = _e{i}[{v}]")
            args.append(v)
        elif base == "set":
            env[f"_e{i}"] = {m: 1 << code for code, m in enumerate(enum)}  # type: ignore[arg-type]
            body.append(f"    {v} = sum(_e{i}[m] for m in {v})")
            args.append(v)
        elif opt:  # int?
            body += [f"    if {v} is None:", f"        {v} = 0", "    else:", f"        bm |= {1 << bit}"]
            args.append(v)
        else:
            args.append(v)
        bit += opt
    head = f"_pack({'seq, ts, ' if framed else ''}{tag}, {'bm, ' if bitmap else ''}{', '.join(args)})"
    if framed:  # one join, not a new bytes object per `+`
        parts = ", ".join([head, *tail])
        body.append(f"    b = _join(({parts},))" if tail else f"    b = {head}")
        body.append("    return _head(len(b), _crc(b)) + b")
        src = "def frame(seq, ts, c):\n" + "\n".join(body) + "\n"
    else:
        body.append(f"    return {' + '.join([head, *tail])}")
        src = "def encode(c):\n" + "\n".join(body) + "\n"
    exec(compile(src, f"<journal encoder {cls.__name__}>", "exec"), env)  # noqa: S102  (our own generated source, as dataclasses does)
    return env["frame" if framed else "encode"]  # type: ignore[no-any-return]


class Codec:
    """The writer's side: encodes with today's classes and describes that layout."""

    def __init__(self) -> None:
        self.encoders: dict[type, Callable[[Any], bytes]] = {}
        self.framers: dict[type, Callable[[int, int, Any], bytes]] = {}
        commands = []
        enums: dict[str, list[str]] = {}
        for tag in sorted(TAGS):
            cls = TAGS[tag]
            layout = _layout(cls)
            self.encoders[cls] = _build_encoder(tag, cls, layout, framed=False)
            self.framers[cls] = _compiled_framer(tag, cls, layout) or _build_encoder(tag, cls, layout, framed=True)
            commands.append([tag, cls.__name__, [[name, kind] for name, kind, _ in layout]])
            for _, _, enum in layout:
                if enum is not None:
                    enums[enum.__name__] = [m.name for m in enum]
        self._schema = json.dumps({"version": SCHEMA_VERSION, "commands": commands, "enums": enums}, sort_keys=True).encode()

    def schema(self) -> bytes:
        return self._schema

    def encode(self, cmd: Command) -> bytes:
        """The command alone, tag first (snapshots carry orders' NewOrders this way)."""
        enc = self.encoders.get(type(cmd))
        if enc is None:
            raise CodecError(f"{type(cmd).__name__} has no journal tag: add it to TAGS in venue/journal_codec.py")
        try:
            return enc(cmd)
        except ENCODE_ERRORS as exc:
            raise CodecError(f"cannot journal {cmd!r}: {exc}") from None

    def frame(self, seq: int, ts: int, cmd: Command) -> bytes:
        """A whole journal record for the stamped command."""
        enc = self.framers.get(type(cmd))
        if enc is None:
            raise CodecError(f"{type(cmd).__name__} has no journal tag: add it to TAGS in venue/journal_codec.py")
        try:
            return enc(seq, ts, cmd)
        except ENCODE_ERRORS as exc:
            raise CodecError(f"cannot journal seq {seq} {cmd!r}: {exc}") from None


ENCODE_ERRORS = (struct.error, KeyError, AttributeError, UnicodeEncodeError, TypeError)

_CODEC: list[Codec] = []


def codec() -> Codec:
    """The writer codec for the current TAGS (rebuilt after `register`)."""
    if not _CODEC:
        _CODEC.append(Codec())
    return _CODEC[0]


class Decoder:
    """The reader's side: decodes records written under `schema` into today's classes."""

    def __init__(self, schema: bytes) -> None:
        try:
            spec = json.loads(schema)
            version, commands, enums = spec["version"], spec["commands"], spec["enums"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(f"unreadable journal schema: {exc}") from None
        if version != SCHEMA_VERSION:
            raise CodecError(f"journal schema version {version}, this code reads {SCHEMA_VERSION}")
        self._decoders: dict[int, Callable[[bytes, int, int], Any]] = {}
        self.names: dict[int, str] = {}
        for tag, name, fields in commands:
            cls = TAGS.get(tag)
            if cls is None or cls.__name__ != name:
                raise CodecError(f"journal tag {tag} is {name}, which this code does not know as tag {tag}")
            self._decoders[tag] = _build_decoder(cls, [(f, k) for f, k in fields], enums)
            self.names[tag] = name

    def decode(self, buf: bytes, start: int, end: int) -> Command:
        """Decode the command in buf[start:end] (tag first); CodecError if it is not one."""
        dec = self._decoders.get(buf[start])
        if dec is None:
            raise CodecError(f"unknown command tag {buf[start]} in the journal")
        try:
            return dec(buf, start + 1, end)  # type: ignore[no-any-return]
        except (struct.error, IndexError, UnicodeDecodeError, ValueError, TypeError, ArithmeticError) as exc:
            raise CodecError(f"undecodable {self.names[buf[start]]} record: {exc}") from None

    def decoder_for(self, cls: type) -> tuple[int, Callable[[bytes, int, int], Any]]:
        """(tag, raw decoder) of one type, for a loop that decodes many of it: the decoder
        takes the bytes after the tag and raises struct.error, ValueError or IndexError
        on bad input rather than CodecError."""
        for tag in self.names:
            if TAGS.get(tag) is cls:
                return tag, self._decoders[tag]
        raise CodecError(f"the journal schema has no {cls.__name__}")

    def tag_name(self, buf: bytes, start: int) -> str:
        """The command type name of an encoded record without decoding it (for counts)."""
        return self.names.get(buf[start], f"unknown tag {buf[start]}")


def _build_decoder(cls: type, fields: list[tuple[str, Kind]], enums: dict[str, list[str]]) -> Callable[[bytes, int, int], Any]:
    """Generate `decode(buf, off, end)` for records written with `fields` into today's `cls`."""
    current = {f.name: f for f in dataclasses.fields(cls)}
    for name, _ in fields:
        if name not in current:
            raise CodecError(f"journal records of {cls.__name__} carry field {name!r}, which it no longer has")
    written = {name for name, _ in fields}
    for name, f in current.items():
        if name not in written and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CodecError(f"{cls.__name__}.{name} has no default and old journal records do not carry it")
    n_opt = sum(1 for _, k in fields if "?" in k)
    bitmap = "" if n_opt == 0 else "B" if n_opt <= 8 else "H" if n_opt <= 16 else "I"
    st = struct.Struct("<" + bitmap + "".join(_FIXED[_base(k)] for _, k in fields))
    env: dict[str, Any] = {"_unpack": st.unpack_from, "_size": st.size, "_cls": cls, "Decimal": Decimal, "CodecError": CodecError}
    names = (["bm"] if bitmap else []) + [f"v{i}" for i in range(len(fields))]
    body = [f"    [{', '.join(names)}] = _unpack(buf, off)", "    p = off + _size"]
    kwargs, bit = [], 0
    for i, (name, kind) in enumerate(fields):
        base, opt = _base(kind), "?" in kind
        v = f"v{i}"
        if base in ("str", "dec"):
            conv = f"buf[p:p + {v}].decode()" if base == "str" else f"Decimal(buf[p:p + {v}].decode())"
            body.append(f"    x{i} = {conv}{f' if bm & {1 << bit} else None' if opt else ''}")
            body.append(f"    p += {v}")
            v = f"x{i}"
        elif base in ("enum", "set"):
            enum_name = kind.split(":")[1]
            enum = _find_enum(cls, name, enum_name)
            try:
                members = [enum[m] for m in enums[enum_name]]
            except KeyError as exc:
                raise CodecError(f"the journal uses {enum_name} member {exc} which this code does not know") from None
            if base == "enum":
                env[f"_e{i}"] = members
                v = f"_e{i}[{v}]{f' if bm & {1 << bit} else None' if opt else ''}"
            else:
                env[f"_e{i}"] = [(1 << code, m) for code, m in enumerate(members)]
                v = f"frozenset(m for b, m in _e{i} if {v} & b)"
        elif opt:
            v = f"{v} if bm & {1 << bit} else None"
        kwargs.append(f"{name}={v}")
        bit += opt
    body.append("    if p != end:")
    body.append(f"        raise CodecError(f'{cls.__name__} record is {{end - off + 1}} bytes, fields take {{p - off + 1}}')")
    if _fills_slots(cls):
        # A frozen dataclass's __init__ sets each field through object.__setattr__: twice the
        # cost of the whole decode (compiled by mypyc too: its __init__ stays the dataclass
        # module's Python code). One without __post_init__ can be filled through its
        # attributes' descriptors instead, which is what replay and snapshot restore spend on.
        env["_new"] = cls.__new__
        body.append("    c = _new(_cls)")
        for name, f in current.items():
            env[f"_s_{name}"] = getattr(cls, name).__set__
        for kw in kwargs:
            name, expr = kw.split("=", 1)
            body.append(f"    _s_{name}(c, {expr})")
        for name, f in current.items():
            if name not in written:
                if f.default is not dataclasses.MISSING:
                    env[f"_d_{name}"] = f.default
                    body.append(f"    _s_{name}(c, _d_{name})")
                else:
                    env[f"_d_{name}"] = f.default_factory
                    body.append(f"    _s_{name}(c, _d_{name}())")
        body.append("    return c")
    else:
        body.append(f"    return _cls({', '.join(kwargs)})")
    src = "def decode(buf, off, end):\n" + "\n".join(body) + "\n"
    exec(compile(src, f"<journal decoder {cls.__name__}>", "exec"), env)  # noqa: S102  (our own generated source)
    return env["decode"]  # type: ignore[no-any-return]


def _fills_slots(cls: type) -> bool:
    """Whether instances can be built around __init__, by setting each field through its
    descriptor: a slotted class (slot descriptors) or one compiled by mypyc (setup.py; its
    attributes are getset descriptors), with no __post_init__ to run."""
    return not hasattr(cls, "__post_init__") and all(hasattr(vars(cls).get(f.name), "__set__") for f in dataclasses.fields(cls))


def _find_enum(cls: type, field: str, enum_name: str) -> type[Enum]:
    """The enum class a journaled field names, looked up on today's class."""
    hints = field_types(cls)
    tp = hints.get(field)
    for candidate in (tp, *typing.get_args(tp)):
        for c in (candidate, *typing.get_args(candidate)):
            if isinstance(c, type) and issubclass(c, Enum) and c.__name__ == enum_name:
                return c
    raise CodecError(f"{cls.__name__}.{field} is no longer an enum {enum_name}")
