"""Password hashing for FIX logons: scrypt with a per-credential random salt.

A stored credential is one self-describing string, `scrypt$n$r$p$salt_hex$hash_hex`, so
the cost parameters can be raised later without breaking old hashes. Plain passwords are
never stored or logged: the reference database holds only these strings, and the
gateway's message log redacts Password (554) before it writes a Logon.

Cost: about 30-60 ms per verify at n=2**14 (deliberately slow against guessing); it runs
on the logging-on connection's quickfix thread, never on the sequencer's loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import NoReturn

import quickfix as fix

log = logging.getLogger(__name__)

_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """A salted scrypt hash of `password`, encoded with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN)
    return f"{_SCHEME}${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash; False for any malformed hash."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != _SCHEME:
            return False
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)


def check_credentials(logon: fix.Message, username: str, password_hash: str) -> str | None:
    """None when a Logon's Username (553) and Password (554) match the stored credential
    (an empty username or hash is not asked for), else the reason for the Logout. The
    reason never says which of the two was wrong."""
    given_user = logon.getField(553) if logon.isSetField(553) else ""
    given_password = logon.getField(554) if logon.isSetField(554) else ""
    if username and given_user != username:
        return "invalid username or password"
    if password_hash:
        if not given_password:
            return "password required (554)"
        if not verify_password(given_password, password_hash):
            return "invalid username or password"
    return None


def logon_gate(message: fix.Message, sid: fix.SessionID, authenticate: Callable[[fix.Message, fix.SessionID], str | None], what: str) -> str | None:
    """fromAdmin's check of every Logon (141=Y included, since quickfix has already reset
    the store by then): the reason to refuse it, or None. The caller raises RejectLogon
    with it (see `refuse_logon`), so the peer gets a Logout and the acceptor stays up; any
    failure of the check itself refuses too, and never escapes."""
    try:
        if message.getHeader().getField(35) != "A":
            return None
        refusal = authenticate(message, sid)
    except Exception:
        log.exception("%s logon check for %s failed", what, sid)
        refusal = "logon refused: venue error"
    if refusal is not None:
        log.warning("%s logon refused for %s: %s", what, sid.getTargetCompID().getValue(), refusal)
    return refusal


def refuse_logon(refusal: str) -> NoReturn:
    """Raise RejectLogon from a frame that holds nothing else. quickfix 1.16's binding never
    frees the exception it catches from fromAdmin, so whatever the raising frames
    reference (an acceptor, and through it the sequencer and the ledger) would stay alive
    until the process exits: callers drop their locals before calling this."""
    raise fix.RejectLogon(refusal)


class AuthenticatedAcceptor(fix.Application):  # type: ignore[misc]
    """What every venue acceptor's quickfix Application shares: each Logon passes
    `_authenticate` (a subclass's) or is refused with a Logout naming the reason, and
    nothing is added to outgoing messages. `kind` names the acceptor in the log."""

    kind = "acceptor"

    def _authenticate(self, message: fix.Message, sid: fix.SessionID) -> str | None:
        raise NotImplementedError

    def toAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        refusal = logon_gate(message, sid, self._authenticate, self.kind)
        if refusal is not None:
            del self, message, sid  # see refuse_logon: the leaked traceback must pin nothing
            refuse_logon(refusal)
