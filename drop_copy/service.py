"""The drop-copy service: the acceptor, the feed and the trade-capture replays, wired.

It runs in the drop-copy process (drop_copy/process.py), which follows the venue's
journal. `start()` reads each member's resume point from its FIX store, opens the
acceptor and starts the writers, which first catch every member up from the journal;
the feed then takes each batch the process's follower regenerates. `stop()`: writers stop
(what is left in a buffer is regenerated from the journal at the next start), members
are logged out, the listener closes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from drop_copy.acceptor import DropCopyAcceptor
from drop_copy.entitlement import Entitlements, Member
from drop_copy.feed import DropCopyFeed, Resume
from drop_copy.replay import CoreFactory, JournalSource, RecordSource, Replay
from drop_copy.requests import TradeRequest, trade_reports
from venue.fix.reports import Renderer
from venue.instruments import Instrument

log = logging.getLogger(__name__)


class DropCopyService:
    def __init__(
        self,
        *,
        entitlements: Entitlements,
        instruments: Mapping[str, Instrument],
        comp_id: str,
        host: str,
        port: int,
        state_dir: Path,
        journal: Path | RecordSource,
        core_factory: CoreFactory,
        snapshots: Path | None = None,
    ) -> None:
        self.entitlements = entitlements
        self.instruments = dict(instruments)
        self.source: RecordSource = JournalSource(journal) if isinstance(journal, Path) else journal
        self.core_factory = core_factory
        self.snapshots = snapshots
        self.acceptor = DropCopyAcceptor(
            entitlements=entitlements, comp_id=comp_id, host=host, port=port, state_dir=state_dir,
            on_trade_request=self.trade_reports,
        )
        self.feed: DropCopyFeed | None = None

    def start(self, published: int) -> DropCopyFeed:
        """Resume every member where its store ends, listen, and start the writers.
        `published`: the last seq the venue has published (and journaled) so far; the
        returned feed's `on_events` takes every later batch, in order."""
        resume = {mid: Resume(w.seq, w.exec_id) for mid, w in self.acceptor.watermarks().items()}
        self.feed = DropCopyFeed(
            self.entitlements, self.instruments, self.acceptor, self.source, self.core_factory,
            published=published, resume=resume, snapshots=self.snapshots,
        )
        self.acceptor.start()
        self.feed.start()
        return self.feed

    def stop(self) -> None:
        """Stop the writers, log members out, stop listening (blocking)."""
        if self.feed is not None:
            self.feed.stop()
        self.acceptor.stop()

    def trade_reports(self, member: Member, request: TradeRequest) -> Iterator[str]:
        """A request worker's answer, regenerated from the journal by a fresh core."""
        replay = Replay(self.source, self.core_factory)
        return trade_reports(request, member, replay.advance(), Renderer(self.instruments))
