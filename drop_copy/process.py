"""The drop-copy process: clearing members' sessions and the clearing ledger, beside the
venue and off its GIL.

    python -m drop_copy --config PATH --published SEQ     (venue/app.py starts it)

Why a process: a copy costs about 30 µs of Python (render, parse, store, send) and the
venue's sequencer, gateway and quickfix callbacks share one interpreter lock; in the venue
process ten members' copies took a third of matching's throughput. Here they cost it
nothing but a pipe write per batch.

How it follows the venue. The venue writes, after each published batch, the batch's last
sequence number to this process's stdin. The follower reads the journal up to that
number (drop_copy/tail.py: only the new bytes), runs the records through a replica core
built exactly as the venue builds its own (venue/core.py `new_core`), and hands the
events to the feed, which routes them to members (drop_copy/feed.py). The replica is
brought to `--published` first, silently, from the venue's newest snapshot and the
journal after it: members catch up to there from the journal on their own (resuming
after what their FIX stores hold). Nothing is read beyond what the
venue says is published, so no copy runs ahead of the journal's durability.

The replica's events also feed the clearing ledger (venue/clearing/host.py says why it
is here), which is first caught up with the journal to `--published`. The venue's
operator jobs on the ledger (settle, reconcile, index prints) come down the same pipe
(drop_copy/pipe.py), each after the seqs told before it, and their answers go back on
stdout. With no clearing members configured the process runs the ledger alone.

The replica also takes the venue's periodic restart snapshots (drop_copy/snapshots.py):
it holds the venue's state at a durable seq, and a snapshot here costs the venue nothing.

It writes `ready` on stdout once the acceptor listens (before the replica has caught up:
the venue's startup does not wait for a replay; the pipe holds what it says meanwhile),
and exits when its stdin closes (the venue stopped or died) or on SIGTERM, having written
what the ledger was handed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path

from drop_copy import pipe
from drop_copy.entitlement import entitlements_from_reference
from drop_copy.feed import DropCopyFeed
from drop_copy.replay import CoreFactory, JournalSource, Replay
from drop_copy.service import DropCopyService
from drop_copy.snapshots import ReplicaSnapshots, taken_by_drop_copy
from venue.clearing.host import LedgerHost
from venue.clearing.jobs import LedgerUnavailable, Tops, book_tops
from venue.config import ConfigError, VenueConfig, load_config
from venue.events import Event
from venue.gc_tuning import tune_gc
from venue.refdata import ReferenceData, open_reference

log = logging.getLogger("drop_copy")
# The writers release the interpreter lock in every quickfix call; with the default 5 ms
# switch interval each one waits that long to get it back from the follower's Python.
SWITCH_INTERVAL_S = 0.0005
# Between batches the follower lets the writers send what it routed, for at most this
# long (a member whose socket is full must not hold the others back).
DRAIN_WAIT_S = 0.005
# On stop, a snapshot being written is waited for this long (the venue waits 20 s for this
# process to exit; a child cut short leaves a tmp file that recovery deletes).
SNAPSHOT_WAIT_S = 15.0
LEDGER_CLOSE_S = 15.0  # the ledger's last ingest and checkpoint, within the venue's 20 s


class Follower:
    """The replica: journal records in, the same events as the venue's out. A Replay reads
    the journal incrementally (drop_copy/tail.py), so following is advancing it. With
    `snapshots`, the replica also takes the venue's periodic snapshots (drop_copy/snapshots.py)."""

    def __init__(self, replay: Replay, publish: Callable[[Sequence[Event]], None], snapshots: ReplicaSnapshots | None = None) -> None:
        self.replay = replay
        self.publish = publish
        self.snapshots = snapshots

    @classmethod
    def at(cls, seq: int, journal: Path, snapshots: Path, core_factory: CoreFactory, publish: Callable[[Sequence[Event]], None],
           taker: ReplicaSnapshots | None = None) -> Follower:
        """A replica in the state after `seq` (from the newest snapshot before it, then
        the journal), following from there. Nothing up to `seq` is published: the venue
        published it before this process started."""
        replay = Replay(JournalSource(journal), core_factory, snapshots)
        replay.start_near(seq + 1)
        for _ in replay.advance(seq):
            pass
        return cls(replay, publish, taker)

    def advance(self, seq: int) -> None:
        """Apply the records up to `seq` and publish their events as one batch."""
        replay = self.replay
        events: list[Event] = []
        for _, out in replay.advance(seq):
            events += out
        if events:
            self.publish(events)
        if self.snapshots is not None:
            self.snapshots.after(replay.core, replay.position, replay.last_ts)


class Input:
    """The venue's lines on stdin (drop_copy/pipe.py): seqs to follow to, and ledger jobs.
    Only the last seq before a job (or before the end of a read) matters: the others are
    older."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lines = pipe.Lines()

    def read(self) -> list[int | bytes] | None:
        """What one read brings, in order: seqs (int) and job lines (bytes); None at EOF."""
        data = os.read(self.fd, 65536)
        if not data:
            return None
        return [int(line) if line.isdigit() else line for line in self._lines.feed(data) if line]


class Answers:
    """Job answers to the venue on stdout, one whole line per write: the ledger's write
    thread and the follower's thread both answer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()

    def send(self, job_id: int, ok: bool, value: object) -> None:
        line = pipe.answer_line(job_id, ok, value)
        with self._lock:
            try:
                os.write(self.fd, line)
            except BrokenPipeError:  # the venue has gone: no one is waiting for it
                pass

    def when_done(self, job_id: int, future: Future[object]) -> None:
        """A future's callback: its result or exception as job `job_id`'s answer."""
        exc = future.exception()
        self.send(job_id, exc is None, future.result() if exc is None else exc)


def follow(source: Input, follower: Follower, host: LedgerHost | None, answers: Answers, feed: DropCopyFeed | None) -> None:
    """Until the venue closes the pipe: apply what it says is published; run each ledger job
    once the seqs told before it are applied (its answer goes back when the ledger has run it;
    with no ledger, at once: that it is unavailable)."""
    while (items := source.read()) is not None:
        due = 0
        for item in items:
            if isinstance(item, int):
                due = max(due, item)
                continue
            if due:
                follower.advance(due)
                due = 0
            try:
                job_id, job = pipe.read_job(item)
            except Exception:  # a line this process cannot read is the venue's bug: logged, not fatal
                log.exception("drop copy: unreadable line from the venue: %r", item[:80])
                continue
            if host is None:
                answers.send(job_id, False, LedgerUnavailable("the clearing ledger could not be opened: see the drop-copy process's log"))
            else:
                host.submit(job).add_done_callback(partial(answers.when_done, job_id))
        if due:
            follower.advance(due)
        if feed is not None:
            feed.wait_drained(DRAIN_WAIT_S)


def _open_ledger(cfg: VenueConfig, ref: ReferenceData, core_factory: CoreFactory, published: int,
                 tops: Callable[[], Tops]) -> LedgerHost | None:
    """The ledger, or None if it cannot be opened (a damaged file, a full disk): members'
    copies go on without it, as they would without this process's other parts."""
    try:
        return LedgerHost.open(cfg, ref, core_factory, published, tops)
    except Exception:
        log.critical("the clearing ledger could not be opened: drop copy goes on without it; restart the venue once it is fixed",
                     exc_info=True)
        return None


class _Terminated(Exception):
    """SIGTERM: leave the follow loop and shut down in order."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drop_copy", description="the venue's drop-copy process (started by `venue run`)")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--published", required=True, type=int, help="the last sequence number the venue has published")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from venue.core import new_core  # the venue's own core builder: the replica must match it exactly

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"drop_copy: config error: {exc}", file=sys.stderr)
        return 2
    # Lower CPU priority than the venue (venue.drop_copy_nice): when the machine is short of
    # CPU, copies wait (a member too far behind is caught up from the journal), matching does not.
    os.nice(cfg.venue.drop_copy_nice)
    ref = open_reference(cfg)
    journal = cfg.var_path() / cfg.journal.dir
    snapshots = cfg.var_path() / cfg.snapshots.dir
    dc = cfg.venue.drop_copy
    service = None
    if ref.clearing_members:  # the ledger alone otherwise
        service = DropCopyService(
            entitlements=entitlements_from_reference(ref, cfg), instruments={i.symbol: i for i in ref.instruments},
            comp_id=cfg.venue.comp_id, host=dc.host, port=dc.port, state_dir=cfg.var_path() / "fix" / "drop_copy",
            journal=journal, core_factory=lambda: new_core(cfg, ref), snapshots=snapshots,
        )
    feed = service.start(args.published) if service is not None else None
    signal.signal(signal.SIGTERM, _terminate)
    os.write(1, pipe.READY + b"\n")  # listening: the venue goes on starting while the replica catches up
    taker = ReplicaSnapshots(snapshots, cfg.snapshots) if taken_by_drop_copy(cfg.snapshots) else None
    subscribers: list[Callable[[Sequence[Event]], None]] = [feed.on_events] if feed is not None else []
    host: LedgerHost | None = None

    def publish(events: Sequence[Event]) -> None:
        for subscriber in subscribers:
            subscriber(events)

    try:
        follower = Follower.at(args.published, journal, snapshots, lambda: new_core(cfg, ref), publish, taker)
        host = _open_ledger(cfg, ref, lambda: new_core(cfg, ref), args.published, tops=lambda: book_tops(follower.replay.core))
        if host is not None:
            subscribers.append(host)
        tune_gc()  # the replica's book is long-lived, as the venue's (venue/gc_tuning.py)
        follow(Input(0), follower, host, Answers(1), feed)
    except _Terminated:
        log.info("drop copy: SIGTERM")
    finally:
        if service is not None:
            service.stop()
        if host is not None:  # every batch applied so far written, then the file closed
            host.close(LEDGER_CLOSE_S)
        if taker is not None:
            taker.close(SNAPSHOT_WAIT_S)
        log.info("drop copy stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
