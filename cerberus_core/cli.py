"""`python -m cerberus_core COMMAND` / `cerberus COMMAND`.

Every command is a small function over the library; bad input becomes one line on
stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .errors import InputError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register `run(args)` as a subcommand whose arguments `configure` declares."""
    def register(run: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = (help, configure, run)
        return run
    return register


def _prepare_models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="embedded models to prepare (default: all three)")
    p.add_argument("--cache-dir", help="where models are unpacked (default: $CERBERUS_CACHE or ~/.cache/cerberus)")


@command("prepare-models", "unpack the embedded pretrained encoders into the model cache", _prepare_models_args)
def _prepare_models(args: argparse.Namespace) -> None:
    from .zoo import EMBEDDED_MODELS, prepare_models

    unknown = [n for n in args.names if n not in EMBEDDED_MODELS]
    if unknown:
        raise InputError(None, f"unknown embedded model {unknown[0]!r}; choose from {sorted(EMBEDDED_MODELS)}")
    for name, path in prepare_models(args.names or None, cache_dir=args.cache_dir).items():
        print(f"{name}\t{path}")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a registered dataset (wikiqa, wikiqa-tsv, trecqa) or a file/folder path")
    p.add_argument("--split", choices=["train", "dev", "test"], help="split of a registered dataset (default: all)")
    p.add_argument("--data-root", help="folder holding the datasets (default: $CERBERUS_DATA, ./data, ../shared/data)")


@command("inspect-data", "print questions / pairs / positives and the counts under each question filter", _data_args)
def _inspect_data(args: argparse.Namespace) -> None:
    from .data import inspect

    print(inspect(args.data, split=args.split, data_root=args.data_root))


def _download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", default="data", help="data root to download into (default: ./data)")
    p.add_argument("--url", help="override the official WikiQA archive address")


@command("download", "fetch the official WikiQA corpus (needs internet)", _download_args)
def _download(args: argparse.Namespace) -> None:
    from .data import download_wikiqa

    kwargs = {"url": args.url} if args.url else {}
    print(download_wikiqa(args.dest, **kwargs))


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2), like every other error."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="cerberus", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_OneLineParser)
    for name, (help, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (InputError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
