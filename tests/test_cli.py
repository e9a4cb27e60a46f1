"""The command line: --help everywhere, and bad input as one line on stderr with exit code 2."""
import subprocess
from pathlib import Path
import sys

import pytest

from cerberus_core.orchestration.cli import COMMANDS


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cerberus_core", *args], capture_output=True, text=True, cwd=cwd)


def test_help_on_every_command():
    assert cli("--help").returncode == 0
    for name in COMMANDS:
        run = cli(name, "--help")
        assert run.returncode == 0 and "usage: cerberus " + name in run.stdout


def test_inspect_data_prints_counts_under_each_policy():
    run = cli("inspect-data", "wikiqa", "--split", "test")
    assert run.returncode == 0, run.stderr
    assert "243" in run.stdout and "237" in run.stdout and "2351" in run.stdout.replace(",", "")


@pytest.mark.slow  # one real process per case; tests/test_hostile_inputs.py drives the same command line in-process
@pytest.mark.parametrize("args, expected", [
    (["inspect-data", "{tmp}/missing.tsv"], "missing.tsv"),
    (["inspect-data", "{tmp}/bad.tsv"], "bad.tsv:3"),
    (["inspect-data", "wikiqa", "--split", "validation"], "invalid choice"),
    (["evaluate", "--model", "{tmp}", "--data", "wikiqa"], "expected a saved model folder"),
    (["distill", "--out", "{tmp}/run", "--set", "epochz=3"], "KEY=VALUE"),
    (["distill", "--out", "{tmp}/run", "--set", "strategy=foo"], "must be one of"),
    (["distill", "--out", "{tmp}/run", "--set", "epochs=abc"], "expects int"),
    (["train-teacher", "--out", "{tmp}/run", "--set", "num_heads=2"], "fixed to 1"),
    (["distill", "--out", "{tmp}/run", "--config", "{tmp}/bad.tsv"], "bad.tsv"),
    (["reproduce", "--preset", "huge", "--root", "{tmp}/r"], "unknown preset"),
    (["prepare-models", "bert-huge"], "unknown embedded model"),
    (["bench", "{tmp}/no-such-model"], "not an embedded model name"),
    # config values refused before anything is written, in a real process
    (["distill", "--out", "{tmp}/run", "--set", "lr=NaN"], "config field 'lr' must be a finite number, got nan"),
    (["distill", "--out", "{tmp}/run", "--set", "seed=-1"], "config field 'seed' must be between 0 and 4294967295"),
    (["distill", "--out", "{tmp}/run", "--set", "teachers=[1,2]"], "expects a list of folder paths (strings)"),
    (["train-teacher", "--out", "{tmp}/run", "--set", "backbone=minilm-l3", "--set", "body_layers=3"],
     "body_layers=3 + head_layers=1 must fit the backbone's 3 layers"),
    (["train-teacher", "--out", "{tmp}/bad.tsv"], "bad.tsv: is a file"),
    # bad sizes and output paths, refused before any model is loaded
    (["evaluate", "--model", "{tmp}", "--data", "wikiqa", "--batch-size", "0"], "expected a batch size from 1 to 4096, got 0"),
    (["evaluate", "--model", "{tmp}/garbage", "--data", "wikiqa", "--split", "test"], "garbage/config.json:2: not valid JSON"),
    (["evaluate", "--model", "{tmp}/garbage", "--data", "wikiqa", "--out", "{tmp}/bad.tsv/x.tsv"],
     "bad.tsv: is a file, so"),
    (["score", "--model", "{tmp}/garbage", "--data", "wikiqa", "--out", "{tmp}/bad.tsv"], "bad.tsv: is a file"),
    (["bench", "{tmp}/garbage"], "garbage/config.json:2: not valid JSON"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    (tmp_path / "bad.tsv").write_text("question\tcandidate\tlabel\nq\tc\t1\nq\tc2\tyes\n")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "config.json").write_text('{"model_type": "cerberus",\n oops')
    (tmp_path / "garbage" / "model.safetensors").write_bytes(b"")
    before = (tmp_path / "bad.tsv").read_bytes()
    run = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert run.returncode == 2
    assert expected in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run").exists(), "a refused experiment must leave nothing behind"
    assert (tmp_path / "bad.tsv").read_bytes() == before, "a refused command must not touch the user's files"


def test_a_folder_typed_on_the_command_line_is_relative_to_where_it_was_typed(tmp_path, monkeypatch):
    """In a config file, `init_from` and `teachers` are relative to the run folder (so results move
    as a whole); typed with --set, they are made absolute from the working folder."""
    from cerberus_core.training.config import TrainConfig, init_from_folder
    from cerberus_core.training.config import config_with_overrides

    monkeypatch.chdir(tmp_path)
    cfg = config_with_overrides(None, ["init_from=src/best", 'teachers=["t/a", "/abs/b"]'])
    assert cfg.init_from == str(tmp_path / "src" / "best") and cfg.teachers == [str(tmp_path / "t" / "a"), "/abs/b"]
    relative = TrainConfig(init_from="../../source/gold/best")
    assert init_from_folder(relative, Path("/r/students/gold")) == Path("/r/source/gold/best")


def test_a_blank_folder_typed_on_the_command_line_is_refused_not_made_absolute(tmp_path):
    run = cli("distill", "--out", str(tmp_path / "run"), "--set", "strategy=single", "--set", 'teachers=[" "]',
              "--set", "teacher_index=0")
    assert run.returncode == 2 and "teachers" in run.stderr and str(Path.cwd()) not in run.stderr
    assert not (tmp_path / "run").exists()
