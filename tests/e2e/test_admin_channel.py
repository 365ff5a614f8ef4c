"""The admin channel on its own: the registry other modules extend, and every way a request
can be wrong (bad JSON, wrong token, unknown command, a handler's AdminError, a handler that
fails or hangs) answered plainly while the server goes on serving."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from venue import admin
from venue.admin import SOCKET_NAME, AdminError, AdminServer, request


class StubVenue:
    """What a handler receives: here, just somewhere to record calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []


async def echo(venue: Any, args: list[str]) -> str:
    p = admin.parser("echo", "say it back")
    p.add_argument("words", nargs="+")
    p.add_argument("--upper", action="store_true")
    ns = admin.parse(p, args)
    venue.calls.append(args)
    text = " ".join(ns.words)
    return text.upper() if ns.upper else text


async def refuse(venue: Any, args: list[str]) -> str:
    raise AdminError("no such day: 2026-02-30")


async def broken(venue: Any, args: list[str]) -> str:
    raise RuntimeError("ledger unavailable")


async def hang(venue: Any, args: list[str]) -> str:
    await asyncio.sleep(30)
    return "late"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[AdminServer, StubVenue]]:
    admin.register("echo", echo, "say it back")
    admin.register("refuse", refuse)
    admin.register("broken", broken)
    admin.register("hang", hang, timeout_s=0.2)
    venue = StubVenue()
    srv = AdminServer(venue, tmp_path)
    await srv.start()
    try:
        yield srv, venue
    finally:
        await srv.close()
        for name in ("echo", "refuse", "broken", "hang"):  # the registry is module-wide: leave it as found
            admin.unregister(name)


async def ask(srv: AdminServer, command: str, *args: str) -> tuple[bool, str]:
    return await asyncio.get_running_loop().run_in_executor(None, request, srv.token_path.parent, command, list(args), 5.0)


async def raw(srv: AdminServer, line: bytes) -> dict[str, Any]:
    def go() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(srv.socket_path))
            s.sendall(line)
            return s.makefile("rb").readline()

    return json.loads(await asyncio.get_running_loop().run_in_executor(None, go))  # type: ignore[no-any-return]


async def test_a_registered_command_runs_inside_the_server(server: tuple[AdminServer, StubVenue]) -> None:
    srv, venue = server
    assert await ask(srv, "echo", "settle", "today", "--upper") == (True, "SETTLE TODAY")
    assert venue.calls == [["settle", "today", "--upper"]]
    ok, text = await ask(srv, "echo")
    assert not ok and "venue admin echo: the following arguments are required: words" in text
    ok, text = await ask(srv, "echo", "-h")
    assert ok and text.startswith("usage: venue admin echo [-h] [--upper] words [words ...]") and "say it back" in text
    assert venue.calls == [["settle", "today", "--upper"]]


async def test_every_failure_is_answered_and_the_server_goes_on(server: tuple[AdminServer, StubVenue]) -> None:
    srv, _ = server
    assert await ask(srv, "refuse") == (False, "no such day: 2026-02-30")
    assert await ask(srv, "broken") == (False, "broken: internal error: RuntimeError('ledger unavailable')")
    assert await ask(srv, "hang") == (False, "hang: no answer within 0.2 s")
    ok, text = await ask(srv, "nope")
    assert not ok and text.startswith("unknown command 'nope'; known: ") and "echo" in text
    assert await raw(srv, b"not json\n") == {"ok": False, "error": "bad request: not JSON"}
    assert await raw(srv, b'{"command": "echo"}\n') == {"ok": False, "error": "bad request: no token"}
    assert (await raw(srv, json.dumps({"token": "x" * 64, "command": "echo", "args": ["a"]}).encode() + b"\n"))["error"].startswith("not authorised")
    assert await raw(srv, json.dumps({"token": srv.token, "command": "echo", "args": [1]}).encode() + b"\n") == \
        {"ok": False, "error": "bad request: command must be text and args a list of text"}
    assert await raw(srv, b"x" * (admin.MAX_LINE + 10) + b"\n") == {"ok": False, "error": "bad request: expected one JSON line"}
    assert await ask(srv, "echo", "still", "here") == (True, "still here")


async def test_files_are_private_and_removed_on_close(tmp_path: Path) -> None:
    srv = AdminServer(StubVenue(), tmp_path)
    await srv.start()
    assert srv.socket_path.stat().st_mode & 0o077 == 0 and srv.token_path.stat().st_mode & 0o077 == 0
    assert len(srv.token_path.read_text()) == 64
    await srv.close()
    assert not (tmp_path / SOCKET_NAME).exists() and not srv.token_path.exists()
    ok, text = await asyncio.get_running_loop().run_in_executor(None, request, tmp_path, "echo", ["x"], 5.0)
    assert not ok and "is the venue running" in text
