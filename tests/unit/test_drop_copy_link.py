"""drop_copy/link.py: the venue tells the drop-copy process the last published seq at most
once per TELL_INTERVAL_S, and always tells the latest one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

from drop_copy.link import TELL_INTERVAL_S, DropCopyLink


def lines(fd: int) -> list[int]:
    try:
        return [int(x) for x in os.read(fd, 65536).split()]
    except BlockingIOError:
        return []


def test_batches_published_close_together_share_one_line_and_the_last_seq_is_told() -> None:
    async def main() -> tuple[list[int], list[int]]:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        link = DropCopyLink(Path("unused.yaml"))
        link._fd = w
        try:
            for seq in range(1, 51):  # fifty batches within well under the interval
                link.on_events([SimpleNamespace(seq=seq)])  # type: ignore[list-item]
            at_once = lines(r)
            await asyncio.sleep(TELL_INTERVAL_S * 5)
            return at_once, lines(r)
        finally:
            os.close(r)
            os.close(w)

    at_once, later = asyncio.run(main())
    assert at_once == [1]  # the first batch is told at once
    assert later == [50]  # the rest in one line, once the interval has passed
