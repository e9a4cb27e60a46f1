"""Data layer: exact counts on the real files, stable addresses, readers (header-less and
gzipped files included), the two WikiQA forms, errors. The download: test_download.py."""
from __future__ import annotations

import dataclasses
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cerberus_core.data import registry
from cerberus_core.data import (
    FILTERS, AS2Dataset, Question, dataset_stats, detect_format, format_stats, inspect,
    is_registered_source, load_as2, text_qid, write_as2,
)
from cerberus_core.errors import InputError
from conftest import DATA

needs_data = pytest.mark.skipif(DATA is None or not (DATA / "wikiqa").is_dir() or not (DATA / "trecqa").is_dir(),
                                reason="real AS2 data (wikiqa/, trecqa/) not found: set CERBERUS_DATA to its folder")


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
    qids, idx, labels = ds.pair_arrays()
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


def norm(text: str) -> str:
    """Text without case and tokenisation: the toks form is lowercased and Treebank-tokenised."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@needs_data
@pytest.mark.parametrize("policy", list(FILTERS))
@pytest.mark.parametrize("split", ["dev", "test"])
def test_toks_and_tsv_readers_agree(split, policy):
    toks = load_as2("wikiqa", split, policy, data_root=DATA)
    tsv = load_as2("wikiqa-tsv", split, policy, data_root=DATA)
    assert (len(toks), toks.n_pairs, toks.n_positives) == (len(tsv), tsv.n_pairs, tsv.n_positives)
    assert [(len(q.candidates), q.labels) for q in toks] == [
        (len(q.candidates), q.labels) for q in tsv]
    assert [norm(q.text) for q in toks] == [norm(q.text) for q in tsv]
    assert toks[0].text != tsv[0].text  # they do differ before normalisation


def official_from_filtered(toks: AS2Dataset, tsv: AS2Dataset) -> str:
    """The official layout rebuilt from the shared TSV (which holds only questions with a correct
    sentence): the questions it lacks go back, as questions with none, where castorini's ids
    (positions in the official file) leave gaps."""
    lines, position = [WIKIQA_HEADER], 0
    for t, q in zip(toks, tsv, strict=True):
        for position in range(position + 1, int(t.qid)):
            lines.append(f"F{position}\tfiller {position}?\tD\tT\tS\tno answer here\t0")
        position = int(t.qid)
        lines += [f"{q.qid}\t{q.text}\tD\tT\tS\t{c}\t{y}" for c, y in zip(q.candidates, q.labels)]
    return "\n".join(lines) + "\n"


@needs_data
@pytest.mark.parametrize("split", ["dev", "test"])
def test_wikiqa_from_the_official_tsv_equals_the_toks_form(tmp_path, split):
    """Without the toks folders, `wikiqa` reads the official TSV with the same question ids,
    candidates and labels under every filter (what keys teacher score tables and caches)."""
    official = tmp_path / "root" / "wikiqa_tsv" / f"WikiQA-{split}.tsv"
    write(official, official_from_filtered(load_as2("wikiqa", split, "none", data_root=DATA),
                                           load_as2("wikiqa-tsv", split, "none", data_root=DATA)))
    for policy in FILTERS:
        toks = load_as2("wikiqa", split, policy, data_root=DATA)
        tsv = load_as2("wikiqa", split, policy, data_root=official.parents[1])
        assert tsv.source == str(official) and (tsv.name, tsv.split) == ("wikiqa", split)
        assert (len(tsv), tsv.n_pairs, tsv.n_positives) == (
            len(toks), toks.n_pairs, toks.n_positives)
        assert tsv.keys() == toks.keys()  # question ids and candidate indices
        assert [q.labels for q in tsv] == [q.labels for q in toks]
        assert [norm(q.text) for q in tsv] == [norm(q.text) for q in toks]


@needs_data
def test_wikiqa_refuses_a_filtered_copy_of_the_official_tsv(tmp_path):
    """Ids are positions among all questions: a copy without the no-answer ones would shift them."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "wikiqa_tsv").symlink_to(DATA / "wikiqa_tsv")  # read in place
    with pytest.raises(InputError, match=r"WikiQA-dev\.tsv: every question here has a correct "
                                         r"sentence, so this is a filtered copy"):
        load_as2("wikiqa", "dev", data_root=tmp_path / "root")
    assert len(load_as2("wikiqa-tsv", "dev", data_root=tmp_path / "root")) == 122


def test_toks_form_in_any_root_wins_over_the_official_tsv(tmp_path, monkeypatch):
    work = tmp_path / "work"
    write(tmp_path / "env" / "wikiqa_tsv" / "WikiQA-dev.tsv", wikiqa_tsv(
        [("Q0", "none?", "x.", 0), ("Q1", "q?", "c.", 1), ("Q1", "q?", "d.", 0)]))
    for name, text in [("a.toks", "q ?\n"), ("b.toks", "c .\n"), ("id.txt", "2\n"),
                       ("sim.txt", "1\n")]:
        write(work / "data" / "wikiqa" / "dev" / name, text)
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "env"))  # searched first
    monkeypatch.chdir(work)
    monkeypatch.setattr(registry, "REPO", tmp_path / "elsewhere")
    assert load_as2("wikiqa", "dev", "none")[0] == Question("2", "q ?", ("c .",), (1,))
    for name in ["a.toks", "b.toks", "id.txt", "sim.txt"]:
        (work / "data" / "wikiqa" / "dev" / name).unlink()
    (work / "data" / "wikiqa" / "dev").rmdir()
    assert load_as2("wikiqa", "dev", "none")[0] == Question("2", "q?", ("c.", "d."), (1, 0))


def test_is_registered_source_knows_every_form(tmp_path):
    assert is_registered_source("wikiqa", "dev", tmp_path / "wikiqa" / "dev")
    assert is_registered_source("wikiqa", "dev", tmp_path / "wikiqa_tsv" / "WikiQA-dev.tsv")
    assert is_registered_source("wikiqa-tsv", "test", tmp_path / "wikiqa_tsv" / "WikiQA-test.tsv")
    assert not is_registered_source("wikiqa", "test", tmp_path / "wikiqa_tsv" / "WikiQA-dev.tsv")
    assert not is_registered_source("wikiqa", None, tmp_path / "wikiqa" / "dev")
    assert not is_registered_source("mine", "dev", tmp_path / "wikiqa" / "dev")


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


def test_headerless_tsv_reads_like_the_same_file_with_a_header(tmp_path):
    body = "what is a?\ta is x\t1\nwhat is a?\ta is z\t0\nwhat is b?\tb is y\t0\n"
    bare = write(tmp_path / "WikiQA-train.txt", body)  # the layout of WikiQA's .txt files
    headed = write(tmp_path / "headed.tsv", "question\tcandidate\tlabel\n" + body)
    assert detect_format(bare) == detect_format(write(tmp_path / "bare.tsv", body)) == "tsv"
    a, b = load_as2(str(bare)), load_as2(str(headed))
    assert [(q.text, q.candidates, q.labels) for q in a] == [
        ("what is a?", ("a is x", "a is z"), (1, 0)), ("what is b?", ("b is y",), (0,))]
    assert a.fingerprint() == b.fingerprint() and a.keys() == b.keys()
    assert a.name == "WikiQA-train"


PLAIN = {  # one file of every supported format, to be read gzipped too
    "g.tsv": "qid\tquestion\tcandidate\tlabel\n1\tq?\tc.\t1\n1\tq?\td.\t0\n",
    "bare.tsv": "q?\tc.\t1\nq?\td.\t0\n",
    "bare.txt": "q?\tc.\t1\nq?\td.\t0\n",
    "w.tsv": wikiqa_tsv([("Q1", "q?", "c.", 1), ("Q1", "q?", "d.", 0)]),
    "g.jsonl": '{"question": "q?", "candidate": "c.", "label": 1}\n',
    "t.xml": trec_xml([("1", "q ?", [("positive", "c ."), ("negative", "d .")])]),
    "t.txt": trec_xml([("1", "q ?", [("positive", "c .")])]),
}


@pytest.mark.parametrize("fname", PLAIN)
def test_gzipped_files_read_like_plain_ones(tmp_path, fname):
    plain = write(tmp_path / fname, PLAIN[fname])
    packed = write(tmp_path / "gz" / f"{fname}.gz", gzip.compress(plain.read_bytes()))
    assert detect_format(packed) == detect_format(plain)
    a, b = load_as2(str(plain)), load_as2(str(packed))
    assert a.fingerprint() == b.fingerprint() and len(b) == 1 and b.name == a.name


@needs_data
def test_gzipped_real_file(tmp_path):
    packed = write(tmp_path / "TEST.xml.gz",
                   gzip.compress((DATA / "trecqa" / "TEST.xml").read_bytes()))
    ds = load_as2(str(packed), split="test")
    assert (len(ds), ds.n_pairs, ds.name) == (68, 1442, "TEST")


def test_corrupt_gzip_is_named(tmp_path):
    packed = gzip.compress(b"question\tcandidate\tlabel\nq\tc\t1\n")
    path = write(tmp_path / "cut.tsv.gz", packed[:-8])
    with pytest.raises(InputError, match=r"cut\.tsv\.gz: corrupt gzip file \(Compressed file"):
        load_as2(str(path))


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
    # header-less question<TAB>candidate<TAB>label: the same errors, lines counted from 1
    ("bare.tsv", "q\tc\t1\nq\tc2\tyes\n", 2, "label must be 0 or 1, got 'yes'"),
    ("bare1.txt", "q\tc\tyes\nq\tc2\t0\n", 1, "label must be 0 or 1"),
    ("badhead.tsv", "query\tpassage\trelevance\nq\tc\t1\n", 1,
     "got 'relevance' (if this line is a header, it must name question, candidate, label)"),
    ("barefields.tsv", "q\tc\t1\nq\tc2\n", 2, "expected 3 tab-separated fields, got 2"),
    ("bareq.tsv", "q\tc\t1\n \tc2\t0\n", 2, "empty question"),
    ("barec.tsv", "\tc\t1\n", 1, "empty question"),
    # gzipped: lines of the decompressed text
    ("label.tsv.gz", gzip.compress(b"question\tcandidate\tlabel\nq\tc\t1\nq\tc2\t2\n"), 3,
     "label must be 0 or 1"),
    ("bare.tsv.gz", gzip.compress(b"q\tc\t1\nq\tc2\n"), 2, "expected 3 tab-separated fields"),
    ("trunc.xml.gz", gzip.compress(GOOD_XML.encode() + b"<QApairs id='2'>\n"), 11,
     "truncated: <QApairs id='2'>"),
    ("latin1.txt.gz", gzip.compress("q\tcaf\u00e9\t1\n".encode("latin-1")), 1, "not UTF-8"),
    ("empty.jsonl.gz", gzip.compress(b""), 1, "file is empty"),
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


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cerberus_core", *args], capture_output=True,
                          text=True)


def test_inspect_data_reads_headerless_and_gzipped_files(tmp_path):
    body = "q1?\tc1\t1\nq1?\tc2\t0\nq2?\tc3\t0\n"
    for path in [write(tmp_path / "bare.tsv", body),
                 write(tmp_path / "bare.tsv.gz", gzip.compress(body.encode())),
                 write(tmp_path / "headed.jsonl.gz", gzip.compress("".join(
                     json.dumps({"question": q, "candidate": c, "label": int(y)}) + "\n"
                     for q, c, y in (line.split("\t") for line in body.splitlines())).encode()))]:
        run = cli("inspect-data", str(path))
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[2].split()[:4] == ["-", "2", "3", "1"], run.stdout


@pytest.mark.parametrize("fname,content", [
    ("bad.tsv", b"q\tc\t1\nq\tc2\tyes\n"),
    ("bad.tsv.gz", gzip.compress(b"q\tc\t1\nq\tc2\tyes\n")),
])
def test_inspect_data_bad_headerless_row_is_one_line_exit_2(tmp_path, fname, content):
    run = cli("inspect-data", str(write(tmp_path / fname, content)))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{fname}:2: label must be 0 or 1" in run.stderr and "Traceback" not in run.stderr


# ----------------------------------------------------------------------------- data root order
def test_data_root_resolution_order(tmp_path, monkeypatch):
    def make_root(root: Path) -> Path:
        write(root / "trecqa" / "DEV.xml", GOOD_XML)
        return root

    def source() -> Path:
        return Path(load_as2("trecqa", "dev").source).parents[1]

    work = tmp_path / "repo"
    explicit, env, local = make_root(tmp_path / "explicit"), make_root(tmp_path / "env"), make_root(work / "data")
    monkeypatch.chdir(work)
    monkeypatch.setattr(registry, "REPO", tmp_path / "elsewhere")
    monkeypatch.setenv("CERBERUS_DATA", str(env))
    assert Path(load_as2("trecqa", "dev", data_root=explicit).source).parents[1] == explicit
    assert source() == env
    monkeypatch.delenv("CERBERUS_DATA")
    assert source() == local
    # from a notebook folder: nothing relative to cwd, found in the repository's data/
    monkeypatch.chdir(write(work / "notebooks" / "x", "").parent)
    monkeypatch.setattr(registry, "REPO", work)
    assert source() == local
    # a folder beside the clone is never searched: only $CERBERUS_DATA points there
    (local / "trecqa" / "DEV.xml").unlink()
    make_root(tmp_path / "shared" / "data")
    with pytest.raises(InputError, match="looked in: ") as err:
        load_as2("trecqa", "dev")
    assert "shared" not in str(err.value)
    # an explicit root is the only place searched
    with pytest.raises(InputError, match="looked in: .*empty"):
        load_as2("trecqa", "dev", data_root=tmp_path / "empty")


def test_a_cerberus_data_that_names_nothing_is_an_error(tmp_path, monkeypatch):
    """Set but naming no folder: refused, naming it, never skipped for ./data (which holds data here)."""
    write(tmp_path / "data" / "trecqa" / "DEV.xml", GOOD_XML)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "typo"))
    with pytest.raises(InputError, match=rf"^{tmp_path / 'typo'}: \$CERBERUS_DATA names no folder"):
        load_as2("trecqa", "dev")


def test_not_found_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    """Some WikiQA is present (so nothing is downloaded): every place of each form is named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "REPO", tmp_path / "repo")
    monkeypatch.setenv("CERBERUS_DATA", str(tmp_path / "env"))
    write(tmp_path / "env" / "wikiqa_tsv" / "WikiQA-test.tsv", wikiqa_tsv(
        [("Q1", "q?", "c.", 1), ("Q2", "r?", "d.", 0)]))
    with pytest.raises(InputError) as err:
        load_as2("wikiqa", "dev")
    msg = str(err.value)
    for root in ["env", "data", "repo/data"]:
        assert str(tmp_path / root / "wikiqa" / "dev") in msg
        assert str(tmp_path / root / "wikiqa_tsv" / "WikiQA-dev.tsv") in msg
    assert "python -m cerberus_core download" in msg and "\n" not in msg


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
