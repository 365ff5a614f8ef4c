"""The drop-copy service: the acceptor, the feed and the trade-capture replays, wired.

Lifecycle (venue/app.py): `start()` after recovery, on the loop thread, before order
entry listens: it reads each member's resume point from its FIX store, opens the
acceptor, subscribes the feed to the sequencer and starts the writers, which first catch
every member up from the journal. `stop()` comes first at shutdown: writers stop (what is
left in a buffer is regenerated from the journal at the next start), members are logged
out, the listener closes.
"""

from __future__ import annotations

import asyncio
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
from venue.sequencer import Sequencer

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
    ) -> None:
        self.entitlements = entitlements
        self.instruments = dict(instruments)
        self.source: RecordSource = JournalSource(journal) if isinstance(journal, Path) else journal
        self.core_factory = core_factory
        self.acceptor = DropCopyAcceptor(
            entitlements=entitlements, comp_id=comp_id, host=host, port=port, state_dir=state_dir,
            on_trade_request=self.trade_reports,
        )
        self.feed: DropCopyFeed | None = None

    def start(self, sequencer: Sequencer) -> None:
        """Resume every member where its store ends, listen, and follow the sequencer."""
        resume = {mid: Resume(w.seq, w.exec_id) for mid, w in self.acceptor.watermarks().items()}
        self.feed = DropCopyFeed(
            self.entitlements, self.instruments, self.acceptor, self.source, self.core_factory,
            published=sequencer.next_seq - 1, resume=resume,
        )
        self.acceptor.start()
        sequencer.subscribers.append(self.feed.on_events)
        self.feed.start()

    async def stop(self, sequencer: Sequencer) -> None:
        feed = self.feed
        if feed is not None:
            if feed.on_events in sequencer.subscribers:
                sequencer.subscribers.remove(feed.on_events)
            await asyncio.get_running_loop().run_in_executor(None, feed.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.acceptor.stop)

    def trade_reports(self, member: Member, request: TradeRequest) -> Iterator[str]:
        """A request worker's answer, regenerated from the journal by a fresh core."""
        replay = Replay(self.source, self.core_factory)
        return trade_reports(request, member, replay.advance(), Renderer(self.instruments))
