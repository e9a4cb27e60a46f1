"""The longer-KD probe (docs/results.md, "Longer KD moves the heads apart"): the v2 CERBERUS
config with 6 epochs instead of 2 (`probe/kd-6epochs/seed<s>`, config in each run folder, trained
with `distill --config`), against the v2 CERBERUS of the same seeds. Prints dev MAP, dev S and
head-head r at every evaluation of both (from their traces), then the test comparisons, paired per
question over the shared seeds as `claims` pairs them: a Holm family of two of its own (exploratory).
Run from the repository root: python artifacts/v2/probe/longer_kd.py [artifacts/v2]"""
import sys
from pathlib import Path

from cerberus_core.results import analysis as an
from cerberus_core.results import artifacts
from cerberus_core.reporting import claims
from cerberus_core.results.metrics import ranking_metrics
from cerberus_core.results.scores import ScoreTable

V2 = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts/v2")
TEACHERS = ["minilm-l3", "minilm-l6", "mpnet-base"]
systems = claims.find_systems(V2)["wikiqa"]
longer, main = systems["kd-6epochs"], systems["cerberus"]
dev_teachers = [ScoreTable.load(V2 / "teacher_scores" / t / "dev.tsv") for t in TEACHERS]

for seed in sorted(set(longer.runs) & set(main.runs)):
    for name, run in (("6 epochs", longer.runs[seed]), ("2 epochs", main.runs[seed])):
        kept = artifacts.read_metrics(run)["dev"]["pooled"]["map"]
        rows = []
        for step, table in artifacts.read_traces(run):
            dev_map = ranking_metrics(table.qids, table.labels, table.columns["pooled"], cand_idx=table.cand_idx)["map"]
            d = an.run_head_diversity(table, dev_teachers)
            rows.append(f"{step:5d} {dev_map:.4f}{'*' if abs(dev_map - kept) < 1e-12 else ' '} "
                        f"{d['specialization']:+.4f} {d['head_head_r']:.4f}")
        print(f"seed {seed}, {name} (step, dev MAP (* kept), dev S, dev head-head r):\n  " + "\n  ".join(rows))

teachers = [ScoreTable.load(V2 / "teacher_scores" / t / "test.tsv") for t in TEACHERS]
m = claims.compare_map(longer, main)
s = claims.compare_specialization(longer, main, teachers)
p_map, p_s = claims.holm([m["p"], s["p"]])
print(f"\ntest MAP: 6 epochs {m['map_a']['mean']:.4f} ± {m['map_a']['sd']:.4f}, 2 epochs {m['map_b']['mean']:.4f} ± "
      f"{m['map_b']['sd']:.4f} ({m['n_seeds']} seeds); difference {m['delta_map']:+.4f} "
      f"[{m['ci95'][0]:+.4f}, {m['ci95'][1]:+.4f}], p (Holm of 2) {claims.format_p(p_map, m['p'], claims.p_floor('map'))}")
print(f"test S: 6 epochs {s['specialization_a']['mean']:.4f} ± {s['specialization_a']['sd']:.4f}, 2 epochs "
      f"{s['specialization_b']['mean']:.4f} ± {s['specialization_b']['sd']:.4f}; difference {s['delta_specialization']:+.4f} "
      f"[{s['ci95'][0]:+.4f}, {s['ci95'][1]:+.4f}], p (Holm of 2) {claims.format_p(p_s, s['p'], claims.p_floor('specialization'))}; "
      f"own teacher closest for {s['own_teacher_closest']:.0%} of the 6-epoch heads")
