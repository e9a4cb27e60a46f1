"""Data layer: exact counts on the real files, stable addresses, readers, errors, download."""
from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import json
import re
import threading
import zipfile
from pathlib import Path

import pytest

from cerberus_core import data
from cerberus_core.data import (
    FILTERS, AS2Dataset, Question, dataset_stats, detect_format, download_wikiqa, format_stats,
    inspect, load_as2, text_qid, write_as2,
)
from cerberus_core.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="real AS2 data not at ../shared/data")


# ----------------------------------------------------------------------------- synthetic fixtures
def trec_xml(blocks: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    """Jacana-style pseudo-XML: tokens on the first line of each element, tag lines after."""
    out = []
    for qid, question, cands in blocks:
        out.append(f"<QApairs id='{qid}'>")
        for tag, text in [("question", question), *cands]:
            toks = text.split()
            out += [f"<{tag}>", "\t".join(toks), "\t".join("NN" for _ in toks), f"</{tag}>"]
        out.append("</QApairs>")
    return "\n".join(out) + "\n"


WIKIQA_HEADER = "QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel"


def wikiqa_tsv(rows: list[tuple[str, str, str, int]]) -> str:
    lines = [WIKIQA_HEADER]
    for i, (qid, q, s, y) in enumerate(rows):
        lines.append(f"{qid}\t{q}\tD{qid}\tTitle\tD{qid}-{i}\t{s}\t{y}")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- exact counts
COUNTS = [  # name, split, filter, questions, pairs, positives (None: not in the README)
    ("wikiqa", "train", "none", 873, 8672, 1040),
    ("wikiqa", "dev", "none", 126, 1130, 140),
    ("wikiqa", "test", "none", 243, 2351, 293),
    ("wikiqa", "train", "answerable", 873, 8672, 1040),
    ("wikiqa", "dev", "answerable", 126, 1130, 140),
    ("wikiqa", "test", "answerable", 243, 2351, 293),
    ("wikiqa", "train", "clean", 857, 8651, None),
    ("wikiqa", "dev", "clean", 122, 1126, None),
    ("wikiqa", "test", "clean", 237, 2341, None),
    ("wikiqa-tsv", "dev", "none", 126, 1130, 140),
    ("wikiqa-tsv", "test", "none", 243, 2351, 293),
    ("wikiqa-tsv", "dev", "clean", 122, 1126, None),
    ("wikiqa-tsv", "test", "clean", 237, 2341, None),
    ("trecqa", "train", "none", 94, 348 + 4370, 348),
    ("trecqa", "dev", "none", 82, 222 + 926, 222),
    ("trecqa", "test", "none", 100, 284 + 1233, 284),
    ("trecqa", "train", "answerable", 83, 4625, 348),
    ("trecqa", "dev", "answerable", 78, 1134, 222),
    ("trecqa", "test", "answerable", 89, 1478, 284),
    ("trecqa", "train", "clean", 78, 4619, None),
    ("trecqa", "dev", "clean", 65, 1117, None),
    ("trecqa", "test", "clean", 68, 1442, None),
]


@needs_data
@pytest.mark.parametrize("name,split,policy,n_q,n_pairs,n_pos", COUNTS)
def test_exact_counts(name, split, policy, n_q, n_pairs, n_pos):
    ds = load_as2(name, split, policy, data_root=DATA)
    assert (len(ds), ds.n_pairs) == (n_q, n_pairs)
    if n_pos is not None:
        assert ds.n_positives == n_pos
    assert ds.filter == policy and all(FILTERS[policy](q) for q in ds)
    qids, idx, labels = ds.flat()
    assert len(qids) == len(idx) == len(labels) == len(ds.pairs()) == len(ds.keys()) == n_pairs
    assert int(labels.sum()) == ds.n_positives


@needs_data
def test_default_filter_is_clean_for_dev_test_none_for_train():
    assert len(load_as2("wikiqa", "dev", data_root=DATA)) == 122
    assert len(load_as2("trecqa", "test", data_root=DATA)) == 68
    assert len(load_as2("trecqa", "train", data_root=DATA)) == 94


@needs_data
def test_trecqa_keeps_candidate_less_questions_under_none():
    ds = load_as2("trecqa", "test", "none", data_root=DATA)
    assert [q.qid for q in ds if not q.candidates] == ["41.3", "44.4", "58.1", "59.2", "64.3"]


# ----------------------------------------------------------------------------- stable addresses
@needs_data
def test_known_candidate_at_its_address():
    ds = load_as2("wikiqa", "dev", "none", data_root=DATA)
    text = dict(zip(ds.keys(), (c for _, c in ds.pairs())))
    assert text[("2", 3)].startswith("employing over 6,000 , bmc is often credited")
    assert ds[0].labels == (0, 0, 0, 1, 1)
    trec = load_as2("trecqa", "dev", "none", data_root=DATA)
    q = trec[0]
    assert (q.qid, q.text) == ("1.4", "What ethnic group / race are Crip members ?")
    assert q.candidates[0] == ("Prison gangs have a de facto negotiation system to defuse "
                               "potential conflicts , black gang members said .")
    assert q.labels[0] == 0


@needs_data
@pytest.mark.parametrize("name", ["wikiqa", "trecqa"])
def test_filters_keep_candidate_addresses(name):
    full = load_as2(name, "dev", "none", data_root=DATA)
    clean = load_as2(name, "dev", "clean", data_root=DATA)
    full_map = dict(zip(full.keys(), full.pairs()))
    clean_map = dict(zip(clean.keys(), clean.pairs()))
    assert len(clean_map) < len(full_map)
    assert all(full_map[k] == v for k, v in clean_map.items())


@needs_data
@pytest.mark.parametrize("split", ["dev", "test"])
def test_toks_and_tsv_readers_agree(split):
    toks = load_as2("wikiqa", split, "none", data_root=DATA)
    tsv = load_as2("wikiqa-tsv", split, "none", data_root=DATA)
    norm = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731  tokenisation and case
    assert len(toks) == len(tsv)
    for a, b in zip(toks, tsv):
        assert a.labels == b.labels
        assert norm(a.text) == norm(b.text)
    assert toks[0].text != tsv[0].text  # they do differ before normalisation


# ----------------------------------------------------------------------------- generic formats
@needs_data
@pytest.mark.parametrize("ext", [".tsv", ".jsonl"])
def test_generic_round_trip_of_real_data(tmp_path, ext):
    ds = load_as2("wikiqa", "dev", "none", data_root=DATA)
    back = load_as2(str(write_as2(ds, tmp_path / f"dev{ext}")))
    assert back.fingerprint() == ds.fingerprint()
    assert back.keys() == ds.keys()


def test_generic_without_qid_groups_by_text_in_first_appearance_order(tmp_path):
    rows = [("what is a?", "a is x", 1), ("what is b?", "b is y", 0), ("what is a?", "a is z", 0),
            ("what is b?", "b is w", 1)]
    tsv = write(tmp_path / "mine.tsv", "label\tquestion\tcandidate\textra\n" + "".join(
        f"{y}\t{q}\t{c}\tignored\n" for q, c, y in rows))
    jsonl = write(tmp_path / "mine.jsonl", "".join(
        json.dumps({"question": q, "candidate": c, "label": y}) + "\n" for q, c, y in rows))
    a, b = load_as2(str(tsv)), load_as2(str(jsonl))
    assert [q.text for q in a] == ["what is a?", "what is b?"]
    assert a[0] == Question(text_qid("what is a?"), "what is a?", ("a is x", "a is z"), (1, 0))
    assert a.fingerprint() == b.fingerprint()
    assert (a.filter, a.split, a.name) == ("none", None, "mine")
    assert len(load_as2(str(tsv), split="dev")) == 2  # both have a positive and a negative


def test_qid_reappearing_with_same_text_is_merged(tmp_path):
    path = write(tmp_path / "q.jsonl", "".join(json.dumps(r) + "\n" for r in [
        {"qid": "1", "question": "q1", "candidate": "c0", "label": 0},
        {"qid": "2", "question": "q2", "candidate": "c1", "label": 1},
        {"qid": "1", "question": "q1", "candidate": "c2", "label": 1}]))
    ds = load_as2(str(path))
    assert ds.keys() == [("1", 0), ("1", 1), ("2", 0)]
    assert ds[0].candidates == ("c0", "c2")


def test_format_detection(tmp_path):
    toks = tmp_path / "toks"
    for name, text in [("a.toks", "q ?\n"), ("b.toks", "c .\n"), ("id.txt", "7\n"),
                       ("sim.txt", "1\n")]:
        write(toks / name, text)
    trec = write(tmp_path / "t.xml", trec_xml([("1", "q ?", [("positive", "c .")])]))
    wtsv = write(tmp_path / "w.tsv", wikiqa_tsv([("Q1", "q?", "c.", 1)]))
    gtsv = write(tmp_path / "g.tsv", "question\tcandidate\tlabel\nq?\tc.\t1\n")
    jl = write(tmp_path / "g.jsonl", '{"question": "q?", "candidate": "c.", "label": 1}\n')
    sniff = write(tmp_path / "t.txt", trec_xml([("1", "q ?", [("positive", "c .")])]))
    got = {p.name: detect_format(p) for p in [toks, trec, wtsv, gtsv, jl, sniff]}
    assert got == {"toks": "wikiqa-toks", "t.xml": "trecqa", "w.tsv": "wikiqa-tsv",
                   "g.tsv": "tsv", "g.jsonl": "jsonl", "t.txt": "trecqa"}
    assert load_as2(str(toks))[0] == Question("7", "q ?", ("c .",), (1,))


# ----------------------------------------------------------------------------- bad input
GOOD_XML = trec_xml([("1", "q ?", [("positive", "c .")])])
BAD_INPUT = [  # file name, content, line expected in the message, message fragment
    ("cols.tsv", "question\tcandidate\nq\tc\n", 1, "missing column(s) label"),
    ("label.tsv", "question\tcandidate\tlabel\nq\tc\t1\nq\tc2\t2\n", 3, "label must be 0 or 1"),
    ("emptyq.tsv", "question\tcandidate\tlabel\n \tc\t1\n", 2, "empty question"),
    ("fields.tsv", "question\tcandidate\tlabel\nq\tc\n", 2, "expected 3 tab-separated fields"),
    ("emptyc.jsonl", '{"question": "q", "candidate": "", "label": 1}\n', 1, "empty candidate"),
    ("json.jsonl", '{"question": "q", "candidate": "c", "label": 1}\n{"question":\n', 2,
     "invalid JSON"),
    ("keys.jsonl", '{"question": "q", "label": 1}\n', 1, "missing key(s) candidate"),
    ("jlabel.jsonl", '{"question": "q", "candidate": "c", "label": true}\n', 1, "label must be"),
    ("wlabel.tsv", wikiqa_tsv([("Q1", "q", "c", 1)]).replace("\t1\n", "\tyes\n"), 2,
     "label must be 0 or 1"),
    ("conflict.tsv",
     wikiqa_tsv([("Q1", "q", "c", 1), ("Q2", "r", "d", 0), ("Q1", "other", "e", 0)]), 4,
     "different question text than at line 2"),
    ("header.tsv", "QuestionID\tQuestion\tSentence\tLabel\nQ1\tq\tc\t1\n", 1,
     "expected header QuestionID Question DocumentID"),
    ("unknown.tsv", "a\tb\n1\t2\n", 1, "unrecognised format"),
    ("empty.tsv", "", 1, "file is empty"),
    ("empty.jsonl", "\n\n", 1, "file is empty"),
    ("empty.xml", "", 1, "file is empty"),
    ("nul.tsv", b"question\tcandidate\tlabel\nq\tc\t1\nq\x00\tc\t0\n", 3, "binary file"),
    ("latin1.tsv", "question\tcandidate\tlabel\ncaf\u00e9\tc\t1\n".encode("latin-1"), 2,
     "not UTF-8"),
    ("trunc.xml", GOOD_XML + "<QApairs id='2'>\n<question>\nr ?\n</question>\n<negative>\nd\n", 15,
     "truncated: <negative> element"),
    ("block.xml", GOOD_XML + "<QApairs id='2'>\n<question>\nr ?\n</question>\n", 11,
     "truncated: <QApairs id='2'>"),
    ("mismatch.xml", GOOD_XML.replace("</positive>", "</negative>"), 6,
     "<positive> element is not closed: found </negative> at line 9"),
    ("noq.xml", "<QApairs id='1'>\n<positive>\nc\n</positive>\n</QApairs>\n", 2,
     "must have a <question> first"),
    ("stray.xml", GOOD_XML + "hello\n", 11, "expected <QApairs id='...'>"),
    ("emptyel.xml", GOOD_XML.replace("c\t.", "   "), 6, "empty <positive> element"),
]


@pytest.mark.parametrize("fname,content,line,fragment", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_names_file_and_line(tmp_path, fname, content, line, fragment):
    path = write(tmp_path / fname, content)
    with pytest.raises(InputError) as err:
        load_as2(str(path))
    msg = str(err.value)
    assert f"{fname}:{line}: " in msg and fragment in msg and "\n" not in msg


@pytest.mark.parametrize("broken,line,fragment", [
    ("b.toks", 3, "b.toks:3: file ends at line 2 but a.toks has 3 lines"),
    ("sim.txt", 2, "sim.txt:2: label must be 0 or 1"),
    ("a.toks", 3, "a.toks:3: empty question"),
])
def test_bad_toks_folder(tmp_path, broken, line, fragment):
    files = {"a.toks": "q1\nq1\nq2\n", "b.toks": "c1\nc2\nc3\n", "id.txt": "1\n1\n2\n",
             "sim.txt": "0\n1\n1\n"}
    files[broken] = {"b.toks": "c1\nc2\n", "sim.txt": "0\n2\n1\n", "a.toks": "q1\nq1\n \n"}[broken]
    for name, text in files.items():
        write(tmp_path / "wq" / name, text)
    with pytest.raises(InputError, match=re.escape(fragment)):
        load_as2(str(tmp_path / "wq"))


def test_unknown_filter_and_missing_split():
    with pytest.raises(InputError, match="valid filters: none, answerable, clean"):
        load_as2("wikiqa", "dev", filter="strict")
    with pytest.raises(InputError, match="needs split"):
        load_as2("wikiqa")
    with pytest.raises(InputError, match="split must be one of"):
        load_as2("trecqa", "validation")


# ----------------------------------------------------------------------------- data root order
def test_data_root_resolution_order(tmp_path, monkeypatch):
    def make_root(root: Path) -> Path:
        write(root / "trecqa" / "DEV.xml", GOOD_XML)
        return root

    def source() -> Path:
        return Path(load_as2("trecqa", "dev").source).parents[1]

    work = tmp_path / "repo"
    explicit, env = make_root(tmp_path / "explicit"), make_root(tmp_path / "env")
    local, shared = make_root(work / "data"), make_root(tmp_path / "shared" / "data")
    monkeypatch.chdir(work)
    monkeypatch.setattr(data, "_REPO_ROOT", tmp_path / "elsewhere")
    monkeypatch.setenv("CERBERUS_DATA", str(env))
    assert Path(load_as2("trecqa", "dev", data_root=explicit).source).parents[1] == explicit
    assert source() == env
    monkeypatch.delenv("CERBERUS_DATA")
    assert source() == local
    (local / "trecqa" / "DEV.xml").unlink()
    assert source() == shared
    # from a notebook folder: nothing relative to cwd, found relative to the repository root
    monkeypatch.chdir(write(work / "notebooks" / "x", "").parent)
    monkeypatch.setattr(data, "_REPO_ROOT", work)
    assert source() == shared
    # an explicit root is the only place searched
    with pytest.raises(InputError, match="looked in: .*empty"):
        load_as2("trecqa", "dev", data_root=tmp_path / "empty")


def test_not_found_lists_every_place_and_how_to_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "_REPO_ROOT", tmp_path / "repo")
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "env"))
    with pytest.raises(InputError) as err:
        load_as2("wikiqa-tsv", "dev")
    msg = str(err.value)
    for root in ["env", "data", "shared/data", "repo/data"]:
        assert str(tmp_path / root / "wikiqa_tsv" / "WikiQA-dev.tsv") in msg
    assert "cerberus download" in msg and "\n" not in msg


# ----------------------------------------------------------------------------- dataset helpers
def synthetic_dataset(n: int = 30) -> AS2Dataset:
    qs = [Question(f"q{i}", f"question {i}", tuple(f"c{i}.{j}" for j in range(3)),
                   (1, 0, 0) if i % 3 else (0, 0, 0)) for i in range(n)]
    return AS2Dataset("syn", "dev", qs, "<memory>", "none")


def test_subset_is_deterministic_and_in_source_order():
    ds = synthetic_dataset()
    a, b, c = ds.subset(10, seed=0), ds.subset(10, seed=0), ds.subset(10, seed=1)
    assert [q.qid for q in a] == [q.qid for q in b] != [q.qid for q in c]
    order = [q.qid for q in ds]
    assert [order.index(q.qid) for q in a] == sorted(order.index(q.qid) for q in a)
    assert len(ds.subset(1000, seed=0)) == len(ds)
    with pytest.raises(ValueError):
        ds.subset(0, seed=0)


def test_fingerprint_tracks_content():
    ds = synthetic_dataset()
    assert ds.fingerprint() == synthetic_dataset().fingerprint()
    flipped = AS2Dataset(ds.name, ds.split, list(ds.questions), ds.source, ds.filter)
    flipped.questions[5] = dataclasses.replace(ds[5], labels=(0, 1, 0))
    assert flipped.fingerprint() != ds.fingerprint()
    renamed = AS2Dataset(ds.name, ds.split, list(ds.questions), ds.source, ds.filter)
    renamed.questions[0] = dataclasses.replace(ds[0], candidates=("x", "c0.1", "c0.2"))
    assert renamed.fingerprint() != ds.fingerprint()


def test_stats_and_format():
    ds = synthetic_dataset(30)  # 10 questions without a positive
    s = dataset_stats(ds)
    assert (s["questions"], s["pairs"], s["positives"], s["no_positive"]) == (30, 90, 20, 10)
    assert s["by_filter"] == {"none": {"questions": 30, "pairs": 90},
                              "answerable": {"questions": 20, "pairs": 60},
                              "clean": {"questions": 20, "pairs": 60}}
    assert s["mean_candidates"] == 3 and s["positive_rate"] == pytest.approx(20 / 90)
    assert "20/60" in format_stats(s)


@needs_data
def test_inspect_reports_every_split():
    report = inspect("wikiqa", data_root=DATA)
    assert all(x in report for x in ["873", "8672", "857/8651", "122/1126", "237/2341"])
    assert "not found: train" in inspect("wikiqa-tsv", data_root=DATA)
    assert "78/4619" in inspect(str(DATA / "trecqa" / "TRAIN.xml"))


# ----------------------------------------------------------------------------- download
SYN_SPLITS = {  # tiny synthetic WikiQA, all questions included like the official archive
    "train": [("Q1", "who?", "a", 1), ("Q1", "who?", "b", 0), ("Q2", "what?", "c", 0)],
    "dev": [("Q3", "when?", "d", 0), ("Q3", "when?", "e", 1), ("Q4", "where?", "f", 1)],
    "test": [("Q5", "why?", "g", 1), ("Q5", "why?", "h", 0)],
}


def zip_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture
def http_dir(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (folder, base url)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_wikiqa(tmp_path, http_dir):
    www, base = http_dir
    (www / "WikiQACorpus.zip").write_bytes(zip_bytes(
        {f"WikiQACorpus/WikiQA-{s}.tsv": wikiqa_tsv(rows) for s, rows in SYN_SPLITS.items()}
        | {"WikiQACorpus/README.txt": "licence"}))
    out = download_wikiqa(tmp_path / "dest", url=f"{base}/WikiQACorpus.zip")
    assert out == tmp_path / "dest" / "wikiqa_tsv"
    assert sorted(p.name for p in out.iterdir()) == [
        "WikiQA-dev.tsv", "WikiQA-test.tsv", "WikiQA-train.tsv"]
    train = load_as2("wikiqa-tsv", split="train", data_root=tmp_path / "dest")
    assert [(q.qid, q.labels) for q in train] == [("Q1", (1, 0)), ("Q2", (0,))]
    assert [q.qid for q in load_as2("wikiqa-tsv", "dev", data_root=tmp_path / "dest")] == ["Q3"]
    assert len(load_as2("wikiqa-tsv", "test", data_root=tmp_path / "dest")) == 1
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["wikiqa_tsv"]  # no temp left


@pytest.mark.parametrize("payload,fragment", [
    (b"<html>not found</html>", "not a zip archive"),
    (zip_bytes({"WikiQACorpus/WikiQA-train.tsv": wikiqa_tsv(SYN_SPLITS["train"])}),
     "archive lacks WikiQACorpus/WikiQA-dev.tsv"),
    (zip_bytes({f"WikiQACorpus/WikiQA-{s}.tsv": "QuestionID\tQuestion\n" for s in SYN_SPLITS}),
     "expected header"),
])
def test_download_rejects_bad_archives(tmp_path, http_dir, payload, fragment):
    www, base = http_dir
    (www / "bad.zip").write_bytes(payload)
    with pytest.raises(InputError, match=re.escape(fragment)):
        download_wikiqa(tmp_path / "dest", url=f"{base}/bad.zip")
    assert list((tmp_path / "dest").iterdir()) == []  # nothing half-installed


def test_download_reports_http_errors(tmp_path, http_dir):
    _, base = http_dir
    with pytest.raises(InputError, match="download failed"):
        download_wikiqa(tmp_path / "dest", url=f"{base}/missing.zip")
