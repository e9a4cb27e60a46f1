"""Prints the init probe's numbers (docs/results.md, "why the heads do not differ"): each single-teacher
student's Pearson r (logit margins, head0) with every v2 teacher, and the students read together as heads,
for the probe (MiniLM-L3 body) and for seed 0 of the v2 students (MiniLM-L6 body).
Run from the repository root: python artifacts/v2/probe/agreement.py"""
from pathlib import Path

from cerberus_core.results import analysis as an
from cerberus_core.results.scores import ScoreTable

V2 = Path("artifacts/v2")
TEACHERS = ["minilm-l3", "minilm-l6", "mpnet-base"]
BODIES = {"MiniLM-L3 body (probe)": "probe/init-l3-single-{t}", "MiniLM-L6 body (v2 seed 0)": "students/single-{t}/seed0"}

for body, pattern in BODIES.items():
    for split in ("dev", "test"):
        students = {t: ScoreTable.load(V2 / pattern.format(t=t) / "scores" / f"{split}.tsv") for t in TEACHERS}
        reference = students[TEACHERS[0]]
        _, heads = an.score_matrix(students, "head0", reference=reference)
        _, teachers = an.score_matrix({t: ScoreTable.load(V2 / "teacher_scores" / t / f"{split}.tsv") for t in TEACHERS},
                                      reference=reference)
        r = an.agreement_matrix(heads, teachers, reference.qids)
        for i, t in enumerate(TEACHERS):
            print(f"{body:27} {split:4} taught by {t:10} r with " + ", ".join(f"{u} {r[i, j]:.3f}" for j, u in enumerate(TEACHERS)))
        d = an.head_diversity(reference.qids, reference.cand_idx, heads, teachers)
        print(f"{body:27} {split:4} together as heads: S {d['specialization']:.4f}, head-head r {d['head_head_r']:.4f}")
