"""The drop-copy feed: from the sequencer's published events to each member's session, in
order, each copy once, without ever slowing matching.

Threads. `DropCopyFeed.on_events` is a sequencer subscriber: it runs on the loop thread
and only routes (a dict lookup per event side, an append per entitled member); rendering
and sending happen on one writer thread per member (`MemberStream`), which may block on a
slow socket without the sequencer noticing.

A member's stream is in one of two modes, switched under the feed's lock:

    LIVE        the subscriber appends each event of a batch with seq > `live_after` to the
                member's buffer, unless the buffer already holds `max_buffered` events:
                then the member goes to CATCH_UP, resuming after the last seq it buffered.
    CATCH_UP    the subscriber appends nothing. The writer first sends what is buffered,
                then reads the journal through its own fresh core (drop_copy/replay.py) and
                sends the member's copies past its resume point. Then, under the feed's
                lock (so nothing is published meanwhile), it replays what was published
                during that pass and goes LIVE with `live_after` = the last seq replayed:
                copies after it come from the live feed, copies up to it came from the
                journal, none from both. The replay reads only the records appended since
                its last read, so catching up under load converges.

Every member starts in CATCH_UP from its resume point: after the last copy its FIX store
holds (the venue restarted: what was stored is resent by FIX, what was lost in the
buffer is regenerated from the journal), or from the start of the journal for a new store.
Because the journal is written before events are published, it always holds at least
what was published, so the switch back to LIVE cannot skip a seq.

Buffered entries are whole events: the copies are rendered once per event by whichever
writer needs them first and shared (`Pending`), so ten members cost one rendering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Protocol

from drop_copy.entitlement import Entitlements, Member
from drop_copy.messages import Copy, copies
from drop_copy.replay import CoreFactory, RecordSource, Replay
from venue.events import Event, ExecReport, Fill
from venue.fix.reports import Renderer
from venue.instruments import Instrument
from venue.types import ExecType

log = logging.getLogger(__name__)

# A catch-up's last stretch, replayed under the feed's lock (the follower's publishing
# waits meanwhile), is at most this many records: a few milliseconds of the core.
LOCKED_STRETCH = 2_000
_X_REJECTED = ExecType.REJECTED
_X_STATUS = ExecType.ORDER_STATUS


class Sink(Protocol):
    """Where a member's messages go (the drop-copy acceptor's session). May block."""

    def send(self, member: Member, raw: str) -> None: ...


class Resume(NamedTuple):
    """Where a member's stream resumes: after the copy with ExecID `exec_id` of command
    `seq`, or after every copy of `seq` when `exec_id` is None."""

    seq: int
    exec_id: int | None = None


class Mode(Enum):
    LIVE = "live"
    CATCH_UP = "catch_up"


class Pending:
    """An event waiting in one or more members' buffers; renders its copies once."""

    __slots__ = ("_copies", "event")

    def __init__(self, event: Event | None, rendered: list[Copy] | None = None) -> None:
        """An event, or copies a catch-up has rendered already."""
        self.event = event
        self._copies = rendered

    def copies(self, renderer: Renderer) -> list[Copy]:
        out = self._copies
        if out is None:
            assert self.event is not None
            out = self._copies = list(copies((self.event,), renderer))
        return out


class MemberStream:
    """One member's ordered stream and the writer thread that sends it."""

    def __init__(self, feed: DropCopyFeed, member: Member, resume: Resume) -> None:
        self.feed = feed
        self.member = member
        self.mode = Mode.CATCH_UP
        self.resume = resume
        self.live_after = 0
        self.buffer: deque[Pending] = deque()
        self.sent = 0  # copies handed to the sink
        self.catch_ups = 0  # times the stream fell behind and was caught up from the journal
        self.replay: Replay | None = None
        self._head_sent = 0  # copies of buffer[0] already sent (a send that failed midway is not repeated)
        self._skip_through: int | None = None  # during a catch-up: the copies of resume.seq up to this ExecID were sent
        self.renderer = Renderer(feed.instruments)  # one per thread: its caches are not thread-safe
        self._thread = threading.Thread(target=self._run, name=f"drop-copy-{member.id}", daemon=True)

    def wanted(self, c: Copy) -> bool:
        m = self.member
        return (c.firm in m.firms or c.account in m.accounts) and (m.include_rejects or c.exec_type is not _X_REJECTED)

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        feed, wake = self.feed, self.feed.wake
        while not feed.stopping:
            try:
                if self.buffer:
                    self._send_buffered()
                elif self.mode is Mode.CATCH_UP:
                    self._catch_up()
                else:
                    with wake:
                        if not self.buffer and self.mode is Mode.LIVE and not feed.stopping:
                            wake.wait(0.2)
            except Exception:  # a broken sink or journal must not kill the thread silently
                log.exception("drop copy for %s failed; retrying in 1 s", self.member.id)
                feed.stopped.wait(1.0)

    def _send_buffered(self) -> None:
        buffer, renderer, send, member = self.buffer, self.renderer, self.feed.sink.send, self.member
        while buffer and not self.feed.stopping:
            wanted = [c for c in buffer[0].copies(renderer) if self.wanted(c)]
            for c in wanted[self._head_sent:]:
                send(member, c.raw)
                self.sent += 1
                self._head_sent += 1
            buffer.popleft()
            self._head_sent = 0
        with self.feed.drained:
            self.feed.drained.notify_all()

    def _catch_up(self) -> None:
        """Send the member's copies from the journal past `resume`, then go LIVE. After a
        failure the replay starts again and skips what was sent (`resume` follows each copy)."""
        try:
            self._replay_past_resume()
        except Exception:
            self.replay = None
            raise

    def _replay_past_resume(self) -> None:
        feed = self.feed
        if self.replay is None:
            self.replay = Replay(feed.source, feed.core_factory, feed.snapshots)
            self.replay.start_near(self.resume.seq)
        replay, member = self.replay, self.member
        self._skip_through = self.resume.exec_id if self.resume.seq > replay.position else None
        start = replay.position
        for seq, events in replay.advance(feed.published):
            if feed.stopping:
                return
            for c in self._replayed(seq, events):
                self._send_replayed(c)
        if feed.published - replay.position > LOCKED_STRETCH and replay.position > start:
            return  # much was published during the pass: another pass first, outside the lock (a pass that read nothing waits below, never spins)
        with feed.lock:
            # What was published during the pass above, under the feed's lock: nothing is
            # published meanwhile, so the stream goes LIVE exactly after it. Only the core
            # runs here (microseconds a record); the copies are sent after the lock is let go.
            last = [c for seq, events in replay.advance(feed.published) for c in self._replayed(seq, events)]
            caught_up = feed.published <= replay.position
            if caught_up:
                if last:  # sent before anything published later: the buffer is empty while catching up
                    self.buffer.appendleft(Pending(None, last))
                self.mode = Mode.LIVE
                self.live_after = replay.position
        if caught_up:
            log.info("drop copy for %s is live after seq %d (%d copies sent)", member.id, replay.position, self.sent)
            return
        for c in last:
            self._send_replayed(c)
        feed.stopped.wait(0.05)  # the journal has not shown what was published yet (a reader racing a segment roll)

    def _send_replayed(self, c: Copy) -> None:
        """Send a copy from the journal; the stream resumes after it if the pass fails."""
        self.feed.sink.send(self.member, c.raw)
        self.sent += 1
        self.resume = Resume(c.seq, c.exec_id)

    def _replayed(self, seq: int, events: Sequence[Event]) -> Iterator[Copy]:
        """The member's copies of one replayed command, past its resume point."""
        resume = self.resume
        if seq < resume.seq or (seq == resume.seq and resume.exec_id is None):
            return
        for c in copies(_entitled_events(events, self.member), self.renderer):
            if seq == resume.seq and self._skip_through is not None:
                if c.exec_id == self._skip_through:
                    self._skip_through = None
                continue
            if self.wanted(c):
                yield c


def _entitled_events(events: Sequence[Event], member: Member) -> list[Event]:
    """The events with a side the member clears: only those are rendered during a catch-up."""
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, Fill):
            if member.entitled(ev.taker.entry.firm, ev.taker.entry.account) or member.entitled(ev.maker.entry.firm, ev.maker.entry.account):
                out.append(ev)
        elif isinstance(ev, ExecReport) and member.entitled(ev.order.entry.firm, ev.order.entry.account):
            out.append(ev)
    return out


class DropCopyFeed:
    """Routes published events to members' streams; owns their writer threads."""

    def __init__(
        self,
        entitlements: Entitlements,
        instruments: Mapping[str, Instrument],
        sink: Sink,
        source: RecordSource,
        core_factory: CoreFactory,
        *,
        published: int = 0,
        resume: Mapping[str, Resume] | None = None,
        snapshots: Path | None = None,
    ) -> None:
        """`published`: the last seq already published when the feed starts (the journal's
        end after recovery); `resume`: per member id, where its stream resumes."""
        self.entitlements = entitlements
        self.instruments = instruments
        self.sink = sink
        self.source = source
        self.core_factory = core_factory
        self.snapshots = snapshots  # the venue's snapshots: a catch-up starts from one when it can
        self.published = published
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.drained = threading.Condition(self.lock)
        self.stopping = False
        self.stopped = threading.Event()
        resume = resume or {}
        self.streams: dict[str, MemberStream] = {
            m.id: MemberStream(self, m, resume.get(m.id, Resume(0))) for m in entitlements.members
        }

    def start(self) -> None:
        for s in self.streams.values():
            s._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the writers (what is still buffered is regenerated from the journal next start)."""
        with self.wake:
            self.stopping = True
            self.wake.notify_all()
        self.stopped.set()
        for s in self.streams.values():
            if s._thread.is_alive():
                s._thread.join(timeout)

    def wait_drained(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until every live member's buffer is sent. The
        drop-copy process's follower calls it between batches: there, waiting costs
        matching nothing (the journal keeps what comes meanwhile), and the writers get
        the interpreter lock without fighting the replica for it at every quickfix call."""
        deadline = time.monotonic() + timeout
        with self.drained:
            while any(s.buffer for s in self.streams.values() if s.mode is Mode.LIVE):
                left = deadline - time.monotonic()
                if left <= 0 or self.stopping:
                    return
                self.drained.wait(left)

    def on_events(self, events: Sequence[Event]) -> None:
        """Sequencer subscriber (loop thread): route the batch to the members' buffers."""
        ids_for = self.entitlements.ids_for
        streams = self.streams
        routed: list[tuple[int, Pending, frozenset[str]]] = []
        for ev in events:
            if isinstance(ev, Fill):
                a, b = ev.taker.entry, ev.maker.entry
                who = ids_for(a.firm, a.account) | ids_for(b.firm, b.account)
            elif isinstance(ev, ExecReport) and ev.exec_type is not _X_STATUS:
                e = ev.order.entry
                who = ids_for(e.firm, e.account)
            else:
                continue
            if who:
                routed.append((ev.seq, Pending(ev), who))
        first, last = events[0].seq, events[-1].seq
        with self.wake:
            self.published = max(self.published, last)
            notify = False
            for stream in streams.values():
                if stream.mode is not Mode.LIVE:
                    continue
                if len(stream.buffer) >= stream.member.max_buffered:
                    stream.mode = Mode.CATCH_UP
                    stream.resume = Resume(max(first - 1, stream.live_after))
                    stream.catch_ups += 1
                    log.warning("drop copy for %s is %d events behind: catching up from the journal after seq %d",
                                stream.member.id, len(stream.buffer), stream.resume.seq)
                    notify = True
                    continue
                mid, after, buf = stream.member.id, stream.live_after, stream.buffer
                for seq, pending, who in routed:
                    if mid in who and seq > after:
                        buf.append(pending)
                        notify = True
            if notify:
                self.wake.notify_all()
