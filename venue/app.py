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

from venue import admin_commands  # noqa: F401  (registers the operator commands)
from venue.admin import AdminServer
from venue.commands import AdjustCollateral
from venue.config import VenueConfig
from venue.core import VenueCore
from venue.matching import MatchingEngine
from venue.recovery import Durable
from venue.sequencer import Sequencer

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

    @classmethod
    def build(cls, cfg: VenueConfig) -> Venue:
        core = VenueCore(cfg.instruments, cfg.accounts(), cfg.risk, stp_scope=cfg.venue.stp_scope, phase=cfg.venue.opening_phase)
        durable = Durable.open(cfg, core)  # the journal replayed into it, after the newest snapshot
        core = durable.core
        return cls(cfg=cfg, core=core, engine=core.engine, sequencer=durable.sequencer(), durable=durable)

    async def start(self) -> None:
        self.cfg.var_path().mkdir(parents=True, exist_ok=True)
        self.tasks.append(asyncio.create_task(self.sequencer.run(), name="sequencer"))
        if self.sequencer.next_seq == 1:  # a venue's first start: deposit the config's opening collateral
            for account, amount in self.cfg.risk.collateral.items():
                await self.sequencer.call(AdjustCollateral(account=account, amount=amount, currency=self.cfg.risk.currency, reference="opening collateral (config)"))
        self.admin = AdminServer(self, self.cfg.var_path())
        await self.admin.start()
        log.info("venue %s up: %d instruments", self.cfg.venue.name, len(self.cfg.instruments))

    async def stop(self) -> None:
        if self.admin is not None:
            await asyncio.wait_for(self.admin.close(), STEP_TIMEOUT_S)
        self.sequencer.stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), STEP_TIMEOUT_S)
        if self.durable is not None:  # no final snapshot of a core that broke an invariant
            await asyncio.wait_for(self.durable.close(final=self.sequencer.failed is None), STEP_TIMEOUT_S)
        log.info("venue %s stopped", self.cfg.venue.name)


async def serve(cfg: VenueConfig, stop: asyncio.Event) -> int:
    """Run the venue until `stop` is set or the sequencer fails; return an exit code."""
    venue = Venue.build(cfg)
    await asyncio.wait_for(venue.start(), STEP_TIMEOUT_S)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *venue.tasks], return_when=asyncio.FIRST_COMPLETED)
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
