"""Analysis: hand-computed goldens for diversity, agreement and the Pareto front; scipy for correlations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from cerberus_core.results import analysis as an
from cerberus_core.results import artifacts, reader
from cerberus_core.results.metrics import ranking_metrics
from cerberus_core.results.scores import ScoreTable

from conftest import synthetic_dataset_meta

QIDS = np.array(["a", "a", "a", "b", "b"])


def table(qids, cand, labels, **columns) -> ScoreTable:
    columns = {k: np.asarray(v, float) for k, v in columns.items()}
    return ScoreTable(list(qids), np.asarray(cand), np.asarray(labels), columns)


def write_trace(run_dir, step: int, heads: np.ndarray, qids=QIDS) -> None:
    cand = [0, 1, 2, 0, 1][: len(qids)] if len(qids) == 5 else list(range(len(qids)))
    cols = {f"head{i}": heads[:, i] for i in range(heads.shape[1])}
    t = table(qids, cand, [0] * len(qids), pooled=an.to_probability(heads).mean(1), **cols)
    t.meta = synthetic_dataset_meta(run_dir, qids, cand, t.labels)  # saved tables need a dataset for their labels
    t.save(run_dir / "trace" / f"dev_step{step:06d}.tsv")


# ----------------------------------------------------------------- ambiguity
def test_ambiguity_hand_computed():
    # pair 1: mean 0.3, deviations +-0.1 -> 0.01; pair 2: identical -> 0; mean 0.005
    assert an.ambiguity(np.array([[0.2, 0.4], [0.5, 0.5]])) == pytest.approx(0.005)
    # deviations -0.3, 0, 0.3 -> (0.09 + 0 + 0.09) / 3
    assert an.ambiguity(np.array([[0.0, 0.3, 0.6]])) == pytest.approx(0.06)


def test_ambiguity_is_exactly_zero_for_identical_columns():
    p = np.random.default_rng(0).random((200, 1))
    identical = np.repeat(np.r_[p, [[0.1]]], 3, axis=1)  # 0.1 * 3 / 3 != 0.1 in floating point
    assert an.ambiguity(identical) == 0.0


def test_ambiguity_is_the_krogh_vedelsby_decomposition():
    """Squared error of the mean = mean member error - ambiguity, for any target."""
    rng = np.random.default_rng(1)
    p, y = rng.random((50, 3)), rng.integers(0, 2, 50)
    member_error = np.mean((p - y[:, None]) ** 2)
    assert np.mean((p.mean(1) - y) ** 2) == pytest.approx(member_error - an.ambiguity(p))


# ----------------------------------------------------------------- top-1 and correlation
def test_top1_disagreement_toy():
    m = np.array([[1, 3, 2], [2, 2, 2], [0, 1, 0],   # question a: tops cand 1, 0, 0 (tie -> lower index)
                  [5, 1, 5], [1, 5, 5]], dtype=float)  # question b: tops cand 0, 1, 0 (tie -> lower index)
    expected = np.array([[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]])
    np.testing.assert_array_equal(an.top1_disagreement(QIDS, m), expected)


def test_top1_ties_follow_candidate_index():
    scores = np.array([1.0, 1.0])
    assert an.top1(["q", "q"], scores).tolist() == [0]
    assert an.top1(["q", "q"], scores, cand_idx=[1, 0]).tolist() == [1]


def test_top1_matches_the_p_at_1_of_the_metrics():
    rng = np.random.default_rng(3)
    qids = np.repeat([f"q{i}" for i in range(30)], 5)
    labels = rng.integers(0, 2, len(qids))
    scores = np.round(rng.normal(size=len(qids)))  # many ties
    assert labels[an.top1(qids, scores)].mean() == ranking_metrics(qids, labels, scores)["p@1"]


@pytest.mark.parametrize("method,reference", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr),
                                              ("kendall", stats.kendalltau)])
def test_pairwise_correlation_matches_scipy(method, reference):
    m = np.random.default_rng(2).normal(size=(40, 3))
    corr = an.pairwise_correlation(m, method)
    assert corr.shape == (3, 3) and np.all(np.diag(corr) == 1)
    assert corr[0, 2] == pytest.approx(reference(m[:, 0], m[:, 2])[0])
    np.testing.assert_allclose(corr, corr.T)


def test_unknown_correlation_is_refused():
    with pytest.raises(ValueError, match="valid: pearson"):
        an.pairwise_correlation(np.ones((3, 2)), "cosine")


# ----------------------------------------------------------------- probabilities
def test_soft_targets_and_candidate_distribution():
    np.testing.assert_allclose(an.to_probability(np.array([0.0]), 2.0), [0.5])
    sharp, soft = an.to_probability(np.array([2.0]), 1.0), an.to_probability(np.array([2.0]), 4.0)
    assert sharp[0] > soft[0] > 0.5  # a higher temperature flattens the target
    dist = an.candidate_distribution(np.array([1.0, 2.0, 0.0, 5.0, 5.0]), 2.0, QIDS)
    np.testing.assert_allclose([dist[:3].sum(), dist[3:].sum()], [1, 1])
    np.testing.assert_allclose(dist[3:], [0.5, 0.5])
    with pytest.raises(ValueError, match="temperature"):
        an.to_probability(np.zeros(2), 0)


# ----------------------------------------------------------------- score matrices and loaders
def test_score_matrix_aligns_on_qid_and_candidate():
    t1 = table(["a", "a", "b"], [0, 1, 0], [1, 0, 1], score=[1, 2, 3])
    t2 = table(["b", "a", "a"], [0, 1, 0], [1, 0, 1], pooled=[30, 20, 10], head0=[0, 0, 0])
    names, m = an.score_matrix({"t1": t1, "t2": t2})
    assert names == ["t1", "t2"]
    np.testing.assert_array_equal(m, [[1, 10], [2, 20], [3, 30]])
    names, m = an.score_matrix(t2, reference=t1)
    assert names == ["head0"]
    with pytest.raises(ValueError, match="lacks pair"):
        an.score_matrix({"t1": t1, "t3": table(["a", "a", "c"], [0, 1, 0], [1, 0, 1], score=[1, 2, 3])})


def test_load_run_and_teacher_tables(tmp_path):
    t = table(["a", "a"], [0, 1], [1, 0], score=[1, 2])
    t.meta = synthetic_dataset_meta(tmp_path, t.qids, t.cand_idx, t.labels)  # saved tables need a dataset for their labels
    t.save(tmp_path / "teacher_scores" / "x" / "test.tsv")
    t.save(tmp_path / "teacher_scores" / "w" / "test.tsv")
    assert list(artifacts.load_teacher_tables(tmp_path, "test")) == ["w", "x"]
    assert artifacts.load_teacher_tables(tmp_path, "dev") == {}
    run = artifacts.load_run(tmp_path / "students" / "missing")
    assert run["metrics"] is None and run["test"] is None and run["curve"] == []


# ----------------------------------------------------------------- diversity over training
def test_diversity_over_steps_starts_at_exactly_zero(tmp_path):
    start = np.array([0.1, -0.7, 2.3, 0.3, -1.1])
    write_trace(tmp_path, 0, np.column_stack([start] * 3))  # copy init: identical heads
    write_trace(tmp_path, 12, np.column_stack([start, start + [0, 4, 0, 0, 0], -start]))
    rows = an.diversity_over_steps(artifacts.read_traces(tmp_path))
    assert [r["step"] for r in rows] == [0, 12]
    assert rows[0]["ambiguity"] == 0.0 and rows[0]["top1_disagreement"] == 0.0  # exactly, not approximately
    assert rows[0]["mean_pearson"] == pytest.approx(1.0)
    assert rows[1]["ambiguity"] > 0 and rows[1]["mean_pearson"] < 1
    # head1 moves question a's top to cand 1; head2 reverses both questions: 3 of 6 ordered pairs differ per question
    assert rows[1]["top1_disagreement"] == pytest.approx((4 / 6 + 4 / 6) / 2)


# ----------------------------------------------------------------- heads vs teachers
def test_own_teacher_is_closest_on_a_constructed_case():
    rng = np.random.default_rng(4)
    teachers = rng.normal(size=(100, 3))
    heads = teachers + 0.3 * rng.normal(size=teachers.shape)  # head i follows teacher i
    qids = np.repeat(np.arange(20).astype(str), 5)
    agreement = an.agreement_matrix(heads, teachers, qids, "spearman")
    assert agreement.shape == (3, 3)
    assert an.own_teacher_is_closest(agreement) == [True, True, True]
    swapped = an.agreement_matrix(heads[:, [1, 0, 2]], teachers, qids)
    assert an.own_teacher_is_closest(swapped) == [False, False, True]


def test_own_head_is_the_column_reading_and_its_relabeling_p_is_exact():
    # every head sits nearest teacher 1 (a shared encoder), yet each teacher's own head is nearest it
    agreement = np.array([[0.80, 0.95, 0.74], [0.78, 0.96, 0.73], [0.77, 0.94, 0.75]])
    assert an.own_teacher_is_closest(agreement) == [False, True, False]
    assert an.own_head_is_closest(agreement) == [True, True, True]
    assert an.relabeling_p([agreement]) == pytest.approx(1 / 6)  # one of the 3! relabelings
    assert an.relabeling_p([agreement] * 5) == pytest.approx(6.0 ** -5)
    same_head_wins = np.array([[0.9, 0.9, 0.9], [0.5, 0.5, 0.5], [0.1, 0.1, 0.1]])
    assert an.own_head_is_closest(same_head_wins) == [True, False, False]
    assert an.relabeling_p([agreement, same_head_wins]) == 0.0  # no relabeling makes each column its own
    identical_heads = np.tile([0.8, 0.9, 0.7], (3, 1))  # heads that learned the same thing tie everywhere
    assert an.own_teacher_is_closest(identical_heads) == [False, True, False]
    assert an.own_head_is_closest(identical_heads) == [False, False, False]
    with pytest.raises(ValueError, match="3 heads but only 2 teachers"):
        an.own_head_is_closest(agreement[:, :2])


def test_top1_agreement_is_one_minus_disagreement():
    rng = np.random.default_rng(5)
    heads, teachers = rng.normal(size=(30, 2)), rng.normal(size=(30, 3))
    qids = np.repeat(list("abcdef"), 5)
    disagreement = an.top1_disagreement(qids, np.hstack([heads, teachers]))
    np.testing.assert_allclose(an.agreement_matrix(heads, teachers, qids, "top1"), 1 - disagreement[:2, 2:])


# ----------------------------------------------------------------- quality
def test_ensemble_gain_and_metrics_frame():
    labels = np.array([0, 1, 0, 1, 0])
    m = np.array([[3.0, -5], [2, 0], [-9, 1], [0, 4], [1, 0]])
    gain = an.ensemble_gain(QIDS, labels, m, ["x", "y"])
    assert gain["members"]["x"]["p@1"] == 0.0 and gain["members"]["y"]["p@1"] == 0.5
    # mean probabilities: a -> (.48, .50, .37), cand 1 right; b -> (.74, .62), cand 0 right
    assert gain["ensemble"]["p@1"] == 1.0
    assert gain["gain_over_best"]["p@1"] == 0.5
    rows = an.metrics_frame({"x": m[:, 0], "y": m[:, 1]}, QIDS, labels, n_resamples=200)
    assert [r["name"] for r in rows] == ["x", "y"]
    for r in rows:
        assert r["map_ci"][0] <= r["map"] <= r["map_ci"][1] and r["n_questions"] == 2


def test_paired_against_reference():
    rng = np.random.default_rng(6)
    qids = np.repeat(np.arange(40).astype(str), 5)
    labels = np.tile([1, 0, 0, 0, 0], 40)
    good = labels + 0.1 * rng.normal(size=len(labels))
    out = an.paired_against({"good": good, "same": good.copy(), "noise": rng.normal(size=len(labels))},
                            qids, labels, "good", n_resamples=2000)
    assert set(out) == {"same", "noise"}
    assert out["same"] == {"diff": 0.0, "p_value": 1.0}
    assert out["noise"]["diff"] < 0 and out["noise"]["p_value"] < 0.01


def test_pareto_front_toy():
    points = [(1, 0.5), (2, 0.7), (3, 0.6), (0.5, 0.4), (2, 0.7), (1, 0.45)]
    # (3, .6) is beaten by (2, .7); (1, .45) by (1, .5); the tied (2, .7) pair both stay
    assert an.pareto_front(points) == [3, 0, 1, 4]


# ----------------------------------------------------------------- paired tests in words
WIN, LOSS = {"diff": -0.2, "p_value": 0.01}, {"diff": 0.2, "p_value": 0.01}  # diff = other - CERBERUS
WEAK_WIN, TIE = {"diff": -0.2, "p_value": 0.3}, {"diff": 0.0, "p_value": 1.0}


def test_describe_paired_reads_the_sign_from_the_references_side():
    assert an.describe_paired(WIN, 0.05) == "CERBERUS better, significant (diff -0.200, p = 0.010)"
    assert an.describe_paired(LOSS, 0.05).startswith("CERBERUS worse, significant")
    assert an.describe_paired(WEAK_WIN, 0.05).startswith("CERBERUS better, not significant")
    assert an.describe_paired(WIN, 0.01).startswith("CERBERUS better, not significant")  # p < alpha, strictly
    assert an.describe_paired(TIE, 0.05, reference="base").startswith("tie, not significant")
    assert an.describe_paired(LOSS, 0.05, reference="base").startswith("base worse")


# ----------------------------------------------------------------- teachers' architectures
def write_json(path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def test_teacher_architecture_prefers_the_saved_model_config(tmp_path):
    backbone = tmp_path / "encoder"
    write_json(backbone / "config.json", {"model_type": "mpnet"})
    teacher = tmp_path / "teachers" / "t"
    write_json(teacher / "config.json", {"backbone": str(backbone)})
    assert artifacts.teacher_architecture(artifacts.load_run(teacher)) == "mpnet"  # no best/: the backbone's own config
    write_json(teacher / "best" / "config.json", {"model_type": "cerberus", "backbone": {"model_type": "electra"}})
    assert artifacts.teacher_architecture(artifacts.load_run(teacher)) == "electra"
    write_json(teacher / "config.json", {"backbone": str(tmp_path / "nowhere")})
    (teacher / "best" / "config.json").unlink()
    with pytest.raises(ValueError, match="architecture"):
        artifacts.teacher_architecture(artifacts.load_run(teacher))


# ----------------------------------------------------------------- benchmark rows
@pytest.fixture
def finished_runs(tmp_path):
    for kind, name in (("students", "cerberus"), ("students", "single-a"), ("teachers", "a"), ("teachers", "b"),
                       ("ablation", "cerberus-a+b")):
        write_json(tmp_path / kind / name / "metrics.json", {})
    (tmp_path / "teachers" / "c").mkdir()  # not finished: no metrics.json
    return tmp_path


@pytest.mark.parametrize("spec, expected", [
    ("artifacts/full/students/cerberus/best", "cerberus"),
    ("/x/students/single-a", "single-a"),
    ("artifacts/full/teachers/a/best", "a"),
    ("a", "a"),  # a bare run name
    ("cerberus", "cerberus"),
    ("teachers/a/best+teachers/b/best", an.TEACHER_ENSEMBLE),
    ("b/best+a/best", an.TEACHER_ENSEMBLE),
    ("teacher ensemble", an.TEACHER_ENSEMBLE),
    ("teachers/a/best+teachers/a/best", None),  # not every teacher
    ("teachers/a/best", "a"),
    ("teachers/c/best", None),  # unfinished
    ("students/a/best", None),  # no such student, though a teacher is named a
    ("ablation/cerberus-a+b/best", None),
    ("minilm-l6:B5-3H1", None),
    ("", None),
])
def test_run_of_names_the_run_a_bench_row_measured(finished_runs, spec, expected):
    assert reader.run_of(spec, finished_runs) == expected


def test_latency_by_model_falls_back_to_the_architectures_row():
    stands_for = {"cerberus": ["cerberus", "replicated-a"], "B2 1H1 student": ["single-a", "single-b", "gold"],
                  "a": ["a"], "b": ["b"]}
    rows = [{"name": "cerberus", "latency_ms": 10.0}, {"name": "single-b", "latency_ms": 4.0},
            {"name": "gold", "latency_ms": 5.0}, {"name": "a", "latency_ms": 7.0}, {"name": "other", "latency_ms": 1.0}]
    assert an.latency_by_model(rows, stands_for) == {"cerberus": 10.0, "replicated-a": 10.0, "single-a": 4.0,
                                                    "single-b": 4.0, "gold": 5.0, "a": 7.0}
    rows.append({"name": "B2 1H1 student", "latency_ms": 3.0})  # the group's own row beats a sibling's
    assert an.latency_by_model(rows, stands_for)["single-a"] == 3.0


def test_specialization_by_hand_and_for_heads_that_copy_their_teachers():
    from cerberus_core.results.analysis import head_diversity, specialization

    a = np.array([[1.0, 0.2, 0.4], [0.5, 0.9, 0.1], [0.0, 0.3, 0.6]])
    by_hand = np.mean([1.0 - 0.3, 0.9 - 0.3, 0.6 - 0.15])
    assert specialization(a) == pytest.approx(by_hand)
    rng = np.random.default_rng(0)
    qids = np.repeat(np.arange(50), 6)
    cand = np.tile(np.arange(6), 50)
    teachers = rng.normal(size=(300, 3))
    copies = head_diversity(qids, cand, teachers + 0.1 * rng.normal(size=(300, 3)), teachers)
    shared = teachers.mean(axis=1, keepdims=True)
    same = head_diversity(qids, cand, np.repeat(shared, 3, axis=1), teachers)
    assert copies["specialization"] > 0.9 and copies["head_head_r"] < 0.2
    assert same["specialization"] == pytest.approx(0.0, abs=1e-12)  # identical heads follow nobody in particular
    assert same["head_head_r"] == pytest.approx(1.0) and same["head_top1_disagreement"] == 0
    assert copies["teacher_teacher_r"] == same["teacher_teacher_r"]
    with pytest.raises(ValueError, match="square agreement matrix"):
        specialization(np.ones((2, 3)))


# ----------------------------------------------------------------- seed-aware test (stats.py)
from cerberus_core.results import stats as st  # noqa: E402


def _no_question_effect(per_seed, n_questions=40, seed=0):
    """d[s, q] whose per-question means over seeds are all equal: only the seeds vary the difference."""
    noise = np.random.default_rng(seed).normal(scale=0.05, size=(len(per_seed), n_questions))
    noise -= noise.mean(axis=0)  # every question's mean over seeds is 0
    noise -= noise.mean(axis=1, keepdims=True)  # and every seed's mean over questions (columns stay at 0)
    return np.asarray(per_seed, float)[:, None] + noise


def test_crossed_test_is_the_paired_t_test_over_seeds_when_questions_add_nothing():
    per_seed = [0.0003, 0.0165, 0.0308]  # three heads against the L3 + L6 pair (v2 ablation, seeds 0-2)
    d = _no_question_effect(per_seed)
    assert np.allclose(d.mean(axis=1), per_seed) and np.allclose(d.mean(axis=0), np.mean(per_seed))
    found = st.crossed_from_matrix(d)
    t = stats.ttest_1samp(per_seed, 0)
    assert found["df"] == 2 and found["var_questions"] == 0
    assert found["p"] == pytest.approx(t.pvalue) == pytest.approx(found["p_seeds_only"])
    assert found["p"] == pytest.approx(0.214, abs=0.001)
    assert found["ci95"] == pytest.approx(list(t.confidence_interval(0.95)))
    assert found["per_seed_delta"] == pytest.approx(per_seed) and found["n_seeds"] == 3


def test_crossed_test_takes_the_question_variance_when_seeds_add_nothing():
    """Four seeds that trained the same model: the variance is the paired t test's over questions, the
    df stay the seeds' (conservative); the Satterthwaite df are the questions'."""
    per_question = np.random.default_rng(1).normal(0.02, 0.1, size=50)
    found = st.crossed_from_matrix(np.tile(per_question, (4, 1)))
    t = stats.ttest_1samp(per_question, 0)
    assert found["var_seeds"] == 0 and found["delta"] / found["se"] == pytest.approx(t.statistic)
    assert found["df"] == 3 and found["df_satterthwaite"] == pytest.approx(49)
    assert found["p"] == pytest.approx(2 * stats.t.sf(abs(t.statistic), 3)) and found["p"] > t.pvalue


def test_crossed_test_variance_is_the_two_way_mean_squares_by_hand():
    for seed in range(6):
        d = np.random.default_rng(seed).normal(size=(3, 6)) + [[0.5], [0.0], [-0.2]]
        S, Q = d.shape
        m, rows, cols = d.mean(), d.mean(axis=1), d.mean(axis=0)
        ms_seed = Q * ((rows - m) ** 2).sum() / (S - 1)
        ms_question = S * ((cols - m) ** 2).sum() / (Q - 1)
        ms_residual = ((d - rows[:, None] - cols[None, :] + m) ** 2).sum() / ((S - 1) * (Q - 1))
        found = st.crossed_from_matrix(d)
        variance = (ms_seed + max(0.0, ms_question - ms_residual)) / (S * Q)
        terms = ((ms_seed, S - 1), (ms_question, Q - 1), (ms_residual, (S - 1) * (Q - 1)))
        df = variance ** 2 / sum((ms / (S * Q)) ** 2 / k for ms, k in (terms if ms_question > ms_residual else terms[:1]))
        assert found["se"] == pytest.approx(np.sqrt(variance)) and found["df_satterthwaite"] == pytest.approx(df)
        assert found["p"] == pytest.approx(2 * stats.t.sf(abs(m) / np.sqrt(variance), S - 1))
        assert found["p"] >= found["p_seeds_only"] == pytest.approx(stats.ttest_1samp(rows, 0).pvalue)


def test_consistent_per_seed_differences_are_significant_and_inconsistent_ones_are_not():
    """The same mean difference and question noise: seeds that agree reject, seeds that scatter do not,
    while the question-pooled test (which sees only the seed-averaged difference) rejects both."""
    rng = np.random.default_rng(3)
    questions = rng.normal(scale=0.02, size=200)  # a small question effect shared by the seeds
    for per_seed, significant in (([0.015, 0.016, 0.017], True), ([0.0003, 0.0165, 0.0308], False)):
        d = np.asarray(per_seed)[:, None] + questions - questions.mean() + rng.normal(scale=0.01, size=(3, 200))
        found = st.crossed_from_matrix(d)
        assert (found["p"] < 0.05) == significant, (per_seed, found["p"])
        assert stats.ttest_1samp(d.mean(axis=0), 0).pvalue < 1e-6  # pooled over seeds: "significant" both times


def test_crossed_test_keeps_its_level_where_the_pooled_test_and_satterthwaite_df_do_not():
    """Simulated null (no true difference), 3 seeds, 237 questions, the seeds carrying most of the
    variance (as in the v2 ablations). At 0.05 the pooled test over questions rejects far too often.
    In the tail where a Holm correction over 14 tests works (0.05 / 14), the t test on the
    Satterthwaite df rejects several times too often; on the seeds' df it keeps its level."""
    rng = np.random.default_rng(4)
    n, tail = 3000, 0.05 / 14
    crossed, satterthwaite, pooled = [], [], []
    for _ in range(n):
        d = rng.normal(0, 0.017, (3, 1)) + rng.normal(0, 0.05, (1, 237)) + rng.normal(0, 0.15, (3, 237))
        found = st.crossed_from_matrix(d)
        crossed.append(found["p"])
        satterthwaite.append(2 * stats.t.sf(abs(found["delta"]) / found["se"], found["df_satterthwaite"]))
        pooled.append(stats.ttest_1samp(d.mean(axis=0), 0).pvalue)
    crossed, satterthwaite, pooled = map(np.array, (crossed, satterthwaite, pooled))
    assert (crossed < 0.05).mean() < 0.06 and (pooled < 0.05).mean() > 0.15
    assert (crossed < tail).mean() < 2 * tail < (satterthwaite < tail).mean()


def test_crossed_test_from_bootstrap_resamples_agrees_with_the_one_from_the_matrix():
    """For a mean over questions, the question part estimated from shared bootstrap resamples matches
    the analytic one (the route claim 5's S takes)."""
    rng = np.random.default_rng(5)
    d = rng.normal(0, 0.005, (5, 1)) + rng.normal(0.01, 0.05, (1, 120)) + rng.normal(0, 0.1, (5, 120))
    samples = rng.integers(0, 120, size=(4000, 120))
    resampled = d[:, samples].mean(axis=2)  # seeds x resamples, the same questions at every seed
    analytic, boot = st.crossed_from_matrix(d), st.crossed_from_bootstrap(d.mean(axis=1), resampled, 120)
    assert boot["delta"] == pytest.approx(analytic["delta"])
    assert boot["se"] == pytest.approx(analytic["se"], rel=0.05) and boot["df"] == analytic["df"] == 4


def test_crossed_test_needs_two_seeds():
    with pytest.raises(ValueError, match="at least 2"):
        st.crossed_from_matrix(np.zeros((1, 10)))
    with pytest.raises(ValueError, match=">= 2 seeds"):
        st.crossed_from_bootstrap(np.zeros(1), np.zeros((1, 10)), 10)
