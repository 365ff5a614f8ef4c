"""The baseline for bench/fix_e2e.py: a bare quickfix acceptor that acknowledges each
NewOrderSingle with an ExecutionReport (150=0) and does nothing else.

Same session layer as the venue (settings from venue/fix/settings.py: FileStore, the
venue's data dictionary, validation on), the same way of building the report (a FIX
string parsed into a message) and the same Python thread-state keeping on quickfix's
threads (venue/fix/thread_state.py), answered on quickfix's own thread: no sequencer,
matching, risk, journal, drop copy or market data. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
from pathlib import Path

import quickfix as fix

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from venue.config import load_config
from venue.fix import thread_state
from venue.fix.codec import field_map
from venue.fix.settings import DATA_DICTIONARY, acceptor_settings, to_quickfix


class AckApp(fix.Application):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.dd = fix.DataDictionary(str(DATA_DICTIONARY))
        self.ids = itertools.count(1)
        self.sessions: dict[str, fix.Session] = {}

    def onCreate(self, sid: fix.SessionID) -> None:
        pass

    def onLogon(self, sid: fix.SessionID) -> None:
        self.sessions[sid.toString()] = fix.Session.lookupSession(sid)

    def onLogout(self, sid: fix.SessionID) -> None:
        thread_state.release()

    def toAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        thread_state.hold()  # as the venue's gateway does (venue/fix/thread_state.py)
        try:
            f = field_map(message.toString())
            if f[35] != "D":
                raise fix.UnsupportedMessageType()
            n = next(self.ids)
            now = time.time_ns() // 1000
            ts = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now // 1_000_000)) + f".{now % 1_000_000:06d}"
            raw = (
                f"8=FIX.4.4\x019=0\x0135=8\x0137={n}\x0111={f[11]}\x011={f.get(1, '')}\x0155={f[55]}\x0154={f[54]}\x0140={f[40]}"
                f"\x0159={f.get(59, '0')}\x0138={f[38]}\x0144={f.get(44, '0')}\x0117={n}\x01150=0\x0139=0\x01151={f[38]}\x0114=0\x016=0"
                f"\x0160={ts}\x0110=000\x01"
            )
            self.sessions[sid.toString()].send(fix.Message(raw, self.dd, False))
        except fix.UnsupportedMessageType:
            raise
        except Exception as exc:  # never let an exception end quickfix's process
            print(f"baseline: {exc!r}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description="bare quickfix acceptor that acks each order")
    p.add_argument("--config", required=True, help="a venue config: port, CompIDs and var dir come from it")
    a = p.parse_args()
    cfg = load_config(a.config)
    settings = to_quickfix(*acceptor_settings(
        comp_id=cfg.venue.comp_id, host=cfg.venue.order_entry.host, port=cfg.venue.order_entry.port,
        state_dir=cfg.var_path() / "fix" / "baseline",
        sessions=[(s.sender_comp_id, s.settings) for f in cfg.firms for s in f.sessions],
    ))
    app = AckApp()
    store = fix.FileStoreFactory(settings)
    acceptor = fix.ThreadedSocketAcceptor(app, store, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    acceptor.start()
    while not stop.wait(0.2):
        pass
    acceptor.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
