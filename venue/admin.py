"""The operator channel: `venue admin ...` talks to the running venue over a local socket.

Channel. The venue listens on a unix socket, `<var>/admin.sock` (mode 0600), and writes a
fresh random token to `<var>/admin.token` (mode 0600) each time it starts. Only a user who
can read the var directory can connect and present the token: filesystem permissions
authenticate, the token proves the client read this run's file (a stale client from a
previous run is refused). Nothing listens on the network.

Protocol: one JSON line each way per connection.
    request   {"token": "...", "command": "kill", "args": ["firm", "FIRM1"]}
    answer    {"ok": true, "output": "kill switch engaged for firm FIRM1: 3 orders canceled"}
              {"ok": false, "error": "unknown firm 'FIRMX'"}

Handlers run inside the venue process, on the event loop. They change state only by
submitting commands (`await venue.sequencer.call(cmd)` returns the command's events once
they are durable), so every operator action is journaled and replayed like an order.

Registry. Any module may add a command:

    from venue import admin

    async def eod(venue, args: list[str]) -> str:     # venue: the running venue.app.Venue
        opts = admin.parser("eod", "run the day's settlement")
        opts.add_argument("--date")
        ns = admin.parse(opts, args)                  # a bad argument -> AdminError -> exit 1
        ...
        return "settled 2026-11-21"

    admin.register("eod", eod, "run the day's settlement [--date YYYY-MM-DD]", timeout_s=300)

`venue admin eod --date 2026-11-21` then runs it. A handler raises AdminError for a bad
request (the CLI prints it and exits 1); any other exception is reported as an internal
error and the venue goes on. Each handler runs under its timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)

SOCKET_NAME = "admin.sock"
TOKEN_NAME = "admin.token"
MAX_LINE = 64 * 1024
READ_TIMEOUT_S = 5.0

Handler = Callable[[Any, list[str]], Awaitable[str]]


class AdminError(Exception):
    """A request the operator must fix; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Registered:
    handler: Handler
    help: str
    timeout_s: float


_REGISTRY: dict[str, Registered] = {}


def register(name: str, handler: Handler, help: str = "", *, timeout_s: float = 30.0) -> None:
    """Add (or replace) the command `venue admin <name>`."""
    _REGISTRY[name] = Registered(handler, help, timeout_s)


def unregister(name: str) -> None:
    """Remove a command (a module shutting down, or a test cleaning up)."""
    _REGISTRY.pop(name, None)


def commands() -> dict[str, Registered]:
    return dict(_REGISTRY)


class _Help(Exception):
    """`-h`: the command's help is the answer."""


class _Parser(argparse.ArgumentParser):
    """argparse that answers the operator instead of printing and exiting the venue."""

    def error(self, message: str) -> NoReturn:
        raise AdminError(f"{self.prog}: {message}\nusage: {self.format_usage().removeprefix('usage: ').strip()}")

    def print_help(self, file: object = None) -> None:
        raise _Help(self.format_help())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise AdminError(message or f"{self.prog}: exit {status}")


def parser(name: str, description: str = "") -> argparse.ArgumentParser:
    return _Parser(prog=f"venue admin {name}", description=description, add_help=True)


def parse(p: argparse.ArgumentParser, args: Sequence[str]) -> argparse.Namespace:
    return p.parse_args(list(args))


class AdminServer:
    """The unix-socket server inside the venue process."""

    def __init__(self, venue: Any, var_dir: Path) -> None:
        self.venue = venue
        self.socket_path = var_dir / SOCKET_NAME
        self.token_path = var_dir / TOKEN_NAME
        self.token = secrets.token_hex(32)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        os.chmod(self.token_path, 0o600)
        # chmod rather than umask: the umask is process-wide, and quickfix threads write files too.
        # Until the chmod, a client could connect but still needs the token.
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path), limit=MAX_LINE)
        os.chmod(self.socket_path, 0o600)
        log.info("admin channel on %s", self.socket_path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.socket_path.unlink(missing_ok=True)
        self.token_path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
                answer = await self._answer(line)
            except (TimeoutError, ValueError):
                answer = {"ok": False, "error": "bad request: expected one JSON line"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            log.warning("admin client went away")
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "bad request: not JSON"}
        if not isinstance(req, dict) or not isinstance(req.get("token"), str):
            return {"ok": False, "error": "bad request: no token"}
        if not hmac.compare_digest(req["token"].encode(), self.token.encode()):
            return {"ok": False, "error": "not authorised: wrong token (is this the running venue's var directory?)"}
        name, args = req.get("command"), req.get("args", [])
        if not isinstance(name, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return {"ok": False, "error": "bad request: command must be text and args a list of text"}
        entry = _REGISTRY.get(name)
        if entry is None:
            return {"ok": False, "error": f"unknown command {name!r}; known: {', '.join(sorted(_REGISTRY))}"}
        try:
            output = await asyncio.wait_for(entry.handler(self.venue, args), entry.timeout_s)
        except _Help as help_text:
            return {"ok": True, "output": str(help_text).strip()}
        except AdminError as exc:
            return {"ok": False, "error": str(exc)}
        except TimeoutError:
            return {"ok": False, "error": f"{name}: no answer within {entry.timeout_s:g} s"}
        except Exception as exc:
            log.exception("admin command %s %s failed", name, args)
            return {"ok": False, "error": f"{name}: internal error: {exc!r}"}
        log.info("admin: %s %s", name, " ".join(args))
        return {"ok": True, "output": output}


def request(var_dir: Path, command: str, args: Sequence[str], timeout_s: float = 60.0) -> tuple[bool, str]:
    """The client side (the CLI): send one command, return (ok, output or error)."""
    sock_path, token_path = var_dir / SOCKET_NAME, var_dir / TOKEN_NAME
    try:
        token = token_path.read_text().strip()
    except OSError as exc:
        return False, f"cannot read {token_path}: {exc.strerror} (is the venue running with this config?)"
    body = json.dumps({"token": token, "command": command, "args": list(args)}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(sock_path))
            s.sendall(body)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return False, f"cannot reach the venue at {sock_path}: {exc.strerror or exc}"
    try:
        answer = json.loads(data)
    except ValueError:
        return False, f"garbled answer from the venue: {data[:200]!r}"
    return (True, answer["output"]) if answer.get("ok") else (False, str(answer.get("error")))
