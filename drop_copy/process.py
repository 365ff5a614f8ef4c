"""The drop-copy process: clearing members' sessions, beside the venue and off its GIL.

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

The replica also takes the venue's periodic restart snapshots (drop_copy/snapshots.py):
it holds the venue's state at a durable seq, and a snapshot here costs the venue nothing.

It prints `ready` on stdout once the acceptor listens (before the replica has caught up:
the venue's startup does not wait for a replay; the pipe holds what it says meanwhile),
and exits when its stdin closes
(the venue stopped or died) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from drop_copy.entitlement import entitlements_from_reference
from drop_copy.replay import CoreFactory, JournalSource, Replay
from drop_copy.service import DropCopyService
from drop_copy.snapshots import ReplicaSnapshots, taken_by_drop_copy
from venue.config import ConfigError, load_config
from venue.events import Event
from venue.gc_tuning import tune_gc
from venue.refdata import open_reference

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


def published_seqs(fd: int) -> Sequence[int] | None:
    """The sequence numbers the venue has written since the last read (None at EOF);
    only the last whole line matters, the others are older."""
    data = os.read(fd, 65536)
    if not data:
        return None
    return [int(x) for x in data.split() if x.isdigit()]


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
    service = DropCopyService(
        entitlements=entitlements_from_reference(ref, cfg), instruments={i.symbol: i for i in ref.instruments},
        comp_id=cfg.venue.comp_id, host=dc.host, port=dc.port, state_dir=cfg.var_path() / "fix" / "drop_copy",
        journal=journal, core_factory=lambda: new_core(cfg, ref), snapshots=snapshots,
    )
    feed = service.start(args.published)
    signal.signal(signal.SIGTERM, _terminate)
    print("ready", flush=True)  # listening: the venue goes on starting while the replica catches up
    taker = ReplicaSnapshots(snapshots, cfg.snapshots) if taken_by_drop_copy(cfg.snapshots) else None
    try:
        follower = Follower.at(args.published, journal, snapshots, lambda: new_core(cfg, ref), feed.on_events, taker)
        tune_gc()  # the replica's book is long-lived, as the venue's (venue/gc_tuning.py)
        while (seqs := published_seqs(0)) is not None:
            if seqs:
                follower.advance(max(seqs))
                feed.wait_drained(DRAIN_WAIT_S)
    except _Terminated:
        log.info("drop copy: SIGTERM")
    finally:
        service.stop()
        if taker is not None:
            taker.close(SNAPSHOT_WAIT_S)
        log.info("drop copy stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
