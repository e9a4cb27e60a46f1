"""Hostile inputs, end to end through the command line.

Every case runs `cerberus_core.orchestration.cli.main(argv)`, the function behind `python -m cerberus_core`,
and must end in exit 0 with correct output, or exit 2 with one `error:` line on stderr that
names the file or the value; an exception escaping `main` (a traceback for the user) fails
the test. Nothing of the user's may be removed or half-written. Most cases run in this process
(a fresh interpreter per case would cost the import of torch each time); the run-folder lock
is tested against a real second process, and the last test runs cases in a fresh interpreter.

Everything is tiny: a 10-question TSV written here, the 3-layer embedded encoder `minilm-l3`,
max_length 32, 4 training questions (2 steps). The whole file takes a few minutes on 2 cores.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cerberus_core.orchestration.cli import main
from cerberus_core.errors import InputError
from cerberus_core.results.runlock import LOCK_NAME, run_lock
from conftest import numbers

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ helpers
class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"exit {self.code}\nstdout: {self.out[-1500:]}\nstderr: {self.err[-1500:]}"

    @property
    def messages(self) -> list[str]:
        """Our own stderr lines (progress bars of tqdm are not messages)."""
        return [line for line in self.err.splitlines() if line.startswith(("error:", "warning:", "cerberus:"))]


def cli(*args: str | Path, cwd: Path | None = None) -> Result:
    """main(argv) with stdout/stderr captured; argparse's exit is an exit code, anything else raised
    is a traceback the user would see, and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(before)
    return Result(code, out.getvalue(), err.getvalue())


def refused(result: Result, *expected: str) -> None:
    """Exit 2, exactly one message line, an `error:` naming what is expected, no traceback."""
    assert result.code == 2, result
    assert "Traceback" not in result.err, result
    errors = [line for line in result.err.splitlines() if line.strip() and not line.startswith(("scoring", "\r"))]
    assert len(errors) == 1 and errors[0].startswith(("error:", "cerberus")), result
    for text in expected:
        assert text in errors[0], f"{text!r} not in {errors[0]!r}"


def ok(result: Result) -> None:
    assert result.code == 0, result
    assert "Traceback" not in result.err and not any(m.startswith("error:") for m in result.messages), result


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, to show nothing of the user's changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def same_metrics(a: Path, b: Path) -> None:
    """The same numbers; code_version names the repository's commit, which may move between the two runs."""
    ma, mb = (numbers({k: v for k, v in json.loads(p.read_text()).items() if k != "code_version"}) for p in (a, b))
    assert ma.keys() == mb.keys()
    for key in ma:
        if isinstance(ma[key], float):
            assert math.isclose(ma[key], mb[key], abs_tol=1e-6), key
        else:
            assert ma[key] == mb[key], key


# ------------------------------------------------------------------------------ fixtures
TOPICS = ["paris france capital", "nile river africa", "hamlet play shakespeare", "water h2o molecule",
          "everest mountain height", "python language guido", "moon earth orbit", "bach composer organ",
          "tokyo japan city", "oxygen gas element"]


def write_data(folder: Path) -> dict[str, Path]:
    """qa.tsv: 10 questions x 4 candidates, one positive each; one.tsv: a single question;
    nopos.tsv: questions without a positive (the clean filter leaves none)."""
    rows = ["question\tcandidate\tlabel"]
    for i, topic in enumerate(TOPICS):
        words = topic.split()
        for c in range(4):
            other = TOPICS[(i + c) % len(TOPICS)].split()
            rows.append(f"what about {words[0]} and {words[1]}?\tthis sentence is on {' '.join(other)} number {c}\t"
                        f"{int(c == 0)}")
    files = {"qa": folder / "qa.tsv", "one": folder / "one.tsv", "nopos": folder / "nopos.tsv"}
    files["qa"].write_text("\n".join(rows) + "\n")
    files["one"].write_text("\n".join(rows[:5]) + "\n")
    files["nopos"].write_text("\n".join([rows[0]] + [r[:-1] + "0" for r in rows[1:9]]) + "\n")
    return files


def tiny_config(data: Path, **extra) -> list[str]:
    values = {"backbone": "minilm-l3", "dataset": str(data), "test_split": None, "train_questions": 4,
              "max_length": 32, "batch_size": 8, "eval_batch_size": 64, "checkpoint_every": 1, "epochs": 1,
              "mixed_precision": "no", **extra}
    return [arg for k, v in values.items() for arg in ("--set", f"{k}={json.dumps(v)}")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data files, a saved 2-head model (untrained: evaluate needs no training) and damaged
    copies of it, and a teacher trained by a real `train-teacher` process into an existing empty
    folder. While that process trains, a second run into the same folder is started here: it
    must be refused at once, naming the holder's pid."""
    from cerberus_core.model.modeling import CerberusForRanking

    root = tmp_path_factory.mktemp("hostile")
    files = write_data(root)
    model = CerberusForRanking.from_backbone("minilm-l3", body_layers=2, num_heads=2, head_layers=1)
    model.save_pretrained(root / "model")
    teacher = root / "teacher"
    teacher.mkdir()
    args = ["train-teacher", "--out", str(teacher), *tiny_config(files["qa"])]
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, min(2, os.cpu_count() or 1))), PYTHONUNBUFFERED="1")
    with (root / "teacher.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cerberus_core", *args], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not _lock_holder(teacher):
                assert proc.poll() is None, (root / "teacher.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the teacher run never took its lock"
                time.sleep(0.05)
            second = cli(*args)
            other_lr = cli(*args, "--set", "lr=0.001")
            assert proc.poll() is None, "the first run ended before the second was tried: the test proves nothing"
            proc.wait(timeout=400)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, (root / "teacher.log").read_text()[-3000:]
    return {"root": root, **files, "model": root / "model", "teacher": teacher, "second": second,
            "other_lr": other_lr, "pid": proc.pid}


def _lock_holder(folder: Path) -> str:
    """The pid in a run folder's lock file ("" while there is none)."""
    with contextlib.suppress(OSError):
        return (folder / LOCK_NAME).read_text().strip()
    return ""


def damaged_copy(world, folder: Path, damage) -> Path:
    """A copy of the saved 2-head model at `folder`, then damaged."""
    shutil.copytree(world["model"], folder)
    damage(folder)
    return folder


def set_heads(n: int):
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["num_heads"] = n
        (folder / "config.json").write_text(json.dumps(config))
    return damage


def truncate(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def empty(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"")


def garbage_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "cerberus", oops\n')


def pickle_only(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def weights_as(dtype: str):
    """The same tensors under the same names and shapes, stored in another dtype."""
    def damage(folder: Path) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "model.safetensors")
        save_file({k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in weights.items()},
                  folder / "model.safetensors", metadata={"format": "pt"})
    return damage


def lost_vocabulary(folder: Path) -> None:
    """A tokenizer folder missing its vocabulary: transformers still loads it, reading all as [UNK]."""
    (folder / "tokenizer.json").unlink()


MARKER = "ran.txt"  # what the custom code below writes beside itself when it is run


def custom_code(config: str = "tokenizer_config.json"):
    """A folder whose config names a class in a .py file beside it (`auto_map`), as the hub allows:
    run, the file writes MARKER."""
    def damage(folder: Path) -> None:
        (folder / "custom.py").write_text(f"open({str(folder / MARKER)!r}, 'w').write('ran')\n"
                                          "from transformers import BertTokenizerFast as CustomTokenizer\n"
                                          "from transformers import BertModel as CustomModel\n")
        values = json.loads((folder / config).read_text())
        if config == "tokenizer_config.json":
            values.update(tokenizer_class="CustomTokenizer", auto_map={"AutoTokenizer": [None, "custom.CustomTokenizer"]})
        else:
            values.update(auto_map={"AutoModel": "custom.CustomModel"})
        (folder / config).write_text(json.dumps(values, indent=1))
    return damage


# ------------------------------------------------------------------ 1. output paths
def test_the_run_folder_is_locked_while_a_run_writes(world):
    """Two runs into one folder: the second is refused at once, naming the folder and the pid of
    the first; one with another learning rate too (by the lock or, once the first has written
    its config, as a different experiment). The folder ends with the first run's config and
    outputs, and without a lock file."""
    teacher = world["teacher"]
    refused(world["second"], f"error: {teacher}: another run (pid {world['pid']}) is writing to this run folder")
    refused(world["other_lr"], str(teacher))
    assert "another run" in world["other_lr"].err or "different experiment" in world["other_lr"].err
    assert json.loads((teacher / "config.json").read_text())["lr"] == 5e-5
    metrics = json.loads((teacher / "metrics.json").read_text())
    assert metrics["dev"]["pooled"]["n_questions"] == 10
    assert not (teacher / LOCK_NAME).exists()


def test_a_killed_holder_leaves_no_lock(tmp_path):
    """flock belongs to the process: SIGKILL releases it, and the next run takes the file over."""
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cerberus_core.results.runlock import run_lock\n"
         "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)", str(folder)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"run: another run \(pid {holder.pid}\) is writing"):
            with run_lock(folder):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
    assert (folder / LOCK_NAME).is_file()  # left by the killed process: no longer locked
    with run_lock(folder):
        assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (folder / LOCK_NAME).exists() and folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("target", ["folder", "dot", "file", "missing-parent"])
def test_evaluate_out(world, tmp_path, target):
    """--out FOLDER and --out . write FOLDER/scores.tsv beside the user's files; --out FILE
    replaces that file; a missing parent is created."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    out, expect = {"folder": (user, user / "scores.tsv"), "dot": (".", user / "scores.tsv"),
                   "file": (user / "keep.txt", user / "keep.txt"),
                   "missing-parent": (user / "a" / "b" / "s.tsv", user / "a" / "b" / "s.tsv")}[target]
    result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--max-length", "32",
                 "--out", out, cwd=user)
    ok(result)
    assert "eval  pooled" in result.out and "head1" in result.out
    from cerberus_core.results.scores import ScoreTable

    assert ScoreTable.load(expect).head_columns() == ["head0", "head1"]
    if target != "file":
        assert (user / "keep.txt").read_text() == "mine"
    assert not [p for p in user.rglob(".*")], "temporaries left behind"


@pytest.mark.parametrize("case", ["out-is-parent-file", "scores.tsv-is-a-folder", "sidecar-is-a-folder"])
def test_evaluate_out_refused_before_scoring(world, tmp_path, case):
    user = tmp_path / "user"
    user.mkdir()
    (user / "file.txt").write_text("mine")
    if case == "out-is-parent-file":
        out, named = user / "file.txt" / "s.tsv", user / "file.txt"
    elif case == "scores.tsv-is-a-folder":
        (user / "scores.tsv").mkdir()
        (user / "scores.tsv" / "inside.txt").write_text("mine too")
        out, named = user, user / "scores.tsv"
    else:
        (user / "s.tsv.json").mkdir()
        out, named = user / "s.tsv", user / "s.tsv.json"
    before = snapshot(user)
    result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--out", out)
    refused(result, str(named))
    assert "scoring" not in result.err, "the output path must be checked before scoring"
    assert snapshot(user) == before


@pytest.mark.parametrize("target", ["folder", "dot", "file", "missing-parent"])
def test_score_out(world, tmp_path, target):
    """score writes <split>.tsv into its --out folder; a file there is refused untouched."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    out = {"folder": user, "dot": ".", "file": user / "keep.txt", "missing-parent": user / "a" / "b"}[target]
    result = cli("score", "--model", world["model"], "--data", world["qa"], "--split", "test",
                 "--max-length", "32", "--out", out, cwd=user)
    if target == "file":
        refused(result, str(user / "keep.txt"), "expected a folder")
    else:
        ok(result)
        folder = user / "a" / "b" if target == "missing-parent" else user
        assert (folder / "test.tsv").is_file() and (folder / "test.tsv.json").is_file()
    assert (user / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("target", ["folder", "dot", "file", "missing-parent", "parent-is-a-file"])
def test_bench_out(world, tmp_path, target):
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    out, expect = {"folder": (user, user / "bench.json"), "dot": (".", user / "bench.json"),
                   "file": (user / "keep.txt", user / "keep.txt"),
                   "missing-parent": (user / "a" / "b.json", user / "a" / "b.json"),
                   "parent-is-a-file": (user / "keep.txt" / "b.json", None)}[target]
    result = cli("bench", world["model"], "--data", world["qa"], "--repeats", "1", "--warmup", "0",
                 "--batch-sizes", "2", "--seq-len", "16", "--out", out, cwd=user)
    if expect is None:
        refused(result, str(user / "keep.txt"), "is a file")
        assert (user / "keep.txt").read_text() == "mine"
        return
    ok(result)
    assert [row["name"] for row in json.loads(expect.read_text())["rows"]] == [str(world["model"])]
    if target != "file":
        assert (user / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("command", ["train-teacher", "distill"])
@pytest.mark.parametrize("case", ["out-is-a-file", "dot-holds-files-of-a-run-name", "folder-holds-best",
                                  "folder-holds-metrics-and-checkpoint"])
def test_train_out_refused_untouched(world, tmp_path, command, case):
    """A run writes into a new or empty folder or its own run folder: never over a file, nor over
    files named like a run's outputs (best/, checkpoint/, curve.tsv ...) that are not a run's."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    if case == "out-is-a-file":
        out, named, why = user / "keep.txt", user / "keep.txt", "is a file"
    elif case == "dot-holds-files-of-a-run-name":
        (user / "curve.tsv").write_text("my own curve\n")
        out, named, why = ".", ".", "holds curve.tsv but no config.json"
    elif case == "folder-holds-best":
        (user / "best").mkdir()
        (user / "best" / "paper.pdf").write_bytes(b"%PDF")
        out, named, why = user, user, "holds best but no config.json"
    else:  # what another tool's run folder may hold
        (user / "checkpoint").mkdir()
        (user / "checkpoint" / "weights.pt").write_bytes(b"weights")
        (user / "metrics.json").write_text("{}")
        out, named, why = user, user, "holds checkpoint but no config.json"
    before, names = snapshot(user), sorted(p.name for p in user.iterdir())
    result = cli(command, "--out", out, *tiny_config(world["qa"]), cwd=user)
    refused(result, f"error: {named}:", why)
    assert snapshot(user) == before and sorted(p.name for p in user.iterdir()) == names


def test_distill_from_scored_teacher_into_a_missing_parent(world, tmp_path):
    """The chain score -> distill works end to end, and --out's missing parents are created."""
    tables = tmp_path / "tables"
    ok(cli("score", "--model", world["teacher"], "--data", world["qa"], "--split", "train", "--max-length", "32",
           "--out", tables))
    out = tmp_path / "new" / "parent" / "student"
    result = cli("distill", "--out", out, *tiny_config(world["qa"], strategy="single", teachers=[str(tables)]))
    ok(result)
    assert "dev   pooled" in result.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["pooled"]["n_questions"] == 10 and not (out / LOCK_NAME).exists()


# ------------------------------------------------------- 2. config values, before anything is written
@pytest.mark.parametrize("setting, expected", [
    ({"checkpoint_every": 0}, "config field 'checkpoint_every' must be >= 1, got 0"),
    ({"eval_batch_size": 0}, "config field 'eval_batch_size' must be between 1 and 4096, got 0"),
    ({"strategy": "single", "num_heads": 2, "teachers": ["a", "b"], "teacher_index": 0},
     "strategy 'single' distils into one head, but num_heads=2"),
    ({"strategy": "replicated", "num_heads": 2, "teachers": ["a", "b"], "teacher_index": 5},
     "config field 'teacher_index' is 5, but there are 2 teachers (valid: 0 to 1)"),
    ({"strategy": "replicated", "num_heads": 2, "teachers": ["a", "b"]}, "needs teacher_index (0 to 1)"),
    ({"strategy": "cerberus", "num_heads": 3, "teachers": ["a", "b"]}, "cerberus needs one head per teacher"),
    ({"strategy": "ensemble", "teachers": []}, "strategy 'ensemble' needs teacher score tables"),
    ({"lr": float("nan")}, "config field 'lr' must be a finite number, got nan"),
    ({"lr": 0}, "config field 'lr' must be > 0, got 0"),
    ({"seed": -1}, "config field 'seed' must be between 0 and 4294967295, got -1"),
    ({"body_layers": -1}, "config field 'body_layers' must be between 0 and 128, got -1"),
    ({"body_layers": 7}, "body_layers=7 + head_layers=1 must fit the backbone's 3 layers (minilm-l3)"),
    ({"head_layers": 4}, "body_layers=-1 + head_layers=4 must fit the backbone's 3 layers"),
    ({"temperature": 0}, "config field 'temperature' must be > 0, got 0"),
    ({"alpha": 2}, "config field 'alpha' must be between 0 and 1, got 2"),
    ({"mixed_precision": "fp64"}, "config field 'mixed_precision' must be one of ['auto', 'bf16', 'fp16', 'no'], got 'fp64'"),
    ({"train_questions": -1}, "config field 'train_questions' must be >= 1, got -1"),
    ({"teachers": [1, 2]}, "config field 'teachers' expects a list of folder paths (strings), got 1"),
    ({"warmup": -1}, "config field 'warmup' must be between 0 and 1, got -1"),
    ({"max_length": 600}, "config field 'max_length' is 600, but the model"),
    ({"batch_size": True}, "config field 'batch_size' expects int, got True"),
    ({"name": None}, "config field 'name' must not be null"),
    ({"dev_split": "validation"}, "config field 'dev_split' must be one of ['dev', 'test', 'train']"),
    ({"init_from": "{damaged:heads3}"}, "the weights do not fit config.json: 20 missing (first: heads.2."),
    ({"init_from": "{damaged:truncated}"}, "model.safetensors: is truncated or not a safetensors file"),
    ({"backbone": "{damaged:pickle}"}, "holds only pytorch_model.bin"),
    ({"backbone": "/no/such/encoder"}, "/no/such/encoder: backbone: no such model folder"),
    ({"init_from": "{teacher}"}, "init_from: not a CERBERUS model saved by save_pretrained (model_type None); "),
    ({"backbone": "{teacher_best}"}, "backbone: a saved CERBERUS model, not an encoder; to continue from it, set init_from"),
    ({"eval_filter": "clean", "dataset": "{nopos}"}, "has no question under filter 'clean'"),
])
def test_bad_config_is_refused_before_anything_is_written(world, tmp_path, setting, expected):
    damaged = {"heads3": set_heads(3), "truncated": truncate, "pickle": pickle_only}
    values = {}
    for key, value in setting.items():
        if isinstance(value, str) and value.startswith("{damaged:"):
            name = value[len("{damaged:"):-1]
            value = str(damaged_copy(world, tmp_path / "model", damaged[name]))
        elif value == "{nopos}":
            value = str(world["nopos"])
        elif value == "{teacher}":  # a run folder, not its best/ model
            value = str(world["teacher"])
        elif value == "{teacher_best}":  # a saved model where an encoder is expected
            value = str(world["teacher"] / "best")
        values[key] = value
    command = "distill" if values.get("strategy", "gold") != "gold" or "teachers" in values else "train-teacher"
    if command == "train-teacher":
        values = {k: v for k, v in values.items() if k not in ("strategy", "num_heads")}
    result = cli(command, "--out", tmp_path / "run", *tiny_config(world["qa"], **{"dataset": str(world["qa"]), **values}))
    refused(result, expected)
    assert not (tmp_path / "run").exists(), "a refused experiment must leave nothing behind"
    if "checkpoint_every" in setting:  # the corrected run into the same folder is not blocked by anything
        assert not (tmp_path / "run" / "config.json").exists()


def test_a_config_file_error_names_the_file_and_line(world, tmp_path):
    config = tmp_path / "exp.json"
    config.write_text('{\n "backbone": "minilm-l3",\n "lr": -0.5,\n "epochs": 1\n}\n')
    refused(cli("distill", "--out", tmp_path / "run", "--config", config),
            f"{config}:3: config field 'lr' must be > 0, got -0.5")
    config.write_text('{\n "backbone": "minilm-l3",\n "lr": 0.5,,\n}\n')
    refused(cli("distill", "--out", tmp_path / "run", "--config", config), f"{config}:3: expected a JSON experiment config")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------- 3. strict model loading
@pytest.mark.parametrize("damage, expected", [
    (set_heads(3), ["the weights do not fit config.json: 20 missing (first: heads.2.encoder.layer.0.attention"]),
    (set_heads(1), ["the weights do not fit config.json: 20 unexpected (first: heads.1.encoder"]),
    (truncate, ["model.safetensors: is truncated or not a safetensors file"]),
    (empty, ["model.safetensors: is empty"]),
    (garbage_config, ["config.json:1: not valid JSON"]),
    (pickle_only, ["holds only pytorch_model.bin (pickled weights, which are never loaded)"]),
    (set_heads("2"), ["config.json: ", "num_heads", "'2'"]),
    (weights_as("float16"), ["77 of another dtype (first: body.embeddings.LayerNorm.bias is F16, the model needs F32)"]),
    (weights_as("int64"), ["77 of another dtype (first: body.embeddings.LayerNorm.bias is I64, the model needs F32)"]),
    (lost_vocabulary, ["the tokenizer does not read text: 'what is the capital of france' comes back as '[UNK] "]),
    (custom_code(), ["tokenizer_config.json: names custom code to import (auto_map); code in a model folder is never run"]),
    (custom_code("config.json"), ["config.json: names custom code to import (auto_map)"]),
], ids=["config-says-3-heads", "config-says-1-head", "truncated", "empty", "garbage-config", "pickle-only",
        "num-heads-a-string", "float16-weights", "integer-weights", "tokenizer-lost-its-vocabulary",
        "custom-tokenizer-code", "custom-model-code"])
@pytest.mark.parametrize("command", ["evaluate", "bench", "from_pretrained"])
def test_a_model_that_does_not_fit_its_weights_is_refused(world, tmp_path, command, damage, expected, monkeypatch):
    """Refused before anything is scored: weights that are not exactly config.json's tensors (names,
    shapes, dtypes), a tokenizer that cannot read text, a folder naming code to run (never run,
    whatever stdin answers: transformers would ask there, and run it on `y`)."""
    folder = damaged_copy(world, tmp_path / "model", damage)
    before = snapshot(folder)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\n"))
    if command == "from_pretrained":
        from cerberus_core.model.modeling import CerberusForRanking

        with pytest.raises(InputError) as err:
            CerberusForRanking.from_pretrained(folder)
        assert str(folder) in str(err.value) and all(e in str(err.value) for e in expected), err.value
        assert "\n" not in str(err.value)
    elif command == "evaluate":
        refused(cli("evaluate", "--model", folder, "--data", world["qa"]), str(folder), *expected)
    else:
        refused(cli("bench", folder, "--data", world["qa"], "--repeats", "1"), str(folder), *expected)
    assert snapshot(folder) == before and not (folder / MARKER).exists()
    assert sys.stdin.read() == "y\ny\n", "stdin must never be read"


# ----------------------------------------------------------- 4. lengths, sizes, empty selections
@pytest.mark.parametrize("args, expected", [
    (["--max-length", "0"], "argument --max-length: expected a positive integer, got 0"),
    (["--max-length", "100000"], "--max-length 100000 is more than the 512 tokens"),
    (["--batch-size", "0"], "argument --batch-size: expected a batch size from 1 to 4096, got 0"),
    (["--filter", "clean", "--data", "{nopos}"], "no question is left under filter 'clean'"),
    (["--data", "{missing}"], "no such file or folder"),
    (["--out", ""], "--out is empty"),
])
def test_evaluate_refuses_bad_sizes_before_scoring(world, args, expected):
    args = [{"{nopos}": str(world["nopos"]), "{missing}": str(world["root"] / "nope.tsv")}.get(a, a) for a in args]
    data = [] if "--data" in args else ["--data", str(world["qa"])]
    result = cli("evaluate", "--model", world["model"], *data, *args)
    refused(result, expected)
    assert "scoring" not in result.err


@pytest.mark.parametrize("args, expected", [
    (["--seq-len", "0"], "argument --seq-len: expected a positive integer, got 0"),
    (["--batch-sizes", "8", "0"], "argument --batch-sizes: expected a batch size from 1 to 4096, got 0"),
    (["--repeats", "0"], "argument --repeats: expected a positive integer, got 0"),
    (["--warmup", "-1"], "argument --warmup: expected an integer >= 0, got -1"),
    (["--threads", "0"], "argument --threads: expected a positive integer, got 0"),
    (["--seq-len", "100000"], "--seq-len 100000 is more than the 512 tokens this model's position embeddings take"),
    (["--spec", "minilm-l3:B3-2H1"], "bad model spec 'minilm-l3:B3-2H1': B3 2H1 needs at least one head and at "
                                     "most the backbone's 3 layers"),
])
def test_bench_refuses_bad_sizes(world, args, expected):
    model = args[1] if args[0] == "--spec" else str(world["model"])
    args = [] if args[0] == "--spec" else args
    result = cli("bench", model, *args, "--data", world["qa"], "--repeats", "1")
    refused(result, expected)
    assert "Loading weights" not in result.err, "checked before any weight is loaded"


def test_one_question_is_reported_without_an_interval(world):
    result = cli("evaluate", "--model", world["model"], "--data", world["one"], "--max-length", "32")
    ok(result)
    lines = [line for line in result.out.splitlines() if line.startswith("eval")]
    assert len(lines) == 3 and all("(n=1, no interval: fewer than 2 questions)" in line for line in lines)
    assert all("[" not in line for line in lines)


# ---------------------------------------------------------------------- 5. damaged checkpoints
def interrupted(world, tmp_path) -> Path:
    """A copy of the teacher run as a process killed after its last checkpoint leaves it."""
    run = tmp_path / "run"
    shutil.copytree(world["teacher"], run)
    for name in ("metrics.json", "scores"):
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    return run


def rerun(world, run: Path) -> Result:
    return cli("train-teacher", "--out", run, *tiny_config(world["qa"]))


@pytest.mark.parametrize("damage, step, then", [
    ("truncate-weights", 2, "restarting from step 0"),
    ("delete-optimizer", 2, "restarting from step 0"),
    ("garbage-state", None, "resuming from the checkpoint of step 2"),
    ("older-checkpoint", 2, "resuming from the checkpoint of step 1"),
])
def test_a_damaged_last_checkpoint_is_set_aside(world, tmp_path, damage, step, then):
    """The damaged files move to RUN/checkpoint-damaged/ (nothing is deleted), with one warning
    line; the run resumes from an older checkpoint or restarts, and ends like the original."""
    run = interrupted(world, tmp_path)
    ckpt = run / "checkpoint"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 2
    if damage == "truncate-weights":
        data = (ckpt / "model-00000002.safetensors").read_bytes()
        (ckpt / "model-00000002.safetensors").write_bytes(data[: len(data) - 100])
    elif damage == "delete-optimizer":
        (ckpt / "optimizer-00000002.safetensors").unlink()
    elif damage == "garbage-state":
        (ckpt / "state.json").write_text('{"step": 2, "best_')
    else:  # a complete older checkpoint left behind (e.g. the writer was killed while cleaning up)
        for path in list(ckpt.glob("*-00000002.*")):
            shutil.copy(path, ckpt / path.name.replace("00000002", "00000001"))
        older = json.loads((ckpt / "state-00000001.json").read_text())
        (ckpt / "state-00000001.json").write_text(json.dumps({**older, "step": 1}))
        (ckpt / "model-00000002.safetensors").write_bytes(b"")
    damaged_before = {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file() and "00000001" not in p.name}
    result = rerun(world, run)
    ok(result)
    warnings = [m for m in result.messages if m.startswith("warning:")]
    assert len(warnings) == 1 and "is damaged" in warnings[0] and then in warnings[0], result
    aside = run / "checkpoint-damaged" / (f"step{step}" if step else "state")
    assert str(aside) in warnings[0] and aside.is_dir()
    for path in aside.iterdir():  # set aside byte for byte, not deleted
        assert path.read_bytes() == damaged_before[path.name]
    assert (run / "metrics.json").is_file()
    if damage != "older-checkpoint":  # the same run, resumed or restarted, ends with the same metrics
        same_metrics(run / "metrics.json", world["teacher"] / "metrics.json")
        assert (run / "curve.tsv").read_text() == (world["teacher"] / "curve.tsv").read_text()
    assert json.loads((ckpt / "state.json").read_text())["step"] == 2


# ------------------------------------------------------------------ 6. in a fresh interpreter
def test_a_refusal_is_one_line_in_a_real_process(world, tmp_path):
    """The same rule in `python -m cerberus_core` itself (tests/test_cli.py runs more cases so):
    a model whose config.json does not fit its weights, one line, exit 2, nothing written."""
    broken = damaged_copy(world, tmp_path / "model", set_heads(3))
    args = ["evaluate", "--model", str(broken), "--data", str(world["qa"]), "--out", str(tmp_path)]
    run = subprocess.run([sys.executable, "-m", "cerberus_core", *args], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "the weights do not fit config.json: 20 missing (first: heads.2." in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "scores.tsv").exists()


# ------------------------------------------------------------------ 7. the same guards in the library
def test_a_file_never_replaces_a_folder(tmp_path):
    """A data-loss bug at its root: atomic_path used to rmtree a folder target."""
    from cerberus_core.atomic import write_text_atomic

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_text("weights")
    with pytest.raises(InputError, match="run: is a folder; refusing to replace it with a file"):
        write_text_atomic(folder, "a table")
    with pytest.raises(InputError, match="is a folder; refusing to replace it with a file"):
        write_text_atomic(tmp_path / ".", "a table")  # `--out .` as it reached atomic_path before
    assert (folder / "model.safetensors").read_text() == "weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "no temporary left behind"


def test_metrics_of_one_question_have_no_interval():
    from cerberus_core.results.metrics import metrics_with_ci

    m = metrics_with_ci(["q", "q", "q"], [0, 1, 0], [0.1, 0.9, 0.2])
    assert (m["p@1"], m["map"], m["mrr"], m["n_questions"]) == (1.0, 1.0, 1.0, 1)
    assert m["p@1_ci"] is None and m["map_ci"] is None and m["mrr_ci"] is None
    two = metrics_with_ci(["a", "a", "b", "b"], [0, 1, 1, 0], [0.1, 0.9, 0.2, 0.8])
    assert two["map_ci"][0] <= two["map"] <= two["map_ci"][1]


def test_field_types_are_read_from_the_annotations():
    """Every field gets its rule from its annotation: a float field takes an int, `X | None` may be
    null, `list[str]` is checked as a list (a field added to TrainConfig is checked with no table to update)."""
    import dataclasses

    from cerberus_core.training.config import TYPES, TrainConfig

    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(TYPES)
    assert TYPES["temperature"] == ((int, float), False)
    assert TYPES["init_from"] == ((str,), True)
    assert TYPES["teachers"] == ((list,), False)
    assert TYPES["epochs"] == ((int,), False)


# ------------------------------------------------------- 8. code in a model folder, on every load path
def backbone_copy(tmp_path: Path, damage) -> Path:
    """The embedded minilm-l3 encoder as a plain Hugging Face folder, then damaged."""
    from cerberus_core.model.zoo import resolve_model

    folder = tmp_path / "encoder"
    shutil.copytree(resolve_model("minilm-l3"), folder)
    damage(folder)
    return folder


@pytest.mark.parametrize("config", ["tokenizer_config.json", "config.json"])
@pytest.mark.parametrize("path", ["bench", "bench-spec", "train-teacher", "distill-config", "from_backbone"])
def test_a_backbone_folder_naming_code_is_refused_on_every_path(world, tmp_path, monkeypatch, path, config):
    """Answering `y` on stdin (as a pipe would) changes nothing: the folder is refused in one line
    before transformers reads it, its code never runs, stdin is never read, nothing is written."""
    folder = backbone_copy(tmp_path, custom_code(config))
    before = snapshot(folder)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    expected = f"error: {folder / config}: names custom code to import (auto_map)"
    if path == "bench":
        refused(cli("bench", folder, "--data", world["qa"], "--repeats", "1"), expected)
    elif path == "bench-spec":
        refused(cli("bench", f"{folder}:B2-2H1", "--data", world["qa"], "--repeats", "1"), expected)
    elif path == "train-teacher":
        refused(cli("train-teacher", "--out", tmp_path / "run", *tiny_config(world["qa"], backbone=str(folder))),
                expected)
    elif path == "distill-config":
        config_file = tmp_path / "exp.json"
        config_file.write_text(json.dumps({"backbone": str(folder), "strategy": "single",
                                           "teachers": [str(world["teacher"])]}))
        refused(cli("distill", "--out", tmp_path / "run", "--config", config_file), expected)
    else:
        from cerberus_core.model.modeling import CerberusForRanking

        with pytest.raises(InputError, match=re.escape(expected.removeprefix("error: "))):
            CerberusForRanking.from_backbone(str(folder))
    assert snapshot(folder) == before and not (folder / MARKER).exists() and not (tmp_path / "run").exists()
    assert sys.stdin.read() == "y\n"


def test_custom_code_is_refused_in_a_real_process_with_y_piped_in(world, tmp_path):
    """The reported case itself: `echo y | python -m cerberus_core evaluate --model FOLDER`."""
    folder = damaged_copy(world, tmp_path / "model", custom_code())
    run = subprocess.run([sys.executable, "-m", "cerberus_core", "evaluate", "--model", str(folder), "--data",
                          str(world["qa"]), "--max-length", "32"], input="y\n", capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "[y/N]" not in run.stdout + run.stderr, run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {folder / 'tokenizer_config.json'}: names custom code to import (auto_map); code in a model folder "
        "is never run: use a model whose classes are built into transformers"]
    assert not (folder / MARKER).exists()


# ------------------------------------------------------- 9. links out of a run folder, files not the run's
@pytest.mark.parametrize("entry", ["checkpoint", "best", "scores"])
def test_a_run_never_writes_or_deletes_through_a_link(world, tmp_path, entry):
    """A run folder whose checkpoint/ (best/, scores/) is a link to a folder of the user's: refused,
    and the user's folder is untouched (rotation once deleted every file there)."""
    run = tmp_path / "run"
    shutil.copytree(world["teacher"], run)
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    shutil.rmtree(run / entry)
    (run / entry).symlink_to(user, target_is_directory=True)
    result = cli("train-teacher", "--out", run, *tiny_config(world["qa"]))
    refused(result, f"error: {run / entry}: is a symbolic link (to {user}); a run never writes or deletes through a link")
    assert snapshot(user) == {"thesis.tex": b"years of work"}


def test_checkpoint_rotation_deletes_only_what_it_wrote(tmp_path):
    """Older checkpoints and a killed writer's temporaries go; anything else in the folder stays,
    and a link there is never followed."""
    import types

    import torch

    from cerberus_core.training.checkpoint import save_checkpoint

    folder, user = tmp_path / "checkpoint", tmp_path / "user"
    user.mkdir()
    (user / "mine.safetensors").write_text("the user's")
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    acc = types.SimpleNamespace(process_index=0, num_processes=1, wait_for_everyone=lambda: None)
    save_checkpoint(folder, model, optimizer, 1, 0.5, acc)
    (folder / ".model-00000001.safetensors.x1y2").mkdir()  # what a killed atomic write leaves
    (folder / "notes.txt").write_text("mine")
    (folder / "model-1.safetensors").write_text("not of our naming")
    (folder / "link").symlink_to(user, target_is_directory=True)
    (folder / "model-00000000.safetensors").symlink_to(user / "mine.safetensors")
    save_checkpoint(folder, model, optimizer, 2, 0.6, acc)
    assert sorted(p.name for p in folder.iterdir()) == [
        "link", "model-00000000.safetensors", "model-00000002.safetensors", "model-1.safetensors", "notes.txt",
        "optimizer-00000002.safetensors", "rng0-00000002.safetensors", "state-00000002.json", "state.json"]
    assert (user / "mine.safetensors").read_text() == "the user's"


@pytest.mark.parametrize("command", ["train-teacher", "distill"])
def test_a_folder_of_the_users_files_is_not_a_run_folder(world, tmp_path, command):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    refused(cli(command, "--out", user, *tiny_config(world["qa"])),
            f"error: {user}: holds notes.txt but no config.json, so it is not a run folder of this tool")
    assert snapshot(user) == {"notes.txt": b"mine"}


# ------------------------------------------------------- 10. a model that scores every pair alike
def test_evaluate_reports_questions_the_tie_rule_decided(world):
    """--max-length 3 leaves [CLS] [SEP] [SEP]-like pairs that are all the same tokens: every pair
    scores alike and, positives coming first in this file, the tie rule alone makes P@1 1.000. The
    numbers are printed as computed, with one warning saying what the tie rule decided."""
    result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--max-length", "3")
    ok(result)
    assert "eval  pooled   P@1 1.000" in result.out
    assert result.messages == [
        "warning: pooled: 10 of 10 questions have every candidate scored alike; also head0, head1; the tie rule "
        "(candidate order) decided pooled P@1 between 0.000 and 1.000 and MAP between 0.250 and 1.000: a model "
        "that scores pairs alike is broken (its weights, its tokenizer or --max-length)"], result
    assert not cli("evaluate", "--model", world["model"], "--data", world["qa"], "--max-length", "32").messages


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_a_model_without_its_tokenizer_is_refused(world, tmp_path, command):
    def no_tokenizer(folder: Path) -> None:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()

    model = damaged_copy(world, tmp_path / "model", no_tokenizer)
    refused(cli(command, "--model", model, "--data", world["qa"], "--split", "test", "--out", tmp_path / "out"),
            f"error: {model}: has no tokenizer")
    assert not (tmp_path / "out" / "test.tsv").exists() and not (tmp_path / "out" / "scores.tsv").exists()


# ------------------------------------------------------- 11. inputs
def fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe.tsv")
    return tmp_path / "pipe.tsv"


def write_file(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize("make, expected", [
    (fifo, "{path}: is not a regular file (a FIFO, device or socket); expected an AS2 data file or folder"),
    (lambda tmp: Path("/dev/zero"), "/dev/zero: is not a regular file (a FIFO, device or socket)"),
    (lambda tmp: write_file(tmp, "twice.tsv", "question\tcandidate\tlabel\nwho?\tit\t1\nwho?\tthat\t0\nwho?\tit\t0\n"),
     "{path}:4: candidate 'it' of question "),
    (lambda tmp: write_file(tmp, "q.jsonl", '{"qid": {"id": 7}, "question": "who?", "candidate": "it", "label": 1}\n'),
     "{path}:1: qid must be a string or an integer, got {{\"id\": 7}}"),
    (lambda tmp: write_file(tmp, "q.jsonl", '{"qid": true, "question": "who?", "candidate": "it", "label": 1}\n'),
     "{path}:1: qid must be a string or an integer, got true"),
], ids=["fifo", "dev-zero", "one-candidate-two-labels", "qid-an-object", "qid-a-bool"])
@pytest.mark.parametrize("command", ["evaluate", "inspect-data"])
def test_bad_data_is_refused(world, tmp_path, command, make, expected):
    path = make(tmp_path)
    args = ["evaluate", "--model", world["model"], "--data", path] if command == "evaluate" else ["inspect-data", path]
    result = cli(*args)
    refused(result, expected.format(path=path))
    assert "scoring" not in result.err
    if "twice" in str(path):
        assert "is labelled 0 here and 1 at line 2; one candidate has one label" in result.err


@pytest.mark.parametrize("command", ["evaluate", "score", "bench"])
def test_an_output_never_replaces_an_input(world, tmp_path, command):
    data = tmp_path / "test.tsv"
    shutil.copy(world["qa"], data)
    before = data.read_bytes()
    if command == "evaluate":
        result = cli("evaluate", "--model", world["model"], "--data", data, "--out", data)
    elif command == "score":  # score --out FOLDER writes FOLDER/test.tsv: here, the data itself
        result = cli("score", "--model", world["model"], "--data", data, "--split", "test", "--out", tmp_path)
    else:
        result = cli("bench", world["model"], "--data", data, "--repeats", "1", "--out", data)
    refused(result, f"error: {data}: is the input {data}; an output never replaces an input")
    assert data.read_bytes() == before and not (tmp_path / "test.tsv.json").exists()


def test_evaluate_out_inside_the_model_folder_is_refused(world, tmp_path):
    model = damaged_copy(world, tmp_path / "model", lambda folder: None)
    before = snapshot(model)
    refused(cli("evaluate", "--model", model, "--data", world["qa"], "--out", model),
            f"error: {model / 'scores.tsv'}: is inside the input {model}")
    assert snapshot(model) == before


def test_a_cerberus_data_that_names_no_folder_is_an_error(world, tmp_path, monkeypatch):
    """Never skipped for ./data or another root: the registered dataset would come from elsewhere."""
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "typo"))
    refused(cli("inspect-data", "wikiqa"), f"error: {tmp_path / 'typo'}: $CERBERUS_DATA names no folder")
    refused(cli("evaluate", "--model", world["model"], "--data", "wikiqa", "--split", "dev"),
            f"error: {tmp_path / 'typo'}: $CERBERUS_DATA names no folder")


@pytest.mark.parametrize("where", ["distill", "evaluate-teachers"])
def test_a_student_table_given_as_a_teacher_table_is_refused(world, tmp_path, where):
    """What `evaluate --out` writes (pooled and head columns) is not what `score` writes (one 'score'
    column of KD targets): named in one line, not a KeyError."""
    tables = tmp_path / "tables"
    ok(cli("evaluate", "--model", world["model"], "--data", world["qa"], "--max-length", "32",
           "--out", tables / "train.tsv"))
    if where == "distill":
        result = cli("distill", "--out", tmp_path / "run",
                     *tiny_config(world["qa"], strategy="single", teachers=[str(tables)]))
    else:
        for name in ("a", "b"):
            shutil.copytree(tables, tmp_path / name)
        result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--split", "train",
                     "--max-length", "32", "--teachers", tmp_path / "a", tmp_path / "b")
    named = tables if where == "distill" else tmp_path / "a"
    refused(result, f"error: {named / 'train.tsv'}: has columns ['pooled', 'head0', 'head1']; expected a teacher's "
                    "table (a 'score' column")
    assert not (tmp_path / "run").exists()


def test_a_key_given_twice_in_a_config_is_refused_at_its_second_line(world, tmp_path):
    """json keeps the last value silently, and an error about the field named the first line."""
    config = tmp_path / "exp.json"
    config.write_text('{\n "backbone": "minilm-l3",\n "lr": 0.001,\n "epochs": 1,\n "lr": -1\n}\n')
    refused(cli("distill", "--out", tmp_path / "run", "--config", config),
            f"error: {config}:5: key 'lr' is given twice in one object; give each key once")
    model = damaged_copy(world, tmp_path / "model", lambda folder: (folder / "config.json").write_text(
        (folder / "config.json").read_text().replace('"num_heads": 2', '"num_heads": 2, "num_heads": 3')))
    refused(cli("evaluate", "--model", model, "--data", world["qa"]), "key 'num_heads' is given twice")
    assert not (tmp_path / "run").exists()
