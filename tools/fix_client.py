"""A FIX 4.4 client for a person at a terminal: log on, send orders, cancel, replace,
ask for status, watch executions and the book.

    python -m tools.fix_client --sender FIRM1 --username firm1 --password firm1-secret --account FIRM1-A

Then type commands (`help` lists them), e.g.:

    buy BTC-PERP 5 100000.5          limit buy (GTC), prints the ExecutionReports
    sell BTC-PERP 2                  market sell
    buy ETH-PERP 1 3500 tif=ioc post reduce stp=both
    cancel C3                        cancel by ClOrdID
    replace C1 3 100001              new quantity and price
    status C1 | massc [SYMBOL] | book BTC-PERP | list | quit

Sequence numbers start at 1 with a reset (141=Y) unless --no-reset is given with
--seq-out/--seq-in. Passwords are read from --password or, if absent, from the prompt.
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import shlex
import socket
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import simplefix

EXEC_TYPES = {"0": "NEW", "4": "CANCELED", "5": "REPLACED", "8": "REJECTED", "C": "EXPIRED", "F": "TRADE", "I": "STATUS", "L": "TRIGGERED", "D": "RESTATED"}
STATUSES = {"0": "NEW", "1": "PARTIAL", "2": "FILLED", "4": "CANCELED", "5": "REPLACED", "8": "REJECTED", "C": "EXPIRED"}
TIFS = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4", "gtd": "6"}
STP = {"resting": "1", "aggressing": "2", "both": "3"}


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")


def _get(m: simplefix.FixMessage, tag: int, default: str = "") -> str:
    v = m.get(tag)
    return v.decode() if v is not None else default


class Client:
    def __init__(self, host: str, port: int, sender: str, target: str, account: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sender, self.target, self.account = sender, target, account
        self.seq_out, self.seq_in = 1, 1
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.orders: dict[str, tuple[str, str]] = {}  # ClOrdID -> (symbol, side)
        self.books: dict[str, dict[str, dict[str, str]]] = {}  # symbol -> bid/offer -> price -> size
        self.logged_on = threading.Event()
        self.closed = threading.Event()

    def send(self, msg_type: str, fields: Sequence[tuple[int, object]]) -> None:
        m = simplefix.FixMessage()
        with self.lock:
            for tag, value in ((8, "FIX.4.4"), (35, msg_type), (49, self.sender), (56, self.target), (34, self.seq_out), (52, _utc())):
                m.append_pair(tag, value, header=True)
            for tag, value in fields:
                m.append_pair(tag, value)
            self.sock.sendall(m.encode())
            self.seq_out += 1

    # ------------------------------------------------------------------ reading

    def reader(self) -> None:
        parser = simplefix.FixParser()
        self.sock.settimeout(None)
        while not self.closed.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            parser.append_buffer(data)
            while (m := parser.get_message()) is not None:
                try:
                    self.on_message(m)
                except (ValueError, KeyError) as exc:  # show it, keep reading
                    print(f"[could not show {m}: {exc!r}]")
        self.closed.set()
        print("\n[disconnected]")

    def on_message(self, m: simplefix.FixMessage) -> None:
        mt = _get(m, 35)
        self.seq_in = int(_get(m, 34, "0")) + 1
        if mt == "A":
            self.logged_on.set()
            print(f"[logged on; heartbeat {_get(m, 108)}s]")
        elif mt == "5":
            print(f"[logout] {_get(m, 58)}")
        elif mt == "1":
            self.send("0", [(112, _get(m, 112))])
        elif mt == "8":
            et, st = EXEC_TYPES.get(_get(m, 150), _get(m, 150)), STATUSES.get(_get(m, 39), _get(m, 39))
            line = (f"ER {et:<9} {_get(m, 11)} oid={_get(m, 37)} {st} {'BUY' if _get(m, 54) == '1' else 'SELL'} {_get(m, 38)} "
                    f"{_get(m, 55)} @ {_get(m, 44, 'MKT')} cum={_get(m, 14)} leaves={_get(m, 151)} avg={_get(m, 6)}")
            if _get(m, 150) == "F":
                line += f" last={_get(m, 32)}@{_get(m, 31)} trade={_get(m, 880)}"
            if _get(m, 58):
                line += f"  ({_get(m, 58)})"
            print(line)
        elif mt == "9":
            print(f"CANCEL REJECT {_get(m, 11)} orig={_get(m, 41)} status={STATUSES.get(_get(m, 39), _get(m, 39))}: {_get(m, 58)}")
        elif mt == "r":
            print(f"MASS CANCEL {_get(m, 11)}: {_get(m, 533)} canceled {_get(m, 58)}")
        elif mt in ("W", "X"):
            self.on_book(m, full=mt == "W")
        elif mt == "y":
            self.on_security_list(m)
        elif mt in ("3", "j", "Y"):
            print(f"REJECT ({mt}) ref={_get(m, 45) or _get(m, 262)}: {_get(m, 58)}")

    def on_book(self, m: simplefix.FixMessage, *, full: bool) -> None:
        symbol = _get(m, 55)
        if full:
            self.books[symbol] = {"0": {}, "1": {}}
        entry: dict[int, str] = {}
        entries: list[dict[int, str]] = []
        for tag, value in m.pairs:
            t = int(tag)
            if t in (279, 269) and (t in entry or (t == 269 and 279 not in entry and entry)):
                entries.append(entry)
                entry = {}
            if t in (279, 269, 55, 270, 271):
                entry[t] = value.decode()
        if entry:
            entries.append(entry)
        for e in entries:
            if 269 not in e:
                continue
            sym = e.get(55, symbol)
            book = self.books.setdefault(sym, {"0": {}, "1": {}})
            if e[269] == "2":
                print(f"TRADE {sym} {e.get(271)} @ {e.get(270)}")
            elif e.get(279) == "2":
                book[e[269]].pop(e[270], None)
            else:
                book[e[269]][e[270]] = e[271]
        for sym, book in self.books.items():
            asks = sorted(book["1"].items(), key=lambda kv: float(kv[0]))[:5]
            bids = sorted(book["0"].items(), key=lambda kv: -float(kv[0]))[:5]
            print(f"--- {sym}")
            for px, sz in reversed(asks):
                print(f"          {px:>12} {sz:>8}")
            for px, sz in bids:
                print(f"{sz:>8} {px:>12}")

    def on_security_list(self, m: simplefix.FixMessage) -> None:
        row: dict[int, str] = {}
        rows = []
        for tag, value in m.pairs:
            t = int(tag)
            if t == 55:
                if 55 in row:
                    rows.append(row)
                row = {}
            row[t] = value.decode()
        if 55 in row:
            rows.append(row)
        for r in rows:
            print(f"{r.get(55):<24} {r.get(107, ''):<9} tick={r.get(969)} lot={r.get(561)} mult={r.get(231)} {r.get(15, '')} expiry={r.get(541, '-')}")

    # ------------------------------------------------------------------ commands

    def command(self, line: str) -> bool:
        words = shlex.split(line)
        if not words:
            return True
        cmd, args = words[0].lower(), words[1:]
        opts = {k: v for k, _, v in (a.partition("=") for a in args if "=" in a)}
        flags = {a for a in args if a in ("post", "reduce")}
        plain = [a for a in args if "=" not in a and a not in flags]
        if cmd in ("buy", "sell") and len(args) >= 2:
            symbol, qty = args[0], args[1]
            price = plain[2] if len(plain) > 2 else None
            cl = f"C{next(self.ids)}"
            side = "1" if cmd == "buy" else "2"
            fields: list[tuple[int, object]] = [(11, cl), (1, opts.get("account", self.account)), (55, symbol), (54, side), (60, _utc()), (38, qty),
                                                (40, "2" if price else "1")]
            if price:
                fields.append((44, price))
            fields.append((59, TIFS[opts.get("tif", "gtc")]))
            if "post" in flags:
                fields.append((7901, "Y"))
            if "reduce" in flags:
                fields.append((7902, "Y"))
            if "stp" in opts:
                fields.append((7903, STP[opts["stp"]]))
            self.orders[cl] = (symbol, side)
            self.send("D", fields)
        elif cmd in ("cancel", "replace", "status") and (not args or args[0] not in self.orders):
            print(f"{cmd}: give one of this session's ClOrdIDs: {' '.join(self.orders) or '(none yet)'}")
        elif cmd == "cancel":
            symbol, side = self.orders[args[0]]
            cl = f"C{next(self.ids)}"
            self.orders[cl] = (symbol, side)
            self.send("F", [(41, args[0]), (11, cl), (55, symbol), (54, side), (60, _utc())])
        elif cmd == "replace" and len(args) >= 2:
            symbol, side = self.orders[args[0]]
            cl = f"C{next(self.ids)}"
            self.orders[cl] = (symbol, side)
            fields = [(41, args[0]), (11, cl), (55, symbol), (54, side), (60, _utc()), (38, args[1]), (40, "2" if len(args) > 2 else "1")]
            if len(args) > 2:
                fields.append((44, args[2]))
            self.send("G", fields)
        elif cmd == "status":
            symbol, side = self.orders[args[0]]
            self.send("H", [(11, args[0]), (55, symbol), (54, side)])
        elif cmd == "massc":
            fields = [(11, f"C{next(self.ids)}"), (530, "1" if args else "7"), (60, _utc())]
            if args:
                fields.append((55, args[0]))
            self.send("q", fields)
        elif cmd == "book" and args:
            self.send("V", [(262, f"MD-{args[0]}"), (263, "1"), (264, "0"), (265, "1"), (267, 3), (269, "0"), (269, "1"), (269, "2"), (146, 1), (55, args[0])])
        elif cmd == "list":
            self.send("x", [(320, f"SL{next(self.ids)}"), (559, "4")])
        elif cmd in ("quit", "exit"):
            return False
        else:
            print(__doc__.split("Then type commands (`help` lists them), e.g.:")[1].split("Sequence numbers")[0].rstrip())
        return True


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="interactive FIX 4.4 client")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9876)
    p.add_argument("--sender", required=True, help="our SenderCompID (e.g. FIRM1)")
    p.add_argument("--target", default="VENUE")
    p.add_argument("--username", default="")
    p.add_argument("--password", default=None)
    p.add_argument("--account", required=True, help="default Account (1) for orders")
    p.add_argument("--no-reset", action="store_true", help="resume sequence numbers (--seq-out, --seq-in) instead of 141=Y")
    p.add_argument("--seq-out", type=int, default=1)
    a = p.parse_args(argv)
    password = a.password if a.password is not None else (getpass.getpass("password: ") if a.username else "")
    c = Client(a.host, a.port, a.sender, a.target, a.account)
    c.seq_out = a.seq_out if a.no_reset else 1
    threading.Thread(target=c.reader, daemon=True).start()
    logon: list[tuple[int, object]] = [(98, "0"), (108, "30")]
    if not a.no_reset:
        logon.append((141, "Y"))
    if a.username:
        logon.append((553, a.username))
    if password:
        logon.append((554, password))
    c.send("A", logon)
    if not c.logged_on.wait(10):
        print("no logon answer", file=sys.stderr)
        return 1
    try:
        while not c.closed.is_set():
            line = input("> ")
            if not c.command(line):
                break
    except (EOFError, KeyboardInterrupt):
        pass
    if not c.closed.is_set():
        c.send("5", [])
        c.closed.wait(3)
    c.sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
