"""Golden FIX scenarios: readable scripts in tests/e2e/scenarios/, one per behaviour,
each line a message a session sends (`>`) or must receive next among its application
messages (`<`) with the fields that must match. TransactTime (60) is added to what is
sent when the message needs it; `_` in a value stands for a space. A failure names the
script line and shows what came."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixclient import get, utc_now
from venue_harness import VenueThread, check_engine, venue  # noqa: F401  (fixture)

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.fix"))
NEEDS_TIME = {"D", "F", "G", "q"}


def parse(line: str) -> tuple[str, str, str, list[tuple[int, str]]]:
    who, arrow, msg_type, *pairs = line.split()
    fields = [(int(t), v.replace("_", " ")) for t, _, v in (p.partition("=") for p in pairs)]
    return who, arrow, msg_type, fields


@pytest.mark.parametrize("script", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(venue: VenueThread, script: Path) -> None:
    clients = {}
    for n, raw in enumerate(script.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        who, arrow, msg_type, fields = parse(line)
        c = clients.get(who) or clients.setdefault(who, venue.logged_on(who))
        if arrow == ">":
            if msg_type in NEEDS_TIME and all(t != 60 for t, _ in fields):
                fields.append((60, utc_now()))
            c.send(msg_type, fields)
            continue
        assert arrow == "<", f"{script.name}:{n}: expected > or <"
        try:
            got = c.expect(lambda m: True, what=f"line {n}")
        except TimeoutError as exc:
            raise AssertionError(f"{script.name}:{n}: {line}\n  nothing came: {exc}") from None
        want = [(35, msg_type), *fields]
        wrong = [(t, v, get(got, t)) for t, v in want if get(got, t) != v]
        assert not wrong, f"{script.name}:{n}: {line}\n  got {got}\n  mismatched (tag, want, got): {wrong}"
    for who, c in clients.items():
        assert c.quiet(0.2) == [], f"{script.name}: {who} received more than the script expects"
    check_engine(venue)
