"""field_types: the declared field types of the core's dataclasses, compiled or not."""

from __future__ import annotations

from decimal import Decimal

from venue.commands import NewOrder
from venue.field_types import field_types
from venue.journal import JournalConfig
from venue.limits import LimitRule
from venue.types import Side


def test_unions_survive_compilation() -> None:
    """mypyc (setup.py) leaves `type` in a compiled class's __annotations__ for a union."""
    types = field_types(NewOrder)
    assert types["price"] == int | None and types["expire_time"] == int | None
    assert types["side"] is Side and types["qty"] is int
    assert field_types(LimitRule)["max_order_notional"] == Decimal | None


def test_only_fields_are_listed() -> None:
    assert list(field_types(NewOrder)) == list(NewOrder.__dataclass_fields__)
    assert "fsync" in field_types(JournalConfig)  # an interpreted class: typing.get_type_hints
