"""The reference database: firms, accounts, FIX users and their credentials, clearing
members and their entitlements, instruments, risk limits.

It is the one system of record for reference data (DESIGN.md, "Storage"). The YAML config
seeds it on the first start, when the database is empty; after that the venue reads it
at startup and never re-reads the YAML, so an operator's later change (made with `venue
admin`, through the sequencer) is not undone by a stale file. SQLite under `var/` by
default; any SQLAlchemy URL (PostgreSQL in production) through `venue.reference_db`.

Passwords are stored only as salted scrypt hashes (venue/fix/auth.py); an empty hash means
the session was configured without a password (conformance testing on loopback).
Decimals are stored as their exact text, never as floats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, create_engine, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from venue.config import VenueConfig
from venue.fix.auth import hash_password
from venue.instruments import Instrument
from venue.limits import RuleKey, rule_values
from venue.operator import SetLimit
from venue.types import InstrumentKind, OptionRight, StpMode, TimeInForce


class Base(DeclarativeBase):
    pass


class FirmRow(Base):
    __tablename__ = "firms"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    stp_mode: Mapped[str] = mapped_column(String(32))
    cancel_on_disconnect: Mapped[bool] = mapped_column(Boolean)
    cancel_on_disconnect_tifs: Mapped[str] = mapped_column(String(64))  # comma-separated TIF names


class AccountRow(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firms.id"))


class FixUserRow(Base):
    """One FIX order-entry session and the credentials that may log on to it."""

    __tablename__ = "fix_users"
    sender_comp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firms.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    settings: Mapped[str] = mapped_column(Text, default="{}")  # JSON: quickfix overrides


class ClearingMemberRow(Base):
    __tablename__ = "clearing_members"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender_comp_id: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    settings: Mapped[str] = mapped_column(Text, default="{}")


class EntitlementRow(Base):
    """A clearing member sees a whole firm (firm_id) or one account (account_id)."""

    __tablename__ = "entitlements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("clearing_members.id"))
    firm_id: Mapped[str | None] = mapped_column(ForeignKey("firms.id"), nullable=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)


class InstrumentRow(Base):
    __tablename__ = "instruments"
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    underlying: Mapped[str] = mapped_column(String(32))
    quote_currency: Mapped[str] = mapped_column(String(16))
    tick_size: Mapped[str] = mapped_column(String(40))
    lot_size: Mapped[str] = mapped_column(String(40))
    multiplier: Mapped[str] = mapped_column(String(40))
    reference_price: Mapped[str] = mapped_column(String(40))
    expiry: Mapped[str | None] = mapped_column(String(40), nullable=True)  # ISO 8601 UTC
    strike: Mapped[str | None] = mapped_column(String(40), nullable=True)
    right: Mapped[str | None] = mapped_column(String(8), nullable=True)
    funding_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LimitRow(Base):
    """One limit of one rule (venue/limits.py), scoped as in the config's `risk.limits`
    (firm or account, symbol; empty for none). The journal is what the core replays, so
    these rows reach it only once, as SetLimit commands on the venue's first start; after
    that the venue rewrites them from its own rules at each start and after each `venue
    admin limit`, so the database shows the limits in force."""

    __tablename__ = "limits"
    firm: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(40))


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmRecord:
    id: str
    name: str
    accounts: tuple[str, ...]
    stp_mode: StpMode
    cancel_on_disconnect: bool
    cancel_on_disconnect_tifs: frozenset[TimeInForce]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A FIX order-entry session: its CompID, owning firm and hashed credentials."""

    sender_comp_id: str
    firm: str
    username: str
    password_hash: str  # empty: no password required
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearingMemberRecord:
    id: str
    sender_comp_id: str
    username: str
    password_hash: str
    firms: tuple[str, ...]
    accounts: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceData:
    """What the venue reads from the reference database at startup."""

    instruments: list[Instrument]
    firms: list[FirmRecord]
    sessions: list[SessionRecord]
    clearing_members: list[ClearingMemberRecord]
    limits: list[SetLimit]  # the limits in force, as the commands that would set them

    def accounts(self) -> dict[str, str]:
        """account -> owning firm."""
        return {a: f.id for f in self.firms for a in f.accounts}

    def firm(self, firm_id: str) -> FirmRecord:
        return next(f for f in self.firms if f.id == firm_id)


def reference_url(cfg: VenueConfig) -> str:
    """The configured SQLAlchemy URL, or a SQLite file under the var directory."""
    if cfg.venue.reference_db:
        return cfg.venue.reference_db
    return f"sqlite:///{cfg.var_path() / 'reference.db'}"


def open_reference(cfg: VenueConfig) -> ReferenceData:
    """Create the schema if needed, seed it from `cfg` when empty, and read it."""
    cfg.var_path().mkdir(parents=True, exist_ok=True)
    engine = create_engine(reference_url(cfg))
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s, s.begin():
            if s.get(MetaRow, "seeded_from") is None:
                _seed(s, cfg)
        return load(engine)
    finally:
        engine.dispose()


def _seed(s: Session, cfg: VenueConfig) -> None:
    for inst in cfg.instruments:
        s.add(InstrumentRow(
            symbol=inst.symbol, kind=inst.kind.value, underlying=inst.underlying, quote_currency=inst.quote_currency,
            tick_size=str(inst.tick_size), lot_size=str(inst.lot_size), multiplier=str(inst.multiplier),
            reference_price=str(inst.reference_price), expiry=inst.expiry.isoformat() if inst.expiry else None,
            strike=str(inst.strike) if inst.strike is not None else None, right=inst.right.value if inst.right else None,
            funding_interval_s=inst.funding_interval_s,
        ))
    for f in cfg.firms:
        s.add(FirmRow(
            id=f.id, name=f.name, stp_mode=f.stp_mode.value, cancel_on_disconnect=f.cancel_on_disconnect,
            cancel_on_disconnect_tifs=",".join(sorted(t.name for t in f.cancel_on_disconnect_tifs)),
        ))
    s.flush()
    for f in cfg.firms:
        s.add_all(AccountRow(id=a, firm_id=f.id) for a in f.accounts)
        for sess in f.sessions:
            s.add(FixUserRow(
                sender_comp_id=sess.sender_comp_id, firm_id=f.id, username=sess.username,
                password_hash=hash_password(sess.password) if sess.password else "", settings=json.dumps(sess.settings),
            ))
    s.flush()
    for m in cfg.clearing_members:
        s.add(ClearingMemberRow(
            id=m.id, sender_comp_id=m.sender_comp_id, username=m.username,
            password_hash=hash_password(m.password) if m.password else "", settings=json.dumps(m.settings),
        ))
        s.flush()
        s.add_all(EntitlementRow(member_id=m.id, firm_id=f) for f in m.firms)
        s.add_all(EntitlementRow(member_id=m.id, account_id=a) for a in m.accounts)
    s.add_all(LimitRow(firm=rule.firm, account=rule.account, symbol=rule.symbol, name=name, value=str(value))
              for rule in cfg.risk.limits for name, value in rule_values(rule).items())
    s.add(MetaRow(key="seeded_from", value=cfg.source))
    s.add(MetaRow(key="seeded_at", value=datetime.now(UTC).isoformat()))


def load(engine: Engine) -> ReferenceData:
    """Read every table into plain records (the venue keeps no session open)."""
    with Session(engine) as s:
        accounts: dict[str, list[str]] = {}
        for a in s.scalars(select(AccountRow).order_by(AccountRow.id)):
            accounts.setdefault(a.firm_id, []).append(a.id)
        firms = [
            FirmRecord(
                id=f.id, name=f.name, accounts=tuple(accounts.get(f.id, ())), stp_mode=StpMode(f.stp_mode),
                cancel_on_disconnect=f.cancel_on_disconnect,
                cancel_on_disconnect_tifs=frozenset(TimeInForce[t] for t in f.cancel_on_disconnect_tifs.split(",") if t),
            )
            for f in s.scalars(select(FirmRow).order_by(FirmRow.id))
        ]
        sessions = [
            SessionRecord(sender_comp_id=u.sender_comp_id, firm=u.firm_id, username=u.username,
                          password_hash=u.password_hash, settings=json.loads(u.settings))
            for u in s.scalars(select(FixUserRow).order_by(FixUserRow.sender_comp_id))
        ]
        ents: dict[str, tuple[list[str], list[str]]] = {}
        for e in s.scalars(select(EntitlementRow).order_by(EntitlementRow.id)):
            fs, acs = ents.setdefault(e.member_id, ([], []))
            if e.firm_id is not None:
                fs.append(e.firm_id)
            if e.account_id is not None:
                acs.append(e.account_id)
        members = [
            ClearingMemberRecord(
                id=m.id, sender_comp_id=m.sender_comp_id, username=m.username, password_hash=m.password_hash,
                firms=tuple(ents.get(m.id, ([], []))[0]), accounts=tuple(ents.get(m.id, ([], []))[1]),
                settings=json.loads(m.settings),
            )
            for m in s.scalars(select(ClearingMemberRow).order_by(ClearingMemberRow.id))
        ]
        instruments = [_instrument(r) for r in s.scalars(select(InstrumentRow).order_by(InstrumentRow.symbol))]
        limits = [SetLimit(name=r.name, value=Decimal(r.value), firm=r.firm, account=r.account, symbol=r.symbol)
                  for r in s.scalars(select(LimitRow).order_by(LimitRow.firm, LimitRow.account, LimitRow.symbol, LimitRow.name))]
    return ReferenceData(instruments=instruments, firms=firms, sessions=sessions, clearing_members=members, limits=limits)


def save_limits(cfg: VenueConfig, rules: Mapping[RuleKey, Mapping[str, int | Decimal]]) -> None:
    """Rewrite the limits table from the venue's rules (LimitRow says why)."""
    engine = create_engine(reference_url(cfg))
    try:
        with Session(engine) as s, s.begin():
            s.execute(delete(LimitRow))
            s.add_all(LimitRow(firm=firm, account=account, symbol=symbol, name=name, value=str(value))
                      for (firm, account, symbol), values in rules.items() for name, value in values.items())
    finally:
        engine.dispose()


def _instrument(r: InstrumentRow) -> Instrument:
    return Instrument(
        symbol=r.symbol, kind=InstrumentKind(r.kind), underlying=r.underlying, quote_currency=r.quote_currency,
        tick_size=Decimal(r.tick_size), lot_size=Decimal(r.lot_size), multiplier=Decimal(r.multiplier),
        reference_price=Decimal(r.reference_price), expiry=datetime.fromisoformat(r.expiry) if r.expiry else None,
        strike=Decimal(r.strike) if r.strike is not None else None, right=OptionRight(r.right) if r.right else None,
        funding_interval_s=r.funding_interval_s,
    )
