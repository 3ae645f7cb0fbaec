"""Captioning by retrieval: the captioner, its scores, the sweep task, texts in files."""

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skgap import ModalityGapShifter, RetrievalCaptioner, gap_sweep
from skgap.datasets import load_coco_clip, make_paired_embeddings
from skgap.evaluate import (
    LocalLMGenerator,
    caption_metric_settings,
    label_agreement,
    make_captioning_scorer,
    semantic_agreement,
    text_overlap_scores,
)
from skgap.evaluate._captioning import split_captioning
from skgap.io import DataFileError, load_embeddings

D = 8


def _unit(A):
    A = np.asarray(A, dtype=np.float64)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def _reference_ranking(V, T_bank):
    """Bank rows of each query by cosine (largest first), ties by index: a plain sort."""
    S = _unit(V) @ _unit(T_bank).T
    return [sorted(range(S.shape[1]), key=lambda j: (-S[i, j], j)) for i in range(S.shape[0])], S


@pytest.fixture
def data():
    X, y, texts = make_paired_embeddings(160, D, n_classes=4, return_texts=True, random_state=1)
    return X, y, texts


def test_nearest_text_equals_an_independent_brute_force(data):
    X, y, texts = data
    bank, query = slice(0, 120), slice(120, None)
    cap = RetrievalCaptioner().fit(X[bank], texts[bank], labels=y[bank])
    ranking, S = _reference_ranking(X[query, :D], X[bank, D:])
    best = np.array([r[0] for r in ranking])
    np.testing.assert_array_equal(cap.predict(X[query]), texts[bank][best])
    np.testing.assert_array_equal(cap.predict(X[query, :D]), texts[bank][best])  # image-only
    np.testing.assert_array_equal(cap.predict_labels(X[query]), y[bank][best])
    idx, sims = cap.retrieve(X[query])
    assert sims.dtype == np.float32  # the input dtype is kept
    np.testing.assert_allclose(sims[:, 0], S[np.arange(S.shape[0]), best], rtol=1e-5)
    top5 = RetrievalCaptioner(n_candidates=5, block_size=7).fit(X[bank], texts[bank])
    np.testing.assert_array_equal(top5.retrieve(X[query])[0], [r[:5] for r in ranking])


def test_ties_go_to_the_smaller_bank_index_also_at_the_kth_place():
    rng = np.random.default_rng(0)
    T = _unit(rng.normal(size=(6, 4)))
    T = np.vstack([T, T[[2, 2, 4]]])  # rows 6 and 7 tie with row 2, row 8 with row 4
    X = np.hstack([T, T]) + 0.0
    X[:, :4] += rng.normal(size=(9, 4))  # images differ, so no query is a bank pair
    texts = np.array([f"text {i}" for i in range(9)], dtype=object)
    query = np.hstack([T[[2]], rng.normal(size=(1, 4))])  # the image is text row 2 itself
    for k in (1, 2, 3, 4):
        idx, sims = RetrievalCaptioner(n_candidates=k).fit(X, texts).retrieve(query)
        ranking, _ = _reference_ranking(query[:, :4], T)
        np.testing.assert_array_equal(idx[0], ranking[0][:k])
    assert idx[0, :3].tolist() == [2, 6, 7]


def test_eclip_recipe_equals_a_direct_kmeans_on_the_candidates():
    rng = np.random.default_rng(3)
    d, K, per = 12, 3, 20
    e0 = np.eye(d)[0]
    groups = [np.eye(d)[1 + k] for k in range(K)]
    # K well-separated groups of 20 texts near the query, and texts far from it.
    near = np.vstack([_unit(e0 + 0.6 * g + 0.02 * rng.normal(size=(per, d))) for g in groups])
    far = _unit(-e0 + 0.3 * rng.normal(size=(40, d)))
    T = np.vstack([near, far])
    X = np.hstack([_unit(rng.normal(size=T.shape)), T])
    texts = np.array([f"report {i}" for i in range(T.shape[0])], dtype=object)
    query = np.hstack([e0[None], e0[None]])
    cap = RetrievalCaptioner(n_clusters=K).fit(X, texts)
    idx, sims = cap.retrieve(query)

    # Direct: the 20 K most similar texts, Lloyd's iterations from far-apart seeds.
    S = T @ e0
    cand = np.argsort(-S, kind="stable")[: 20 * K]
    C = T[cand]
    centres = [C[0]]
    while len(centres) < K:
        dist = np.min([((C - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(C[np.argmax(dist)])
    centres = np.array(centres)
    for _ in range(50):
        assign = np.argmin(((C[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        centres = np.array([C[assign == c].mean(0) for c in range(K)])
    reps = [cand[np.flatnonzero(assign == c)[np.argmin(((C[assign == c] - centres[c]) ** 2)
                                                        .sum(1))]] for c in range(K)]
    expected = sorted(reps, key=lambda j: (-S[j], j))
    np.testing.assert_array_equal(idx[0], expected)
    assert np.all(np.diff(sims[0]) <= 0)
    # One representative per group, not the three nearest texts of one group.
    assert sorted(j // per for j in idx[0]) == list(range(K))


def test_faiss_and_brute_force_give_the_same_neighbours(data):
    pytest.importorskip("faiss")
    X, _, texts = data
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        brute = RetrievalCaptioner(n_candidates=7).fit(Xd[:120], texts[:120])
        flat = RetrievalCaptioner(n_candidates=7, index="faiss").fit(Xd[:120], texts[:120])
        i_b, s_b = brute.retrieve(Xd[120:])
        i_f, s_f = flat.retrieve(Xd[120:])
        np.testing.assert_array_equal(i_f, i_b)
        np.testing.assert_allclose(s_f, s_b, rtol=4 * np.finfo(dtype).eps)
        assert s_f.dtype == dtype


def test_each_f1_averaging_equals_sklearn():
    X, Y, texts = make_paired_embeddings(200, D, n_classes=5, multilabel=True,
                                         return_texts=True, random_state=2)
    cap = RetrievalCaptioner().fit(X[:150], texts[:150], labels=Y[:150])
    pred = cap.predict_labels(X[150:])
    best = np.array([r[0] for r in _reference_ranking(X[150:, :D], X[:150, D:])[0]])
    np.testing.assert_array_equal(pred, Y[:150][best])
    scores, table = label_agreement(Y[150:], pred, per_label=True)
    for name, avg in (("micro", "micro"), ("macro", "macro"), ("example", "samples")):
        assert scores[f"label_f1_{name}"] == pytest.approx(
            f1_score(Y[150:], pred, average=avg, zero_division=0))
    assert len({scores["label_f1_micro"], scores["label_f1_macro"],
                scores["label_f1_example"]}) == 3  # the averagings differ here
    p, r, f, s = precision_recall_fscore_support(Y[150:], pred, average=None, zero_division=0)
    np.testing.assert_allclose(np.asarray(table["f1"]), f)
    np.testing.assert_array_equal(np.asarray(table["support"]), s)
    single = label_agreement([0, 1, 2, 2], [0, 2, 2, 2])
    assert single == {"label_accuracy": 0.75}


def test_bleu_rouge_and_cider_equal_the_libraries_called_directly():
    sacrebleu = pytest.importorskip("sacrebleu")
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    cider = pytest.importorskip("pycocoevalcap.cider.cider")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    refs = ["A man rides a horse on the beach.", "Two dogs play in the snow.",
            "A plate of food with broccoli.", "A red bus parked by the road."]
    hyps = ["a man riding a horse near the sea", "two dogs playing in snow",
            "a plate with rice and broccoli", "a bus on a street"]
    got = text_overlap_scores(refs, hyps)
    for n in (1, 2, 3, 4):
        direct = sacrebleu.BLEU(max_ngram_order=n, tokenize="13a", lowercase=True)
        assert got[f"bleu{n}"] == pytest.approx(direct.corpus_score(hyps, [refs]).score / 100)
    assert got["bleu4"] == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs], lowercase=True, tokenize="13a").score / 100)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    for m in ("rouge1", "rouge2", "rougeL"):
        assert got[m] == pytest.approx(np.mean([scorer.score(r, h)[m].fmeasure
                                                for r, h in zip(refs, hyps)]))
    tok = Tokenizer13a()
    direct, _ = cider.Cider().compute_score({i: [tok(r).lower()] for i, r in enumerate(refs)},
                                            {i: [tok(h).lower()] for i, h in enumerate(hyps)})
    assert got["cider_d"] == pytest.approx(direct)
    assert len({got[f"bleu{n}"] for n in (1, 2, 3, 4)}) == 4 and got["rouge2"] < got["rouge1"]
    settings = caption_metric_settings()
    assert settings["bleu"]["tokenize"] == "13a"
    assert settings["bleu"]["version"] == sacrebleu.__version__


def test_a_planted_own_pair_is_refused_not_retrieved(data):
    X, _, texts = data
    planted = np.vstack([X[:100], X[[130]]])  # the query's own pair is in the bank
    cap = RetrievalCaptioner().fit(planted, np.append(texts[:100], texts[130]))
    with pytest.raises(ValueError, match=r"first: row 10\) are pairs of the bank"):
        cap.predict(X[120:140])
    assert cap.predict(X[[131]]).shape == (1,)  # a held-out row is fine
    with pytest.raises(RuntimeError, match="never be in the bank"):
        split_captioning(X, None, np.arange(0, 100), np.arange(90, 110),
                         ModalityGapShifter().fit(X[:100]), X[90:110], texts=texts,
                         dims=(D, D), labelled=False, seed=0)


def test_bad_texts_and_banks_are_refused(data):
    X, y, texts = data
    with pytest.raises(ValueError, match="has 5 texts for 20 rows"):
        RetrievalCaptioner().fit(X[:20], texts[:5])
    bad = texts[:20].copy()
    bad[3] = "   "
    with pytest.raises(ValueError, match=r"\[3\] is an empty text"):
        RetrievalCaptioner().fit(X[:20], bad)
    bad[3] = 7
    with pytest.raises(TypeError, match=r"\[3\] is a int"):
        RetrievalCaptioner().fit(X[:20], bad)
    with pytest.raises(TypeError, match="got one string"):
        RetrievalCaptioner().fit(X[:20], "one caption")
    with pytest.raises(ValueError, match="bank holds 1 text"):
        RetrievalCaptioner().fit(X[:1], texts[:1])
    with pytest.raises(ValueError, match="asks for 21 bank texts but the bank holds 20"):
        RetrievalCaptioner(n_candidates=21).fit(X[:20], texts[:20])
    with pytest.raises(ValueError, match="20 \\* n_clusters = 40"):
        RetrievalCaptioner(n_clusters=2).fit(X[:20], texts[:20])
    with pytest.raises(ValueError, match="n_clusters=5 is larger than n_candidates=3"):
        RetrievalCaptioner(n_candidates=3, n_clusters=5).fit(X[:20], texts[:20])
    with pytest.raises(ValueError, match="one width"):
        RetrievalCaptioner(modality_dims=(6, 10)).fit(X[:20], texts[:20])
    with pytest.raises(ValueError, match="labels has 3 rows for 20"):
        RetrievalCaptioner().fit(X[:20], texts[:20], labels=y[:3])
    with pytest.raises(ValueError, match="needs the bank's texts"):
        RetrievalCaptioner().fit(X[:20])
    cap = RetrievalCaptioner().fit(X[:20], texts[:20])
    with pytest.raises(ValueError, match="X has 5 columns"):
        cap.predict(X[20:30, :5])
    with pytest.raises(ValueError, match="the bank has no labels"):
        cap.predict_labels(X[20:30])


@pytest.mark.parametrize("module, call", [
    ("sacrebleu", lambda: text_overlap_scores(["a b"], ["a b"], metrics=("bleu4",))),
    ("rouge_score", lambda: text_overlap_scores(["a b"], ["a b"], metrics=("rouge1",))),
    ("pycocoevalcap", lambda: text_overlap_scores(["a b", "c"], ["a b", "c"],
                                                  metrics=("cider_d",))),
    ("faiss", lambda: RetrievalCaptioner(index="faiss").fit(np.eye(4), ["a", "b", "c", "d"])),
])
def test_a_missing_library_names_the_extra(monkeypatch, module, call):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"skgap\[caption\]"):
        call()


def test_pipeline_and_grid_search_tune_lambda_by_a_captioning_score(data):
    X, y, texts = data
    pipe = Pipeline([("gap", ModalityGapShifter(lam=0.5)), ("cap", RetrievalCaptioner())])
    pipe.fit(X[:120], texts[:120], cap__labels=y[:120])
    shifted = pipe[0].transform(X)
    direct = RetrievalCaptioner().fit(shifted[:120], texts[:120])
    np.testing.assert_array_equal(pipe.predict(X[120:]), direct.predict(shifted[120:]))
    # The shifted bank is not the raw one: the shift reaches the captioner.
    assert not np.allclose(pipe[-1].bank_embeddings_, _unit(X[:120, D:]))
    search = GridSearchCV(pipe, {"gap__lam": [0.0, 1.0]}, cv=3,
                          scoring=make_captioning_scorer("rougeL")).fit(X, texts)
    assert search.best_params_["gap__lam"] in (0.0, 1.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    est = RetrievalCaptioner(n_candidates=3).fit(X[:50], texts[:50])
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X[60:70]), est.predict(X[60:70]))
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(ValueError, match="metric must be one of"):
        make_captioning_scorer("meteor")


def test_semantic_agreement_is_the_mean_cosine():
    A = np.array([[1.0, 0.0], [0.0, 2.0]])
    B = np.array([[1.0, 1.0], [0.0, 3.0]])
    assert semantic_agreement(A, B) == pytest.approx((np.sqrt(0.5) + 1.0) / 2)


def test_sweep_scores_captioning_on_the_same_splits_with_floors_and_ceilings(data):
    from skgap.evaluate._sweep import _make_splits

    X, y, texts = data
    table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("captioning",), texts=texts,
                      random_state=4)
    metrics = set(table["metric"])
    for base in ("label_accuracy", "bleu4", "rougeL", "cider_d", "text_cosine"):
        assert {base, f"{base}_random", f"{base}_frequent", f"{base}_oracle"} <= metrics
    assert table.attrs["captioning"]["rouge"]["library"] == "rouge-score"
    wide = table.pivot_table(index=["seed", "metric"], columns="lam", values="score")
    floors = wide[wide.index.get_level_values("metric").str.endswith(
        ("_random", "_frequent", "_oracle"))]
    np.testing.assert_array_equal(floors[0.0], floors[1.0])  # they do not depend on lambda
    # The captioner's own score is the pipeline's on the same split.
    splits, _ = _make_splits(X.shape[0], 2, 0.2, y, 4)
    train, test = splits[0]
    pipe = Pipeline([("gap", ModalityGapShifter(lam=1.0)), ("cap", RetrievalCaptioner())])
    captions = pipe.fit(X[train], texts[train]).predict(X[test])
    expected = text_overlap_scores(texts[test], captions, metrics=("rougeL",))["rougeL"]
    assert wide.loc[(0, "rougeL"), 1.0] == pytest.approx(expected)
    # The oracle: the bank text nearest the query's own text embedding.
    T = _unit(X[:, D:])
    oracle = np.mean(np.max(T[test] @ T[train].T, axis=1))
    assert wide.loc[(0, "text_cosine_oracle"), 1.0] == pytest.approx(oracle, rel=1e-5)
    assert (wide.xs("text_cosine_oracle", level="metric").values
            >= wide.xs("text_cosine", level="metric").values - 1e-6).all()


def test_the_most_frequent_floor_breaks_ties_by_the_most_central_text():
    from skgap.evaluate._captioning import captioning_metrics

    texts = np.array(["a cat", "a dog", "a dog", "a bird", "a bird"], dtype=object)
    T = _unit([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.6, 0.1],
               [0.6, 0.6, 0.1]])  # 'a bird' ties 'a dog' in count and is the more central
    Z = np.hstack([T, T])
    Q = np.hstack([_unit([[0.0, 0.0, 1.0]]), _unit([[0.0, 0.1, 1.0]])])
    rows = dict(captioning_metrics(Z, np.vstack([Q, Q + 0.1]), texts,
                                   np.array(["a bird", "a cat"], dtype=object),
                                   T, _unit([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), dims=(3, 3)))
    assert rows["bleu1_frequent"] == pytest.approx(
        text_overlap_scores(["a bird", "a cat"], ["a bird", "a bird"],
                            metrics=("bleu1",))["bleu1"])
    assert rows["distinct_captions_frequent"] == 0.5  # one text for both queries
    assert rows["distinct_captions_oracle"] == 1.0  # 'a bird' and 'a cat'


def test_sweep_without_labels_and_its_errors(data):
    X, _, texts = data
    table = gap_sweep(X, None, lams=[0.0, 1.0], n_seeds=1, tasks=("captioning", "retrieval"),
                      texts=texts, as_frame=False)
    assert not any(m.startswith("label_") for m in table["metric"])
    assert "i2t_R@1" in set(table["metric"])
    with pytest.raises(ValueError, match=r"y is None, but task\(s\) \['fusion'\] need labels"):
        gap_sweep(X, None, tasks=("fusion", "captioning"), texts=texts)
    with pytest.raises(ValueError, match="texts has 3 texts for 160 rows"):
        gap_sweep(X, None, tasks=("captioning",), texts=texts[:3])
    with pytest.raises(TypeError, match="sequence of strings"):
        gap_sweep(X, None, tasks=("captioning",))
    with pytest.raises(ValueError, match="only used by the 'captioning' task"):
        gap_sweep(X, np.arange(160) % 2, tasks=("fusion",), texts=texts)


def test_template_texts_carry_the_labels_and_change_nothing_else():
    X0, y0 = make_paired_embeddings(50, D, n_classes=3, random_state=5)
    X, y, texts = make_paired_embeddings(50, D, n_classes=3, random_state=5, return_texts=True)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    words = ("zero", "one", "two")
    assert [words.index(t.split()[4]) for t in texts] == y.tolist()
    _, Y, mtexts = make_paired_embeddings(50, D, n_classes=3, multilabel=True, random_state=5,
                                          return_texts=True)
    for row, t in zip(Y, mtexts):
        named = {words.index(w) for w in t.split(", most marked")[0].replace(
            "findings: ", "").replace("no findings", "").replace("label ", "").split(" and ")
            if w}
        assert named == set(np.flatnonzero(row).tolist())
    with pytest.raises(ValueError, match="return_texts must be True or False"):
        make_paired_embeddings(50, D, return_texts="yes")


def test_texts_travel_with_the_embeddings(tmp_path):
    X, y, texts = make_paired_embeddings(30, D, return_texts=True, random_state=0)
    V, T = X[:, :D], X[:, D:]
    np.savez(tmp_path / "e.npz", image=V, text=T, captions=np.array(texts, dtype=str),
             ids=np.array([f"id{i}" for i in range(30)]), numbers=np.arange(30))
    X1, _, dims, t1 = load_embeddings(tmp_path / "e.npz", texts="captions")
    np.testing.assert_array_equal(t1, texts)
    assert len(load_embeddings(tmp_path / "e.npz")) == 3  # no texts asked: three values
    # A CSV table, in another order, joined by id.
    order = np.random.default_rng(0).permutation(30)
    lines = ["id,report"] + [f"id{i},{texts[i]}" for i in order]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    _, _, _, t2 = load_embeddings(tmp_path / "e.npz", texts=str(tmp_path / "r.csv") + ":report",
                                  id_key="ids", id_column="id")
    np.testing.assert_array_equal(t2, texts)
    with pytest.raises(DataFileError, match="texts must be strings"):
        load_embeddings(tmp_path / "e.npz", texts="numbers")
    with pytest.raises(DataFileError, match="no array or column 'nope'"):
        load_embeddings(tmp_path / "e.npz", texts="nope")
    np.savez(tmp_path / "o.npz", image=V, text=T, captions=np.array(texts, dtype=object))
    with pytest.raises(DataFileError, match="object array"):
        load_embeddings(tmp_path / "o.npz", texts="captions")
    blank = np.array(texts, dtype=str)
    blank[4] = ""
    np.savez(tmp_path / "b.npz", image=V, text=T, captions=blank)
    with pytest.raises(DataFileError, match="row 4 is an empty text"):
        load_embeddings(tmp_path / "b.npz", texts="captions")


def test_texts_from_parquet_and_a_clip_retrieval_archive(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, _, texts = make_paired_embeddings(12, D, return_texts=True, random_state=0)
    pq.write_table(pa.table({"image": X[:, :D].tolist(), "text": X[:, D:].tolist(),
                             "caption": texts.tolist()}), tmp_path / "e.parquet")
    _, _, _, t = load_embeddings(tmp_path / "e.parquet", texts="caption")
    np.testing.assert_array_equal(t, texts)
    arch = tmp_path / "arch"
    for sub in ("img_emb", "text_emb", "metadata"):
        (arch / sub).mkdir(parents=True)
    for i, rows in enumerate((slice(0, 5), slice(5, 12))):
        np.save(arch / "img_emb" / f"img_emb_{i}.npy", X[rows, :D])
        np.save(arch / "text_emb" / f"text_emb_{i}.npy", X[rows, D:])
        pq.write_table(pa.table({"caption": texts[rows].tolist()}),
                       arch / "metadata" / f"metadata_{i}.parquet")
    _, _, _, t = load_embeddings(arch, texts="caption")
    np.testing.assert_array_equal(t, texts)


def test_cli_sweep_takes_texts(tmp_path, capsys):
    from skgap.cli import main

    X, y, texts = make_paired_embeddings(80, D, n_classes=3, return_texts=True, random_state=0)
    np.savez(tmp_path / "e.npz", image=X[:, :D], text=X[:, D:], labels=y,
             captions=np.array(texts, dtype=str))
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "e.npz"), "--tasks", "captioning", "--texts",
                 "captions", "--lams", "0,1", "--seeds", "2", "--no-plots", "--out",
                 str(out)]) == 0
    csv = (out / "sweep.csv").read_text()
    assert "captioning,bleu4," in csv and "captioning,label_accuracy_oracle," in csv
    assert '"captioning_metrics"' in (out / "summary.json").read_text()
    printed = capsys.readouterr().out
    assert "captioning rougeL" in printed and "rougeL_random" not in printed
    assert main(["sweep", str(tmp_path / "e.npz"), "--tasks", "captioning", "--out",
                 str(out)]) == 2
    assert "--texts NAME" in capsys.readouterr().err
    # A text table in another order, joined by id without --labels.
    np.savez(tmp_path / "f.npz", image=X[:, :D], text=X[:, D:],
             ids=np.array([f"id{i}" for i in range(80)]))
    order = np.random.default_rng(1).permutation(80)
    (tmp_path / "t.csv").write_text("ids,caption\n" + "".join(f"id{i},{texts[i]}\n"
                                                              for i in order))
    assert main(["sweep", str(tmp_path / "f.npz"), "--tasks", "captioning", "--texts",
                 f"{tmp_path / 't.csv'}:caption", "--id-column", "ids", "--lams", "0",
                 "--seeds", "1", "--no-plots", "--json", "--out", str(tmp_path / "o2")]) == 0
    joined = (tmp_path / "o2" / "sweep.csv").read_text()
    by_position = tmp_path / "o3"
    assert main(["sweep", str(tmp_path / "f.npz"), "--tasks", "captioning", "--texts",
                 f"{tmp_path / 't.csv'}:caption", "--lams", "0", "--seeds", "1", "--no-plots",
                 "--json", "--out", str(by_position)]) == 0
    assert joined != (by_position / "sweep.csv").read_text()  # the join reorders the texts


def _tiny_causal_lm(folder):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["<unk>", "<pad>", "<eos>", "write", "the", "report", "of", "an", "image", "from",
             "reports", "most", "similar", "images.", "similar", "reports:", "report:", "-",
             "no", "finding", "effusion", "left", "right", "small", "large"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                      pad_token="<pad>", eos_token="<eos>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = tf.GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1,
                           n_head=2, bos_token_id=vocab["<eos>"], eos_token_id=vocab["<eos>"],
                           pad_token_id=vocab["<pad>"])
    tf.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_local_language_model_wiring_prompt_and_batches(tmp_path, data):
    folder = _tiny_causal_lm(tmp_path / "lm")
    X, y, texts = data
    shots = [(["no finding", "small effusion"], "no finding"),
             (["left effusion"], "large left effusion")]
    gen = LocalLMGenerator(folder, shots, max_new_tokens=4, batch_size=2)
    prompt = gen.build_prompt(["right effusion", "no finding"])
    # Two worked examples, then the query's texts in their order, ending where the report starts.
    assert prompt.count("Report:") == 3
    assert prompt.index("- no finding\n- small effusion") < prompt.index(
        "Report: large left effusion") < prompt.index("- right effusion\n- no finding")
    assert prompt.endswith("- right effusion\n- no finding\nReport:")
    calls = []
    model = gen._load()[1]
    original = model.generate

    def counting(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(**kwargs)

    model.generate = counting
    cap = RetrievalCaptioner(n_candidates=3, generator=gen).fit(X[:120], texts[:120])
    out = cap.predict(X[120:125])
    assert calls == [2, 2, 1]  # five images in batches of two
    assert out.shape == (5,) and all(isinstance(t, str) for t in out)
    idx, _ = cap.retrieve(X[120:125])
    assert gen.build_prompt(texts[:120][idx[0]].tolist()).count("- ") == 3 + 3
    np.testing.assert_array_equal(cap.predict(X[120:125]), out)  # greedy: deterministic
    with pytest.raises(ValueError, match="needs a labeler"):
        cap.predict_labels(X[120:125])
    with pytest.raises(ValueError, match="not a local folder"):
        LocalLMGenerator(tmp_path / "absent", shots)(["a"])
    assert pickle.loads(pickle.dumps(gen))._loaded is None


def test_a_callable_generator_gets_each_images_retrieved_texts(data):
    X, _, texts = data
    seen = []

    def join(retrieved):
        seen.append(list(retrieved))
        return " | ".join(retrieved)

    cap = RetrievalCaptioner(n_candidates=2, generator=join).fit(X[:120], texts[:120])
    out = cap.predict(X[120:123])
    idx, _ = cap.retrieve(X[120:123])
    assert seen == [texts[:120][row].tolist() for row in idx]
    assert out.tolist() == [" | ".join(s) for s in seen]
    bad = RetrievalCaptioner(generator=lambda r: 3).fit(X[:120], texts[:120])
    with pytest.raises(TypeError, match="one str per image"):
        bad.predict(X[120:123])


def test_missing_transformers_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"skgap\[transformers\]"):
        LocalLMGenerator(tmp_path, [(["a"], "b")])(["a"])


def test_real_coco_embeddings_caption_better_than_the_floors():
    try:
        X = load_coco_clip()
    except FileNotFoundError:
        pytest.skip("the shared COCO embeddings are not here")
    ids = np.array([f"coco pair {i}" for i in range(X.shape[0])], dtype=object)
    table = gap_sweep(X, None, lams=[0.0], n_seeds=2, tasks=("captioning",), texts=ids,
                      as_frame=False)
    score = {m: np.mean(table["score"][table["metric"] == m]) for m in set(table["metric"])}
    assert score["text_cosine_random"] < score["text_cosine"] < score["text_cosine_oracle"]
