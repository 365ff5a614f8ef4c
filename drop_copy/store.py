"""Reading back the last copy a member's quickfix FileStore holds: where its stream resumes
after a venue restart.

quickfix's FileStore keeps, per session, `<BeginString>-<SenderCompID>-<TargetCompID>`
with `.body` (every sent message, concatenated) and `.header` (space-separated
`seqnum,offset,size` entries indexing `.body`). The store is written before a message
goes on the wire, so what it holds is exactly what the member has or will get by resend.
The newest stored ExecutionReport copy (797=Y) gives the resume point: its JournalSeqNum
(7910) and ExecID (17). Read-only, and only before the acceptor opens the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

_SOH = "\x01"


class Watermark(NamedTuple):
    """The last copy stored: the command's journal seq and the copy's ExecID."""

    seq: int
    exec_id: int


def store_prefix(store_dir: Path, begin: str, sender: str, target: str) -> Path:
    return store_dir / f"{begin}-{sender}-{target}"


def last_copy(store_dir: Path, begin: str, sender: str, target: str) -> Watermark | None:
    """The newest ExecutionReport copy in the session's store, or None if it holds none."""
    prefix = store_prefix(store_dir, begin, sender, target)
    header, body = prefix.with_name(prefix.name + ".header"), prefix.with_name(prefix.name + ".body")
    if not header.is_file() or not body.is_file():
        return None
    entries = header.read_text(encoding="ascii").split()
    with open(body, "rb") as f:
        for entry in reversed(entries):
            try:
                _, offset, size = (int(x) for x in entry.split(","))
            except ValueError:
                continue  # a torn last entry: the message it names may be torn too
            f.seek(offset)
            w = _copy_watermark(f.read(size).decode("latin-1"))
            if w is not None:
                return w
    return None


def _copy_watermark(message: str) -> Watermark | None:
    fields = dict(p.split("=", 1) for p in message.split(_SOH) if "=" in p)
    if fields.get("35") != "8" or fields.get("797") != "Y" or "7910" not in fields or "17" not in fields:
        return None
    try:
        return Watermark(int(fields["7910"]), int(fields["17"]))
    except ValueError:
        return None
