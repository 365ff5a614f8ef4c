"""Typed configuration: YAML in, frozen dataclasses out, or an error naming file and key.

The loader is generic: a section is described by a frozen dataclass beside the code that
uses it, and `build()` turns a YAML mapping into it, refusing unknown keys, missing keys
and wrong types with the file and the dotted key path (`demo.yaml: instruments[2].tick_size:
expected a decimal, got 'abc'`). Numbers meant as prices or money are read as Decimal from
their YAML text, never through float.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from venue.clearing.settings import ClearingConfig
from venue.field_types import field_types
from venue.instruments import Instrument
from venue.journal import JournalConfig
from venue.limits import RiskConfig, config_problems
from venue.snapshot import SnapshotConfig
from venue.types import InstrumentKind, StpMode, StpScope, TimeInForce, TradingPhase

T = TypeVar("T")

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"


class ConfigError(ValueError):
    """A config file is wrong; the message names the file, the key and what is wrong."""


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimal, so 0.001 stays exactly 0.001."""


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node)))


def read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_DecimalLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def build(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a YAML mapping; `where` prefixes every error."""
    return _convert(cls, data, where)  # type: ignore[no-any-return]


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, where)
        raise ConfigError(f"{where}: unsupported union type {tp}")
    if value is None:
        raise ConfigError(f"{where}: value required")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_show(value)}")
        hints = field_types(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing key {name!r}")
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_show(value)}")
        kt, vt = typing.get_args(tp)
        return {_convert(kt, k, f"{where}") : _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is frozenset:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return frozenset(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and issubclass(tp, Enum):
        by_name = {m.name.lower(): m for m in tp}
        key = str(value).lower()
        if key in by_name:
            return by_name[key]
        for m in tp:
            if str(m.value).lower() == key:
                return m
        raise ConfigError(f"{where}: expected one of {', '.join(by_name)}, got {_show(value)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {_show(value)}")
        return value
    if tp is float:  # YAML's numbers come as int or Decimal (a float where code builds the config)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a number, got {_show(value)}")
        return float(value)
    if tp is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise ConfigError(f"{where}: expected a decimal number, got {_show(value)}")
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{where}: expected a decimal number, got {_show(value)}") from None
        if not d.is_finite():
            raise ConfigError(f"{where}: expected a finite decimal number, got {_show(value)}")
        return d
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {_show(value)}")
        return value
    if tp is datetime:
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, str):
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{where}: expected an ISO 8601 time, got {_show(value)}") from None
        else:
            raise ConfigError(f"{where}: expected an ISO 8601 time, got {_show(value)}")
        return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    raise ConfigError(f"{where}: unsupported type {tp}")


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    host: str = "127.0.0.1"
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueSettings:
    """The venue process: where it keeps files and where it listens."""

    name: str = "DEMO"
    var_dir: str = "var"  # relative to the config file's folder's parent, or absolute
    comp_id: str = "VENUE"
    order_entry: Listen
    drop_copy: Listen
    stp_scope: StpScope = StpScope.ACCOUNT
    opening_phase: TradingPhase = TradingPhase.OPEN
    reference_db: str = ""  # SQLAlchemy URL; empty: sqlite file under var_dir
    drop_copy_nice: int = 10  # CPU niceness of the drop-copy process: short of CPU, copies wait, matching does not
    send_threads: int = 1  # threads doing order entry's quickfix sends (venue/fix/sender.py): one per spare core at most

    def __post_init__(self) -> None:
        if self.send_threads < 1:
            raise ValueError(f"send_threads must be at least 1, not {self.send_threads}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """One FIX order-entry session of a firm. `settings` overrides any quickfix session
    setting; `password` empty means no password (conformance testing on loopback only)."""

    sender_comp_id: str
    username: str = ""
    password: str = ""
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmConfig:
    id: str
    name: str = ""
    accounts: list[str]
    sessions: list[SessionConfig]
    stp_mode: StpMode = StpMode.CANCEL_AGGRESSING
    cancel_on_disconnect: bool = True
    cancel_on_disconnect_tifs: frozenset[TimeInForce] = frozenset({TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearingMemberConfig:
    id: str
    sender_comp_id: str
    username: str = ""
    password: str = ""
    firms: list[str] = field(default_factory=list)  # entitled to every account of these firms
    accounts: list[str] = field(default_factory=list)  # and to these accounts
    settings: dict[str, str] = field(default_factory=dict)
    include_rejects: bool = False  # also copy rejected orders (ExecType 150=8)
    max_buffered: int = 100_000  # events queued for the session before it is caught up from the journal


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    venue: VenueSettings
    instruments: list[Instrument]
    firms: list[FirmConfig]
    clearing_members: list[ClearingMemberConfig] = field(default_factory=list)
    risk: RiskConfig = field(default_factory=RiskConfig)  # pre-trade limits and opening collateral (venue/limits.py)
    journal: JournalConfig = field(default_factory=JournalConfig)  # the command log (venue/journal.py)
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)  # restart shortcuts (venue/snapshot.py)
    clearing: ClearingConfig = field(default_factory=ClearingConfig)  # fees, funding, settlement (venue/clearing/settings.py)
    source: str = ""  # the file it came from

    def var_path(self) -> Path:
        p = Path(self.venue.var_dir)
        return p if p.is_absolute() else Path(self.source).resolve().parent.parent / p

    def accounts(self) -> dict[str, str]:
        """account -> owning firm."""
        return {a: f.id for f in self.firms for a in f.accounts}


def load_config(path: Path | str | None = None) -> VenueConfig:
    """Load and check a venue config file; raise ConfigError before anything starts."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    cfg = build(VenueConfig, {**data, "source": str(path)}, path.name)
    _check_references(cfg, path.name)
    return cfg


def _check_references(cfg: VenueConfig, where: str) -> None:
    seen: dict[str, str] = {}
    for i, inst in enumerate(cfg.instruments):
        w = f"{where}: instruments[{i}]"
        if inst.symbol in seen:
            raise ConfigError(f"{w}.symbol: duplicate symbol {inst.symbol}")
        seen[inst.symbol] = w
        for name in ("tick_size", "lot_size", "multiplier", "reference_price"):
            if getattr(inst, name) <= 0:
                raise ConfigError(f"{w}.{name}: must be positive")
        if inst.ticks(inst.reference_price) is None:
            raise ConfigError(f"{w}.reference_price: {inst.reference_price} is not on the tick grid {inst.tick_size}")
        if inst.kind is InstrumentKind.PERPETUAL and not inst.funding_interval_s:
            raise ConfigError(f"{w}.funding_interval_s: required for a perpetual")
        if inst.kind in (InstrumentKind.FUTURE, InstrumentKind.OPTION) and inst.expiry is None:
            raise ConfigError(f"{w}.expiry: required for a {inst.kind.value}")
        if inst.kind is InstrumentKind.OPTION and (inst.strike is None or inst.right is None):
            raise ConfigError(f"{w}: an option needs strike and right")
    owner: dict[str, str] = {}
    comp_ids: set[str] = set()
    for i, firm in enumerate(cfg.firms):
        for a in firm.accounts:
            if a in owner:
                raise ConfigError(f"{where}: firms[{i}].accounts: account {a} already belongs to {owner[a]}")
            owner[a] = firm.id
        for j, s in enumerate(firm.sessions):
            if s.sender_comp_id in comp_ids:
                raise ConfigError(f"{where}: firms[{i}].sessions[{j}].sender_comp_id: duplicate {s.sender_comp_id}")
            comp_ids.add(s.sender_comp_id)
    firm_ids = {f.id for f in cfg.firms}
    for i, m in enumerate(cfg.clearing_members):
        for f in m.firms:
            if f not in firm_ids:
                raise ConfigError(f"{where}: clearing_members[{i}].firms: unknown firm {f}")
        for a in m.accounts:
            if a not in owner:
                raise ConfigError(f"{where}: clearing_members[{i}].accounts: unknown account {a}")
    for key, problem in config_problems(cfg.risk, firm_ids, set(owner), {i.symbol: i.quote_currency for i in cfg.instruments}):
        raise ConfigError(f"{where}: risk.{key}: {problem}")
    for problem in cfg.clearing.check({i.symbol for i in cfg.instruments}):
        raise ConfigError(f"{where}: clearing.{problem}")
