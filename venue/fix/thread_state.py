"""Keeping a Python thread state on quickfix's connection threads between callbacks.

quickfix calls the application from its own C++ threads, one per connection. The binding
wraps every callback in PyGILState_Ensure/PyGILState_Release, and on a thread Python did
not create, a Release that brings the thread's count to zero deletes its thread state: so
each callback built a thread state and tore it down again. In CPython 3.11 that includes
mapping and unmapping the state's 16 KiB frame stack, and an munmap in a multithreaded
process flushes the TLB of every CPU running it. Measured on the venue under load: one
mmap/munmap pair per inbound message, munmap and the page faults after it about 8% of
the process's CPU samples.

`hold()`, called at the top of a callback, takes one more GILState reference for the
calling thread, once per thread, so the state outlives the callback and the next callback
reuses it. `release()` gives it back (the order-entry gateway calls it from onLogout,
which quickfix runs on the connection's thread when the session ends), so the state goes
with the last callback of that thread. A connection thread that ends without calling
`release()` leaves its thread state allocated (about 17 KiB) until the process exits.
"""

from __future__ import annotations

import ctypes
import threading

_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.argtypes = []
_ensure.restype = ctypes.c_int
_release = ctypes.pythonapi.PyGILState_Release
_release.argtypes = [ctypes.c_int]
_release.restype = None

# Thread-local data lives in the thread state itself: it is there exactly as long as the
# state is held, and a new thread (even one reusing an old thread's id) starts without it.
_held = threading.local()


def hold() -> None:
    """Keep the calling thread's Python thread state after the current callback returns
    (idempotent; call with the GIL held, as every quickfix callback runs)."""
    if getattr(_held, "token", None) is None:
        _held.token = _ensure()


def release() -> None:
    """Undo `hold()` on the calling thread, if it held: its state then ends with the
    current callback."""
    token = getattr(_held, "token", None)
    if token is not None:
        del _held.token
        _release(token)
