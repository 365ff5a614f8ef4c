"""Which executions a clearing member may see: the accounts it clears, and nothing else.

A member is entitled to whole firms (every account the firm has, including accounts added
later) and to single accounts. Entitlement is decided per order side: a trade between a
firm the member clears and one it does not gives the member its own side's copy only, so
a member never receives another member's executions.

The routing answer for an (firm, account) pair is memoised: the subscriber asks it for
every event on the sequencer's loop thread, where a dict lookup is all it can afford.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from venue.config import ClearingMemberConfig, VenueConfig
from venue.fix.auth import hash_password
from venue.refdata import ReferenceData

DEFAULT_MAX_BUFFERED = 100_000  # events queued for a session before it is caught up from the journal


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A clearing member's drop-copy session and what it is entitled to."""

    id: str
    sender_comp_id: str
    username: str = ""
    password_hash: str = ""  # empty: no password (conformance testing on loopback only)
    firms: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    include_rejects: bool = False
    max_buffered: int = DEFAULT_MAX_BUFFERED
    settings: dict[str, str] = field(default_factory=dict)

    def entitled(self, firm: str, account: str) -> bool:
        return firm in self.firms or account in self.accounts


class Entitlements:
    """Every member, and the route from an order's (firm, account) to the members that see it."""

    def __init__(self, members: Iterable[Member]) -> None:
        self.members: tuple[Member, ...] = tuple(members)
        self.by_comp_id: dict[str, Member] = {}
        for m in self.members:
            if m.sender_comp_id in self.by_comp_id:
                raise ValueError(f"clearing members {self.by_comp_id[m.sender_comp_id].id} and {m.id} share SenderCompID {m.sender_comp_id}")
            self.by_comp_id[m.sender_comp_id] = m
        self._routes: dict[tuple[str, str], tuple[Member, ...]] = {}
        self._ids: dict[tuple[str, str], frozenset[str]] = {}

    def members_for(self, firm: str, account: str) -> tuple[Member, ...]:
        """The members entitled to an order of `account` owned by `firm` (often none)."""
        key = (firm, account)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = tuple(m for m in self.members if m.entitled(firm, account))
        return route

    def ids_for(self, firm: str, account: str) -> frozenset[str]:
        """The ids of `members_for(firm, account)`, memoised for the subscriber's hot path."""
        key = (firm, account)
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = frozenset(m.id for m in self.members_for(firm, account))
        return ids


def member_from_config(m: ClearingMemberConfig, *, password_hash: str | None = None) -> Member:
    """A member as the YAML describes it; the password is hashed here unless a stored hash is given."""
    if password_hash is None:
        password_hash = hash_password(m.password) if m.password else ""
    return Member(
        id=m.id, sender_comp_id=m.sender_comp_id, username=m.username, password_hash=password_hash,
        firms=frozenset(m.firms), accounts=frozenset(m.accounts), include_rejects=m.include_rejects,
        max_buffered=m.max_buffered, settings=dict(m.settings),
    )


def entitlements_from_config(cfg: VenueConfig, stored_hashes: dict[str, str] | None = None) -> Entitlements:
    """Entitlements for every configured clearing member. `stored_hashes` (member id ->
    password hash, from the reference database) avoids re-hashing passwords at startup."""
    hashes = stored_hashes or {}
    return Entitlements(member_from_config(m, password_hash=hashes.get(m.id)) for m in cfg.clearing_members)


def entitlements_from_reference(reference: ReferenceData, cfg: VenueConfig) -> Entitlements:
    """Entitlements as the reference database holds them (the system of record: firms,
    accounts and hashed credentials); the drop-copy options (include_rejects,
    max_buffered) come from the member's config entry, defaults if it has none."""
    options = {m.id: m for m in cfg.clearing_members}
    members = []
    for r in reference.clearing_members:
        o = options.get(r.id)
        members.append(Member(
            id=r.id, sender_comp_id=r.sender_comp_id, username=r.username, password_hash=r.password_hash,
            firms=frozenset(r.firms), accounts=frozenset(r.accounts), settings=dict(r.settings),
            include_rejects=o.include_rejects if o is not None else False,
            max_buffered=o.max_buffered if o is not None else DEFAULT_MAX_BUFFERED,
        ))
    return Entitlements(members)
