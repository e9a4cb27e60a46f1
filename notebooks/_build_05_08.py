"""Writes notebooks 05-08 (without outputs) from the cell sources below.

    python notebooks/_build_05_08.py

Edit the cells here and regenerate, or edit the notebooks and delete this script.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
PRESET_LINE = 'PRESET = "quick"  # quick: small chain trained in minutes; full: committed artifacts/full'

SETUP_NOTE = """\
**How this setup differs from the paper.** The teachers are small sentence-transformers
cross-encoders (MiniLM-L3, MiniLM-L6, MPNet-base) that this project fine-tunes on WikiQA, not
large ASNQ-trained (TANDA) models; the student is MiniLM-L6 B5 kH1 rather than ELECTRA-Base
B11 3H1; every number comes from one seed. With `PRESET = "quick"` the notebook reads the tiny
`smoke` chain instead: two teachers that are the *same* MiniLM-L3 trained with two learning rates,
8 training questions and 6 test questions. Quick numbers check the plumbing; they are not evidence
for or against the paper. Run with `PRESET = "full"` for the WikiQA results."""


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, parameters: bool = False):
    cell = new_code_cell(text.strip("\n"))
    if parameters:
        cell.metadata["tags"] = ["parameters"]
    return cell


SETUP = """\
%matplotlib inline
import sys
from pathlib import Path
from IPython.display import display
import pandas as pd
from cerberus_core import analysis as an, figures, plotting as pl
from cerberus_core.pipeline import notebook_artifacts

print("python:", sys.executable)
ROOT = notebook_artifacts(PRESET, progress=False)  # load-or-train: instant once the runs exist
art = figures.Artifacts(ROOT)
print("artifacts:", ROOT)
"""

# --------------------------------------------------------------------------- 05
NB05 = [
    md(f"""
# 05 · Head diversity: do the heads of CERBERUS stay different?

Claim 5 of the paper: the k heads of CERBERUS, each distilled from its own teacher, stay *diverse*.
In this implementation every head starts as a copy of the same backbone layers and the same
classifier (`head_init="copy"`), so at step 0 the heads are identical and any diversity later on
comes from training. The control is the **replicated** student: the same architecture with k
heads, but every head is taught by the same (best-on-dev) teacher, so only training noise can
pull its heads apart.

We measure diversity three ways, on the heads' logit margins:
- pairwise **correlation** of the heads' scores over all (question, candidate) pairs: Pearson,
  Spearman, Kendall;
- **top-1 disagreement**: the share of questions whose top-ranked candidate differs between two heads;
- **ambiguity** (Krogh & Vedelsby): the variance of the heads' probabilities around their mean,
  i.e. what averaging the heads can gain over an average head.

The teachers' own ambiguity is the natural yardstick: heads that copy their teachers perfectly
would be exactly as diverse as the teachers are.

{SETUP_NOTE}
"""),
    code(f"""
{PRESET_LINE}
SEED = 0
CORRELATIONS = ("pearson", "spearman", "kendall")  # the keys of analysis.CORRELATIONS to report
""", parameters=True),
    code(SETUP),
    md("""
## 1. Head correlation and top-1 disagreement on the test split

One row per pair of heads. A correlation of 1 and a disagreement of 0 mean the two heads are the
same ranker.
"""),
    code("""
students = {"cerberus": "cerberus", "replicated": art.replicated()}  # role -> run folder
tables = {role: art.table(art.run("students", name)) for role, name in students.items()}
rows = []
for role, table in tables.items():
    heads, margins = an.score_matrix(table)
    corr = {m: an.pairwise_correlation(margins, m) for m in CORRELATIONS}
    top1 = an.top1_disagreement(table.qids, margins, table.cand_idx)
    for i in range(len(heads)):
        for j in range(i + 1, len(heads)):
            rows.append({"student": students[role], "pair": f"{heads[i]}-{heads[j]}",
                         **{m: corr[m][i, j] for m in CORRELATIONS}, "top-1 disagreement": top1[i, j]})
print(f"test split: {len(set(tables['cerberus'].qids))} questions, {len(tables['cerberus'].qids)} pairs")
pd.DataFrame(rows).round(3)
"""),
    code("""
for build in (figures.head_correlation_cerberus, figures.head_correlation_replicated):
    fig, data, params = build(art)
    display(fig)
"""),
    md("""
## 2. Diversity over training steps

Every run keeps the heads' dev scores at each evaluation (`trace/dev_step*.tsv`, step 0 included).
With copy initialisation the heads are identical at step 0, so the ambiguity and the top-1
disagreement must be exactly 0 there (and the correlation exactly 1); the cell checks it. The
dashed line is the teachers' own diversity on the same dev questions.
"""),
    code("""
fig, data, params = figures.diversity(art)
for name, steps in data["runs"].items():
    start = steps[0]
    print(f"{name:>24}: step {start['step']}: ambiguity = {start['ambiguity']!r}, "
          f"top-1 disagreement = {start['top1_disagreement']!r}, mean Pearson = {start['mean_pearson']:.6f}")
    assert start["step"] == 0 and start["ambiguity"] == 0.0 and start["top1_disagreement"] == 0.0
print(f"{'teachers (dev)':>24}: " + ", ".join(f"{k} = {v:.4f}" for k, v in data["teacher_level"].items()))
display(fig)
pd.DataFrame([{"run": n, **r} for n, steps in data["runs"].items() for r in steps]).round(4)
"""),
    md("""
At the end of training, how far have the heads moved apart, relative to each other and to the
teachers? (Computed from the last evaluation of each run; a ratio of 1 would mean the heads are as
diverse as the teachers.)
"""),
    code("""
teacher_ambiguity = data["teacher_level"]["ambiguity"]
final = {name: steps[-1] for name, steps in data["runs"].items()}
for name, last in final.items():
    share = last["ambiguity"] / teacher_ambiguity if teacher_ambiguity > 0 else float("nan")
    print(f"{name}: step {last['step']}: ambiguity {last['ambiguity']:.2e} = {share:.1%} of the teachers' "
          f"({teacher_ambiguity:.2e}); top-1 disagreement {last['top1_disagreement']:.3f}")
cerberus_amb, control_amb = final["cerberus"]["ambiguity"], final[students["replicated"]]["ambiguity"]
relation = "more" if cerberus_amb > control_amb else "less" if cerberus_amb < control_amb else "equally"
print(f"=> CERBERUS's heads end {relation} diverse than the replicated control's "
      f"(ambiguity {cerberus_amb:.2e} vs {control_amb:.2e}; dev, one seed, no interval).")
"""),
    md("""
## 3. Explore

Pick two heads, a measure and a split. With the teachers' tables the panel also shows how the
teachers relate to each other under the same measure.
"""),
    code("""
from cerberus_core.widgets import build_head_correlation_panel

cerberus_run = art.run("students", "cerberus")
panel = build_head_correlation_panel(
    {split: art.table(cerberus_run, split) for split in ("dev", "test")},
    teacher_tables={split: art.teacher_tables(split) for split in ("dev", "test")},
)
panel
"""),
]

# --------------------------------------------------------------------------- 06
NB06 = [
    md(f"""
# 06 · Head–teacher agreement: does head i follow teacher i?

CERBERUS trains head i on teacher i only (plus the gold labels); the body receives every head's
gradient. If that division of labour works, each head should agree most with *its own* teacher
(claim 5 of the paper, second half). We score agreement between every head and every teacher on
the test split as the correlation of their logit margins (Pearson, Spearman, Kendall) and as
top-1 agreement (share of questions where both put the same candidate first). A tie for the
closest teacher counts as closest (`analysis.own_teacher_is_closest`); on a handful of questions
top-1 agreement ties often.

The **replicated** student is the control: all its heads learn from one teacher, so every head
should be closest to that teacher and the rows of its matrix should look alike.

{SETUP_NOTE}
"""),
    code(f"""
{PRESET_LINE}
SEED = 0
MEASURES = ("pearson", "spearman", "kendall", "top1")  # analysis.agreement_matrix methods
""", parameters=True),
    code(SETUP),
    md("""
## 1. CERBERUS: head × teacher agreement (test)

The boxed cell in each row is the teacher that head is closest to; for CERBERUS the boxes should sit
on the diagonal.
"""),
    code("""
fig, data, params = figures.agreement_cerberus(art)
display(fig)
print("Pearson r, rows = heads (<- the teacher each was taught by), columns = teachers:")
print(pd.DataFrame(data["agreement"], index=data["heads"], columns=data["teachers"]).round(3).to_string())
"""),
    md("""
The same question under every measure, printed plainly: for each head, its closest teacher and
whether that is its own teacher.
"""),
    code("""
run = art.run("students", "cerberus")
table = art.table(run)
heads, head_margins = an.score_matrix(table)
own = art.teacher_names(run)  # head i was taught by own[i]; teacher columns in the same order
teacher_tables = art.teacher_tables()
teachers, teacher_margins = an.score_matrix({t: teacher_tables[t] for t in own}, reference=table)
rows = []
for measure in MEASURES:
    matrix = an.agreement_matrix(head_margins, teacher_margins, table.qids, measure, table.cand_idx)
    for head, closest, values in zip(heads, an.own_teacher_is_closest(matrix), matrix):
        rows.append({"measure": measure, "head": head, "taught by": own[int(head[4:])],
                     "closest teacher": " = ".join(t for t, v in zip(teachers, values) if v == values.max()),
                     "own is closest": closest,
                     **{f"vs {t}": v for t, v in zip(teachers, values)}})
agreement = pd.DataFrame(rows)
print(agreement.round(3).to_string(index=False))
hits = agreement.groupby("measure", sort=False)["own is closest"].agg(["sum", "count"])
for measure, (hit, total) in hits.iterrows():
    print(f"{measure:>9}: {hit}/{total} heads agree most with their own teacher")
"""),
    md("""
## 2. Control: the replicated student

Every head learned from the same teacher, so the expected answer is "that teacher" for every head.
"""),
    code("""
fig, data, params = figures.agreement_replicated(art)
display(fig)
replicated = art.run("students", art.replicated())
taught_by = art.teacher_names(replicated)[replicated["config"]["teacher_index"]]
matrix = pd.DataFrame(data["agreement"], index=data["heads"], columns=data["teachers"])
print(matrix.round(3).to_string())
for head, values in matrix.iterrows():
    closest = values.idxmax()
    print(f"{head}: closest teacher {closest} ({'the' if closest == taught_by else 'not the'} teacher it was taught by)")
"""),
    md("""
## 3. Explore one question

Pick a test question: every candidate with its label, every teacher's score and every head's score
(and the pooled score), so you can see where the heads split the way their teachers do.
"""),
    code("""
from cerberus_core.training import TrainConfig, load_splits
from cerberus_core.widgets import build_question_explorer

cfg = TrainConfig.from_file(ROOT / "students" / "cerberus" / "config.json")
test_set = load_splits(cfg)["test"]  # the very questions the tables were scored on
explorer = build_question_explorer(table, {t: teacher_tables[t] for t in own}, test_set)
explorer
"""),
]

# --------------------------------------------------------------------------- 07
NB07 = [
    md(f"""
# 07 · Ablation: how many heads, and where to split body and heads

Two questions from the paper's ablations:

1. **Number of heads** (one teacher per head): k = 1 is single-teacher distillation
   (`students/single-<t>`), k = 2 are CERBERUS runs on pairs of teachers
   (`ablation/cerberus-<t1>+<t2>`), and k = all is the main CERBERUS (`students/cerberus`).
   With only two teachers (the quick preset) k = 2 *is* the main run.
2. **Body/head split** at a fixed total depth: B_b kH_h with more layers in the heads and fewer in
   the shared body (`ablation/cerberus-B<b>H<h>`), against the main split.

Every point carries a 95% bootstrap interval over questions, and every run is compared with the
main CERBERUS by a paired permutation test on the per-question metric. The last section turns the
numbers into verdicts on the paper's claims 1-4 (see `docs/method.md`), computed, not written in
advance.

{SETUP_NOTE}
"""),
    code(f"""
{PRESET_LINE}
SEED = 0
METRICS = ("map", "p@1")  # per-question metrics tested against CERBERUS
ALPHA = 0.05  # significance level of the paired permutation tests
N_RESAMPLES = 10000  # permutations per test
""", parameters=True),
    code(SETUP),
    md("""
## 1. The ablation runs, with 95% intervals (test)
"""),
    code("""
fig, data, params = figures.ablation(art)
display(fig)
ablation_rows = pd.DataFrame(data["rows"])
for m in ("p@1", "map", "mrr"):
    ablation_rows[m] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, (lo, hi) in zip(ablation_rows[m], ablation_rows[f"{m}_ci"])]
print("runs under ablation/:", art.names("ablation"))
ablation_rows[["panel", "x", "name", "p@1", "map", "mrr", "n_questions"]]
"""),
    md("""
## 2. Paired permutation tests against CERBERUS

`diff` is the mean per-question difference *other − CERBERUS* (negative: CERBERUS is better);
the p-value is two-sided. Beside the ablation runs we include every other student, because the
claims below compare CERBERUS with them.
"""),
    code("""
runs = {n: art.run("students", n) for n in art.names("students")}
runs.update({f"ablation/{n}": art.run("ablation", n) for n in art.names("ablation")})
tables = {name: art.table(run) for name, run in runs.items()}
reference = tables["cerberus"]
names, scores = an.score_matrix(tables, reference=reference)
columns = dict(zip(names, scores.T))
tests = {m: an.paired_against(columns, reference.qids, reference.labels, "cerberus", metric=m,
                              n_resamples=N_RESAMPLES, seed=SEED) for m in METRICS}
def taught_by(run):
    # the teachers a run learned from: single/replicated use one of the listed tables, gold none
    names, cfg = art.teacher_names(run), run["config"]
    if cfg["strategy"] == "gold":
        return "gold labels only"
    return names[cfg["teacher_index"]] if cfg["strategy"] in ("single", "replicated") else "+".join(names)

paired = pd.DataFrame([{"run": n, "model": runs[n]["metrics"]["model"], "teachers": taught_by(runs[n]),
                        **{f"{m} {k}": tests[m][n][k] for m in METRICS for k in ("diff", "p_value")}}
                       for n in tests[METRICS[0]]])
print(f"{len(set(reference.qids))} test questions; permutation test, {N_RESAMPLES} resamples, seed {SEED}")
paired.round(4)
"""),
    md("""
## 3. What the numbers say about the paper's claims

Each comparison is classified from its `diff` and p-value on MAP (the first metric): *better* /
*worse* means CERBERUS is better / worse; *significant* means p < ALPHA. A claim counts as
**supported** only if every comparison it rests on is significantly in CERBERUS's favour,
**contradicted** if any is significantly against it, and **not shown** otherwise.
"""),
    code("""
def outcome(test):
    \"\"\"A paired test of other vs CERBERUS (diff = other - CERBERUS) in words.\"\"\"
    side = "tie" if test["diff"] == 0 else "CERBERUS better" if test["diff"] < 0 else "CERBERUS worse"
    return f"{side}, {'significant' if test['p_value'] < ALPHA else 'not significant'} (diff {test['diff']:+.3f}, p = {test['p_value']:.3f})"

def claim_verdict(outcomes):
    if not outcomes:
        return "not testable with these runs"
    if all(o.startswith("CERBERUS better, significant") for o in outcomes):
        return "supported"
    return "contradicted" if any(o.startswith("CERBERUS worse, significant") for o in outcomes) else "not shown"

metric = METRICS[0]
student = lambda pattern: [n for n in tests[metric] if n.startswith(pattern)]  # noqa: E731
claims = {
    "1. beats single-teacher and averaged-ensemble distillation": student("single-") + student("ensemble"),
    "2. k heads beat one head taught by all teachers": student("ensemble"),
    "3. k teachers beat k heads taught by one teacher": student("replicated-"),
}
for claim, others in claims.items():
    outcomes = [outcome(tests[metric][n]) for n in others]
    print(f"Claim {claim}: {claim_verdict(outcomes).upper()} ({metric})")
    for n, o in zip(others, outcomes):
        print(f"    vs {n}: {o}")
"""),
    md("""
Claim 4 (heterogeneous teachers beat homogeneous ones) needs CERBERUS runs on teacher sets that
differ only in whether their architectures differ. Here the architecture of a teacher is its
encoder's `model_type` (MiniLM-L3 and MiniLM-L6 are both `bert`, MPNet is `mpnet`); each k = 2
run on mixed architectures is tested against each k = 2 run on one architecture.
"""),
    code("""
import json
from cerberus_core.zoo import resolve_model

def architecture(teacher):
    backbone = art.run("teachers", teacher)["config"]["backbone"]
    return json.loads((Path(resolve_model(backbone)) / "config.json").read_text())["model_type"]

pairs = [n for n in tables if n.startswith("ablation/") and runs[n]["config"]["num_heads"] == 2
         and runs[n]["config"]["head_layers"] == runs["cerberus"]["config"]["head_layers"]]
kinds = {n: len({architecture(t) for t in art.teacher_names(runs[n])}) > 1 for n in pairs}
homogeneous, mixed = [n for n in pairs if not kinds[n]], [n for n in pairs if kinds[n]]
if not (homogeneous and mixed):
    print(f"Claim 4: NOT TESTABLE with these runs (k=2 runs on one architecture: {homogeneous}, on mixed: {mixed})")
for base in homogeneous:
    vs = an.paired_against({n: columns[n] for n in [base, *mixed]}, reference.qids, reference.labels, base,
                           metric=metric, n_resamples=N_RESAMPLES, seed=SEED)
    for n, t in vs.items():
        side = "mixed better" if t["diff"] > 0 else "mixed worse" if t["diff"] < 0 else "tie"
        print(f"Claim 4, {n} (mixed) vs {base} (one architecture): {side}, "
              f"{'significant' if t['p_value'] < ALPHA else 'not significant'} (diff {t['diff']:+.3f}, p = {t['p_value']:.3f})")
"""),
    md("""
Finally the body/head split, which the paper treats as a design choice rather than a claim: is any
other split significantly different from the main one?
"""),
    code("""
main_model, main_split = runs["cerberus"]["metrics"]["model"], runs["cerberus"]["config"]["head_layers"]
splits = [n for n in tables if n.startswith("ablation/") and runs[n]["config"]["head_layers"] != main_split]
if not splits:
    print("no body/head split ablation run")
for n in splits:
    print(f"{runs[n]['metrics']['model']} vs main {main_model}: {outcome(tests[metric][n])}")
"""),
]

# --------------------------------------------------------------------------- 08
NB08 = [
    md(f"""
# 08 · Speed and size: what does CERBERUS cost?

Claim 6 of the paper: CERBERUS rivals the large models at a fraction of their cost (there, the
large model has 2.7x the parameters and runs 2.5x slower). Here we count parameters and time the
forward pass of the teachers, their ensemble (every teacher scores every pair, probabilities are
averaged), the students and CERBERUS, and put quality against latency with the Pareto front.

A timing means little without its conditions, so each table is printed under a header with the
threads, batch sizes, sequence length, repeats, warm-up, device, CPU, load average and a matmul
peak measured in the same run; models take turns round by round so background load hits them
alike, and ratios (x CERBERUS) are read within one run. Latency = scoring one typical test
question's candidates in one batch (median of the repeats); throughput = pairs/s at each batch
size. Students that share an architecture (all one-head students; CERBERUS and the replicated
control) have the same cost, so one of each architecture is timed and stands for the others.

**In our setup the teachers are not large.** The paper's claim compares a ~125M CERBERUS with
335M-parameter teachers; our teachers are MiniLM-L3/L6 (the student's own family) and
MPNet-base, and in the quick preset teachers and students are all 3-layer MiniLM, so one CERBERUS
can be *larger* than one teacher. The comparison that carries over is CERBERUS vs the teacher
**ensemble**.

{SETUP_NOTE}

With `PRESET = "full"` the numbers come from `ROOT/bench.json` when it exists; otherwise, and
always in quick, they are measured live with the small settings below (quick: well under a
minute). On a busy machine (see the load average in the header) absolute times are inflated and
noisy; the ratios measured in the same rounds are the numbers to read.
"""),
    code(f"""
{PRESET_LINE}
SEED = 0
BENCH_JSON = None  # None: ROOT/bench.json (read only with PRESET = "full"; quick always measures)
THREADS = 1  # intra-op threads; on a shared machine, more threads than free cores makes timings erratic
BATCH_SIZES = (16,)  # throughput batch sizes
REPEATS = 5  # timed rounds (few: a quick look; `python -m cerberus_core bench` for careful numbers)
WARMUP = 1  # untimed rounds first
""", parameters=True),
    code(SETUP + """
import json
from transformers.utils import logging as hf_logging
from cerberus_core import bench
from cerberus_core.pipeline import ensemble_metrics

hf_logging.disable_progress_bar()  # no "Loading weights" bars in the output
"""),
    md("""
## 1. The models

Every teacher, the teacher ensemble, and one student per architecture (CERBERUS first: it is the
reference of the ratios).
"""),
    code("""
teachers = art.names("teachers")
groups = {}  # (backbone, B_b kH_h) -> the students with that architecture
for s in sorted(art.names("students"), key=lambda s: s != "cerberus"):  # CERBERUS's architecture first
    run = art.run("students", s)
    groups.setdefault((run["config"]["backbone"], run["metrics"]["model"]), []).append(s)
labels = {key: "cerberus" if "cerberus" in group else f"{key[1]} student" for key, group in groups.items()}
timed_as = {s: labels[key] for key, group in groups.items() for s in group}  # student -> the row that times it
siblings = {s: group for group in groups.values() for s in group}  # student -> students of its architecture
models = {labels[key]: bench.load_model(str(ROOT / "students" / group[0] / "best")) for key, group in groups.items()}
models.update({t: bench.load_model(str(ROOT / "teachers" / t / "best")) for t in teachers})
models["teacher ensemble"] = [models[t] for t in teachers]
pairs = bench.question_pairs(art.run("students", "cerberus")["config"]["dataset"], "test")
for key, group in groups.items():
    print(f"row {labels[key]!r} ({key[1]} on {key[0]}) stands for: {', '.join(group)}")
"""),
    md("""
## 2. Parameters, latency and throughput
"""),
    code("""
def run_of(spec):
    # bench.json (`python -m cerberus_core bench --out`) names a row by its model spec: .../<run>/best -> <run>
    runs = [Path(s).parent.name if Path(s).name == "best" else Path(s).name for s in spec.split("+")]
    return "teacher ensemble" if len(runs) > 1 and set(runs) == set(teachers) else "+".join(runs)

bench_path = Path(BENCH_JSON) if BENCH_JSON else ROOT / "bench.json"
if PRESET == "full" and bench_path.is_file():
    stored = json.loads(bench_path.read_text())
    rows = [{**r, "name": run_of(r["name"])} for r in stored["rows"]]
    conds = {"source": str(bench_path), **stored["conditions"]}
else:
    max_length = art.run("students", "cerberus")["config"]["max_length"]  # the length the students were trained at
    rows = bench.benchmark(models, pairs, reference="cerberus", batch_sizes=BATCH_SIZES, repeats=REPEATS,
                           warmup=WARMUP, threads=THREADS, max_length=max_length)
    conds = bench.conditions(THREADS, BATCH_SIZES, max_length, REPEATS, WARMUP, len(pairs), rows[0]["peak_gflops"],
                             str(models["cerberus"].device))
print(bench.format_table(rows, conds))
"""),
    md("""
Claim 6 in numbers: each teacher and the teacher ensemble relative to CERBERUS, measured in the same run.
"""),
    code("""
by_name = {r["name"]: r for r in rows}
ref = by_name.get("cerberus")
for name in [*teachers, "teacher ensemble"] if ref else []:
    if name in by_name:
        r = by_name[name]
        print(f"{name:>17}: {r['parameters'] / ref['parameters']:.2f}x the parameters of CERBERUS, "
              f"{r['latency_ms'] / ref['latency_ms']:.2f}x its latency "
              f"({r['latency_ms']:.1f} vs {ref['latency_ms']:.1f} ms per question)")
if ref is None:
    print(f"no row named 'cerberus' in {bench_path}: ratios not computed")
"""),
    md("""
## 3. Quality against latency

Test MAP of every model (the teacher ensemble's from the teachers' cached scores, as the results
table computes it) against its median latency per question. A model is on the Pareto front when no
other model is both at least as fast and at least as accurate.
"""),
    code("""
quality = {t: art.run("teachers", t)["metrics"][figures.SPLIT]["pooled"]["map"] for t in teachers}
quality.update({s: art.run("students", s)["metrics"][figures.SPLIT]["pooled"]["map"] for s in timed_as})
quality["teacher ensemble"] = ensemble_metrics(ROOT, teachers, figures.SPLIT, SEED)["map"]
same_point = {}  # models with the same latency (shared architecture) and MAP: one labelled point
for n, q in quality.items():
    # its own row, else the row timing its architecture (live) or a sibling's (bench.json)
    row = next((by_name[m] for m in [n, timed_as.get(n), *siblings.get(n, ())] if m in by_name), None)
    if row is None:
        print(f"{n}: not benchmarked, left out")
        continue
    same_point.setdefault((row["latency_ms"], q), []).append(n)
points, named = list(same_point), [" = ".join(group) for group in same_point.values()]
front = an.pareto_front(points)
print("Pareto front (fastest first):", " -> ".join(named[i] for i in front))
pl.plot_pareto(points, named, front)
"""),
    md("""
## 4. Re-measure live

Change the batch size, the sequence length, the threads or the repeats and press *measure*: the
same models are timed again, interleaved, and the table comes back with its conditions (ratios
relative to CERBERUS, the first model).
"""),
    code("""
from cerberus_core.widgets import build_bench_panel

build_bench_panel(models, pairs)
"""),
]


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    for name, cells in {"05_head_diversity.ipynb": NB05, "06_head_teacher_agreement.ipynb": NB06,
                        "07_ablation.ipynb": NB07, "08_speed_and_size.ipynb": NB08}.items():
        write(name, cells)
        print("wrote", HERE / name)
