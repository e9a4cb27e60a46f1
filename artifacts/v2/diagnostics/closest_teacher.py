"""For every seed of CERBERUS, of the body/head-split ablations and of the probes with seeds: which
teacher each head is closest to (row: `own_teacher_is_closest`), and which head each teacher is
closest to (column: `own_head_is_closest`); Pearson r of test logit margins, head i paired with
teacher i (its teacher, except in the replicated control, where MPNet-base teaches every head).
Where every teacher's own head is closest to it at every seed, the chance of that when head labels
are shuffled (`relabeling_p`). Run from the repository root:
python artifacts/v2/diagnostics/closest_teacher.py [artifacts/v2]"""
import sys
from pathlib import Path

from cerberus_core.results import analysis as an
from cerberus_core.results.scores import ScoreTable

V2 = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts/v2")
TEACHERS = ["minilm-l3", "minilm-l6", "mpnet-base"]
teachers = {t: ScoreTable.load(V2 / "teacher_scores" / t / "test.tsv") for t in TEACHERS}
groups = [V2 / "students" / "cerberus", *sorted(V2.glob("ablation/cerberus-B*H*")), *sorted(run.parent for run in V2.glob("probe/*/seed0")),
          V2 / "students" / "replicated-mpnet-base"]
for group in groups:
    matrices = []
    for run in sorted(group.glob("seed*")):
        if not (run / "scores" / "test.tsv").exists():
            continue
        table = ScoreTable.load(run / "scores" / "test.tsv")
        names, heads = an.score_matrix(table)
        _, tmat = an.score_matrix(teachers, reference=table)
        r = an.agreement_matrix(heads, tmat, table.qids)
        matrices.append(r)
        row = [TEACHERS[i] for i in r.argmax(axis=1)]
        print(f"{group.name:22} {run.name}: closest teacher by head " + ", ".join(
            f"{h} ({t}'s) -> {c}" for h, t, c in zip(names, TEACHERS, row))
            + f"; own teacher closest {sum(an.own_teacher_is_closest(r))}/3, own head closest {sum(an.own_head_is_closest(r))}/3")
    if matrices:
        hits = sum(all(an.own_head_is_closest(m)) for m in matrices)
        chance = f"; chance with head labels shuffled: {an.relabeling_p(matrices):.2g}" if hits == len(matrices) else ""
        print(f"{group.name:22} every teacher's own head closest to it at {hits}/{len(matrices)} seeds{chance}\n")
