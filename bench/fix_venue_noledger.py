"""A diagnostic for bench/fix_e2e.py --breakdown: the venue exactly as `venue run` starts
it, except that the clearing ledger (DuckDB) is not started, so its share of the venue's
CPU shows up as the difference. Never a way to run a venue: trades would go unrecorded.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from venue import app
from venue.config import load_config


async def _no_clearing(self: app.Venue) -> None:
    """Stands in for Venue._start_clearing."""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app.Venue._start_clearing = _no_clearing  # type: ignore[method-assign]
    return app.run(load_config(a.config))


if __name__ == "__main__":
    raise SystemExit(main())
