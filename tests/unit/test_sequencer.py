"""The sequencer on the loop: stamping, batching, journal-before-publish, subscribers,
GTD expiry scheduling, the day roll at 00:00 UTC and fail-stop. Hand-written stubs for the clock, journal and core;
every wait is bounded by asyncio.wait_for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from matching_support import BUY, SELL, brief, cancel, new_engine, order

from venue.commands import Command, ExpireOrders, NewOrder
from venue.events import BookDelta, Event, ExecReport
from venue.matching import MatchingEngine
from venue.sequencer import Sequencer, day_end_after, utc_micros
from venue.types import ExecType, TimeInForce

WAIT = 5.0  # seconds: the bound on every wait here


class RecordingCore:
    """The real engine, recording what the sequencer hands it; raises on one ClOrdID to
    stand for a broken invariant."""

    def __init__(self, engine: MatchingEngine, boom: str | None = None) -> None:
        self.engine = engine
        self.boom = boom
        self.applied: list[tuple[int, int, Command]] = []

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        if isinstance(cmd, NewOrder) and cmd.cl_ord_id == self.boom:
            raise AssertionError("broken invariant")
        self.applied.append((seq, ts, cmd))
        return self.engine.apply(seq, ts, cmd)

    def next_expiry(self) -> int | None:
        return self.engine.next_expiry()

    def drain_book_deltas(self, seq: int, ts: int) -> list[BookDelta]:
        return self.engine.drain_book_deltas(seq, ts)


@dataclass
class JournalStub:
    appended: list[tuple[int, int, Command]] = field(default_factory=list)
    durable: int = 0  # the last seq a write made durable
    taken: int = 0
    syncs: bool = True  # written on the journal thread
    writers: set[str] = field(default_factory=set)  # the threads write() ran on

    def append_batch(self, first_seq: int, stamps: Sequence[int], cmds: Sequence[Command]) -> None:
        self.appended += zip(range(first_seq, first_seq + len(cmds)), stamps, cmds, strict=True)

    def take(self) -> list[tuple[int, int, Command]]:
        batch, self.taken = self.appended[self.taken:], len(self.appended)
        return batch

    def write(self, taken: Sequence[list[tuple[int, int, Command]]]) -> None:
        self.writers.add(threading.current_thread().name)
        for batch in taken:
            if batch:
                self.durable = batch[-1][0]


class Clock:
    """Returns the given µs times in turn, then the last one forever."""

    def __init__(self, *times: int) -> None:
        self.times = list(times)

    def __call__(self) -> int:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


@dataclass
class Harness:
    sequencer: Sequencer
    core: RecordingCore
    journal: JournalStub
    batches: list[list[Event]]
    task: asyncio.Task[None]

    async def finish(self) -> None:
        self.sequencer.stop()
        await asyncio.wait_for(self.task, WAIT)


Start = Callable[..., Harness]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Builds a running sequencer over a recording core, a journal stub and a subscriber
    that keeps every batch; cancels whatever is left running afterwards."""
    tasks: list[asyncio.Task[None]] = []

    def make(*, clock: Callable[[], int] = utc_micros, boom: str | None = None, max_batch: int = 512, extra: Sequence[Callable[[Sequence[Event]], None]] = ()) -> Harness:
        core = RecordingCore(new_engine(), boom)
        journal = JournalStub()
        batches: list[list[Event]] = []
        seq = Sequencer(core, journal=journal, subscribers=[*extra, lambda evs: batches.append(list(evs))], clock=clock, max_batch=max_batch)
        task = asyncio.create_task(seq.run())
        tasks.append(task)
        return Harness(seq, core, journal, batches, task)

    yield make
    for t in tasks:
        if not t.done():
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(t, WAIT)


async def test_commands_are_stamped_with_increasing_seq_and_time_that_never_goes_back(start: Start) -> None:
    """The clock steps back from 20 to 15: the stamp stays at 20."""
    h = start(clock=Clock(10, 20, 15, 30))
    for i in range(4):
        h.sequencer.submit(order(f"o{i}", BUY, 1, 90 + i))
    await asyncio.wait_for(h.sequencer.call(order("o4", BUY, 1, 95)), WAIT)
    await h.finish()
    assert [(s, t) for s, t, _ in h.core.applied] == [(1, 10), (2, 20), (3, 20), (4, 30), (5, 30)]
    assert h.sequencer.next_seq == 6


async def test_events_are_published_in_sequence_order_in_batches(start: Start) -> None:
    """Five commands queued at once with max_batch 2 are run as batches of 2, 2 and 1;
    each batch reaches the subscriber once, its events in sequence order, with the
    book deltas the batch left at its end."""
    h = start(max_batch=2)
    for i in range(4):
        h.sequencer.submit(order(f"o{i}", BUY, 1, 90 + i))
    await asyncio.wait_for(h.sequencer.call(order("o4", BUY, 1, 95)), WAIT)
    await h.finish()
    assert [[e.seq for e in b if isinstance(e, ExecReport)] for b in h.batches] == [[1, 2], [3, 4], [5]]
    assert [[(e.seq, e.price) for e in b if isinstance(e, BookDelta)] for b in h.batches] == [
        [(2, 90), (2, 91)], [(4, 92), (4, 93)], [(5, 95)],
    ]


async def test_call_returns_the_commands_own_events(start: Start) -> None:
    """call() resolves with the events of its own command only, stamped with its own
    sequence number."""
    h = start()
    h.sequencer.submit(order("s1", SELL, 2, 101, account="B1"))
    events = await asyncio.wait_for(h.sequencer.call(order("b1", BUY, 2, 101)), WAIT)
    await h.finish()
    assert brief(events) == [("NEW", "b1", "NEW", 2, 0, None), ("FILL", 101, 2, "BUY", "b1", 0, "s1", 0)]
    assert {e.seq for e in events} == {2}


async def test_a_failing_subscriber_neither_stops_the_sequencer_nor_the_others(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    """A subscriber that raises is logged for each batch; the next subscriber still gets
    every batch and the sequencer goes on."""
    def broken(events: Sequence[Event]) -> None:
        raise RuntimeError("subscriber bug")

    h = start(extra=[broken])
    await asyncio.wait_for(h.sequencer.call(order("o1", BUY, 1, 90)), WAIT)
    await asyncio.wait_for(h.sequencer.call(order("o2", BUY, 1, 91)), WAIT)
    await h.finish()
    assert [e.order.cl_ord_id for b in h.batches for e in b if isinstance(e, ExecReport)] == ["o1", "o2"]
    assert sum("subscriber" in r.getMessage() for r in caplog.records) == 2


async def test_every_command_is_journaled_and_flushed_before_its_events_are_published(start: Start) -> None:
    """Every command is appended to the journal with its seq and time, and each batch is
    flushed before a subscriber sees it."""
    durable_at_publish: list[tuple[int, int]] = []
    journal_ref: list[JournalStub] = []

    def check(events: Sequence[Event]) -> None:
        durable_at_publish.append((max(e.seq for e in events), journal_ref[0].durable))

    h = start(extra=[check])
    journal_ref.append(h.journal)
    cmds = [order(f"o{i}", BUY, 1, 90 + i) for i in range(5)]
    for cmd in cmds[:3]:
        h.sequencer.submit(cmd)
    await asyncio.wait_for(h.sequencer.call(cmds[3]), WAIT)
    await asyncio.wait_for(h.sequencer.call(cmds[4]), WAIT)
    await h.finish()
    assert [(s, c) for s, _, c in h.journal.appended] == list(enumerate(cmds, start=1))
    assert [(s, t) for s, t, _ in h.journal.appended] == [(s, t) for s, t, _ in h.core.applied]
    assert all(durable >= last_seq for last_seq, durable in durable_at_publish)
    assert durable_at_publish[-1] == (5, 5)


@pytest.mark.parametrize("syncs", [True, False])
async def test_a_journal_that_syncs_is_written_on_the_journal_thread_one_that_does_not_on_the_loop(syncs: bool) -> None:
    """A write that waits for the disk runs off the loop; one that does not (fsync off) is a
    copy into the page cache, done on the loop before the batch is published."""
    journal, seen = JournalStub(syncs=syncs), list[int]()
    seqr = Sequencer(RecordingCore(new_engine()), journal=journal, subscribers=[lambda evs: seen.append(max(e.seq for e in evs))], max_batch=2)
    task = asyncio.create_task(seqr.run())
    for i in range(5):
        seqr.submit(order(f"o{i}", BUY, 1, 90 + i))
    await asyncio.wait_for(seqr.call(order("last", BUY, 1, 80)), WAIT)
    seqr.stop()
    await asyncio.wait_for(task, WAIT)
    assert journal.writers == ({"journal"} if syncs else {threading.current_thread().name})
    assert journal.durable == 6 and seen == sorted(seen) and seen[-1] == 6


class CountingJournal(JournalStub):
    """Counts the commands each take() hands over."""

    def __init__(self) -> None:
        super().__init__()
        self.taken_sizes: list[int] = []

    def take(self) -> list[tuple[int, int, Command]]:
        batch = super().take()
        self.taken_sizes.append(len(batch))
        return batch


async def test_while_commands_queue_the_journal_thread_is_handed_a_quarter_of_max_unpublished_at_a_time() -> None:
    """Each hand-off wakes the journal thread (which then takes the interpreter lock from the
    loop): under a queue, batches go over max_unpublished // 4 commands at a time; every
    command is still written and published, in order."""
    journal, seen = CountingJournal(), list[int]()
    seqr = Sequencer(RecordingCore(new_engine()), journal=journal, subscribers=[lambda evs: seen.extend(e.seq for e in evs)],
                     max_batch=10, max_unpublished=200)
    task = asyncio.create_task(seqr.run())
    for i in range(1000):
        seqr.submit(order(f"o{i}", BUY if i % 2 else SELL, 1, 90 + i % 7))
    seqr.stop()
    await asyncio.wait_for(task, WAIT)
    assert journal.taken_sizes == [50] * 20
    assert journal.durable == 1000 and seen == sorted(seen) and seen[-1] == 1000


async def test_gtd_expiry_is_scheduled_from_next_expiry(start: Start) -> None:
    """A GTD order due 30 ms after entry expires without anyone submitting ExpireOrders.
    The clock is a stub moved past the due time once the order is in, so a slow machine
    cannot make the order arrive already expired."""
    expired = asyncio.Event()

    def watch(events: Sequence[Event]) -> None:
        if any(isinstance(e, ExecReport) and e.exec_type is ExecType.EXPIRED for e in events):
            expired.set()

    now = [utc_micros()]
    h = start(extra=[watch], clock=lambda: now[0])
    due = now[0] + 30_000
    placed = await asyncio.wait_for(h.sequencer.call(order("t1", BUY, 1, 90, tif=TimeInForce.GTD, expire_time=due)), WAIT)
    assert brief(placed) == [("NEW", "t1", "NEW", 1, 0, None)]
    now[0] = due
    await asyncio.wait_for(expired.wait(), WAIT)
    await h.finish()
    assert [(t, type(c)) for _, t, c in h.core.applied][1:] == [(due, ExpireOrders)]
    assert h.core.engine.orders == {} and h.core.engine.next_expiry() is None


async def test_core_exception_stops_the_sequencer_without_journaling_the_failing_command(start: Start) -> None:
    """A broken invariant is fail-stop: run() raises it, the caller of the failing command
    gets it, the failing command is never journaled nor given a sequence number, and
    what was processed before it in the batch is still journaled and published."""
    h = start(boom="bad")
    first = order("o1", BUY, 1, 90)
    h.sequencer.submit(first)
    with pytest.raises(AssertionError, match="broken invariant"):
        await asyncio.wait_for(h.sequencer.call(order("bad", BUY, 1, 91)), WAIT)
    with pytest.raises(AssertionError, match="broken invariant"):
        await asyncio.wait_for(h.task, WAIT)
    assert [c for _, _, c in h.journal.appended] == [first]
    assert [e.order.cl_ord_id for b in h.batches for e in b if isinstance(e, ExecReport)] == ["o1"]
    assert h.sequencer.next_seq == 2
    assert isinstance(h.sequencer.failed, AssertionError)


class RefusingJournal(JournalStub):
    """A journal that cannot carry one command (say, a type with no journal tag)."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse

    def append_batch(self, first_seq: int, stamps: Sequence[int], cmds: Sequence[Command]) -> None:
        if any(isinstance(c, NewOrder) and c.cl_ord_id == self.refuse for c in cmds):
            raise ValueError(f"cannot journal {self.refuse}")
        super().append_batch(first_seq, stamps, cmds)


async def test_a_batch_the_journal_cannot_take_is_not_published_and_stops_the_sequencer() -> None:
    """Nothing the journal did not take may be heard of: not the command it refused, nor
    the others of its batch; batches before it are published once written."""
    core, journal, seen = RecordingCore(new_engine()), RefusingJournal("bad"), list[Event]()
    seqr = Sequencer(core, journal=journal, subscribers=[lambda evs: seen.extend(evs)], max_batch=2)
    task = asyncio.create_task(seqr.run())
    first = asyncio.ensure_future(seqr.call(order("o1", BUY, 1, 90)))
    await asyncio.wait_for(first, WAIT)
    calls = [asyncio.ensure_future(seqr.call(order(c, BUY, 1, 91))) for c in ("o2", "bad")]
    for call in calls:
        with pytest.raises(ValueError, match="cannot journal bad"):
            await asyncio.wait_for(call, WAIT)
    with pytest.raises(ValueError, match="cannot journal bad"):
        await asyncio.wait_for(task, WAIT)
    assert [c.cl_ord_id for _, _, c in journal.appended] == ["o1"]  # type: ignore[union-attr]
    assert {e.order.cl_ord_id for e in seen if isinstance(e, ExecReport)} == {"o1"}
    assert seqr.durable_seq == 1


async def test_commands_queued_behind_a_core_failure_are_not_applied(start: Start) -> None:
    """Fail-stop means no command runs on the state a broken invariant left behind."""
    h = start(boom="bad")
    h.sequencer.submit(order("bad", BUY, 1, 91))
    h.sequencer.submit(order("after", BUY, 1, 92))
    with pytest.raises(AssertionError, match="broken invariant"):
        await asyncio.wait_for(h.task, WAIT)
    assert h.core.applied == []
    assert h.journal.appended == []
    with pytest.raises(RuntimeError, match="core failure"):
        await asyncio.wait_for(h.sequencer.call(order("later", BUY, 1, 93)), WAIT)


async def test_commands_handed_in_from_another_thread_are_sequenced(start: Start) -> None:
    """quickfix calls back on its own threads: submit_threadsafe hands over to the loop."""
    seen = asyncio.Event()
    h = start(extra=[lambda events: seen.set()])
    await asyncio.wait_for(h.sequencer.call(order("o0", BUY, 1, 90)), WAIT)
    seen.clear()
    thread = threading.Thread(target=h.sequencer.submit_threadsafe, args=(order("o1", BUY, 1, 91),))
    thread.start()
    await asyncio.wait_for(seen.wait(), WAIT)
    await asyncio.to_thread(thread.join, WAIT)
    await h.finish()
    assert [(s, c.cl_ord_id) for s, _, c in h.core.applied if isinstance(c, NewOrder)] == [(1, "o0"), (2, "o1")]


def test_submit_threadsafe_before_the_sequencer_runs_is_an_error() -> None:
    """Handing a command over from another thread before run() has a loop to hand it to
    is an error, not a silent drop."""
    with pytest.raises(RuntimeError, match="not running"):
        Sequencer(RecordingCore(new_engine())).submit_threadsafe(order("o1", BUY, 1, 90))


async def test_a_stopped_sequencer_refuses_new_commands_instead_of_hanging(start: Start) -> None:
    """After run() has ended, call() and submit() raise at once: a caller is never left
    waiting for an answer that no task will produce."""
    h = start()
    await h.finish()
    with pytest.raises(RuntimeError, match="not running"):
        await asyncio.wait_for(h.sequencer.call(order("late", BUY, 1, 90)), WAIT)
    with pytest.raises(RuntimeError, match="not running"):
        h.sequencer.submit(order("late2", BUY, 1, 90))


class GatedJournal(JournalStub):
    """A journal whose writes wait for the test to open the gate (or fail, when told)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.writing_on = ""  # the thread of the latest write
        self.fail = fail

    def write(self, taken: Sequence[list[tuple[int, int, Command]]]) -> None:
        self.writing_on = threading.current_thread().name
        self.writing.set()
        if not self.gate.wait(WAIT):
            raise TimeoutError("gate never opened")
        if self.fail:
            raise OSError(28, "No space left on device")
        super().write(taken)


async def test_the_next_batch_runs_while_one_is_written_but_nothing_is_published_before_its_write() -> None:
    """Pipelining: while batches 1-2 are written on the journal thread, batch 3 goes
    through the core; no subscriber or caller hears of any until the writes complete, and
    then in order. (Two at once: a lone batch on an idle journal is written on the loop.)"""
    core, journal, seen = RecordingCore(new_engine()), GatedJournal(), []
    seqr = Sequencer(core, journal=journal, subscribers=[lambda evs: seen.append([e.seq for e in evs])], max_batch=1)
    task = asyncio.create_task(seqr.run())
    calls = [asyncio.ensure_future(seqr.call(order(f"o{i}", BUY, 1, 90))) for i in (1, 2)]
    await asyncio.wait_for(asyncio.to_thread(journal.writing.wait, WAIT), WAIT)
    calls.append(asyncio.ensure_future(seqr.call(order("o3", BUY, 1, 91))))
    async def applied_thrice() -> None:
        while len(core.applied) < 3:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(applied_thrice(), WAIT)
    assert (seen, [c.done() for c in calls]) == ([], [False] * 3)
    assert journal.writing_on == "journal"
    journal.gate.set()
    await asyncio.wait_for(asyncio.gather(*calls), WAIT)
    seqr.stop()
    await asyncio.wait_for(task, WAIT)
    assert [s for batch in seen for s in batch] == sorted(s for batch in seen for s in batch)
    assert {s for batch in seen for s in batch} == {1, 2, 3} and journal.durable == 3


async def test_a_lone_batch_on_an_idle_journal_is_written_on_the_loop_and_published_at_once() -> None:
    """In a quiet spell (nothing queued, every earlier write done) the loop writes the
    batch itself: the sync, but no hand-off to the journal thread and back."""
    core, journal, seen = RecordingCore(new_engine()), GatedJournal(), list[list[int]]()
    journal.gate.set()
    seqr = Sequencer(core, journal=journal, subscribers=[lambda evs: seen.append([e.seq for e in evs])], max_batch=1)
    task = asyncio.create_task(seqr.run())
    for i in (1, 2):
        await asyncio.wait_for(seqr.call(order(f"o{i}", BUY, 1, 90)), WAIT)
    seqr.stop()
    await asyncio.wait_for(task, WAIT)
    assert journal.writers == {threading.current_thread().name} and journal.durable == 2
    assert [sorted(set(batch)) for batch in seen] == [[1], [2]] and seqr.durable_seq == 2


@pytest.mark.parametrize("syncs", [True, False])
async def test_a_failed_journal_write_stops_the_sequencer_and_publishes_nothing_of_it(syncs: bool) -> None:
    """A write that fails (disk full) means the batch is not durable: no subscriber and no
    caller hears of it, later commands are refused, and run() raises the error."""
    core, journal, seen = RecordingCore(new_engine()), GatedJournal(fail=True), list[Sequence[Event]]()
    journal.syncs = syncs
    seqr = Sequencer(core, journal=journal, subscribers=[seen.append])
    task = asyncio.create_task(seqr.run())
    call = asyncio.ensure_future(seqr.call(order("o1", BUY, 1, 90)))
    journal.gate.set()
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(call, WAIT)
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(task, WAIT)
    assert seen == []
    with pytest.raises(RuntimeError, match="not running|stopped"):
        seqr.submit(order("o2", BUY, 1, 91))


MIDNIGHT = day_end_after(utc_micros())  # the next 00:00 UTC, µs


async def test_the_first_command_past_midnight_comes_after_the_day_roll(start: Start) -> None:
    """Stamped past 00:00 UTC, a command waits for an EndOfDay sequenced (and journaled)
    before it at the same time: the DAY order expires, the GTC order stays and is still
    known by its ClOrdID, and the ClOrdID of an order done yesterday is free again."""
    now = [MIDNIGHT - 1_000]
    h = start(clock=lambda: now[0])

    async def call(cmd: Command) -> list[tuple[object, ...]]:
        return brief(await asyncio.wait_for(h.sequencer.call(cmd), WAIT))

    await call(order("day", BUY, 1, 90, tif=TimeInForce.DAY))
    await call(order("gtc", BUY, 1, 91, tif=TimeInForce.GTC))
    assert await call(order("ioc", BUY, 1, 80, tif=TimeInForce.IOC)) == [("NEW", "ioc", "NEW", 1, 0, None), ("CANCELED", "ioc", "CANCELED", 0, 0, None)]
    assert await call(order("ioc", BUY, 1, 80, tif=TimeInForce.GTC)) == [("REJECTED", "ioc", "REJECTED", 0, 0, "DUPLICATE_CL_ORD_ID")]
    now[0] = MIDNIGHT + 5
    assert await call(order("ioc", BUY, 1, 92, tif=TimeInForce.GTC)) == [("NEW", "ioc", "NEW", 1, 0, None)]
    assert await call(cancel("c1", "gtc")) == [("CANCELED", "c1", "CANCELED", 0, 0, None)]
    await h.finish()
    kinds = [(s, t, type(c).__name__) for s, t, c in h.core.applied]
    assert kinds[4:6] == [(5, MIDNIGHT + 5, "EndOfDay"), (6, MIDNIGHT + 5, "NewOrder")]
    assert [(s, t, type(c).__name__) for s, t, c in h.journal.appended] == kinds
    expired = [e for batch in h.batches for e in brief(batch) if e[0] == "EXPIRED"]
    assert expired == [("EXPIRED", "day", "EXPIRED", 0, 0, None)]


async def test_a_quiet_venue_rolls_at_midnight_and_the_timer_never_rolls_twice(start: Start) -> None:
    """Nobody sends anything across midnight: the timer's check rolls the day on its own.
    A check that comes when the roll is made (or early) is dropped, unjournaled."""
    offset = MIDNIGHT - 50_000 - utc_micros()  # midnight 50 ms from now on the venue's clock
    h = start(clock=lambda: utc_micros() + offset)
    await asyncio.wait_for(h.sequencer.call(order("day", BUY, 1, 90, tif=TimeInForce.DAY)), WAIT)
    for _ in range(int(WAIT * 100)):
        if any(type(c).__name__ == "EndOfDay" for _, _, c in h.core.applied):
            break
        await asyncio.sleep(0.01)
    h.sequencer.submit(h.sequencer._day_check)  # as a second timer would
    await asyncio.wait_for(h.sequencer.call(order("later", BUY, 1, 90)), WAIT)
    await h.finish()
    assert [type(c).__name__ for _, _, c in h.core.applied] == ["NewOrder", "EndOfDay", "NewOrder"]
    assert [c for _, _, c in h.journal.appended] == [c for _, _, c in h.core.applied]
    assert h.core.applied[1][1] >= MIDNIGHT
    assert [o.view.cl_ord_id for o in h.core.engine.orders.values()] == ["later"]


async def test_a_venue_down_across_midnight_rolls_as_it_starts() -> None:
    """Restarted with yesterday's last stamp, the sequencer rolls the day before anything
    else, with no command to wait for."""
    core = RecordingCore(new_engine())
    core.apply(1, MIDNIGHT - 10, order("day", BUY, 1, 90, tif=TimeInForce.DAY))
    seqr = Sequencer(core, next_seq=2, last_ts=MIDNIGHT - 10, clock=lambda: MIDNIGHT + 3_600_000_000)
    task = asyncio.create_task(seqr.run())
    for _ in range(int(WAIT * 100)):
        if len(core.applied) > 1:
            break
        await asyncio.sleep(0.01)
    seqr.stop()
    await asyncio.wait_for(task, WAIT)
    assert [(s, type(c).__name__) for s, _, c in core.applied] == [(1, "NewOrder"), (2, "EndOfDay")]
    assert core.engine.orders == {}
