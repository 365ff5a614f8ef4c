"""The pipes between the venue and its drop-copy process: newline-ended lines.

    venue -> process (its stdin)
        b"1234\\n"                 the last sequence number the venue has published
        b"J 7 <base64 pickle>\\n"  clearing-ledger job 7 (venue/clearing/jobs.py), to run once
                                  the seqs told before it are applied
    process -> venue (its stdout)
        b"ready\\n"                the process listens (once)
        b"R 7 <base64 pickle>\\n"  job 7's answer: (True, value) or (False, the exception)

Pickle is safe here: both ends are this code base on one machine, and the pipes belong to
the two processes alone. A job line must fit in PIPE_BUF, so that the venue's
non-blocking write of it is all or nothing and no line telling a seq lands inside it.
"""

from __future__ import annotations

import base64
import pickle
import select
from typing import Any

READY = b"ready"


class Lines:
    """Whole lines out of a byte stream read in chunks (a line may span two reads)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        *lines, self._rest = (self._rest + data).split(b"\n")
        return lines


def job_line(job_id: int, job: object) -> bytes:
    line = b"J %d %s\n" % (job_id, base64.b64encode(pickle.dumps(job)))
    if len(line) > select.PIPE_BUF:
        raise ValueError(f"a ledger job must fit in one pipe write ({select.PIPE_BUF} bytes); this one takes {len(line)}")
    return line


def read_job(line: bytes) -> tuple[int, Any]:
    kind, job_id, body = line.split(b" ", 2)
    if kind != b"J":
        raise ValueError(f"not a job line: {line[:40]!r}")
    return int(job_id), pickle.loads(base64.b64decode(body))


def answer_line(job_id: int, ok: bool, value: object) -> bytes:
    try:
        body = pickle.dumps((ok, value))
    except Exception as exc:  # noqa: BLE001 - whatever a job returned or raised, the venue gets an answer
        body = pickle.dumps((False, RuntimeError(f"the answer did not pickle ({exc}): {value!r}")))
    return b"R %d %s\n" % (job_id, base64.b64encode(body))


def read_answer(line: bytes) -> tuple[int, bool, Any]:
    _, job_id, body = line.split(b" ", 2)
    try:
        ok, value = pickle.loads(base64.b64decode(body))
    except Exception as exc:  # noqa: BLE001 - e.g. an exception class that does not unpickle
        return int(job_id), False, RuntimeError(f"unreadable answer from the drop-copy process: {exc}")
    return int(job_id), ok, value
