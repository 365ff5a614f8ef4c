"""quickfix session settings, generated from the venue's config (no hand-written .cfg).

One acceptor per service (order entry here; drop copy reuses `acceptor_settings` with its
own port and directory). Every session gets the venue defaults below; a session's
`settings` mapping in config overrides any of them, key for key, so a client's engineer
can (for instance) turn off latency checks for a certification run.

Defaults and why:
- NonStopSession=Y: crypto trades around the clock, so sequence numbers never reset on a
  schedule; they reset only when a client logs on with ResetSeqNumFlag (141=Y).
- FileStore under var/: sequence numbers and sent messages survive a restart, so a
  client that reconnects resumes its numbers and can ask for a resend.
- The venue's data dictionary (fix_specs/FIX44-venue.xml) validates every incoming
  message; a violation is answered by quickfix with a session Reject (35=3).
- TimestampPrecision=6: SendingTime with microseconds, like TransactTime.
- quickfix 1.16 cannot bind one address (it listens on every interface), so a loopback
  `host` becomes AllowedRemoteAddresses: connections from elsewhere are closed at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import quickfix as fix

FIX_SPECS = Path(__file__).resolve().parent.parent.parent / "fix_specs"
DATA_DICTIONARY = FIX_SPECS / "FIX44-venue.xml"
BEGIN_STRING = "FIX.4.4"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def acceptor_settings(
    *,
    comp_id: str,
    host: str,
    port: int,
    state_dir: Path,
    sessions: Iterable[tuple[str, Mapping[str, str]]],
    data_dictionary: Path = DATA_DICTIONARY,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The defaults and each session's settings (client CompID -> its settings), as
    plain mappings: what `to_quickfix` loads, and what tests and logs can read."""
    defaults = {
        "ConnectionType": "acceptor",
        "BeginString": BEGIN_STRING,
        "SenderCompID": comp_id,
        "SocketAcceptPort": str(port),
        "SocketReuseAddress": "Y",
        "SocketNodelay": "Y",
        "NonStopSession": "Y",
        "FileStorePath": str(state_dir / "store"),
        "UseDataDictionary": "Y",
        "DataDictionary": str(data_dictionary),
        "ValidateUserDefinedFields": "Y",
        "ValidateFieldsOutOfOrder": "Y",
        "ValidateFieldsHaveValues": "Y",
        "TimestampPrecision": "6",
        "ResetOnLogon": "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "PersistMessages": "Y",
        "CheckLatency": "Y",
        "MaxLatency": "120",
        "LogonTimeout": "10",
        "LogoutTimeout": "2",
    }
    if host in _LOOPBACK:
        defaults["AllowedRemoteAddresses"] = "127.0.0.1"
    per_session = {target: {"TargetCompID": target, **dict(overrides)} for target, overrides in sessions}
    return defaults, per_session


def to_quickfix(defaults: Mapping[str, str], sessions: Mapping[str, Mapping[str, str]]) -> fix.SessionSettings:
    """Load the mappings into a quickfix SessionSettings."""
    settings = fix.SessionSettings()
    d = fix.Dictionary()
    for k, v in defaults.items():
        d.setString(k, v)
    settings.set(d)
    for target, values in sessions.items():
        sd = fix.Dictionary()
        for k, v in values.items():
            sd.setString(k, v)
        begin = values.get("BeginString", defaults["BeginString"])
        sender = values.get("SenderCompID", defaults["SenderCompID"])
        settings.set(fix.SessionID(begin, sender, target), sd)
    return settings

