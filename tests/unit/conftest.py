"""Fixtures for the pure-core unit tests: an engine on two test instruments and a driver
that validates it after every command."""

from __future__ import annotations

import pytest
from matching_support import Driver, new_engine

from venue.types import StpScope, TradingPhase


@pytest.fixture
def venue() -> Driver:
    """An engine with BTC-PERP and ETH-PERP open, STP on account scope."""
    return Driver(new_engine())


@pytest.fixture
def firm_venue() -> Driver:
    """As `venue`, with self-trade prevention scoped to the firm."""
    return Driver(new_engine(stp_scope=StpScope.FIRM))


@pytest.fixture
def pre_open_venue() -> Driver:
    """As `venue`, with both instruments in pre-open."""
    return Driver(new_engine(phase=TradingPhase.PRE_OPEN))
