"""Write notebooks 01-04 from the cell sources below (output-free, one `parameters` cell each).

    python notebooks/_build_01_04.py

Edit the sources here, not the .ipynb files, then re-run; tests/test_notebooks.py executes them.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
PRESET_LINE = 'PRESET = "quick"  # quick: small chain trained in minutes; full: committed artifacts/full'
SETUP = "%matplotlib inline\n"  # registers the inline formatter, so a bare matplotlib Figure is drawn


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str):
    return new_code_cell(text.strip())


def params(text: str):
    cell = code(f"{PRESET_LINE}\nSEED = 0{text}")
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)


OURS_VS_PAPER = """
**Our setup is not the paper's.** The paper's teachers are large cross-encoders (ALBERT-XXLarge,
ELECTRA-Large, RoBERTa-Large) fine-tuned on ASNQ (then WikiQA). Ours are small sentence-transformers
checkpoints (MiniLM-L3, MiniLM-L6, MPNet-base) fine-tuned as cross-encoders on WikiQA train only: no
ASNQ is available here. The `quick` preset goes further: two MiniLM-L3 teachers that differ only in
learning rate, trained on 8 questions and evaluated on 6, so its numbers show the mechanics, not
the quality. `full` reads the committed WikiQA run in `artifacts/full`.
"""

# --------------------------------------------------------------------------- 01
NB01 = [
    md("""
# 01 · A primer on distillation for answer ranking

CERBERUS (Matsubara et al., Findings of EMNLP 2022) distils an *ensemble* of cross-encoders into
*one* model: a shared transformer body with k ranking heads, head i taught by teacher i. This
notebook builds the pieces from the ground up, each on real numbers from this project's artifacts:

1. what a teacher's score is, and what the temperature does to it;
2. the knowledge-distillation (KD) loss and its mix with the gold-label loss;
3. why an ensemble of teachers helps only when its members disagree;
4. the CERBERUS architecture, drawn from a real configuration, and the paper's size claim.
"""),
    md(OURS_VS_PAPER),
    params("""
SPLIT = "dev"  # the split whose question we look at
QUESTION_ID = None  # a qid of SPLIT; None: the scored question with the most candidates
"""),
    code(SETUP + """
import numpy as np
import pandas as pd
import torch

from cerberus_core import analysis, losses, plotting
from cerberus_core.data import load_as2
from cerberus_core.model import CerberusForRanking
from cerberus_core.pipeline import notebook_artifacts
from cerberus_core.widgets import build_temperature_panel

ROOT = notebook_artifacts(PRESET)  # load-or-train: trains the chain only if it is missing
ROOT
"""),
    md("""
## 1 · A teacher's score is data

A teacher is a cross-encoder: it reads `[CLS] question [SEP] candidate [SEP]` and outputs two
logits (negative, positive). Its ranking score for the pair is the **margin** m = z₁ − z₀; the
positive-class probability is sigmoid(m). Teachers are fixed during distillation, so their margins
are computed once and cached as a table per (teacher, split), keyed by question id and candidate
index (`ROOT/teacher_scores/<teacher>/<split>.tsv`). Here is one real question of WikiQA dev with
the first teacher's margins.
"""),
    code("""
teachers = analysis.load_teacher_tables(ROOT, SPLIT)
teacher, table = next(iter(teachers.items()))
qid = QUESTION_ID or max(dict.fromkeys(table.qids), key=table.qids.count)
rows = np.flatnonzero(np.asarray(table.qids) == qid)
margins, labels = table.columns["score"][rows], table.labels[rows]
question = next(q for q in load_as2("wikiqa", split=SPLIT) if q.qid == qid)
candidates = [question.candidates[i] for i in table.cand_idx[rows]]

print(f"teacher {teacher!r}, question {qid}: {question.text}")
pd.DataFrame({"label": labels, "margin": margins, "candidate": candidates}).round(3)
"""),
    md("""
**Temperature.** Hinton's KD target is the teacher's distribution softened by a temperature T:
per pair (1 − s, s) with s = sigmoid(m / T). T > 1 pulls every probability towards ½ and so tells
the student *how much* the teacher prefers one candidate over another, not only which one it
prefers; T < 1 sharpens towards hard labels. The right panel shows the same margins as a softmax
over the question's candidates (the listwise view). Move the slider to compare. (In `quick` the
teacher has seen 8 training questions and its margins are nearly flat; `full` teachers spread
them over several units, where the temperature changes much more.)
"""),
    code("""
plotting.plot_soft_targets(margins, labels, temperatures=(1.0, 2.0, 4.0))
"""),
    code("""
build_temperature_panel(margins, labels, candidates=candidates)
"""),
    md("""
## 2 · The KD loss, on numbers

For one pair, with student logits z and teacher margin m, the loss of one head is

  loss = α · KL(teacher_T ‖ student_T) · T² + (1 − α) · CE(student, gold label)

(`losses.kd_kl`, `losses.DistillationLoss`). The T² factor keeps the gradient scale of the KD term
about the same whatever T is (Hinton et al., 2015). α weighs the teacher against the gold label. The
paper does not give its loss, T or α; this project uses this standard form with T = 2, α = ½ by
default (a design decision, see the README).

A head's logits are known only up to a shift, so a student margin m_s stands for the logits
(0, m_s). First the shape of the loss: the question's correct candidate, its real teacher margin,
and a range of student margins. The KD term is zero exactly where the student's margin equals the
teacher's (whatever T) and grows with the difference; the CE term only wants the margin large.
"""),
    code("""
pos = int(np.flatnonzero(labels)[0])  # the question's correct candidate
m_t = float(margins[pos])
sweep = torch.tensor(sorted({-4.0, -2.0, 0.0, 2.0, 4.0, m_t}), dtype=torch.float64)
logits = torch.stack([torch.zeros_like(sweep), sweep], dim=-1)
kd = {f"KD, T={t:g}": losses.kd_kl(logits, torch.full_like(sweep, m_t), t).numpy() for t in (1.0, 2.0, 4.0)}
ce = torch.nn.functional.cross_entropy(logits, torch.ones(len(sweep), dtype=torch.long), reduction="none")
print(f"teacher margin of candidate c{pos}: {m_t:.3f}")
pd.DataFrame({"student margin m_s": sweep.numpy(), **kd, "CE (gold label 1)": ce.numpy()}).round(4)
"""),
    md("""
Now a real student: the chain's student distilled from this teacher alone
(`students/single-<teacher>`), on all the question's candidates, with the loss mixed as
`DistillationLoss` computes it (one head, mean over pairs). α = 0 is plain fine-tuning on the
labels (the teacher is not even read, hence no KD entry); α = 1 ignores the labels. In `quick`
the teacher and the student have barely moved from the same starting checkpoint, so the KD term
is about 0 and the mix only scales the CE term by 1 − α.
"""),
    code("""
student = analysis.load_run(ROOT / "students" / f"single-{teacher}")
_, student_margins = analysis.score_matrix(student[SPLIT], ["head0"], reference=table)
m_student = torch.tensor(student_margins[rows, 0])
student_logits = torch.stack([torch.zeros_like(m_student), m_student], dim=-1)[:, None, :]  # (pairs, 1 head, 2)
gold, m_teacher = torch.tensor(labels), torch.tensor(margins)[:, None]

mix = {f"alpha={a:g}": losses.DistillationLoss("single", temperature=2.0, alpha=a, teacher_index=0)(
           student_logits, gold, m_teacher) for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
pd.DataFrame({a: {k: float(parts[k]) if k in parts else None for k in ("kd/head0", "ce/head0", "loss")}
              for a, parts in mix.items()}).round(4)
"""),
    md("""
## 3 · An ensemble helps only when its members disagree

Averaging the teachers' probabilities is the classic way to get a better teacher. Krogh & Vedelsby
(1995) make the reason exact for squared error: the error of the average equals the members'
average error **minus their ambiguity** (the spread of the members around the mean). If the
members agree, the ambiguity is zero and the average is no better than its members. So an ensemble
of teachers is only worth distilling if its members make *different* mistakes, which is why
CERBERUS insists on heterogeneous teachers (paper claim 4).

First a degenerate ensemble: one teacher twice. Its ambiguity is zero and it gains exactly nothing.
"""),
    code("""
names, matrix = analysis.score_matrix(teachers)
ref = teachers[names[0]]


def gain_table(gain):
    rows = {**gain["members"], "ensemble (mean prob.)": gain["ensemble"], "gain over best member": gain["gain_over_best"]}
    return pd.DataFrame(rows).T[list(analysis.METRICS)].astype(float).round(3)


twice = np.column_stack([matrix[:, 0], matrix[:, 0]])
print("ambiguity:", analysis.ambiguity(analysis.to_probability(twice)))
gain_table(analysis.ensemble_gain(ref.qids, ref.labels, twice, [names[0], names[0] + " (copy)"]))
"""),
    md("""
Now the real teachers of this run, on the same split: how correlated their margins are, their
ambiguity, and what their ensemble gains over the best of them. In `quick` the two teachers share
an architecture and training data and differ only in learning rate: expect high correlation and
little, no or even negative gain (a weaker member drags the average down), all of it noisy with 6
questions. In `full` the teachers are three different encoders.
"""),
    code("""
print("ambiguity:", round(analysis.ambiguity(analysis.to_probability(matrix)), 5))
plotting.plot_correlation_heatmap(analysis.pairwise_correlation(matrix, "pearson"), names,
                                  f"teacher margins, Pearson r ({SPLIT})")
"""),
    code("""
gain_table(analysis.ensemble_gain(ref.qids, ref.labels, matrix, names))
"""),
    md("""
## 4 · CERBERUS: one body, k heads

Distilling the *averaged* teacher into one output throws away the disagreement that made the
ensemble useful. CERBERUS keeps it: a shared **body** (embeddings + the first b layers of a
pretrained encoder) feeds **k heads**, each h transformer layers + a two-logit scorer; head i
learns from teacher i only, and the body receives every head's gradient. At inference a
**pooler** averages the heads' probabilities (the released code's default). The paper's notation
is B_b kH_h.

Below, the student shape of this project's `quick`/`full` presets, built from a real checkpoint:
MiniLM-L6 (6 layers) cut into a 5-layer body and 3 one-layer heads.
"""),
    code("""
model = CerberusForRanking.from_backbone("minilm-l6", body_layers=5, num_heads=3, head_layers=1)
counts = model.parameter_counts()
plotting.plot_architecture(counts, model.config.name)
"""),
    md("""
Every head is a copy of the same backbone layer (here layer 6) with the same scorer, so at step 0
the heads are **identical**: all their diversity will come from the teachers. On this question's
candidates the three heads give exactly the same margins:
"""),
    code("""
_, head_margins = model.predict([(question.text, c) for c in candidates], return_heads=True)
print("largest difference between heads:", float(np.ptp(head_margins, axis=1).max()))
del model
"""),
    md("""
**The paper's size claim.** The main model is B11 3H1 on ELECTRA-Base (12 layers): about 124.8M
parameters, +14% over the 109.5M of ELECTRA-Base, for three teachers' worth of heads. The same
configuration on our 12-layer MPNet-base gives the comparison below; the one-head model (body +
one head) is the whole 12-layer encoder with one scorer, i.e. a teacher-shaped model.
"""),
    code("""
big = CerberusForRanking.from_backbone("mpnet-base", body_layers=11, num_heads=3, head_layers=1)
big_counts = big.parameter_counts()
one_head = big_counts["total"] - (big.config.num_heads - 1) * big_counts["head0"]
print(f"{big.config.name} on MPNet-base: {big_counts['total'] / 1e6:.1f}M parameters")
print(f"12-layer encoder + one scorer:  {one_head / 1e6:.1f}M")
print(f"overhead of 2 extra heads: +{big_counts['total'] / one_head - 1:.1%}  (paper, ELECTRA-Base: 124.8M, +14% over 109.5M)")
del big
"""),
    md("""
Each extra head costs one transformer layer (+ scorer): about 7.7M parameters on a base-size
encoder, while a second *teacher* would cost a whole model. Notebook 03 looks at the teachers we
distil from, and notebook 04 trains a CERBERUS student.
"""),
]

# --------------------------------------------------------------------------- 02
NB02 = [
    md("""
# 02 · The AS2 data

Answer Sentence Selection (AS2): a question comes with candidate sentences, each labelled 1 if it
answers the question; a model scores every (question, candidate) pair and ranks the candidates.
Metrics average over questions: P@1 (is the top candidate correct), MAP and MRR.

This notebook looks at WikiQA (the paper's main target dataset here) and TREC-QA: what a question
looks like, how many candidates and positives there are, how long the pairs are, and which
questions the evaluation keeps. The data is read from `$CERBERUS_DATA`, `./data` or
`../shared/data` (`data.data_roots`); it is never committed (WikiQA's licence is non-commercial).
ASNQ, the paper's large transfer set, is not available here.
"""),
    params("""
DATASET = "wikiqa"  # registered name: wikiqa, wikiqa-tsv, trecqa (or a path to your own file)
BROWSE_SPLIT = "dev"  # the split shown in the question browser
TOKENIZER = "minilm-l6"  # whose tokenizer measures pair lengths (the quick/full students')
"""),
    code(SETUP + """
import numpy as np
import pandas as pd
from transformers import AutoTokenizer

from cerberus_core import plotting, ranking_metrics
from cerberus_core.data import FILTERS, SPLITS, dataset_stats, format_stats, load_as2
from cerberus_core.pipeline import notebook_artifacts
from cerberus_core.training import TrainConfig, load_splits
from cerberus_core.widgets import build_question_browser
from cerberus_core.zoo import resolve_model

plotting.set_theme()
ROOT = notebook_artifacts(PRESET)  # used in section 4: the subset the chain trains on
"""),
    md("""
## 1 · One question at a time

Browse the split with every question kept (`filter="none"`); positives are highlighted and the
panel says whether the `answerable` and `clean` policies (section 3) would keep the question.
"""),
    code("""
browse = load_as2(DATASET, split=BROWSE_SPLIT, filter="none")
build_question_browser(browse)
"""),
    md("""
## 2 · Sizes: candidates per question, positive rate

Counts per split with nothing filtered. WikiQA candidates are the sentences of the summary
paragraph of the Wikipedia page matched to the question: about ten per question, about one in eight
of them correct, so most questions have a single right answer among many plausible neighbours.
"""),
    code("""
stats = [dataset_stats(load_as2(DATASET, split=s, filter="none")) for s in SPLITS]
print(format_stats(stats))
plotting.plot_dataset_stats(stats)
"""),
    md("""
**Lengths.** A cross-encoder reads the question and the candidate together, truncated to
`max_length` tokens (32 in the small chain that `quick` notebooks use, 128 in `full`).
How many pairs does each cut truncate? (The `quick` chain's 32 tokens cut most pairs: one more
reason to read its numbers as a smoke test.)
"""),
    code("""
tokenizer = AutoTokenizer.from_pretrained(resolve_model(TOKENIZER))
dev = load_as2(DATASET, split="dev")  # the clean dev set the models are selected on
lengths = np.array([len(ids) for ids in tokenizer([q for q, _ in dev.pairs()], [c for _, c in dev.pairs()])["input_ids"]])
print(f"{len(lengths)} dev pairs; tokens per pair: median {np.median(lengths):.0f}, "
      f"95th percentile {np.percentile(lengths, 95):.0f}, max {lengths.max()}")
pd.Series({n: f"{(lengths > n).mean():.1%}" for n in (32, 64, 128)}, name="pairs truncated at max_length")
"""),
    md("""
## 3 · Which questions count

Some questions have **no** correct candidate; a few have **only** correct ones. Neither says
anything about a ranker: with no positive, P@1/MAP/MRR are 0 (or undefined) whatever the model
does; with only positives they are 1. Papers differ in what they do with them, and their numbers
are not comparable unless this is said (see `docs/method.md`):

- `clean`: drop both kinds. The CERBERUS authors' convention for WikiQA and TREC-QA dev/test, and
  the default here for dev/test (WikiQA dev/test 122/237 questions, TREC-QA 65/68);
- `answerable`: drop only questions with no positive (WikiQA 126/243, the counts most AS2 papers
  quote);
- `none`: keep everything, a no-positive question scoring 0 (torchmetrics, sentence-transformers).

The counts under each policy, for every split of WikiQA and TREC-QA. The WikiQA copy read here
(castorini/data) has already dropped the questions with no correct sentence: the official release
has 2,118/296/633 train/dev/test questions, only 873/126/243 of which have an answer. So on this
copy `none` and `answerable` coincide and `clean` removes the questions whose candidates are all
correct. TREC-QA still has both kinds.
"""),
    code("""
policy_rows = []
for name in ("wikiqa", "trecqa"):
    for split in SPLITS:
        s = dataset_stats(load_as2(name, split=split, filter="none"))
        policy_rows.append({"dataset": name, "split": split, "no positive": s["no_positive"],
                            "only positives": s["all_positive"],
                            **{f"{p} (questions)": s["by_filter"][p]["questions"] for p in FILTERS}})
pd.DataFrame(policy_rows).set_index(["dataset", "split"])
"""),
    md("""
The same scores, three results: a ranker that scores candidates at random, on TREC-QA test with
nothing dropped, evaluated under each policy. `none` counts the no-answer questions as 0, and the
all-positive questions add free 1s until `clean` removes them.
"""),
    code("""
trec_test = load_as2("trecqa", split="test", filter="none")
qids, cand_idx, labels = trec_test.flat()
random_scores = np.random.default_rng(SEED).random(len(labels))
metrics = {p: ranking_metrics(qids, labels, random_scores, policy=p, cand_idx=cand_idx) for p in FILTERS}
pd.DataFrame({p: {k: m[k] for k in ("n_questions", "p@1", "map", "mrr")} for p, m in metrics.items()}).T.round(3)
"""),
    md("""
`n_questions` under `none` can be below the file's count: a question with no candidates at all
(5 in TREC-QA test) has no pair to score, so no pair-level metric, ours or trec_eval, ever sees it.
"""),
    md("""
## 4 · What the chain of this preset trains on

The `quick` notebook chain trains its teachers on a random subset of WikiQA train questions and
evaluates on subsets of clean dev/test (the sizes are in each run's `config.json`); `full` uses all
of them. These are the exact sets the teachers scored:
"""),
    code("""
teacher_cfg = TrainConfig.from_file(next((ROOT / "teachers").glob("*/config.json")))
chain_data = load_splits(teacher_cfg)
print(format_stats([dataset_stats(ds) for ds in chain_data.values()]))
"""),
]

# --------------------------------------------------------------------------- 03
NB03 = [
    md("""
# 03 · The teachers

CERBERUS learns from k teachers, one per head. This notebook reads the teachers of the chosen
preset: how good each is (with 95% bootstrap intervals over questions), how much they disagree,
and what averaging them gains. Disagreement matters: an ensemble, and so a CERBERUS student, can
only gain from teachers that make different mistakes (notebook 01, section 3).

**Load-or-train.** `reproduce` (`python -m cerberus_core reproduce --preset ...`, or
`notebook_artifacts` in the cell below) fine-tunes a teacher only when `ROOT/teachers/<t>/metrics.json`
is missing or was made with a different config, and scores the train/dev/test questions once into
`ROOT/teacher_scores/<t>/`. This notebook only reads those files.
"""),
    md(OURS_VS_PAPER),
    params("""
SPLIT = "test"  # where disagreement and ensemble gain are measured
CORRELATIONS = ("pearson", "spearman", "kendall")
"""),
    code(SETUP + """
import pandas as pd
from IPython.display import display

from cerberus_core import analysis, plotting
from cerberus_core.pipeline import ensemble_metrics, notebook_artifacts

ROOT = notebook_artifacts(PRESET)  # load-or-train: trains the chain only if it is missing
runs = {p.name: analysis.load_run(p) for p in sorted((ROOT / "teachers").iterdir()) if (p / "metrics.json").is_file()}
list(runs)
"""),
    md("""
## 1 · How good is each teacher

Every teacher is a one-head `CerberusForRanking` (a full encoder + a scorer) fine-tuned on gold
labels. Metrics use the `clean` dev/test questions (notebook 02); the intervals are percentile
bootstrap over questions, so with few questions (6 in `quick`) they are very wide.
"""),
    code("""
def with_ci(m, key):
    low, high = m[f"{key}_ci"]
    return f"{m[key]:.3f} [{low:.3f}, {high:.3f}]"


rows = []
for name, run in runs.items():
    cfg = run["config"]
    for split in ("dev", "test"):
        m = run["metrics"][split]["pooled"]
        rows.append({"teacher": name, "split": split, "backbone": cfg["backbone"], "lr": cfg["lr"],
                     "epochs": cfg["epochs"], "params (M)": round(run["metrics"]["parameters"] / 1e6, 1),
                     "questions": m["n_questions"], **{k: with_ci(m, k) for k in analysis.METRICS}})
pd.DataFrame(rows).set_index(["teacher", "split"])
"""),
    code("""
bars = [{"name": n, "role": "teacher", **r["metrics"][SPLIT]["pooled"]} for n, r in runs.items()]
bars.append({"name": "ensemble (mean prob.)", "role": "ensemble", **ensemble_metrics(ROOT, list(runs), SPLIT, SEED)})
plotting.plot_metric_bars(bars, title=f"teachers on {SPLIT}, 95% CI")
"""),
    md("""
## 2 · How much do they disagree

Three views of the same question, on the teachers' cached margins for every (question, candidate)
pair of the split: Pearson (linear agreement of the margins), Spearman and Kendall (agreement of
the *orderings* only), and the fraction of questions where two teachers put a different candidate
first, which is what P@1 sees.
"""),
    code("""
tables = analysis.load_teacher_tables(ROOT, SPLIT)
names, margins = analysis.score_matrix(tables)
ref = tables[names[0]]
for method in CORRELATIONS:
    display(plotting.plot_correlation_heatmap(analysis.pairwise_correlation(margins, method), names,
                                              f"{method} ({SPLIT})", vmin=0.0))
"""),
    code("""
plotting.plot_correlation_heatmap(analysis.top1_disagreement(ref.qids, margins, ref.cand_idx), names,
                                  f"top-1 disagreement ({SPLIT}): fraction of questions", vmin=0.0)
"""),
    code("""
pd.Series(analysis.diversity(ref.qids, margins, ref.cand_idx), name=f"teachers on {SPLIT}").round(4)
"""),
    md("""
## 3 · What their ensemble gains

The ensemble averages the teachers' positive probabilities (`analysis.ensemble_gain`). A positive
gain over the best member is what a multi-teacher student can hope to inherit; a negative one means
the weaker teachers drag the average down. This is on the evaluation split, so it describes the
teachers, it does not select them (the pipeline picks the best single teacher on dev).
"""),
    code("""
gain = analysis.ensemble_gain(ref.qids, ref.labels, margins, names)
table = {**gain["members"], "ensemble (mean prob.)": gain["ensemble"], "gain over best member": gain["gain_over_best"]}
pd.DataFrame(table).T[list(analysis.METRICS)].astype(float).round(3)
"""),
    md("""
In the paper the teachers are different large architectures and their ensemble beats each of them;
CERBERUS aims to keep that gain at the cost of one model. In `quick`, two near-identical MiniLM-L3
teachers disagree mostly through noise and the weaker one can drag the average below the better
one; read `full` for the three different encoders.
"""),
]

# --------------------------------------------------------------------------- 04
NB04 = [
    md("""
# 04 · Training a CERBERUS student

The recipe: a B_b kH_h student (notebook 01), one head per teacher, cached teacher margins
(notebook 03) as targets. Per head, `α · KD(teacher i, head i) + (1 − α) · CE(head i, gold)`; the
heads' losses are summed, so the body learns from every teacher while each head follows its own.
Selection is on dev MAP of the pooled score; the best model then scores dev and test.

- `quick`: trains a small student **live** here, in about a minute on a CPU: MiniLM-L3 cut into a
  2-layer body and one 1-layer head per teacher of the quick chain, on the 8 training questions
  those teachers scored.
- `full`: loads the committed run `artifacts/full/students/cerberus` (MiniLM-L6, B5 3H1, three
  teachers), trained by `reproduce`.

The paper's loss, temperature, weights and optimiser are not published; the values below are this
project's choices (README, Design decisions).
"""),
    md(OURS_VS_PAPER),
    params("""
EPOCHS = 3  # quick only: the live run (the chain's own student trains 1 epoch)
BATCH_SIZE = 8  # quick only
LIVE_DIR = None  # quick only: where the live run is written; None: a new temporary folder
"""),
    code(SETUP + """
import tempfile
import time
from pathlib import Path

import pandas as pd
from IPython.display import display

from cerberus_core import analysis, plotting
from cerberus_core.data import load_as2
from cerberus_core.model import CerberusForRanking
from cerberus_core.pipeline import notebook_artifacts
from cerberus_core.training import TrainConfig, train

ROOT = notebook_artifacts(PRESET)  # load-or-train: trains the chain only if it is missing
teacher_dirs = sorted(p for p in (ROOT / "teacher_scores").iterdir() if p.is_dir())
[p.name for p in teacher_dirs]
"""),
    md("""
## 1 · The experiment, and training it

One experiment is one `TrainConfig`; `train` writes it as `config.json` beside its outputs (curve,
per-evaluation dev scores, best model, metrics) and resumes from its last checkpoint if interrupted.
Teacher tables are checked against the data's fingerprint, so the student must train on the very
questions the teachers scored: in `quick`, the chain's 8-question subset drawn with seed 0.
"""),
    code("""
if PRESET == "quick":
    cfg = TrainConfig(
        name="live-cerberus", strategy="cerberus", teachers=[str(p) for p in teacher_dirs], num_heads=len(teacher_dirs),
        backbone="minilm-l3", body_layers=2, head_layers=1,  # B2 kH1 on the 3-layer MiniLM
        temperature=2.0, alpha=0.5,
        train_questions=8, eval_questions=6, max_length=32,  # the quick chain's data, as its teachers scored it
        epochs=EPOCHS, batch_size=BATCH_SIZE, lr=1e-4, evals_per_epoch=1, seed=SEED)
    run_dir = Path(LIVE_DIR or tempfile.mkdtemp(prefix="cerberus-live-"))
    start = time.perf_counter()
    train(cfg, run_dir)
    print(f"trained in {time.perf_counter() - start:.0f} s -> {run_dir}")
else:
    run_dir = ROOT / "students" / "cerberus"
run = analysis.load_run(run_dir)
pd.Series({k: run["config"][k] for k in ("strategy", "backbone", "body_layers", "num_heads", "head_layers",
                                         "temperature", "alpha", "epochs", "batch_size", "lr")}
          | {"model": run["metrics"]["model"], "parameters": run["metrics"]["parameters"]})
"""),
    md("""
## 2 · Loss per head over steps

`DistillationLoss` returns a breakdown (`loss/head0`, `kd/head0`, `ce/head0`, ...) that the loop
logs at every step (`curve.tsv`). Each head's KD term measures how far it is from *its own*
teacher; the CE term how far it is from the gold labels. Per-batch losses are noisy, so they are
shown as a running mean.
"""),
    code("""
plotting.plot_loss_curves(run["curve"])
"""),
    md("""
All heads start as copies of the same layer, so their dev scores are identical at step 0 (every
diversity measure is 0); they drift apart only because different teachers pull them. The dashed
line is the teachers' own diversity on dev, which the heads may approach.
"""),
    code("""
teacher_dev = analysis.load_teacher_tables(ROOT, "dev")
t_names, t_margins = analysis.score_matrix(teacher_dev)
t_ref = teacher_dev[t_names[0]]
plotting.plot_diversity_over_steps(analysis.diversity_over_steps(run_dir),
                                   teacher_level=analysis.diversity(t_ref.qids, t_margins, t_ref.cand_idx))
"""),
    md("""
## 3 · Pooled vs each head vs the teachers

The pooled score averages the heads' probabilities. Each head is labelled with the teacher it
learned from; the teachers are evaluated on the same questions. With 6 questions (`quick`) the
95% intervals cover almost everything: the plot shows the layout of the comparison, `full` gives
the numbers.
"""),
    code("""
head_labels = [f"head{i} ← {Path(t).name}" for i, t in enumerate(run["config"]["teachers"])]
for split in ("dev", "test"):
    teacher_metrics = {t.name: analysis.load_run(ROOT / "teachers" / t.name)["metrics"][split]["pooled"]
                       for t in teacher_dirs}
    display(plotting.plot_head_metrics(run["metrics"][split], teacher_metrics, head_labels,
                                       title=f"{run['metrics']['model']} student on {split}"))
"""),
    md("""
## 4 · Using the student

The trained model is a Hugging Face `PreTrainedModel` saved with safetensors. `rank` sorts a
question's candidates by the pooled score and reports every head's margin beside it.
"""),
    code("""
student = CerberusForRanking.from_pretrained(run_dir / "best")
dev = {q.qid: q for q in load_as2(run["config"]["dataset"], split="dev")}
question = dev[run["dev"].qids[0]]
ranked = student.rank(question.text, list(question.candidates), max_length=run["config"]["max_length"])
print(question.text)
pd.DataFrame([{"label": question.labels[r["corpus_id"]], "pooled": r["score"],
               **{f"head{i}": s for i, s in enumerate(r["head_scores"])}, "candidate": r["text"]}
              for r in ranked]).round(3)
"""),
]


def main() -> None:
    write("01_distillation_primer.ipynb", NB01)
    write("02_as2_data.ipynb", NB02)
    write("03_teachers.ipynb", NB03)
    write("04_training_cerberus.ipynb", NB04)


if __name__ == "__main__":
    main()
