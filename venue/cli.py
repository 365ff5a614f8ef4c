"""`venue`: the command line for operators (run, admin, journal, eod, clearing)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from venue.config import ConfigError, load_config


def _run(args: argparse.Namespace) -> int:
    from venue.app import run

    return run(load_config(args.config))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="venue", description="FIX 4.4 crypto-derivatives venue")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the venue (default: the demo config)")
    r.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
    r.set_defaults(func=_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"venue: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
