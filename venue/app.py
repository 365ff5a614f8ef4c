"""The venue process: startup, run until a stop signal, shutdown in reverse.

Phases (uvicorn's server.py manner), each step bounded by a timeout:
  startup   open the var directory, build the core from reference data, replay the
            journal, start the sequencer, then start the FIX acceptors last (no client
            can reach a venue that is still recovering)
  run       until SIGINT/SIGTERM (or the sequencer fails: fail-stop on a broken invariant)
  shutdown  stop the acceptors first (no new input), drain the sequencer, close stores
A second SIGINT/SIGTERM during shutdown forces an immediate exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from drop_copy.link import DropCopyLink
from drop_copy.snapshots import taken_by_drop_copy
from venue import admin_commands  # noqa: F401  (registers the operator commands)
from venue.admin import AdminServer
from venue.clearing import operator as clearing_operator  # noqa: F401  (registers eod and reconcile)
from venue.clearing.jobs import LedgerRunner
from venue.clearing.service import OPEN_WAIT_S, expired_contracts
from venue.commands import AdjustCollateral, SetPhase
from venue.config import VenueConfig
from venue.core import VenueCore, new_core
from venue.events import CommandRejected
from venue.fix.gateway import OrderEntryGateway
from venue.gc_tuning import tune_gc
from venue.matching import MatchingEngine
from venue.recovery import Durable
from venue.refdata import ReferenceData, open_reference, save_limits
from venue.sequencer import Sequencer
from venue.types import TradingPhase

log = logging.getLogger("venue")

STEP_TIMEOUT_S = 30.0


@dataclass
class Venue:
    """The running venue's parts, in the order they start."""

    cfg: VenueConfig
    core: VenueCore  # risk and operator controls around the matching engine
    engine: MatchingEngine
    sequencer: Sequencer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    admin: AdminServer | None = None
    durable: Durable | None = None  # the journal and snapshots
    reference: ReferenceData | None = None  # read once at startup (seeded from cfg on first start)
    gateway: OrderEntryGateway | None = None
    drop_copy: DropCopyLink | None = None  # the drop-copy process: members' copies, and the clearing ledger
    clearing: LedgerRunner | None = None  # where the operator's ledger jobs go: that process

    @classmethod
    def build(cls, cfg: VenueConfig) -> Venue:
        ref = open_reference(cfg)
        durable = Durable.open(cfg, lambda: new_core(cfg, ref))  # the newest snapshot, then the journal after it
        core = durable.core
        # the drop-copy process takes the periodic snapshots from its replica (unless configured otherwise)
        sequencer = durable.sequencer(periodic=not taken_by_drop_copy(durable.config))
        return cls(cfg=cfg, core=core, engine=core.engine, sequencer=sequencer, durable=durable, reference=ref)

    async def start(self) -> None:
        self.cfg.var_path().mkdir(parents=True, exist_ok=True)
        await asyncio.wait_for(self._expire_settled(), OPEN_WAIT_S + STEP_TIMEOUT_S)
        self.tasks.append(asyncio.create_task(self.sequencer.run(), name="sequencer"))
        if self.sequencer.next_seq == 1:
            await self._journal_opening_state()
        await asyncio.to_thread(save_limits, self.cfg, self.core.risk.limits.rules)
        await asyncio.wait_for(self._start_drop_copy(), STEP_TIMEOUT_S)
        self.admin = AdminServer(self, self.cfg.var_path())
        await asyncio.wait_for(self.admin.start(), STEP_TIMEOUT_S)
        await asyncio.wait_for(self._start_order_entry(), STEP_TIMEOUT_S)
        log.info("venue %s up: %d instruments", self.cfg.venue.name, len(self.cfg.instruments))

    async def _journal_opening_state(self) -> None:
        """A venue's first start: the reference data's limits and the config's opening
        collateral, as commands through the sequencer before any order can arrive, so a
        replay of the journal starts from them whatever the database or config say later."""
        assert self.reference is not None
        refused = [f"{cmd!r}: {problem}" for cmd in self.reference.limits if (problem := self.core.limit_problem(cmd))]
        if refused:  # before anything is journaled: a later start must not find half of them
            raise RuntimeError("the reference database's limits are refused: " + "; ".join(refused))
        risk = self.cfg.risk
        deposits = [AdjustCollateral(account=account, amount=amount, currency=risk.currency, reference="opening collateral (config)")
                    for account, amount in risk.collateral.items()]
        for cmd in [*self.reference.limits, *deposits]:
            events = await asyncio.wait_for(self.sequencer.call(cmd), STEP_TIMEOUT_S)
            refused = [e.text for e in events if isinstance(e, CommandRejected)]
            if refused:
                raise RuntimeError(f"the opening {cmd!r} was refused: {refused[0]}")

    async def _expire_settled(self) -> None:
        """Before the sequencer runs: contracts the ledger has settled at expiry but the core
        still trades (a restart builds books from reference data) move to the expired phase,
        through the sequencer so it is journaled. The ledger file is read before the
        drop-copy process, which holds it while the venue runs, starts."""
        expired = await asyncio.to_thread(expired_contracts, self.cfg, wait_s=OPEN_WAIT_S)
        books = self.engine.books
        for symbol in expired:
            if symbol in books and books[symbol].phase is not TradingPhase.EXPIRED:
                self.sequencer.submit(SetPhase(symbol=symbol, phase=TradingPhase.EXPIRED))

    async def _start_order_entry(self) -> None:
        """Last step of startup: the FIX order-entry acceptor (stops first)."""
        assert self.reference is not None
        oe = self.cfg.venue.order_entry
        self.gateway = OrderEntryGateway(
            reference=self.reference, sequencer=self.sequencer, comp_id=self.cfg.venue.comp_id,
            host=oe.host, port=oe.port, state_dir=self.cfg.var_path() / "fix" / "order_entry",
            send_threads=self.cfg.venue.send_threads,
        )
        self.gateway.md.seed(self.engine.books)
        self.sequencer.subscribers.append(self.gateway.on_events)
        self.gateway.start()

    async def _start_drop_copy(self) -> None:
        """The drop-copy process (drop_copy/process.py), after recovery and before the admin
        channel and order entry; it follows the journal as far as each published batch, and
        holds the clearing ledger (stops once the sequencer has drained)."""
        self.drop_copy = DropCopyLink(Path(self.cfg.source), logging.getLevelName(logging.getLogger().getEffectiveLevel()))
        await self.drop_copy.start(self.sequencer.next_seq - 1)
        self.sequencer.subscribers.append(self.drop_copy.on_events)
        self.clearing = self.drop_copy

    async def stop(self) -> None:
        if self.gateway is not None:  # no new client input first
            await asyncio.wait_for(self.gateway.stop(), STEP_TIMEOUT_S)
        if self.admin is not None:
            await asyncio.wait_for(self.admin.close(), STEP_TIMEOUT_S)
        self.sequencer.stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), STEP_TIMEOUT_S)
        if self.drop_copy is not None:  # told the last published seq: the ledger writes it all, then exits
            await asyncio.wait_for(self.drop_copy.stop(), STEP_TIMEOUT_S)
        if self.durable is not None:  # no final snapshot of a core that broke an invariant
            await asyncio.wait_for(self.durable.close(final=self.sequencer.failed is None), STEP_TIMEOUT_S)
        if self.gateway is not None:
            self.gateway.close()
        log.info("venue %s stopped", self.cfg.venue.name)


async def serve(cfg: VenueConfig, stop: asyncio.Event) -> int:
    """Run the venue until `stop` is set or the sequencer fails; return an exit code."""
    venue = Venue.build(cfg)
    await venue.start()  # each step inside is bounded by its own timeout
    tune_gc()
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *venue.tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await venue.stop()
    return 1 if venue.sequencer.failed is not None else 0


def run(cfg: VenueConfig) -> int:
    """Run the venue in the foreground with signal handling (`venue run`)."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                log.warning("second signal: exiting now")
                os._exit(1)
            log.info("stopping (send again to force)")
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        return await serve(cfg, stop)

    return asyncio.run(main())
