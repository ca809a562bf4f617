"""Entry point of the ``atnas`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from atnas.errors import AtnasError
from atnas_cli import client, datasets, demo, gc, keys, local, models, serve, wait
from atnas_cli.output import CliError, fail
from service.invalid import invalid_message


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="atnas",
        description="Across-task neural architecture search: meta-train a supernet once, then "
        "search and adapt a small model for each few-shot task in seconds.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.add_commands(sub)
    serve.add_commands(sub)
    demo.add_commands(sub)
    client.add_commands(sub)
    models.add_commands(sub)
    wait.add_commands(sub)
    keys.add_commands(sub)
    gc.add_commands(sub)
    datasets.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except (AtnasError, CliError) as exc:
        fail(str(exc))
    except ValidationError as exc:  # an ATNAS_* variable (or a flag) that Settings refuses
        fail(invalid_message(exc))
    except KeyboardInterrupt:
        fail("interrupted", status=130)


if __name__ == "__main__":
    sys.exit(main())
