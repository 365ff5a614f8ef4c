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
import secrets

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
