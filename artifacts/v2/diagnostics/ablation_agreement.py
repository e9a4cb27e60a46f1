"""Each head of the finished seed-0 two-head ablation students against all three v2 teachers (Pearson r of
logit margins), and S over the two teachers that taught them. Run from the repository root:
python artifacts/v2/diagnostics/ablation_agreement.py [artifacts/v2]"""
import sys
from pathlib import Path
from cerberus_core.results import analysis as an
from cerberus_core.results.scores import ScoreTable
V2 = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts/v2")
TEACHERS = ["minilm-l3", "minilm-l6", "mpnet-base"]
for run in sorted(V2.glob("ablation/cerberus-*+*/seed0")):
    if not (run / "metrics.json").exists():
        continue
    pair = run.parent.name.removeprefix("cerberus-").split("+")
    for split in ("dev", "test"):
        table = ScoreTable.load(run / "scores" / f"{split}.tsv")
        names, heads = an.score_matrix(table)
        _, teachers = an.score_matrix({t: ScoreTable.load(V2 / "teacher_scores" / t / f"{split}.tsv") for t in TEACHERS}, reference=table)
        r = an.agreement_matrix(heads, teachers, table.qids)
        for i, h in enumerate(names):
            print(f"{run.parent.name:30} {split:4} {h} (taught by {pair[i]:10}) r with " + ", ".join(f"{u} {r[i, j]:.3f}" for j, u in enumerate(TEACHERS)))
        own = [TEACHERS.index(t) for t in pair]
        d = an.head_diversity(table.qids, table.cand_idx, heads, teachers[:, own])
        print(f"{run.parent.name:30} {split:4} S {d['specialization']:.4f}, head-head r {d['head_head_r']:.4f}, teachers' r {d.get('teacher_teacher_r', float('nan')):.4f}")
