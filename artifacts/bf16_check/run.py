"""fp32 against bf16 autocast training at equal seeds: the check that decides whether bf16 is the
default precision of training on CPUs that have it (`training.preflight.resolved_precision`).

The recipe is the v2 gold student (B5 1H1 on MiniLM-L6, WikiQA, 2 epochs, dev MAP at every half
epoch, length-grouped batches, batch 32, lr 5e-5), at seeds 0, 1 and 2; the two precisions of one
seed see the same batches from the same starting weights. Every run keeps the checkpoint with the
best fp32 dev MAP. A bf16 run also scores dev under bf16 autocast at each evaluation
(`trace-autocast/`): what bf16 runs chose their checkpoint on before dev was scored in fp32, so the
comparison also reports the step that rule would have kept. Runs resume where they stopped.

    nice -n 19 env OMP_NUM_THREADS=1 python artifacts/bf16_check/run.py train no 0 1 2
    nice -n 19 env OMP_NUM_THREADS=1 python artifacts/bf16_check/run.py train bf16 0 1 2
    python artifacts/bf16_check/run.py compare    # writes comparison.json and comparison.md

Run from the repository root, with the WikiQA data found as for any run ($CERBERUS_DATA).

The rule, fixed before any run finished: bf16 trains to equal dev MAP when (1) the mean over seeds
of the paired dev MAP difference (bf16 - fp32) is within +-0.005, (2) no seed's difference is
larger than 0.013 (the seed-to-seed standard deviation of this recipe's fp32 dev MAP, v2 seeds
0-4) and (3) a paired permutation test over dev questions (each question's AP averaged over the
seeds) does not reject equality at 0.05. Test MAP is reported, never used to decide.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
PRECISIONS = {"no": "fp32", "bf16": "bf16"}
RECIPE = dict(name="gold", backbone="minilm-l6", body_layers=5, head_layers=1, num_heads=1, strategy="gold",
              epochs=2, evals_per_epoch=2, batch_size=32, lr=5e-5, max_length=128, length_grouping=50)
AUTOCAST_TRACE = "trace-autocast"


def run_folder(precision: str, seed: int) -> Path:
    return HERE / PRECISIONS[precision] / f"seed{seed}"


def train(precision: str, seeds: list[int]) -> None:
    import torch

    from cerberus_core.results.scores import score_dataset
    from cerberus_core.training import loop
    from cerberus_core.training.config import TrainConfig

    fp32_evaluation = loop._evaluate_dev

    def evaluate(model, dev, cfg, out_dir, step):
        """The loop's fp32 dev evaluation; a bf16 run also keeps its dev scores under autocast."""
        if cfg.mixed_precision == "bf16":
            with torch.autocast(model.device.type, dtype=torch.bfloat16):
                table = score_dataset(model, dev, cfg.eval_batch_size, cfg.max_length,
                                      meta={"step": step, "scored": "bf16 autocast"})
            (Path(out_dir) / AUTOCAST_TRACE).mkdir(exist_ok=True)
            table.save(Path(out_dir) / AUTOCAST_TRACE / f"dev_step{step:06d}.tsv")
        return fp32_evaluation(model, dev, cfg, out_dir, step)

    loop._evaluate_dev = evaluate
    for seed in seeds:
        cfg = TrainConfig(**RECIPE, seed=seed, mixed_precision=precision)
        loop.train(cfg, run_folder(precision, seed))


def _map(table) -> tuple[float, np.ndarray]:
    from cerberus_core.results.metrics import ranking_metrics

    m = ranking_metrics(table.qids, table.labels, table.columns["pooled"], cand_idx=table.cand_idx)
    return m["map"], m["per_question"]["ap"]


def _tied(table) -> int:
    """Candidates whose pooled score equals another candidate's of the same question."""
    qids, scores = np.asarray(table.qids), table.columns["pooled"]
    return sum(int((qids == q).sum()) - len(np.unique(scores[qids == q])) for q in np.unique(qids))


def compare() -> dict:
    from scipy import stats

    from cerberus_core.results import artifacts
    from cerberus_core.results.metrics import paired_test
    from cerberus_core.results.scores import ScoreTable

    seeds, dev_ap = [], {"fp32": [], "bf16": []}
    rows = []
    for seed in SEEDS:
        runs = {name: run_folder(p, seed) for p, name in PRECISIONS.items()}
        if not all((r / "metrics.json").is_file() for r in runs.values()):
            continue
        seeds.append(seed)
        row = {"seed": seed}
        for name, run in runs.items():
            metrics = artifacts.read_metrics(run)
            traces = {step: _map(t)[0] for step, t in artifacts.read_traces(run) if step > 0}
            kept = max(traces, key=lambda s: (traces[s], -s))  # the loop's rule: the first best
            dev_map, ap = _map(ScoreTable.load(artifacts.scores_path(run, "dev")))
            assert abs(dev_map - metrics["dev"]["pooled"]["map"]) < 1e-12
            dev_ap[name].append(ap)
            row[name] = {"dev_map": dev_map, "test_map": metrics["test"]["pooled"]["map"], "kept_step": kept,
                         "dev_map_by_step": traces}
        autocast = {int(p.stem.removeprefix("dev_step")): ScoreTable.load(p)
                    for p in sorted((runs["bf16"] / AUTOCAST_TRACE).glob("dev_step*.tsv"))}
        by_autocast = {s: _map(t)[0] for s, t in autocast.items() if s > 0}
        old = max(by_autocast, key=lambda s: (by_autocast[s], -s))
        row["bf16"].update(autocast_dev_map_by_step=by_autocast, autocast_tied_candidates={
            s: _tied(t) for s, t in autocast.items() if s > 0}, autocast_rule_step=old,
            autocast_rule_dev_map=row["bf16"]["dev_map_by_step"][old])
        row["dev_diff"] = row["bf16"]["dev_map"] - row["fp32"]["dev_map"]
        row["test_diff"] = row["bf16"]["test_map"] - row["fp32"]["test_map"]
        rows.append(row)
    if not rows:
        raise SystemExit("no seed has both runs finished")
    diffs = np.array([r["dev_diff"] for r in rows])
    per_question = paired_test(np.mean(dev_ap["bf16"], axis=0), np.mean(dev_ap["fp32"], axis=0))
    seed_t = stats.ttest_rel([r["bf16"]["dev_map"] for r in rows], [r["fp32"]["dev_map"] for r in rows]) \
        if len(rows) > 1 else None
    rule = {"mean_within_0.005": bool(abs(diffs.mean()) <= 0.005),
            "every_seed_within_0.013": bool(np.abs(diffs).max() <= 0.013),
            "per_question_p_at_least_0.05": bool(per_question["p_value"] >= 0.05)}
    return {
        "recipe": {**RECIPE, "seeds": seeds, "dev": "WikiQA dev, clean questions, pooled MAP of the kept checkpoint, fp32"},
        "rows": rows,
        "mean_dev_diff": float(diffs.mean()),
        "mean_test_diff": float(np.mean([r["test_diff"] for r in rows])),
        "per_question_permutation": per_question,
        "seed_paired_t": None if seed_t is None else {"t": float(seed_t.statistic), "p_value": float(seed_t.pvalue)},
        "rule": rule,
        "equal_dev_map": all(rule.values()) and len(rows) == len(SEEDS),
    }


def format_result(result: dict) -> str:
    lines = ["seed  fp32 dev  bf16 dev   diff   fp32 test  bf16 test  kept step fp32/bf16  "
             "bf16 kept by autocast dev (its fp32 dev MAP)"]
    for r in result["rows"]:
        f, b = r["fp32"], r["bf16"]
        lines.append(f"{r['seed']:4d}  {f['dev_map']:.4f}    {b['dev_map']:.4f}  {r['dev_diff']:+.4f}   "
                     f"{f['test_map']:.4f}     {b['test_map']:.4f}     {f['kept_step']:4d}/{b['kept_step']:<4d}"
                     f"          step {b['autocast_rule_step']} ({b['autocast_rule_dev_map']:.4f})")
    pq, t = result["per_question_permutation"], result["seed_paired_t"]
    lines.append(f"mean dev diff {result['mean_dev_diff']:+.4f}; per-question permutation over dev (AP averaged "
                 f"over seeds) diff {pq['diff']:+.4f}, p {pq['p_value']:.3f}"
                 + (f"; paired t over seeds p {t['p_value']:.3f}" if t else "")
                 + f"; mean test diff {result['mean_test_diff']:+.4f}")
    lines.append(f"rule: {result['rule']} -> equal dev MAP: {result['equal_dev_map']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"] and len(sys.argv) > 3 and sys.argv[2] in PRECISIONS:
        train(sys.argv[2], [int(s) for s in sys.argv[3:]])
    elif sys.argv[1:] == ["compare"]:
        result = compare()
        (HERE / "comparison.json").write_text(json.dumps(result, indent=1) + "\n")
        table = format_result(result)
        (HERE / "comparison.md").write_text(
            "# bf16 autocast against fp32 training, paired by seed\n\n"
            "Written by `python artifacts/bf16_check/run.py compare` (the recipe, the rule and how to rerun: "
            "run.py). Dev MAP of the kept checkpoint, scored in fp32; the last column is the step bf16 runs "
            "kept before dev was scored in fp32, and that step's fp32 dev MAP.\n\n```\n" + table + "\n```\n")
        print(table)
    else:
        raise SystemExit(__doc__)
