"""WikiQA from anywhere: the official archive fetched from a loopback HTTP server in its official
layout (checksum, atomic unpack, first-use download, the presets' loads), and one clear line when
there is neither data nor internet."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from cerberus_core import data
from cerberus_core.data import registry
from cerberus_core.data import download_wikiqa, load_as2
from cerberus_core.data.download import Unreachable, fetch
from cerberus_core.errors import InputError

HEADER = "QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel"
# A tiny WikiQA in the official layout: like the real files it keeps questions with no correct
# sentence (Q2, Q4, Q8), which the castorini form drops while numbering questions by position.
OFFICIAL = {
    "train": [("Q1", "who?", ["a", "b"], [1, 0]), ("Q2", "what?", ["c"], [0]),
              ("Q3", "how?", ["d", "e", "f"], [0, 1, 0])],
    "dev": [("Q4", "when?", ["g"], [0]), ("Q5", "where?", ["h", "i"], [1, 0]),
            ("Q6", "which?", ["j"], [1])],
    "test": [("Q7", "why?", ["k", "l"], [1, 0]), ("Q8", "whom?", ["m", "n"], [0, 0])],
}


def official_tsv(questions) -> str:
    lines = [HEADER]
    for qid, q, sents, labels in questions:
        lines += [f"{qid}\t{q}\tD{qid}\tTitle\tD{qid}-{i}\t{s}\t{y}"
                  for i, (s, y) in enumerate(zip(sents, labels))]
    return "\n".join(lines) + "\n"


def zip_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


ARCHIVE = zip_bytes({f"WikiQACorpus/WikiQA-{s}.tsv": official_tsv(qs) for s, qs in OFFICIAL.items()}
                    | {"WikiQACorpus/README.txt": "licence"})
SHA = hashlib.sha256(ARCHIVE).hexdigest()


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 and count the requests; yields (folder, base url, hits)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "WikiQACorpus.zip").write_bytes(ARCHIVE)
    hits: list[str] = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    """An address that refuses connections, as a machine without internet does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/WikiQACorpus.zip"


@pytest.fixture
def no_data_anywhere(tmp_path, monkeypatch):
    """A machine with no WikiQA: empty cwd, $CERBERUS_DATA unset, repository root elsewhere."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("CERBERUS_DATA", raising=False)
    monkeypatch.setattr(registry, "REPO", tmp_path / "elsewhere")
    return work


def nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


# ----------------------------------------------------------------------------- fetch
def test_fetch_verifies_the_checksum(tmp_path, server):
    _, base, _ = server
    out = fetch(f"{base}/WikiQACorpus.zip", tmp_path / "dl" / "a.zip", SHA.upper())
    assert out.read_bytes() == ARCHIVE and os.listdir(tmp_path / "dl") == ["a.zip"]
    with pytest.raises(InputError, match=f"checksum mismatch: sha256 {SHA}, expected 0+; "
                                         "the file was refused"):
        fetch(f"{base}/WikiQACorpus.zip", tmp_path / "bad" / "a.zip", "0" * 64)
    assert nothing_written(tmp_path / "bad")


def test_fetch_unreachable_writes_nothing(tmp_path, server):
    _, base, _ = server
    with pytest.raises(Unreachable, match="download failed: .*404"):
        fetch(f"{base}/missing.zip", tmp_path / "dl" / "a.zip", SHA)
    with pytest.raises(Unreachable, match="download failed"):
        fetch(closed_port_url(), tmp_path / "dl" / "a.zip", SHA)
    assert not (tmp_path / "dl").exists()


# ----------------------------------------------------------------------------- download_wikiqa
def test_download_wikiqa_installs_the_official_layout(tmp_path, server):
    _, base, _ = server
    dest = tmp_path / "dest"
    out = download_wikiqa(dest, url=f"{base}/WikiQACorpus.zip", sha256=SHA)
    assert out == dest / "wikiqa_tsv" and os.listdir(dest) == ["wikiqa_tsv"]  # no temp left
    assert sorted(os.listdir(out)) == ["WikiQA-dev.tsv", "WikiQA-test.tsv", "WikiQA-train.tsv"]
    train = load_as2("wikiqa-tsv", "train", data_root=dest)  # every question, official ids
    assert [(q.qid, q.labels) for q in train] == [("Q1", (1, 0)), ("Q2", (0,)), ("Q3", (0, 1, 0))]
    # `wikiqa` without the toks form: the castorini ids (position in the file) and questions
    wiki = load_as2("wikiqa", "train", data_root=dest)
    assert [(q.qid, q.text, q.labels) for q in wiki] == [("1", "who?", (1, 0)),
                                                         ("3", "how?", (0, 1, 0))]
    assert Path(wiki.source) == out / "WikiQA-train.tsv"


def test_download_refuses_a_wrong_checksum_and_writes_nothing(tmp_path, server):
    _, base, _ = server
    with pytest.raises(InputError, match="checksum mismatch"):
        download_wikiqa(tmp_path / "dest", url=f"{base}/WikiQACorpus.zip", sha256="ab" * 32)
    assert nothing_written(tmp_path / "dest")


@pytest.mark.parametrize("payload,fragment", [
    (b"<html>not found</html>", "not a zip archive"),
    (zip_bytes({"WikiQACorpus/WikiQA-train.tsv": official_tsv(OFFICIAL["train"])}),
     "archive lacks WikiQACorpus/WikiQA-dev.tsv"),
    (zip_bytes({f"WikiQACorpus/WikiQA-{s}.tsv": "QuestionID\tQuestion\n" for s in OFFICIAL}),
     "WikiQACorpus/WikiQA-train.tsv: expected header"),
])
def test_download_rejects_bad_archives(tmp_path, server, payload, fragment):
    """Archives that pass their (given) checksum but are not WikiQA: refused, nothing installed."""
    www, base, _ = server
    (www / "bad.zip").write_bytes(payload)
    with pytest.raises(InputError, match=fragment):
        download_wikiqa(tmp_path / "dest", url=f"{base}/bad.zip",
                        sha256=hashlib.sha256(payload).hexdigest())
    assert nothing_written(tmp_path / "dest")


def test_first_use_with_an_unwritable_root_is_one_line(tmp_path, server, monkeypatch):
    _, base, _ = server
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", f"{base}/WikiQACorpus.zip")
    monkeypatch.setenv("CERBERUS_WIKIQA_SHA256", SHA)
    root = tmp_path / "a-file"
    root.write_text("not a folder")
    with pytest.raises(InputError) as err:  # from atomic_path or the install: an InputError
        load_as2("wikiqa", "dev", data_root=root)
    assert str(err.value).startswith(str(root)) and "\n" not in str(err.value)


def test_download_defaults_to_the_environment(tmp_path, server, monkeypatch):
    _, base, _ = server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", f"{base}/WikiQACorpus.zip")
    monkeypatch.setenv("CERBERUS_WIKIQA_SHA256", SHA)
    monkeypatch.delenv("CERBERUS_DATA", raising=False)
    assert download_wikiqa() == tmp_path / "data" / "wikiqa_tsv"
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "env"))
    assert download_wikiqa() == tmp_path / "env" / "wikiqa_tsv"
    monkeypatch.delenv("CERBERUS_WIKIQA_SHA256")  # the official checksum: this archive is refused
    with pytest.raises(InputError, match=f"expected {data.WIKIQA_SHA256}"):
        download_wikiqa(tmp_path / "other")


# ----------------------------------------------------------------------------- first use
def test_first_use_downloads_once_and_the_presets_load_every_split(
        no_data_anywhere, server, monkeypatch, capsys):
    _, base, hits = server
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", f"{base}/WikiQACorpus.zip")
    monkeypatch.setenv("CERBERUS_WIKIQA_SHA256", SHA)
    train = load_as2("wikiqa", "train")  # what a preset asks for first
    assert "downloaded the official archive" in capsys.readouterr().err
    assert Path(train.source) == no_data_anywhere / "data" / "wikiqa_tsv" / "WikiQA-train.tsv"
    # the loads of a training run (train unfiltered, dev/test clean), from the one download
    assert [q.qid for q in train] == ["1", "3"]
    assert [q.qid for q in load_as2("wikiqa", "dev")] == ["2"]  # "3" has only positives
    assert [q.qid for q in load_as2("wikiqa", "dev", "none")] == ["2", "3"]
    assert [q.qid for q in load_as2("wikiqa", "test")] == ["1"]
    assert [q.qid for q in load_as2("wikiqa-tsv", "test", "none")] == ["Q7", "Q8"]
    assert hits == ["/WikiQACorpus.zip"]


def test_first_command_downloads(tmp_path, server):
    """`inspect-data wikiqa` on an empty data root: fetched, unpacked, counted, exit 0."""
    _, base, _ = server
    env = os.environ | {"CERBERUS_WIKIQA_URL": f"{base}/WikiQACorpus.zip",
                        "CERBERUS_WIKIQA_SHA256": SHA}
    root = tmp_path / "root"
    run = subprocess.run([sys.executable, "-m", "cerberus_core", "inspect-data", "wikiqa",
                          "--data-root", str(root)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "downloaded the official archive" in run.stderr
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()[2:5]}
    assert [rows[s][1:4] for s in ("train", "dev", "test")] == [
        ["2", "5", "2"], ["2", "3", "2"], ["1", "2", "1"]]  # questions, pairs, positives
    assert sorted(os.listdir(root / "wikiqa_tsv")) == [
        "WikiQA-dev.tsv", "WikiQA-test.tsv", "WikiQA-train.tsv"]


def test_first_use_with_a_wrong_checksum_installs_nothing(no_data_anywhere, server, monkeypatch):
    _, base, _ = server
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", f"{base}/WikiQACorpus.zip")
    monkeypatch.setenv("CERBERUS_WIKIQA_SHA256", "0" * 64)
    with pytest.raises(InputError, match="checksum mismatch"):
        load_as2("wikiqa", "dev")
    assert nothing_written(no_data_anywhere / "data")


# ----------------------------------------------------------------------------- neither
def test_no_data_no_internet_is_one_line_with_both_ways(no_data_anywhere, monkeypatch):
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", closed_port_url())
    with pytest.raises(InputError) as err:
        load_as2("wikiqa", "train")
    msg = str(err.value)
    assert "\n" not in msg and "not downloadable" in msg
    assert "set $CERBERUS_DATA to it" in msg and "run `python -m cerberus_core download`" in msg
    assert str(no_data_anywhere / "data") in msg  # where it looked
    assert not (no_data_anywhere / "data").exists()


def test_no_data_no_internet_cli_exit_2(tmp_path):
    env = os.environ | {"CERBERUS_WIKIQA_URL": closed_port_url()}
    for args in (["inspect-data", "wikiqa"], ["inspect-data", "wikiqa-tsv", "--split", "dev"]):
        run = subprocess.run([sys.executable, "-m", "cerberus_core", *args,
                              "--data-root", str(tmp_path / "empty")],
                             capture_output=True, text=True, env=env)
        assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith("error: ") and "python -m cerberus_core download" in run.stderr
    assert not (tmp_path / "empty").exists()


def test_partial_data_is_not_downloaded_over(tmp_path, monkeypatch):
    """Some WikiQA present: a missing split is the user's to add, named with every place looked."""
    monkeypatch.setenv("CERBERUS_WIKIQA_URL", closed_port_url())
    root = tmp_path / "root"
    (root / "wikiqa_tsv").mkdir(parents=True)
    (root / "wikiqa_tsv" / "WikiQA-dev.tsv").write_text(official_tsv(OFFICIAL["dev"]))
    with pytest.raises(InputError) as err:
        load_as2("wikiqa-tsv", "train", data_root=root)
    msg = str(err.value)
    assert f"looked in: {root / 'wikiqa_tsv' / 'WikiQA-train.tsv'}" in msg
    assert "not downloadable" not in msg and "download" in msg
    assert "not found: train, test" in data.inspect("wikiqa-tsv", data_root=root)
