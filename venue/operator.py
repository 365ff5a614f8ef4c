"""Operator controls as plain data: the commands `venue admin` submits and what they emit.

They go through the sequencer like orders (so they are journaled and a replay rebuilds the
kill switches, the run-time limits and the tallies exactly), and `venue/core.py` handles
them. Commands are frozen slotted dataclasses with primitive fields (str, int, bool,
Decimal, enums), so the journal codec needs nothing special; events are NamedTuples built
positionally, like venue/events.py.

The shared operator commands (SetPhase, SetIndexPrice, SetMarkPrice, AdjustCollateral)
live in venue/commands.py; these are the ones only risk uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import NamedTuple


class KillScope(str, Enum):
    """What a kill switch covers: every order at the venue, one firm's, or one account's."""

    VENUE = "venue"
    FIRM = "firm"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitch:
    """Engage (cancel the scope's live orders, refuse new ones and replaces) or release.
    `target` is the firm or account id; empty for VENUE."""

    scope: KillScope
    target: str = ""
    engaged: bool = True
    reason: str = ""

    def __repr__(self) -> str:
        what = "KILL" if self.engaged else "RELEASE"
        return f"[{what} {self.scope.name} {self.target or '*'} {self.reason}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLimit:
    """Set (value given) or clear (value None) one limit on one rule. The rule is named by
    its scope, as in the config's `risk.limits`: firm or account (not both), symbol, or
    none of them for the venue default. `name` is a LimitRule field (venue/limits.py)."""

    name: str
    value: Decimal | None
    firm: str = ""
    account: str = ""
    symbol: str = ""

    def __repr__(self) -> str:
        scope = "/".join(p for p in (self.firm, self.account, self.symbol) if p) or "default"
        return f"[LIMIT {scope} {self.name}={'clear' if self.value is None else self.value}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryRisk:
    """Read the reject tallies and, for an account, its exposure: changes nothing."""

    account: str = ""

    def __repr__(self) -> str:
        return f"[RISK? {self.account or '*'}]"


class KillSwitchSet(NamedTuple):
    """A kill switch engaged or released; the canceled orders' ExecReports come before it."""

    seq: int
    ts: int
    scope: KillScope
    target: str
    engaged: bool
    canceled: int
    reason: str


class LimitSet(NamedTuple):
    """A limit changed at run time; `previous` is the rule's value before (None: unset)."""

    seq: int
    ts: int
    firm: str
    account: str
    symbol: str
    name: str
    value: Decimal | None
    previous: Decimal | None


class RiskReport(NamedTuple):
    """Answer to QueryRisk. `tallies` is (check, rejects) for every check, in a fixed order;
    `exposure` is (key, value) pairs describing the account (empty without one)."""

    seq: int
    ts: int
    account: str
    tallies: tuple[tuple[str, int], ...]
    exposure: tuple[tuple[str, str], ...]


OperatorCommand = KillSwitch | SetLimit | QueryRisk
OperatorEvent = KillSwitchSet | LimitSet | RiskReport
