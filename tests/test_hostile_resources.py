"""Hostile inputs that cost resources, and faults of the machine, end to end through the command line.

The same rule as tests/test_hostile_inputs.py (whose helpers this file uses): every case runs
`cerberus_core.orchestration.cli.main(argv)` (or `python -m cerberus_core` where a real process is needed: a
signal, a file-size limit, a kill) and must end in exit 0 with correct output, exit 2 with one
`error:` line naming the file or the value, or, for Ctrl-C, exit 130 with one `interrupted:`
line saying how to resume. Nothing of the user's may be removed or half-written.

Resources: sizes are checked before anything is allocated or read (heads, threads, batch
sizes, config files that are FIFOs, devices or huge, over-long text). Faults: a full disk, a
read-only folder, Ctrl-C, and a kill between the two renames of a score table and its sidecar.

A full disk and a read-only folder are real file systems: a small tmpfs mounted here (root
only; those cases are skipped otherwise) or, for training, a file-size limit (RLIMIT_FSIZE) in
a subprocess, which fails writes with EFBIG as any user. Only the kill between two renames is
placed by wrapping `os.replace` (the OS call) in the killed subprocess, so that it lands
exactly there. About two minutes on 2 cores.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cerberus_core.errors import InputError
from test_hostile_inputs import REPO, cli, ok, refused, set_heads, snapshot, tiny_config, write_data


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data files and a saved 2-head model (untrained: evaluate needs no training)."""
    from cerberus_core.model.modeling import CerberusForRanking

    root = tmp_path_factory.mktemp("resources")
    files = write_data(root)
    model = CerberusForRanking.from_backbone("minilm-l3", body_layers=2, num_heads=2, head_layers=1)
    model.save_pretrained(root / "model")
    return {"root": root, **files, "model": root / "model"}


def copy_model(world, folder: Path, damage=None) -> Path:
    import shutil

    shutil.copytree(world["model"], folder)
    if damage:
        damage(folder)
    return folder


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False):
    """A real small file system at `folder` (a tmpfs; needs root, else the test is skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until `leave` bytes are free (a file of the user's)."""
    info = os.statvfs(folder)
    free = info.f_bavail * info.f_frsize
    with open(folder / "filler.bin", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def hidden(folder: Path) -> list[str]:
    """Temporaries (hidden names) left in `folder`."""
    return sorted(p.name for p in folder.rglob(".*"))


def failed(result, *expected: str) -> None:
    """`refused`, for a failure after the work began: progress bars (loading, scoring) may precede
    the one `error:` line; nothing else may."""
    assert result.code == 2 and "Traceback" not in result.err, result
    lines = messages(result.err)
    assert len(lines) == 1 and lines[0].startswith("error:"), result
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"


def python_m(*args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "cerberus_core", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, **kwargs)


def messages(stderr: str) -> list[str]:
    """Our message lines; a progress bar left mid-line may precede one on the same line."""
    return re.findall(r"(?:error|interrupted|warning): .*", stderr.replace("\r", "\n"))


def one_line(stderr: str, start: str) -> str:
    """The one message line of a real process (progress bars aside); no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = messages(stderr)
    assert len(lines) == 1 and lines[0].startswith(start), stderr[-3000:]
    return lines[0]


# ---------------------------------------------------------------- 1. resources: sizes checked first
def _fifo(world, tmp_path) -> Path:
    path = tmp_path / "exp.json"
    os.mkfifo(path)  # nobody ever writes to it: reading it would block for ever
    return path


def _huge(world, tmp_path) -> Path:
    path = tmp_path / "exp.json"
    with open(path, "wb") as f:  # sparse: 17 MB on paper, no disk used
        f.truncate(17 << 20)
    return path


def _absurd_heads(world, tmp_path) -> Path:
    return copy_model(world, tmp_path / "model", set_heads(10**9))


@pytest.mark.parametrize("args, expected", [
    (["evaluate", "--model", "{absurd_heads}", "--data", "{qa}"],
     ["{absurd_heads}/config.json: num_heads is 1000000000; expected 1 to 64 heads"]),
    (["bench", "{absurd_heads}", "--data", "{qa}", "--repeats", "1"],
     ["{absurd_heads}/config.json: num_heads is 1000000000; expected 1 to 64 heads"]),
    (["bench", "minilm-l3:B0-100000H1", "--data", "{qa}"],
     ["model spec 'minilm-l3:B0-100000H1': num_heads is 100000; expected 1 to 64 heads"]),
    (["bench", "{model}", "--threads", "100000", "--data", "{qa}"], ["--threads 100000: expected 1 to", "per CPU"]),
    (["bench", "{model}", "--batch-sizes", "1000000000", "--data", "{qa}"],
     ["argument --batch-sizes: expected a batch size from 1 to 4096, got 1000000000"]),
    (["bench", "minilm-l3:B0-64H3", "--batch-sizes", "4096", "--seq-len", "512", "--data", "{qa}"],
     ["--batch-sizes 4096 at 512 tokens needs about", "GiB for one forward pass"]),
    (["evaluate", "--model", "{model}", "--data", "{qa}", "--batch-size", "1000000000"],
     ["argument --batch-size: expected a batch size from 1 to 4096, got 1000000000"]),
    (["distill", "--out", "{run}", "--set", "num_heads=1000000000"],
     ["config field 'num_heads' must be between 1 and 64, got 1000000000"]),
    (["train-teacher", "--out", "{run}", "--set", "batch_size=1000000000"],
     ["config field 'batch_size' must be between 1 and 4096, got 1000000000"]),
    (["train-teacher", "--out", "{run}", "--set", "eval_batch_size=1000000000"],
     ["config field 'eval_batch_size' must be between 1 and 4096"]),
    (["distill", "--out", "{run}", "--config", "/dev/zero"], ["/dev/zero: is a device; expected a JSON experiment config"]),
    (["distill", "--out", "{run}", "--config", "{fifo}"], ["{fifo}: is a FIFO; expected a JSON experiment config"]),
    (["distill", "--out", "{run}", "--config", "{huge}"],
     ["{huge}: is 17825792 bytes; expected a JSON experiment config of at most 16777216 bytes"]),
], ids=["saved-config-num-heads-evaluate", "saved-config-num-heads-bench", "spec-heads", "threads", "batch-sizes",
        "batch-memory", "evaluate-batch-size", "config-num-heads", "config-batch-size", "config-eval-batch-size",
        "config-dev-zero", "config-fifo", "config-too-big"])
def test_sizes_are_checked_before_anything_is_allocated(world, tmp_path, args, expected):
    """Each was minutes of allocation, a segfault, an out-of-memory kill or a read that never
    ends; now one line within seconds, before any weight is loaded or any file is written."""
    made = {"absurd_heads": _absurd_heads, "fifo": _fifo, "huge": _huge}
    values = {"qa": world["qa"], "model": world["model"], "run": tmp_path / "run"}
    for name, make in made.items():
        if any(f"{{{name}}}" in a for a in args + expected):
            values[name] = make(world, tmp_path)
    fill_in = lambda text: text.format(**values)  # noqa: E731
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked")))
    signal.alarm(60)  # a read that blocks (the FIFO) fails the test instead of hanging it
    try:
        start = time.monotonic()
        result = cli(*map(fill_in, args))
        elapsed = time.monotonic() - start
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    refused(result, *map(fill_in, expected))
    assert elapsed < 30, f"refused only after {elapsed:.0f} s"
    assert "Loading weights" not in result.err and "scoring" not in result.err
    assert not (tmp_path / "run").exists()


def test_the_library_refuses_absurd_heads_before_allocating(world, tmp_path):
    """from_pretrained, from_backbone and a spec build refuse at once (each was minutes of work)."""
    from cerberus_core.model.building import load_model
    from cerberus_core.model.modeling import CerberusForRanking

    folder = _absurd_heads(world, tmp_path)
    start = time.monotonic()
    with pytest.raises(InputError, match="at most 64 heads and 128 layers each are supported"):
        CerberusForRanking.from_pretrained(folder)
    with pytest.raises(InputError, match="at most 64 heads"):
        load_model("minilm-l3:B2-65H1")
    with pytest.raises(ValueError, match="at most 64 heads"):
        CerberusForRanking.from_backbone("minilm-l3", num_heads=10**9)
    assert time.monotonic() - start < 30


def test_a_50_mb_line_is_cut_before_it_is_tokenized(world, tmp_path, monkeypatch):
    """One candidate of 50 MB: scored (exit 0) from its first 32 x 1000 characters, which give
    exactly the scores the whole line gives (the model sees 32 tokens of either)."""
    from transformers import PreTrainedTokenizerBase

    from cerberus_core.model.batching import MAX_CHARS_PER_TOKEN
    from cerberus_core.results.scores import ScoreTable

    rows = world["qa"].read_text().splitlines()
    question, candidate, label = rows[2].split("\t")
    long_text = candidate + " " + "word " * (10 << 20)  # 50 MB
    cut = long_text[: 32 * MAX_CHARS_PER_TOKEN]
    for name, text in (("long", long_text), ("cut", cut)):
        (tmp_path / f"{name}.tsv").write_text("\n".join([*rows[:2], f"{question}\t{text}\t{label}", *rows[3:]]) + "\n")
    longest = []
    call = PreTrainedTokenizerBase.__call__

    def spy(self, text=None, text_pair=None, *args, **kwargs):
        longest.append(max(map(len, [*(text or []), *(text_pair or [])]), default=0))
        return call(self, text, text_pair, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", spy)
    for name in ("long", "cut"):
        ok(cli("evaluate", "--model", world["model"], "--data", tmp_path / f"{name}.tsv", "--max-length", "32",
               "--out", tmp_path / f"{name}-scores.tsv"))
    assert max(longest) <= 32 * MAX_CHARS_PER_TOKEN
    long_table, cut_table = (ScoreTable.load(tmp_path / f"{n}-scores.tsv") for n in ("long", "cut"))
    assert long_table.columns.keys() == cut_table.columns.keys()
    for column in long_table.columns:
        assert (long_table.columns[column] == cut_table.columns[column]).all(), column


# ------------------------------------------------------------------ 2. faults: full disk, read-only
def test_a_full_disk_is_refused_before_scoring(world, tmp_path):
    with tmpfs(tmp_path / "disk", "64k") as disk:
        fill(disk, 0)
        before = snapshot(disk)
        result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--out", disk / "scores.tsv")
        refused(result, f"error: {disk}:", "bytes free on this file system, scores.tsv needs about",
                "No space left on device")
        assert "scoring" not in result.err and snapshot(disk) == before and not hidden(disk)


def test_a_disk_that_fills_while_scoring_leaves_the_old_pair(world, tmp_path, monkeypatch):
    """The disk fills up (another writer) while the model scores: the table fits, its sidecar does
    not. One line naming the table; the pair written before is unchanged, no temporaries left."""
    import cerberus_core.results.scores as scores

    with tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "scores.tsv"
        ok(cli("evaluate", "--model", world["model"], "--data", world["qa"], "--max-length", "32", "--out", out))
        old = snapshot(disk)
        score = scores.score_dataset

        def score_then_fill(*args, **kwargs):
            table = score(*args, **kwargs)
            fill(disk, 4096)  # one page: the table's temporary, not the sidecar's
            return table

        monkeypatch.setattr(scores, "score_dataset", score_then_fill)
        result = cli("evaluate", "--model", world["model"], "--data", world["one"], "--max-length", "32", "--out", out)
        failed(result, f"error: {out}: could not be written with its sidecar scores.tsv.json (No space left on "
                        "device); the previous pair, if any, is unchanged")
        (disk / "filler.bin").unlink()
        assert snapshot(disk) == old and not hidden(disk)
        assert scores.ScoreTable.load(out).meta["dataset"] == str(world["qa"].resolve())


def _read_only(tmp_path: Path):
    """A folder this process cannot write: a read-only tmpfs as root, else a folder without write bits."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        return tmpfs(folder, "64k", read_only=True)
    folder.mkdir()
    folder.chmod(0o555)
    return contextlib.nullcontext(folder)


@pytest.mark.parametrize("command", ["evaluate", "score", "bench", "train-teacher"])
def test_a_read_only_folder_is_refused_before_the_work(world, tmp_path, command):
    """Reported before scoring, measuring or training, naming the folder (never a temporary)."""
    with _read_only(tmp_path) as ro:
        out = ro / "sub" / "result"
        args = {"evaluate": ["evaluate", "--model", world["model"], "--data", world["qa"], "--out", out],
                "score": ["score", "--model", world["model"], "--data", world["qa"], "--split", "test", "--out", out],
                "bench": ["bench", world["model"], "--data", world["qa"], "--repeats", "1", "--out", out],
                "train-teacher": ["train-teacher", "--out", out, *tiny_config(world["qa"])]}[command]
        result = cli(*args)
        refused(result, f"error: {ro}: cannot write here (", "expected a folder this user can write to")
        assert "scoring" not in result.err and "Loading weights" not in result.err
        assert not any(ro.iterdir())


@pytest.mark.slow
def test_a_full_disk_while_training_is_one_line_and_the_rerun_resumes(world, tmp_path):
    """The run folder's disk is full at the first model it saves: one line naming that file and
    saying how to resume; with room again, the same command finishes the run."""
    with tmpfs(tmp_path / "disk", "2m") as disk:
        run = disk / "run"
        args = ["train-teacher", "--out", run, *tiny_config(world["qa"])]
        result = cli(*args)
        line = [m for m in result.err.splitlines() if m.startswith("error:")]
        failed(result, f"error: {run}/", "could not be written (No space left on device)",
                f"once it can be written, rerun the same command to resume from {run}'s last checkpoint")
        assert (run / "config.json").is_file() and not hidden(run), line
        subprocess.run(["mount", "-o", "remount,size=1g", str(disk)], check=True)
        ok(cli(*args))
        assert json.loads((run / "metrics.json").read_text())["dev"]["pooled"]["n_questions"] == 10


@pytest.mark.slow
def test_a_file_size_limit_while_training_is_one_line(world, tmp_path):
    """Any user: RLIMIT_FSIZE makes the OS refuse the first large write (EFBIG), in a real process."""
    run = tmp_path / "run"
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # noqa: E731
    proc = python_m("train-teacher", "--out", run, *tiny_config(world["qa"]), preexec_fn=limit, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = one_line(proc.stderr, "error:")
    assert f"error: {run}/" in line and "could not be written (File too large)" in line, line
    assert "rerun the same command to resume" in line and not hidden(run)


# --------------------------------------------------------------------------- 3. Ctrl-C and kills
@pytest.fixture
def ctrl_c_reaches_python():
    """SIGINT handled as Python does by default. A test run started in the background has SIGINT
    ignored (a shell's `&` does that), which this process and its children inherit: Ctrl-C would not
    reach the code under test at all."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _sigint_as_default() -> None:
    """In a child before it starts: SIGINT back to the default, so Python installs its own handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_while_training_is_one_line_and_the_rerun_resumes(world, tmp_path):
    run = tmp_path / "run"
    args = ["train-teacher", "--out", run, *tiny_config(world["qa"], epochs=2)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "cerberus_core", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_default)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint" / "state.json").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert one_line(stderr, "interrupted:") == (f"interrupted: rerun the same command to resume from {run}'s "
                                                "last checkpoint")
    assert not (run / "metrics.json").exists() and not hidden(run)
    step = json.loads((run / "checkpoint" / "state.json").read_text())["step"]
    result = cli(*args)
    ok(result)
    assert "restarting" not in result.err
    from cerberus_core.results.artifacts import read_curve

    steps = [row["step"] for row in read_curve(run)]
    assert steps == list(range(1, 5)) and step < 4  # every step once: resumed, not restarted


def test_ctrl_c_while_scoring_is_one_line(world, tmp_path, monkeypatch, ctrl_c_reaches_python):
    """A real SIGINT to this process while the model scores: nothing written, one line, exit 130."""
    import cerberus_core.results.scores as scores

    score = scores.score_dataset

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises KeyboardInterrupt here
        return score(*args, **kwargs)

    monkeypatch.setattr(scores, "score_dataset", interrupted)
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = cli("evaluate", "--model", world["model"], "--data", world["qa"], "--out", tmp_path)
    assert result.code == 130 and "Traceback" not in result.err, result
    assert messages(result.err) == ["interrupted: no file was half-written; rerun the same command"]
    assert snapshot(tmp_path) == before and not hidden(tmp_path)


@pytest.mark.parametrize("command, module, function, expected", [
    (["reproduce", "--preset", "quick", "--root", "{tmp}/root"], "cerberus_core.orchestration.pipeline", "reproduce",
     "interrupted: rerun the same command to resume: finished runs are kept and the interrupted run resumes from "
     "its last checkpoint"),
    (["bench", "minilm-l3", "--out", "{tmp}/bench.json"], "cerberus_core.orchestration.bench", "run_benchmark",
     "interrupted: no file was half-written; rerun the same command"),
], ids=["reproduce", "bench"])
def test_ctrl_c_in_any_command_is_one_line(tmp_path, monkeypatch, command, module, function, expected,
                                           ctrl_c_reaches_python):
    """A real SIGINT while the command works: its one line, exit 130."""
    import importlib

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises KeyboardInterrupt here

    monkeypatch.setattr(importlib.import_module(module), function, interrupted)
    result = cli(*(a.format(tmp=tmp_path) for a in command))
    assert result.code == 130 and "Traceback" not in result.err, result
    assert messages(result.err) == [expected]


KILL_AT_RENAME = """
import os, signal, sys
import numpy as np
import cerberus_core.atomic as atomic
from cerberus_core.data import load_as2
from cerberus_core.results.scores import ScoreTable

ds = load_as2(sys.argv[1])
path = sys.argv[2]
qids, _, _ = ds.pair_arrays()
ScoreTable.for_dataset(ds, {"score": np.zeros(len(qids))}, {}).save(path)
print("saved", flush=True)
replace = os.replace

def replace_then_die(src, dst):  # the kill lands right after the first rename (the sidecar's)
    replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)

atomic.os.replace = replace_then_die
ScoreTable.for_dataset(ds, {"score": np.ones(len(qids))}, {}).save(path)
"""


@pytest.mark.parametrize("left", ["new-sidecar-old-table", "new-table-old-sidecar"])
def test_a_table_and_its_sidecar_are_one_unit(world, tmp_path, left):
    """A process killed between the two renames leaves a new sidecar beside the old table (the
    sidecar goes first); a new table beside an old sidecar is what the earlier order left. The
    reader refuses either pair, in the library and on the command line."""
    from cerberus_core.results.scores import ScoreTable, meta_path

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    path = teacher / "train.tsv"
    if left == "new-sidecar-old-table":
        proc = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(world["qa"]), str(path)], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "saved", proc.stderr[-3000:]
    else:
        import numpy as np

        from cerberus_core.data import load_as2

        ds = load_as2(str(world["qa"]))
        n = ds.n_pairs
        ScoreTable.for_dataset(ds, {"score": np.zeros(n)}, {}).save(path)
        old_sidecar = meta_path(path).read_bytes()
        ScoreTable.for_dataset(ds, {"score": np.ones(n)}, {}).save(path)
        meta_path(path).write_bytes(old_sidecar)
    with pytest.raises(InputError, match=r"train\.tsv: does not match its sidecar train\.tsv\.json"):
        ScoreTable.load(path)
    result = cli("distill", "--out", tmp_path / "run",
                 *tiny_config(world["qa"], strategy="single", teachers=[str(teacher)]))
    refused(result, f"error: {path}: does not match its sidecar train.tsv.json", "recompute the table")
    assert not (tmp_path / "run" / "curve.tsv").exists()


def test_a_rewritten_pair_loads(world, tmp_path):
    """The checksum does not get in the way: a pair saved twice loads, with the second scores."""
    import numpy as np

    from cerberus_core.data import load_as2
    from cerberus_core.results.scores import TABLE_CHECKSUM, ScoreTable, meta_path

    ds = load_as2(str(world["qa"]))
    path = tmp_path / "t.tsv"
    for value in (0.0, 2.5):
        ScoreTable.for_dataset(ds, {"score": np.full(ds.n_pairs, value)}, {}).save(path)
    table = ScoreTable.load(path)
    assert set(table.columns["score"]) == {2.5} and TABLE_CHECKSUM not in table.meta
    assert TABLE_CHECKSUM in json.loads(meta_path(path).read_text())
