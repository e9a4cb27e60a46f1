"""For every seed of CERBERUS and of the body/head-split ablations, which teacher each head is closest to
(Pearson r of test logit margins; head i is taught by teacher i). Run from the repository root:
python artifacts/v2/diagnostics/closest_teacher.py [artifacts/v2]"""
import sys
from pathlib import Path

from cerberus_core import analysis as an
from cerberus_core.scores import ScoreTable

V2 = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts/v2")
TEACHERS = ["minilm-l3", "minilm-l6", "mpnet-base"]
teachers = {t: ScoreTable.load(V2 / "teacher_scores" / t / "test.tsv") for t in TEACHERS}
runs = sorted(V2.glob("students/cerberus/seed*")) + sorted(V2.glob("ablation/cerberus-B*H*/seed*"))
for run in runs:
    if not (run / "scores" / "test.tsv").exists():
        continue
    table = ScoreTable.load(run / "scores" / "test.tsv")
    names, heads = an.score_matrix(table)
    _, tmat = an.score_matrix(teachers, reference=table)
    r = an.agreement_matrix(heads, tmat, table.qids)
    closest = [TEACHERS[row.argmax()] for row in r]
    own = [c == t for c, t in zip(closest, TEACHERS)]
    print(f"{run.parent.name:14} {run.name}: closest teacher by head " + ", ".join(
        f"{h} (taught by {t}) -> {c}" for h, t, c in zip(names, TEACHERS, closest)) + f"; own closest {sum(own)}/3")
