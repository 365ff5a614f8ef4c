"""The venue <-> drop-copy process pipe (drop_copy/pipe.py), both ends: the venue's link
sends a clearing-ledger job after the latest published seq and gets its answer back
(drop_copy/link.py); the process runs a job only once the seqs told before it are applied
(drop_copy/process.py `follow`)."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drop_copy import pipe
from drop_copy.link import DropCopyLink
from drop_copy.process import Answers, follow
from venue import admin
from venue.clearing import jobs
from venue.clearing.eod import EodError
from venue.clearing.jobs import LedgerUnavailable
from venue.clearing.operator import _reconcile_handler


def test_lines_are_whole_across_reads() -> None:
    lines = pipe.Lines()
    assert lines.feed(b"12\n3") == [b"12"]
    assert lines.feed(b"4\nJ 1 ab") == [b"34"]
    assert lines.feed(b"c\n") == [b"J 1 abc"]


def test_a_job_and_its_answers_round_trip_and_a_job_too_big_for_one_write_is_refused() -> None:
    job = partial(jobs.settle_day, "2026-12-24", 5)
    job_id, back = pipe.read_job(pipe.job_line(7, job))
    assert job_id == 7 and back.func is jobs.settle_day and back.args == ("2026-12-24", 5)
    assert pipe.read_answer(pipe.answer_line(7, True, [(1, "x")]).rstrip(b"\n")) == (7, True, [(1, "x")])
    _, ok, exc = pipe.read_answer(pipe.answer_line(8, False, EodError("2026-12-25 has not ended")))
    assert not ok and isinstance(exc, EodError) and str(exc) == "2026-12-25 has not ended"
    _, ok, exc = pipe.read_answer(pipe.answer_line(9, True, lambda: None))  # a value that does not pickle
    assert not ok and "did not pickle" in str(exc)
    with pytest.raises(ValueError, match="must fit in one pipe write"):
        pipe.job_line(1, partial(jobs.query, "x" * select.PIPE_BUF, ()))


class _Process:
    """The link's view of a process: a pid, a stdout (our pipe) and no exit code."""

    def __init__(self, fd: int) -> None:
        self.pid = 1
        self.stdout = SimpleNamespace(fileno=lambda: fd, closed=False)

    def poll(self) -> None:
        return None


def _read_lines(fd: int) -> list[bytes]:
    try:
        return os.read(fd, 65536).split(b"\n")[:-1]
    except BlockingIOError:
        return []


def test_the_link_sends_a_job_after_the_latest_seq_and_resolves_its_answer() -> None:
    async def main() -> None:
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        for fd in (stdin_r, stdin_w, out_r):
            os.set_blocking(fd, False)
        link = DropCopyLink(Path("unused.yaml"))
        link._fd = stdin_w
        loop = asyncio.get_running_loop()
        loop.add_reader(out_r, link._on_output, _Process(out_r))
        try:
            link.on_events([SimpleNamespace(seq=5)])  # type: ignore[list-item]
            link.on_events([SimpleNamespace(seq=9)])  # type: ignore[list-item]  (paced: not told yet)
            asked = asyncio.create_task(link.run(partial(jobs.query, "SELECT 1", ()), 5.0))
            await asyncio.sleep(0.01)
            sent = _read_lines(stdin_r)
            assert sent[:2] == [b"5", b"9"], sent  # the job comes after everything published so far
            job_id, job = pipe.read_job(sent[2])
            assert job.func is jobs.query and not asked.done()
            os.write(out_w, pipe.answer_line(job_id, True, [(1,)]))
            assert await asyncio.wait_for(asked, 5) == [(1,)]

            refused = asyncio.create_task(link.run(jobs.reconcile_journal, 5.0))
            await asyncio.sleep(0.01)
            job_id, _ = pipe.read_job(_read_lines(stdin_r)[-1])
            os.write(out_w, pipe.answer_line(job_id, False, EodError("a day not yet ended")))
            with pytest.raises(EodError, match="a day not yet ended"):
                await asyncio.wait_for(refused, 5)

            orphaned = asyncio.create_task(link.run(jobs.reconcile_journal, 5.0))
            await asyncio.sleep(0.01)
            os.close(out_w)  # the process exits before answering
            with pytest.raises(LedgerUnavailable, match="exited"):
                await asyncio.wait_for(orphaned, 5)
            link._fd = -1
            with pytest.raises(LedgerUnavailable, match="not running"):
                await link.run(jobs.reconcile_journal, 5.0)
        finally:
            loop.remove_reader(out_r)
            for fd in (stdin_r, stdin_w, out_r):
                os.close(fd)

    asyncio.run(main())


class _Input:
    def __init__(self, reads: list[list[int | bytes]]) -> None:
        self.reads: Iterator[list[int | bytes]] = iter(reads)

    def read(self) -> list[int | bytes] | None:
        return next(self.reads, None)


class _Follower:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def advance(self, seq: int) -> None:
        self.log.append(("advance", seq))


class _Host:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def submit(self, job: Any) -> Future[Any]:
        self.log.append(("job", job.args[0]))
        done: Future[Any] = Future()
        done.set_result(job.args[0])
        return done


def test_the_process_runs_each_job_once_the_seqs_told_before_it_are_applied() -> None:
    log: list[Any] = []
    reads: list[list[int | bytes]] = [
        [3, 7],
        [8, pipe.job_line(1, partial(jobs.query, "A", ())).rstrip(b"\n"), 9, 12],
        [pipe.job_line(2, partial(jobs.query, "B", ())).rstrip(b"\n"), b"garbage"],
    ]
    out_r, out_w = os.pipe()
    try:
        follow(_Input(reads), _Follower(log), _Host(log), Answers(out_w), None)  # type: ignore[arg-type]
        answers = [pipe.read_answer(line) for line in _read_lines(out_r)]
    finally:
        os.close(out_r)
        os.close(out_w)
    assert log == [("advance", 7), ("advance", 8), ("job", "A"), ("advance", 12), ("job", "B")]
    assert answers == [(1, True, "A"), (2, True, "B")]  # the unreadable line is logged and skipped


def test_an_operator_command_finds_the_ledger_process_gone_and_says_so() -> None:
    class Gone:
        async def run(self, job: Any, timeout: float) -> Any:
            raise LedgerUnavailable("the drop-copy process, which holds the clearing ledger, is not running")

    with pytest.raises(admin.AdminError, match="holds the clearing ledger, is not running"):
        asyncio.run(_reconcile_handler(SimpleNamespace(clearing=Gone()), []))


def test_without_a_ledger_the_process_answers_each_job_at_once_that_it_is_unavailable() -> None:
    """A ledger the process could not open: copies go on, and jobs get the reason, not silence."""
    log: list[Any] = []
    out_r, out_w = os.pipe()
    try:
        reads: list[list[int | bytes]] = [[4, pipe.job_line(3, jobs.reconcile_journal).rstrip(b"\n")]]
        follow(_Input(reads), _Follower(log), None, Answers(out_w), None)  # type: ignore[arg-type]
        (job_id, ok, exc), = [pipe.read_answer(line) for line in _read_lines(out_r)]
    finally:
        os.close(out_r)
        os.close(out_w)
    assert log == [("advance", 4)]
    assert (job_id, ok) == (3, False) and isinstance(exc, LedgerUnavailable) and "could not be opened" in str(exc)
