"""`venue`: the command line for operators (run, admin, journal, eod, clearing)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from venue.clearing.operator import add_parsers as add_clearing_parsers
from venue.config import ConfigError, load_config
from venue.journal_tool import add_parser as add_journal_parser


def _run(args: argparse.Namespace) -> int:
    from venue.app import run

    return run(load_config(args.config))


def _admin(args: argparse.Namespace) -> int:
    """Send one operator command to the running venue (venue/admin.py): 0 done, 1 refused."""
    from venue.admin import request

    ok, text = request(load_config(args.config).var_path(), args.name, args.args, args.timeout)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="venue", description="FIX 4.4 crypto-derivatives venue")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the venue (default: the demo config)")
    r.add_argument("--config", default=None, help="venue config YAML (default: config/demo.yaml)")
    r.set_defaults(func=_run)
    a = sub.add_parser("admin", help="operator commands to the running venue: `venue admin help` lists them")
    a.add_argument("--config", default=None, help="the running venue's config YAML (default: config/demo.yaml)")
    a.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer (default 60)")
    a.add_argument("name", help="kill, release, halt, resume, index, mark, collateral, limit, limits, risk, status, help, ...")
    a.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    a.set_defaults(func=_admin)
    add_journal_parser(sub)
    add_clearing_parsers(sub)
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
