"""Snapshots of the core's state, so a restart replays only the journal's tail.

A snapshot at seq S is the state after applying journal records 1..S. Restoring it into
a freshly built core and replaying records S+1.. reaches exactly the state a full replay
reaches (tests/unit/test_snapshot.py proves it on random streams): books with every
level's orders in priority order, parked stops, order states (done orders too, which
status requests and duplicate-ClOrdID checks need), the live-order index in its
insertion order (mass cancels report in that order), positions, reduce-only sets, the
GTD heap (live entries), phases, last prices, accounts and the id counters.

Taking one has two halves, so the sequencer is paused only for the first:
  `capture(core, seq, ts)`   at a batch boundary: copies the live orders' mutable fields
                             and the books' queues into tuples, and the ClOrdID index (a
                             C-speed dict copy); views and NewOrders are immutable, shared,
                             and a done order never changes again, so it is read later.
  `write(directory, snap)`   encodes, writes `<seq>.snap.tmp` and fsyncs it (`write_tmp`),
                             then renames it to `<seq>.snap`, fsyncs the directory and
                             keeps the newest `keep` (`install`).
Where the platform can fork, capture and write_tmp run in a forked child, a copy-on-write
image of the process at the batch boundary (venue/snapshot_fork.py): of the drop-copy
process, whose replica takes the periodic snapshots when it runs (drop_copy/snapshots.py),
else of the venue; else the venue captures on the loop thread and writes in a worker thread.
The linked-list Order graph is never pickled (its depth would blow the recursion limit):
orders go out as flat tuples, book levels as lists of order ids in priority order, and
restore rebuilds the links with Book.add.

File: magic `VSNP`, u16 version, u64 seq, i64 ts, u64 body length, u32 crc32(body), then
the body: a pickle of plain data only (tuples, lists, dicts, str, int, bytes, None, bool,
Decimal). Orders' NewOrders ride in it as journal-codec bytes with the codec schema
beside them, so the file does not depend on class layouts. The writer refuses anything
else, and the reader unpickles with a loader that can build nothing but Decimal.

State holders. Anything else with state (the risk engine, a wrapping VenueCore) takes
part by defining a pair of methods, found on the core object, on its attributes, and on
the engine's `pre_trade` (each object once, named by where it was found):

    snapshot_state() -> plain data
        called on the loop thread at a batch boundary; must return a value built from the
        types above that shares no mutable container with live state (it is encoded in
        another thread while the venue goes on)
    restore_state(state) -> None
        called on a freshly built holder after the engine is restored, before the replay;
        whatever it raises makes the snapshot unusable (recovery falls back), never fatal

A core that wraps the engine must answer for all its state: if it is not a holder itself,
each of its attributes must be the engine, a holder or an immutable value (`uncovered()`
names the others), else capture() refuses and the venue runs without snapshots.

Loading tries the newest snapshot first and falls back to older ones (then to a full
replay) when one fails its checksum or does not fit this code; the journal is the truth
and a snapshot only a shortcut. `state_digest(core)` is a short canonical hash of the
whole state, for comparing a recovered venue with a replay in another process.

Cost (bench/journal.py, 1,000,000 commands, 700,000 orders remembered): capture under
100 ms; encode and write a few seconds of CPU (in a worker thread, it shares the GIL with
the sequencer and the FIX threads; in a child process, nothing); restore a few microseconds per remembered order. Known limitations: all three
grow with the orders the engine remembers (every order of the process's life: done orders
answer status requests and duplicate-ClOrdID checks), so a busy day's snapshots get slower
until the engine forgets done orders; instruments must be the same set as when the
snapshot was taken (a new listing needs a journal command that builds its book).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

from venue.book import Book, Order
from venue.commands import NewOrder
from venue.events import OrderView
from venue.journal_codec import CodecError, Decoder, codec
from venue.matching import MatchingEngine
from venue.order_index import ClOrdIndex
from venue.types import OrdStatus, OrdType, Side, TradingPhase

log = logging.getLogger(__name__)

MAGIC = b"VSNP"
FORMAT_VERSION = 1
# A snapshot is written and synced this much at a time. The journal's synced appends share
# the disk: one fsync of a whole 60 MB file stalled an O_DSYNC append 31 ms on this machine,
# a sync per 1 MB kept every append under 0.8 ms.
SYNC_STEP = 1 << 20
_HEADER = struct.Struct("<4sHQqQI")
_NAME = re.compile(r"^(\d{20})\.snap$")

# A snapshot taken in a forked child is paced (venue/snapshot_fork.py): capture and encode
# call a `Pace` between stretches of work, which may sleep to leave the CPU to the venue.
# PACE_ROWS orders are a stretch: 0.2-0.5 ms of CPU on this project's machine.
Pace = Callable[[], None]
PACE_ROWS = 128

# Every attribute of MatchingEngine and Book, and whether a snapshot carries it. A new
# attribute either grows makes capture() refuse (and the snapshot unit tests fail) until it is
# placed here, rather than being silently lost across a restart.
ENGINE_FIELDS = {
    "books": True, "accounts": True, "orders": True, "by_cl_ord_id": True, "positions": True,
    "reduce_only": True, "gtd": True, "next_order_id": True, "next_exec_id": True, "next_trade_id": True,
    "stp_scope": False,  # configuration, from the config file
    "pre_trade": False,  # a state holder of its own, if it has state
    "_dispatch": False,  # bound methods
    "retired": False,  # ended days' ClOrdID indexes, garbage being freed
}
BOOK_FIELDS = {
    "symbol": True, "phase": True, "last_px": True, "bids": True, "asks": True, "buy_stops": True, "sell_stops": True,
    "instrument": False,  # configuration
    # derived from the levels, rebuilt by Book.add
    "bid_prices": False, "ask_prices": False, "best_bid": False, "best_ask": False,
    "dirty_bids": False, "dirty_asks": False,  # market-data marks, drained every batch
}


class SnapshotTaker(Enum):
    """Who takes the periodic snapshots (the venue always writes the last one as it stops)."""

    DROP_COPY = "drop_copy"  # the drop-copy process's replica, when that process runs (drop_copy/snapshots.py)
    VENUE = "venue"  # the venue process itself (recovery.Snapshotter)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotConfig:
    dir: str = "snapshots"  # relative to the venue's var_dir, or absolute
    every: int = 100_000  # commands between snapshots; 0: never
    keep: int = 2  # snapshots kept on disk
    fork: bool = True  # take them in a forked child where the platform has os.fork (else in a worker thread)
    taken_by: SnapshotTaker = SnapshotTaker.DROP_COPY
    # of one core, at most, for that child (venue/snapshot_fork.py): it takes about its CPU
    # time / cpu_share, and the venue's acks are what it yields to; 1 runs it flat out
    cpu_share: float = 0.2

    def __post_init__(self) -> None:
        if self.every < 0 or self.keep < 1:
            raise ValueError("every must be >= 0 and keep >= 1")
        if not 0 < self.cpu_share <= 1:
            raise ValueError(f"cpu_share must be above 0 and at most 1 (of one core), got {self.cpu_share}")


class SnapshotError(Exception):
    """A snapshot cannot be taken or used (the message says which and why)."""


class StateHolder(Protocol):
    def snapshot_state(self) -> Any: ...

    def restore_state(self, state: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Captured:
    """A consistent copy of the state at `seq`, still holding live immutable objects."""

    seq: int
    ts: int
    engine: tuple[Any, ...]
    holders: dict[str, Any]


def attributes(obj: object) -> dict[str, Any]:
    """`obj`'s instance attributes by name. A class compiled by mypyc (the core's, see
    setup.py) has no `__dict__`; it lists its attributes in `__mypyc_attrs__`."""
    names = getattr(type(obj), "__mypyc_attrs__", None)
    if names is None:
        return vars(obj) if hasattr(obj, "__dict__") else {}
    return {name: getattr(obj, name) for name in dict.fromkeys(names) if hasattr(obj, name)}


def find_engine(core: object) -> MatchingEngine:
    """The MatchingEngine in `core`: the core itself, or one of its attributes."""
    if isinstance(core, MatchingEngine):
        return core
    for value in attributes(core).values():
        if isinstance(value, MatchingEngine):
            return value
    raise SnapshotError(f"{type(core).__name__} holds no MatchingEngine to snapshot")


def holders(core: object) -> list[tuple[str, StateHolder]]:
    """The state holders of `core`, in a fixed order, each object once."""
    engine = find_engine(core)
    found: list[tuple[str, Any]] = [("core", core)]
    found += [(f"core.{name}", v) for name, v in sorted(attributes(core).items())]
    found.append(("engine.pre_trade", engine.pre_trade))
    out, seen = [], set()
    for name, obj in found:
        if obj is not None and id(obj) not in seen and callable(getattr(obj, "snapshot_state", None)) and callable(getattr(obj, "restore_state", None)):
            seen.add(id(obj))
            out.append((name, obj))
    return out


_IMMUTABLE = (type(None), bool, int, str, bytes, Decimal, frozenset, tuple)


def uncovered(core: object) -> list[str]:
    """Attributes of a wrapping core holding state no snapshot would carry: not the engine,
    not a state holder, not an immutable value. Empty when the core is a holder itself
    (it answers for all of its state) or is the engine."""
    if isinstance(core, MatchingEngine) or callable(getattr(core, "snapshot_state", None)):
        return []
    engine = find_engine(core)
    covered = {id(h) for _, h in holders(core)} | {id(engine)}
    out = [
        f"{type(core).__name__}.{name}" for name, v in sorted(attributes(core).items())
        if id(v) not in covered and not isinstance(v, _IMMUTABLE) and not callable(v) and not _is_bound_table(v)
    ]
    if engine.pre_trade is not None and id(engine.pre_trade) not in covered:
        out.append("engine.pre_trade")
    return sorted(set(out))


def _is_bound_table(v: object) -> bool:
    """A dispatch dict of bound methods (type -> handler) is code, not state."""
    return isinstance(v, dict) and bool(v) and all(isinstance(k, type) and callable(h) for k, h in v.items())


# A live order's fields capture copies: one C-level call per order. The status stays the
# enum member (immutable) and becomes its name in `encode`, off the loop: an Enum's `.name`
# runs Python code, and it was most of the pause.
_LIVE_FIELDS = attrgetter("view", "price", "leaves", "cum", "cost", "visible", "display", "status", "stp_key")


def check(core: object) -> MatchingEngine:
    """The core's engine, if a snapshot can carry all of the core's state; else SnapshotError
    says what it would miss. Cheap: the venue checks before it forks a child to capture."""
    e = find_engine(core)
    missing = uncovered(core)
    if missing:
        raise SnapshotError(f"state no snapshot would carry: {', '.join(missing)} (give them snapshot_state()/restore_state())")
    book_fields = getattr(Book, "__mypyc_attrs__", None) or Book.__slots__
    unknown = sorted(set(attributes(e)) - set(ENGINE_FIELDS)) + sorted(f"Book.{f}" for f in set(book_fields) - set(BOOK_FIELDS))
    if unknown:
        raise SnapshotError(f"the engine has state snapshot.py does not carry: {', '.join(unknown)}")
    return e


def _no_pace() -> None:
    pass


def capture(core: object, seq: int, ts: int, pace: Pace = _no_pace) -> Captured:
    """Copy the state (loop thread, batch boundary). Cost: a tuple per live order, and a C-speed
    copy of the ClOrdID index (one entry per order remembered). `pace` is called between
    stretches of PACE_ROWS orders (see Pace)."""
    e = check(core)
    live: list[tuple[Any, ...]] = []
    orders = iter(e.orders.values())
    while chunk := list(map(_LIVE_FIELDS, islice(orders, PACE_ROWS))):
        live += chunk
        pace()
    books = [
        (
            b.symbol, b.phase.name, b.last_px,
            [(lv.price, [o.order_id for o in lv.orders()]) for lv in b.levels(Side.BUY)],
            [(lv.price, [o.order_id for o in lv.orders()]) for lv in b.levels(Side.SELL)],
            list(b.buy_stops), list(b.sell_stops),
        )
        for b in e.books.values()
    ]
    live_gtd = sorted({g for g in e.gtd if g[1] in e.orders})
    state = (
        live, e.by_cl_ord_id.copy(), list(e.positions.items()), [(k, list(d)) for k, d in e.reduce_only.items()], live_gtd,
        list(e.accounts.items()), books, e.next_order_id, e.next_exec_id, e.next_trade_id,
    )
    return Captured(seq, ts, state, {name: h.snapshot_state() for name, h in holders(core)})


class _PlainPickler(pickle.Pickler):
    """Pickles plain data only: anything else is a holder breaking the contract."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is Decimal or obj is Decimal:  # a Decimal, and the class it names
            return NotImplemented
        raise SnapshotError(f"snapshot state must be plain data, got {type(obj).__name__}: {obj!r:.80}")


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("decimal", "Decimal"):
            return Decimal
        raise SnapshotError(f"snapshot names {module}.{name}: not plain data")


class _PacedOutput:
    """Where the pickler writes: it hands over a frame (about 64 KB) at a time, and each is a
    point to pace at, inside what is otherwise one long C call."""

    def __init__(self, out: io.BytesIO, pace: Pace) -> None:
        self.out = out
        self.pace = pace

    def write(self, data: bytes) -> int:
        n = self.out.write(data)
        self.pace()
        return n


def encode(snap: Captured, pace: Pace = _no_pace) -> bytes:
    """The snapshot file's body (worker thread). Live orders come from the copies capture()
    made; done orders are read from the objects themselves, which is safe because an order
    never changes again once it is done (filled, canceled, expired) and the ClOrdID index
    copy holds only orders that were live or already done at capture time. `pace` is
    called every PACE_ROWS orders and every pickle frame (see Pace)."""
    enc = codec().encode
    live, by_cl, positions, reduce_only, gtd, accounts, books, noid, neid, ntid = snap.engine
    rows: dict[int, tuple[Any, ...]] = {}
    for i, (v, price, leaves, cum, cost, visible, display, status, stp_key) in enumerate(live, 1):
        rows[v.order_id] = (v.order_id, v.cl_ord_id, v.orig_cl_ord_id, v.qty, v.price, v.stop_px, v.ord_type.name, enc(v.entry),
                            price, leaves, cum, cost, visible, display, status.name, stp_key)
        if not i % PACE_ROWS:
            pace()
    index = []
    for i, (key, o) in enumerate(by_cl.items(), 1):
        if not i % PACE_ROWS:
            pace()
        oid = o.order_id
        if oid not in rows:
            v = o.view
            rows[oid] = (oid, v.cl_ord_id, v.orig_cl_ord_id, v.qty, v.price, v.stop_px, v.ord_type.name, enc(v.entry),
                         o.price, o.leaves, o.cum, o.cost, o.visible, o.display, o.status.name, o.stp_key)
        index.append((key, oid))
    body = {
        "schema": codec().schema(), "orders": list(rows.values()), "live": [v.order_id for v, *_ in live], "by_cl_ord_id": index,
        "positions": positions, "reduce_only": reduce_only, "gtd": gtd, "accounts": accounts, "books": books,
        "next_order_id": noid, "next_exec_id": neid, "next_trade_id": ntid, "holders": snap.holders,
    }
    out = io.BytesIO()
    _PlainPickler(_PacedOutput(out, pace), protocol=5).dump(body)
    return out.getvalue()


def write(directory: Path | str, snap: Captured, keep: int = 2) -> Path:
    """Write `snap` atomically as `<seq>.snap` and keep only the newest `keep` files."""
    return install(write_tmp(directory, snap), keep)


def write_tmp(directory: Path | str, snap: Captured, writer: str = "", pace: Pace = _no_pace) -> Path:
    """Encode `snap` into `<seq>[.<writer>].snap.tmp`, synced to disk, and return that path:
    not yet a snapshot (recovery deletes tmp files) until `install` renames it. `writer`
    keeps two writers of one seq (a child orphaned by a crash, and the restarted venue's)
    off each other's file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    body = encode(snap, pace)
    tmp = tmp_path(directory, snap.seq, writer)
    with open(tmp, "wb") as f:
        f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, snap.seq, snap.ts, len(body), zlib.crc32(body)))
        view = memoryview(body)
        for start in range(0, len(body), SYNC_STEP):
            f.write(view[start:start + SYNC_STEP])
            f.flush()
            os.fdatasync(f.fileno())
        os.fsync(f.fileno())
    return tmp


def tmp_path(directory: Path, seq: int, writer: str = "") -> Path:
    return directory / f"{seq:020d}{'.' + writer if writer else ''}.snap.tmp"


def install(tmp: Path, keep: int = 2) -> Path:
    """Make a written tmp file the snapshot `<seq>.snap` (a rename, durable once the directory
    is synced) and keep only the newest `keep` snapshots."""
    path = tmp.with_name(f"{tmp.name[:20]}.snap")
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for _, old in list(snapshot_paths(path.parent))[keep:]:
        old.unlink(missing_ok=True)  # the venue's last snapshot and the drop-copy process's may prune together
    return path


def snapshot_paths(directory: Path | str) -> Iterator[tuple[int, Path]]:
    """(seq, path) of the snapshots in `directory`, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return iter(())
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return iter(sorted(found, reverse=True))


@dataclass(frozen=True, slots=True)
class Loaded:
    seq: int
    ts: int
    body: dict[str, Any]
    path: Path


def load(path: Path) -> Loaded:
    """Read and check one snapshot file; SnapshotError says what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) < _HEADER.size:
        raise SnapshotError(f"{path}: too short for a snapshot header")
    magic, version, seq, ts, length, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError(f"{path}: not a snapshot (bad magic)")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"{path}: snapshot format {version}, this code reads {FORMAT_VERSION}")
    body = data[_HEADER.size:]
    if len(body) != length or zlib.crc32(body) != crc:
        raise SnapshotError(f"{path}: checksum fails (torn or damaged file)")
    try:
        state = _PlainUnpickler(io.BytesIO(body)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise SnapshotError(f"{path}: undecodable body: {exc}") from None
    return Loaded(seq, ts, state, path)


def load_latest(directory: Path | str, max_seq: int) -> Iterator[Loaded]:
    """Usable snapshots at or before `max_seq`, newest first; a bad one is logged and skipped."""
    for seq, path in snapshot_paths(directory):
        if seq > max_seq:
            log.warning("snapshot %s is past the journal's end (seq %d): ignored", path, max_seq)
            continue
        try:
            yield load(path)
        except SnapshotError as exc:
            log.warning("snapshot unusable, trying an older one: %s", exc)


def restore(core: object, snap: Loaded) -> None:
    """Load `snap` into a freshly built core (engine first, then the state holders)."""
    e = find_engine(core)
    if e.orders or len(e.by_cl_ord_id) or e.next_order_id != 1:
        raise SnapshotError("restore needs a freshly built core")
    body = snap.body
    try:
        _restore_engine(e, body)
        e.validate()
    except (KeyError, ValueError, TypeError, IndexError, struct.error, CodecError, AssertionError) as exc:
        raise SnapshotError(f"{snap.path}: does not fit this core: {exc!r}") from None
    saved = body["holders"]
    present = dict(holders(core))
    if set(saved) != set(present):
        raise SnapshotError(f"{snap.path}: holds state for {sorted(saved)}, this core has {sorted(present)}")
    for name, holder in present.items():
        try:
            holder.restore_state(saved[name])
        except Exception as exc:  # a holder's own code: whatever it raises, recovery falls back to a full replay
            raise SnapshotError(f"{snap.path}: {name}.restore_state failed: {exc!r}") from exc


def _restore_engine(e: MatchingEngine, body: dict[str, Any]) -> None:
    tag, decode_new_order = Decoder(body["schema"]).decoder_for(NewOrder)
    ord_types, statuses = {m.name: m for m in OrdType}, {m.name: m for m in OrdStatus}
    make_view = tuple.__new__  # OrderView's own __new__ is Python code: a third of this loop
    objs: dict[int, Order] = {}
    for oid, cl, orig, qty, vprice, stop, ot, entry_b, price, leaves, cum, cost, visible, display, status, stp_key in body["orders"]:
        if entry_b[0] != tag:
            raise TypeError(f"order {oid}'s entry is not a NewOrder")
        entry = decode_new_order(entry_b, 1, len(entry_b))
        o = Order(make_view(OrderView, (oid, cl, orig, qty, vprice, stop, ord_types[ot], entry)), entry.side, price, leaves, display, stp_key)
        o.cum, o.cost, o.visible, o.status = cum, cost, visible, statuses[status]
        objs[oid] = o
    symbols = [b[0] for b in body["books"]]
    if sorted(symbols) != sorted(e.books):
        raise ValueError(f"snapshot books {sorted(symbols)} != configured instruments {sorted(e.books)}")
    for symbol, phase, last_px, bids, asks, buy_stops, sell_stops in body["books"]:
        book = e.books[symbol]
        book.phase, book.last_px = TradingPhase[phase], last_px
        for _, ids in (*bids, *asks):
            for oid in ids:
                book.add(objs[oid])
        book.buy_stops.update(buy_stops)
        book.sell_stops.update(sell_stops)
    e.orders = {oid: objs[oid] for oid in body["live"]}
    e.by_cl_ord_id = ClOrdIndex((key, objs[oid]) for key, oid in body["by_cl_ord_id"])
    e.positions = dict(body["positions"])
    e.reduce_only = {key: {oid: objs[oid] for oid in ids} for key, ids in body["reduce_only"]}
    e.gtd = list(body["gtd"])  # sorted, so a valid heap
    e.accounts = dict(body["accounts"])
    e.next_order_id, e.next_exec_id, e.next_trade_id = body["next_order_id"], body["next_exec_id"], body["next_trade_id"]
    e.drain_book_deltas(0, 0)  # rebuilding the levels marked them for market data: not news


def state_of(core: object) -> dict[str, Any]:
    """The whole state as plain data (what a snapshot holds): equal iff the states are."""
    body = _PlainUnpickler(io.BytesIO(encode(capture(core, 0, 0)))).load()
    del body["schema"]
    return body  # type: ignore[no-any-return]


def state_digest(core: object) -> str:
    """A short hash of state_of(core) that two processes can compare: canonical (dicts by
    sorted key, no dependence on object identity, as pickle bytes would have)."""
    return hashlib.sha256(repr(_canonical(state_of(core))).encode()).hexdigest()[:16]


def _canonical(x: Any) -> Any:
    if isinstance(x, dict):
        return sorted(((_canonical(k), _canonical(v)) for k, v in x.items()), key=repr)
    if isinstance(x, (list, tuple)):
        return [_canonical(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted((_canonical(v) for v in x), key=repr)
    return x

