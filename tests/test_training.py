"""The training loop end to end, on a tiny random BERT and a few WikiQA questions.

Every run here trains a 2-layer, 32-wide BERT (random weights, dropout 0 in the backbone; the
scorer keeps its default dropout 0.1 unless a test says otherwise) on 12 WikiQA training
questions (90 pairs) for 2 epochs of 9 batches of 10 pairs, evaluating on 8 dev / 8 test
questions. Its tokenizer's vocabulary is built from the words of exactly those questions, so
the text is not mostly [UNK] and dev scores have no spurious ties. One run takes about a
second; processes started by the tests (kill/resume, 2-process DDP) cost a few seconds of imports.

Training runs on the CPU, on one torch thread, in every process of this file (also on a GPU
host): results are compared bit for bit (or to 1e-6), which needs a fixed summation order.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertTokenizerFast

from cerberus_core.training import checkpoint, loop as training
from cerberus_core.data import AS2Dataset, Question, load_as2
from cerberus_core.errors import InputError
from cerberus_core.training.losses import DistillationLoss
from cerberus_core.results.metrics import ranking_metrics
from cerberus_core.model.modeling import CerberusForRanking
from cerberus_core.results.scores import ScoreTable
from cerberus_core.training.config import TrainConfig
from cerberus_core.results.artifacts import read_curve
from cerberus_core.provenance import device_name
from cerberus_core.results.scores import evaluate_table, score_dataset
from cerberus_core.training.teacher_targets import load_teacher_margins
from cerberus_core.training.loop import train
from cerberus_core.training.preflight import load_splits
from conftest import DATA, needs_wikiqa, numbers

REPO = Path(__file__).resolve().parents[1]
pytestmark = needs_wikiqa

TOTAL_STEPS = 18  # 90 pairs / batch 10 = 9 steps per epoch, 2 epochs
LOSS_COLUMNS = re.compile(r"^(loss|(loss|ce|kd)/head\d+)$")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def cpu_one_thread():
    """CPU only, even on a GPU host (the comparisons below need its determinism), one thread,
    and a fresh Accelerate state before and after (it is a process-wide singleton)."""
    from accelerate.state import AcceleratorState

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACCELERATE_USE_CPU", "1")
        yield
    AcceleratorState._reset_state(reset_partial_state=True)
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base_cfg(tmp_path_factory) -> TrainConfig:
    """A tiny backbone folder (weights + tokenizer) and the config every test starts from."""
    root = tmp_path_factory.mktemp("backbone")
    cfg = TrainConfig(
        name="tiny", backbone=str(root / "bert"), data_root=str(DATA),
        train_questions=12, eval_questions=8, max_length=48,
        batch_size=10, epochs=2, evals_per_epoch=2, checkpoint_every=2, lr=1e-3, seed=0,
        mixed_precision="no",
    )
    data = load_splits(cfg)
    assert data["train"].n_pairs == 90, "the step arithmetic below assumes 90 training pairs"
    words = sorted({w for ds in data.values() for q, c in ds.pairs()
                    for w in re.findall(r"\w+|[^\w\s]", f"{q} {c}".lower())})
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(root / "vocab.txt"), do_lower_case=True)
    config = AutoConfig.for_model(
        "bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        vocab_size=len(tokenizer), max_position_embeddings=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    return cfg


@pytest.fixture(scope="module")
def reference(base_cfg, tmp_path_factory) -> Path:
    """One uninterrupted run of the base config."""
    out = tmp_path_factory.mktemp("reference")
    train(base_cfg, out, progress=False)
    return out


class CountingLoss(DistillationLoss):
    """The real loss, counting training steps (one call per step)."""

    calls = 0

    def forward(self, *args, **kwargs):
        type(self).calls += 1
        return super().forward(*args, **kwargs)


@pytest.fixture
def count_steps(monkeypatch):
    CountingLoss.calls = 0
    monkeypatch.setattr(training, "DistillationLoss", CountingLoss)
    return CountingLoss


REAL_BUILD_MODEL = training.build_model


def build_without_dropout(cfg: TrainConfig, run_dir=None) -> CerberusForRanking:
    """training.build_model with every dropout off (TrainConfig has no dropout field): then
    copied heads stay bitwise copies under identical targets, and processes can agree."""
    model = REAL_BUILD_MODEL(cfg, run_dir)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


# ------------------------------------------------------------------------------ helpers
def curve_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between two runs' curves (same steps, same columns)."""
    ra, rb = read_curve(a), read_curve(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    assert [sorted(r) for r in ra] == [sorted(r) for r in rb]
    return max(abs(x[k] - y[k]) for x, y in zip(ra, rb) for k in x)


def metrics_diff(a: Path, b: Path) -> float:
    """Largest difference of the ranking metrics. The head diversity numbers are left out: they
    are functions of the score tables, which the caller compares directly, and on this tiny
    model (heads within 1e-7 of each other) they amplify score differences of 1e-5 (top-1
    disagreement between heads flips on near-ties)."""
    ma = numbers(json.loads((a / "metrics.json").read_text()))
    mb = numbers(json.loads((b / "metrics.json").read_text()))
    assert ma.keys() == mb.keys()
    ma = {k: v for k, v in ma.items() if not k.startswith("/head_diversity/")}
    strings = {k for k, v in ma.items() if isinstance(v, str)}
    assert {k: ma[k] for k in strings} == {k: mb[k] for k in strings}
    return max((abs(ma[k] - mb[k]) for k in ma if k not in strings), default=0.0)


def rank_changes_are_near_ties(a: Path, b: Path, gap: float) -> bool:
    """Every question whose AP differs between two runs' dev/test tables (any column) has two
    candidates whose scores in run b are within `gap`: the rank flips are near-ties, nothing more."""
    for role in ("dev", "test"):
        ta, tb = (ScoreTable.load(r / "scores" / f"{role}.tsv") for r in (a, b))
        for column in tb.columns:
            ap = [ranking_metrics(t.qids, t.labels, t.columns[column], cand_idx=t.cand_idx)["per_question"]
                  for t in (ta, tb)]
            assert list(ap[0]["qid"]) == list(ap[1]["qid"])
            for qid in np.asarray(ap[0]["qid"])[np.abs(ap[0]["ap"] - ap[1]["ap"]) > 1e-12]:
                scores = np.sort(tb.columns[column][np.asarray(tb.qids) == qid])
                if not (np.diff(scores) < gap).any():
                    return False
    return True


def trace(run: Path, step: int) -> ScoreTable:
    return ScoreTable.load(run / "trace" / f"dev_step{step:06d}.tsv")


def python_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="",
               ACCELERATE_USE_CPU="1")
    env.setdefault("CERBERUS_CACHE", str(REPO / ".cache" / "cerberus"))
    return env


TRAIN_SCRIPT = """\
import json, sys
import torch
torch.set_num_threads(1)
from cerberus_core.training import loop as training
from cerberus_core.training.config import TrainConfig
if sys.argv[3] == "no-dropout":
    real = training.build_model
    def build(cfg, run_dir=None):
        model = real(cfg, run_dir)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        return model
    training.build_model = build
cfg = TrainConfig(**json.loads(open(sys.argv[1]).read()))
training.train(cfg, sys.argv[2], progress=False)
"""


def write_script(tmp_path: Path, cfg: TrainConfig) -> tuple[Path, Path]:
    (tmp_path / "train_script.py").write_text(TRAIN_SCRIPT)
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    return tmp_path / "train_script.py", tmp_path / "cfg.json"


# ------------------------------------------------------------------ 1. a tiny training run
def test_tiny_run_writes_every_output_and_selects_on_dev(base_cfg, reference):
    """All outputs exist; the loss falls; best/ is the model of the first evaluation with the
    highest dev MAP (step 0, the untrained model, is traced but is no candidate; a later equal
    MAP does not replace it), finish() scored that model; another experiment cannot reuse the folder."""
    assert TrainConfig.from_file(reference / "config.json") == base_cfg
    curve = read_curve(reference)
    assert [r["step"] for r in curve] == list(range(1, TOTAL_STEPS + 1))
    assert {k for k in curve[0] if LOSS_COLUMNS.match(k)} == {"loss", "loss/head0", "ce/head0"}
    assert all(math.isfinite(r["loss"]) for r in curve)
    first, last = (np.mean([r["loss"] for r in curve if r["epoch"] == e]) for e in (0, 1))
    assert last < first, f"training loss did not fall: epoch 0 {first:.4f}, epoch 1 {last:.4f}"

    steps = sorted(int(p.name[8:14]) for p in (reference / "trace").glob("dev_step*.tsv"))
    assert steps == [0, 5, 9, 14, 18]  # step 0, then each half epoch (9 steps: 5, 9), ending every epoch
    dev_maps = {s: evaluate_table(trace(reference, s))["pooled"]["map"] for s in steps[1:]}
    best_step = max(dev_maps, key=lambda s: (dev_maps[s], -s))
    metrics = json.loads((reference / "metrics.json").read_text())
    assert metrics["dev"]["pooled"]["map"] == pytest.approx(dev_maps[best_step], abs=1e-12)
    saved = ScoreTable.load(reference / "scores" / "dev.tsv")
    np.testing.assert_allclose(saved.columns["pooled"], trace(reference, best_step).columns["pooled"], rtol=0, atol=1e-6)
    assert metrics["dev"]["pooled"]["n_questions"] == 8 and metrics["test"]["pooled"]["n_questions"] == 8
    assert metrics["model"] == "B1 1H1"

    best = CerberusForRanking.from_pretrained(reference / "best")
    dev = load_splits(base_cfg)["dev"]
    again = score_dataset(best, dev, base_cfg.eval_batch_size, base_cfg.max_length)
    np.testing.assert_allclose(again.columns["pooled"], saved.columns["pooled"], rtol=0, atol=1e-6)
    assert saved.meta["data_fingerprint"] == dev.fingerprint()

    with pytest.raises(InputError, match="different experiment"):
        train(dataclasses.replace(base_cfg, lr=2e-3), reference, progress=False)


# ------------------------------------------------------------------- 2. reproducibility
def test_same_config_twice_gives_identical_outputs(base_cfg, reference, tmp_path):
    """Same config, fresh folder: metrics.json, curve.tsv and the score tables are byte-equal.
    A different seed changes the curve, so the comparison can tell runs apart."""
    train(base_cfg, tmp_path / "again", progress=False)
    for name in ("metrics.json", "curve.tsv", "scores/dev.tsv", "scores/test.tsv"):
        assert (tmp_path / "again" / name).read_bytes() == (reference / name).read_bytes(), name
    assert json.loads((tmp_path / "again" / "timing.json").read_text())["sessions"] == 1  # time: the one file that differs
    train(dataclasses.replace(base_cfg, seed=1), tmp_path / "seed1", progress=False)
    assert (tmp_path / "seed1" / "curve.tsv").read_bytes() != (reference / "curve.tsv").read_bytes()


def test_transfer_then_adapt_starts_from_the_saved_model(base_cfg, reference, tmp_path):
    """TANDA: `init_from` continues from a saved model on another dataset (TREC-QA here), so the
    adapted run's step-0 dev scores are the saved model's own, not a fresh backbone's."""
    cfg = dataclasses.replace(base_cfg, name="adapt", dataset="trecqa", epochs=1, init_from=str(reference / "best"))
    metrics = train(cfg, tmp_path, progress=False)
    dev = load_splits(cfg)["dev"]
    start = ScoreTable.load(tmp_path / "trace" / "dev_step000000.tsv").columns["pooled"]
    saved = score_dataset(CerberusForRanking.from_pretrained(reference / "best"), dev, max_length=cfg.max_length)
    fresh = score_dataset(training.build_model(base_cfg), dev, max_length=cfg.max_length)
    np.testing.assert_allclose(start, saved.columns["pooled"], atol=1e-6)
    assert not np.allclose(start, fresh.columns["pooled"], atol=1e-3)
    assert metrics["test"]["pooled"]["n_questions"] == len(load_splits(cfg)["test"])


def test_init_from_a_model_of_another_shape_is_refused_before_writing(base_cfg, reference, tmp_path):
    cfg = dataclasses.replace(base_cfg, init_from=str(reference / "best"), num_heads=3)
    with pytest.raises(InputError, match=r"best/config\.json: init_from model does not match the config: "
                                         r"num_heads 1 \(config: 3\)"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------ 3. resuming
@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_checkpoint(base_cfg, reference, tmp_path, count_steps):
    """A training process is SIGKILLed as soon as it has committed a checkpoint (wherever it
    happens to be then: writing the curve, the next checkpoint, training); the same config in
    the same folder continues from that checkpoint (it trains only the remaining steps) and
    ends with the metrics and curve of the uninterrupted run (to 1e-6; in practice equal)."""
    out = tmp_path / "run"
    script, cfg_file = write_script(tmp_path, base_cfg)
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = subprocess.Popen([sys.executable, str(script), str(cfg_file), str(out), "as-is"],
                                cwd=REPO, env=python_env(), stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while not (out / "checkpoint" / "state.json").is_file():
                assert proc.poll() is None, f"training died early:\n{(tmp_path / 'stderr.txt').read_text()[-3000:]}"
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()
    resumed_from = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
    assert 0 < resumed_from < TOTAL_STEPS

    # the kill may land between the checkpoint and timing.json: then the first attempt's time is lost
    before = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else {
        "sessions": 0, "train_seconds": 0.0}
    train(base_cfg, out, progress=False)
    assert count_steps.calls == TOTAL_STEPS - resumed_from, "it did not continue from the checkpoint"
    assert curve_diff(out, reference) <= 1e-6
    assert metrics_diff(out, reference) <= 1e-6
    timing = json.loads((out / "timing.json").read_text())  # wall time adds up over the two sessions
    assert (timing["sessions"], timing["step"]) == (before["sessions"] + 1, TOTAL_STEPS)
    assert timing["train_seconds"] > before["train_seconds"] and device_name() in timing["devices"]


def _crash_in(monkeypatch, where: str, at_call: int) -> None:
    """Raise (like a crash: nothing after it runs) at the `at_call`-th write of `where`."""
    calls = []

    def fault(real, predicate):
        def wrapped(*args, **kwargs):
            if predicate(*args):
                calls.append(1)
                if len(calls) == at_call:
                    raise KeyboardInterrupt(f"simulated crash in {where}")
            return real(*args, **kwargs)
        return wrapped

    if where == "optimizer":  # after the weights of a checkpoint are written, before the rest
        monkeypatch.setattr(checkpoint, "save_file", fault(
            checkpoint.save_file, lambda tensors, path, *a: Path(path).name.startswith("optimizer")))
    else:  # the curve of a checkpoint
        monkeypatch.setattr(training, "write_curve", fault(training.write_curve, lambda *a: True))


@pytest.mark.parametrize("where", ["optimizer", "curve"])
def test_crash_inside_a_checkpoint_write_is_recovered(base_cfg, reference, tmp_path, monkeypatch, count_steps, where):
    """A crash half-way through writing a checkpoint (the weights written but not the
    optimizer state; or the checkpoint written but not the curve) must not leave a
    checkpoint whose parts belong to different steps: the resumed run still ends equal to
    the uninterrupted one."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _crash_in(patch, where, at_call=3)  # the 3rd checkpoint: step 6
        with pytest.raises(KeyboardInterrupt):
            train(base_cfg, out, progress=False)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert 0 < state["step"] < TOTAL_STEPS
    count_steps.calls = 0
    train(base_cfg, out, progress=False)
    assert count_steps.calls == TOTAL_STEPS - state["step"]
    assert curve_diff(out, reference) <= 1e-6
    assert metrics_diff(out, reference) <= 1e-6
    assert (out / "curve.tsv").read_text() == (reference / "curve.tsv").read_text()


# ------------------------------------------------------------------ 4. distillation
@pytest.fixture(scope="module")
def teachers(base_cfg, tmp_path_factory) -> list[str]:
    """Two synthetic teachers for the whole train split, keyed by (qid, cand_idx): a good
    one (margin +-4 by the gold label, plus noise) and a noisy one."""
    root = tmp_path_factory.mktemp("teachers")
    full = load_as2("wikiqa", split="train", filter=base_cfg.train_filter, data_root=DATA)
    labels = full.pair_arrays()[2]
    rng = np.random.default_rng(0)
    margins = {"good": 4.0 * (2 * labels - 1) + rng.normal(0, 1, len(labels)),
               "noisy": rng.normal(0, 2, len(labels))}
    folders = []
    for name, m in margins.items():
        ScoreTable.for_dataset(full, {"score": m}, {"teacher": name}).save(root / name / "train.tsv")
        folders.append(str(root / name))
    return folders


@pytest.fixture(scope="module")
def distilled(base_cfg, teachers, tmp_path_factory) -> dict[str, tuple[TrainConfig, Path]]:
    """A cerberus and a replicated student, 2 copied heads, every dropout off."""
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "build_model", build_without_dropout)
        for strategy, extra in [("cerberus", {}), ("replicated", {"teacher_index": 0})]:
            cfg = dataclasses.replace(base_cfg, name=strategy, strategy=strategy, teachers=teachers,
                                      num_heads=2, head_layers=1, head_init="copy", **extra)
            out = tmp_path_factory.mktemp(strategy)
            train(cfg, out, progress=False)
            runs[strategy] = (cfg, out)
    return runs


def test_cerberus_heads_learn_from_their_own_teachers(distilled):
    """Per-head KD columns are logged, losses add up, copied heads start identical; under
    cerberus (different teachers) they diverge, under replicated (one teacher) they stay
    bitwise identical, which shows each head receives its own target."""
    _, run = distilled["cerberus"]
    curve = read_curve(run)
    assert {k for k in curve[0] if LOSS_COLUMNS.match(k)} == {
        "loss", "loss/head0", "loss/head1", "ce/head0", "ce/head1", "kd/head0", "kd/head1"}
    for r in curve:
        assert r["loss"] == pytest.approx(r["loss/head0"] + r["loss/head1"], abs=1e-5)
        for h in (0, 1):
            assert r[f"loss/head{h}"] == pytest.approx(0.5 * r[f"kd/head{h}"] + 0.5 * r[f"ce/head{h}"], abs=1e-5)
    # step 1 sees identical heads, but targets from different teachers
    assert curve[0]["ce/head0"] == curve[0]["ce/head1"]
    assert abs(curve[0]["kd/head0"] - curve[0]["kd/head1"]) > 1e-3
    start, end = trace(run, 0), trace(run, TOTAL_STEPS)
    np.testing.assert_array_equal(start.columns["head0"], start.columns["head1"])
    assert np.abs(end.columns["head0"] - end.columns["head1"]).max() > 1e-3
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["dev"]) == {"pooled", "head0", "head1"} and metrics["model"] == "B1 2H1"

    _, run = distilled["replicated"]
    for r in read_curve(run):
        assert r["kd/head0"] == r["kd/head1"] and r["ce/head0"] == r["ce/head1"]
    for step in (0, 9, TOTAL_STEPS):
        t = trace(run, step)
        np.testing.assert_array_equal(t.columns["head0"], t.columns["head1"])


# ------------------------------------------------------------- 5. refusing bad teacher tables
def _stale_copy(ds: AS2Dataset) -> AS2Dataset:
    """The same questions and keys, one candidate re-worded: what an edited data file gives."""
    q = ds.questions[0]
    edited = Question(q.qid, q.text, (q.candidates[0] + " (edited)",) + q.candidates[1:], q.labels)
    return AS2Dataset(ds.name, ds.split, [edited, *ds.questions[1:]], ds.source, ds.filter)


def test_teacher_tables_must_match_the_data(base_cfg, teachers, tmp_path):
    """load_teacher_margins accepts tables made for the full split (or exactly for the training
    subset) and aligns them by (qid, cand_idx); it refuses a table made for other data with
    the same keys (stale fingerprint), one with no fingerprint, one with a NaN; train() refuses
    before any step is taken."""
    cfg = dataclasses.replace(base_cfg, strategy="single", num_heads=1, teacher_index=0)
    train_ds = load_splits(cfg)["train"]
    full = load_as2("wikiqa", split="train", filter=cfg.train_filter, data_root=DATA)
    good = ScoreTable.load(Path(teachers[0]) / "train.tsv")
    by_key = dict(zip(zip(good.qids, good.cand_idx.tolist()), good.columns["score"]))
    expected = [by_key[k] for k in train_ds.keys()]

    margins = load_teacher_margins(dataclasses.replace(cfg, teachers=teachers), train_ds)
    assert margins.shape == (90, 2)
    np.testing.assert_allclose(margins[:, 0].numpy(), expected, rtol=1e-6)

    def folder(name: str, ds: AS2Dataset, meta: dict | None = None) -> str:
        """A teacher folder whose table holds the good teacher's margins for `ds`'s keys."""
        table = ScoreTable.for_dataset(ds, {"score": np.array([by_key[k] for k in ds.keys()])}, {})
        if meta is not None:
            table.meta = meta
        table.save(tmp_path / name / "train.tsv")
        return str(tmp_path / name)

    exact = folder("exact", train_ds)  # made for exactly the training subset: fine
    np.testing.assert_allclose(load_teacher_margins(dataclasses.replace(cfg, teachers=[exact]), train_ds)[:, 0].numpy(),
                               expected, rtol=1e-6)

    stale = folder("stale", _stale_copy(full))
    with pytest.raises(InputError, match="stale"):
        load_teacher_margins(dataclasses.replace(cfg, teachers=[teachers[0], stale]), train_ds)
    # no data_fingerprint; dataset/split/filter stay, as a saved table needs them for its labels
    unknown = folder("unknown", full, meta={"dataset": "wikiqa", "split": "train", "filter": full.filter})
    with pytest.raises(InputError, match="data_fingerprint"):
        load_teacher_margins(dataclasses.replace(cfg, teachers=[unknown]), train_ds)

    nan_dir = tmp_path / "nan"
    nan_dir.mkdir()
    lines = (Path(teachers[0]) / "train.tsv").read_text().splitlines(keepends=True)
    qid, idx, _ = lines[5].rstrip("\n").split("\t")  # qid cand_idx score: saved tables hold no labels
    lines[5] = f"{qid}\t{idx}\tnan\n"
    (nan_dir / "train.tsv").write_text("".join(lines))
    (nan_dir / "train.tsv.json").write_text((Path(teachers[0]) / "train.tsv.json").read_text())
    with pytest.raises(InputError, match="NaN"):
        load_teacher_margins(dataclasses.replace(cfg, teachers=[str(nan_dir)]), train_ds)

    for bad in (stale, str(nan_dir)):
        out = tmp_path / f"run-{Path(bad).name}"
        with pytest.raises(InputError):
            train(dataclasses.replace(cfg, teachers=[bad]), out, progress=False)
        assert not (out / "checkpoint").exists() and not (out / "curve.tsv").exists()


# ------------------------------------------------------------------ 6. two processes
@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [10, 9])
def test_two_processes_match_one(distilled, tmp_path, batch_size):
    """torchrun --nproc_per_node 2 (gloo, CPU) trains the cerberus student of test 4 to the
    same result as one process.

    A global batch of 10 pairs splits 5/5 (90 pairs = 9 full batches, no ragged last batch),
    each process takes the mean loss over its pairs and DDP averages the two gradients: that
    is exactly the full-batch mean gradient. A batch of 9 splits 5/4: each process's mean is
    weighted by its share of the batch (10/9, 8/9), so the average is again the full-batch
    mean (unweighted, it would be a mean of means), and so are the logged losses. Dropout is off in both runs (it
    would draw different masks). What remains is float summation order (two half-batch sums
    and an all-reduce instead of one sum, padding to each half's own longest pair), a few
    ulps per step that Adam and 18 steps amplify: losses must agree to 1e-4 absolute, dev and
    test scores of the best model to 1e-4, and the metrics (which only change if a near-tie
    flips) to 1e-9. With batch 9, near-ties do flip: this tiny model scores many candidates within
    1e-7 of each other, and a positive moving one rank changed test MAP of head0 by 5e-4 on one
    machine and a ranking metric by 0.0104 on another (`metrics_diff`: the largest over every
    metric, column and split). So with batch 9 the metrics get no fixed bound: the curve and scores still must agree to 1e-4, and two scores
    that move by at most 1e-4 can only swap ranks when within 2e-4 of each other, which is checked:
    every question whose AP changed has two candidates that close. Without the
    weighting the curves differ by 3e-2 and the scores by 0.26 (measured).
    """
    cfg, single = distilled["cerberus"]
    if batch_size != cfg.batch_size:  # the same student, one process, on batches that split 5/4
        cfg, single = dataclasses.replace(cfg, batch_size=batch_size), tmp_path / "single"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(training, "build_model", build_without_dropout)
            train(cfg, single, progress=False)
    assert 90 % cfg.batch_size == 0
    out = tmp_path / "ddp"
    script, cfg_file = write_script(tmp_path, cfg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(cfg_file), str(out), "no-dropout"]
    done = subprocess.run(cmd, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 2 * 90 // batch_size

    loss_diff = curve_diff(out, single)
    score_diff = max(
        np.abs(ScoreTable.load(out / "scores" / f"{role}.tsv").columns[c]
               - ScoreTable.load(single / "scores" / f"{role}.tsv").columns[c]).max()
        for role in ("dev", "test") for c in ("pooled", "head0", "head1"))
    metric_diff = metrics_diff(out, single)
    print(f"\n1 vs 2 processes, batch {batch_size}: curve {loss_diff:.2e}, scores {score_diff:.2e}, metrics {metric_diff:.2e}")
    assert loss_diff <= 1e-4
    assert score_diff <= 1e-4
    if batch_size == 10:
        assert metric_diff <= 1e-9
    else:
        assert rank_changes_are_near_ties(out, single, gap=2 * 1e-4)


def test_runs_of_different_precisions_train_in_turn_in_one_process(base_cfg, tmp_path):
    """accelerate keeps one precision per process; a notebook or `reproduce` may train an fp32 run,
    then a bf16 one (and the length-grouped batches on the way)."""
    fp32 = dataclasses.replace(base_cfg, epochs=1, evals_per_epoch=1)
    bf16 = dataclasses.replace(fp32, mixed_precision="bf16", length_grouping=3)
    first, second = train(fp32, tmp_path / "fp32", progress=False), train(bf16, tmp_path / "bf16", progress=False)
    assert (first["mixed_precision"], second["mixed_precision"]) == ("no", "bf16")
    assert 0 < second["test"]["pooled"]["map"] <= 1


def test_a_bf16_run_chooses_its_checkpoint_on_fp32_dev_scores(base_cfg, tmp_path):
    """Under bf16 autocast only the training steps run in bf16: every dev evaluation, which chooses
    the kept checkpoint, scores in fp32, so the kept step's trace is finish()'s fp32 dev table of
    the same weights. (accelerate patches the model's forward with autocast; scored through it,
    the trace differed from the fp32 table by more than the bound checked here.)"""
    cfg = dataclasses.replace(base_cfg, mixed_precision="bf16", length_grouping=3)
    out = tmp_path / "bf16"
    metrics = train(cfg, out, progress=False)
    assert metrics["mixed_precision"] == "bf16"
    steps = sorted(int(p.name[8:14]) for p in (out / "trace").glob("dev_step*.tsv"))
    dev_maps = {s: evaluate_table(trace(out, s))["pooled"]["map"] for s in steps[1:]}
    best_step = max(dev_maps, key=lambda s: (dev_maps[s], -s))
    saved = ScoreTable.load(out / "scores" / "dev.tsv")
    for column in saved.columns:
        np.testing.assert_allclose(trace(out, best_step).columns[column], saved.columns[column], rtol=0, atol=1e-6)
    best = CerberusForRanking.from_pretrained(out / "best")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the old traces held: they would fail the check above
        autocast = score_dataset(best, load_splits(cfg)["dev"], cfg.eval_batch_size, cfg.max_length)
    assert max(np.abs(autocast.columns[c] - saved.columns[c]).max() for c in saved.columns) > 1e-5


def test_pairs_tokenized_once_give_the_tensors_of_tokenizing_each_batch(base_cfg):
    """The loop tokenizes its training pairs once; a step's slice of them is what tokenizing the
    step's pairs with padding gives (ids, token types, mask, dtype), padded right or left, also for
    a pair cut to max_length, and its lengths are what length grouping sorted before."""
    from cerberus_core.model.batching import encode_pairs, pair_lengths

    tokenizer = BertTokenizerFast.from_pretrained(base_cfg.backbone)
    pairs = load_splits(base_cfg)["train"].pairs() + [("why " * 60, "because " * 90)]
    for side in ("right", "left"):
        tokenizer.padding_side = side
        inputs = training.TrainInputs(tokenizer, pairs, base_cfg.max_length)
        assert torch.equal(inputs.lengths, pair_lengths(tokenizer, pairs, base_cfg.max_length))
        for batch in torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0)).split(7):
            want = encode_pairs(tokenizer, [pairs[j] for j in batch], base_cfg.max_length, padding=True,
                                return_tensors="pt")
            got = inputs.batch(batch)
            assert got.keys() == want.keys() == {"input_ids", "token_type_ids", "attention_mask"}
            for name, value in want.items():
                assert got[name].dtype == value.dtype and torch.equal(got[name], value), (side, name)


def test_scoring_after_an_optimizer_step_sees_the_new_weights(base_cfg):
    """The fused AdamW leaves version counters alone; the loop's optimizer bumps them, else the
    stacked head weights cached by a dev evaluation would score the next one with old weights."""
    cfg = dataclasses.replace(base_cfg, num_heads=2)
    model = training.build_model(cfg)
    pairs = load_splits(cfg)["dev"].pairs()[:12]
    optimizer = training._optimizer(model, cfg)
    model.predict(pairs)  # fills the cache
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    cached = model.predict(pairs, return_heads=True)[1]
    model.batched_heads = False  # the per-head reference path keeps no cache
    np.testing.assert_allclose(cached, model.predict(pairs, return_heads=True)[1], rtol=0, atol=1e-5)
