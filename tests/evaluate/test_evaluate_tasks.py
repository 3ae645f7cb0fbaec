"""Each task family of gap_sweep against a direct computation on the same split."""

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, roc_auc_score
from sklearn.model_selection import train_test_split

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import TASK_FAMILIES, LabelLeakageWarning, gap_sweep, zero_shot_scores
from skgap.measure import retrieval_recall_at_k
from skgap.transform._shift import ModalityGapShifter

D = 12
LAMS = [0.0, 0.5, 1.0]


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def classes3():
    return make_paired_embeddings(240, D, n_classes=3, class_sep=1.0, preset="coco-clip",
                                  random_state=0)


def _wide(table, task, metric):
    mask = (np.asarray(table["task"]) == task) & (np.asarray(table["metric"]) == metric)
    return np.asarray(table["score"][mask], dtype=float).reshape(-1, len(LAMS))


def _splits(X, y, n_seeds=2, random_state=0):
    seeds = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max, size=n_seeds)
    for seed in seeds:
        train, test = train_test_split(np.arange(X.shape[0]), test_size=0.2, stratify=y,
                                       random_state=int(seed))
        yield np.sort(train), np.sort(test)


def _shifted(X, train, test, lam):
    shifter = ModalityGapShifter(lam=lam).fit(X[train])
    return shifter, shifter.transform(X[train]), shifter.transform(X[test])


def _unit(B):
    return B / np.linalg.norm(B, axis=1, keepdims=True)


def test_zeroshot_through_the_sweep_equals_a_direct_computation(classes3):
    X, y = classes3
    rng = np.random.RandomState(1)
    # Two prompts per class, averaged after normalisation.
    prompts = {c: _unit(rng.normal(size=(2, D)) + X[y == c][:, D:].mean(0)) for c in range(3)}
    table = gap_sweep(X, y, lams=LAMS, n_seeds=2, tasks=("zeroshot",),
                      class_embeddings=prompts, as_frame=False)
    for s, (train, test) in enumerate(_splits(X, y)):
        for j, lam in enumerate(LAMS):
            shifter = ModalityGapShifter(lam=lam).fit(X[train])
            direct = zero_shot_scores(X[test][:, :D], y[test], prompts, shifter=shifter)
            assert _wide(table, "zeroshot", "accuracy")[s, j] == pytest.approx(
                direct["accuracy"])
            # AUC: one-vs-rest on the cosines with the shifted, pooled class embeddings.
            C = np.stack([_unit(_unit(p).mean(0, keepdims=True))[0] for p in prompts.values()])
            C = _unit(C + lam * shifter.shift_vectors_[1])
            V = shifter.transform(X[test])[:, :D]
            S = V @ C.T
            want = np.mean([roc_auc_score(y[test] == k, S[:, k]) for k in range(3)])
            assert _wide(table, "zeroshot", "auc")[s, j] == pytest.approx(want)
    # Rows in the order of np.unique(y) give the same as the dict.
    again = gap_sweep(X, y, lams=LAMS, n_seeds=2, tasks=("zeroshot",),
                      class_embeddings=np.stack([prompts[c] for c in range(3)]), as_frame=False)
    np.testing.assert_allclose(again["score"], table["score"])


def test_zeroshot_text_prototypes(classes3):
    X, y = classes3
    table = gap_sweep(X, y, lams=LAMS, n_seeds=2, tasks=("zeroshot",), as_frame=False)
    for s, (train, test) in enumerate(_splits(X, y)):
        T = _unit(X[train][:, D:])
        protos = np.stack([T[y[train] == c].mean(0) for c in range(3)])
        for j, lam in enumerate(LAMS):
            shifter = ModalityGapShifter(lam=lam).fit(X[train])
            direct = zero_shot_scores(X[test][:, :D], y[test], protos, shifter=shifter)
            assert _wide(table, "zeroshot", "accuracy")[s, j] == pytest.approx(
                direct["accuracy"])


def test_retrieval_and_clustering_equal_direct_computations(classes3):
    X, y = classes3
    table = gap_sweep(X, y, lams=LAMS, n_seeds=2, tasks=("retrieval", "clustering"),
                      as_frame=False)
    # Each split seeds its own k-means: the seeds that drew the splits.
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=2)
    for s, (train, test) in enumerate(_splits(X, y)):
        for j, lam in enumerate(LAMS):
            _, _, Z = _shifted(X, train, test, lam)
            r = retrieval_recall_at_k(Z[:, :D], Z[:, D:], k=(1, 5, 10))
            for k in (1, 5, 10):
                assert _wide(table, "retrieval", f"i2t_R@{k}")[s, j] == r[
                    f"image_to_text_recall@{k}"]
                assert _wide(table, "retrieval", f"t2i_R@{k}")[s, j] == r[
                    f"text_to_image_recall@{k}"]
            P = np.vstack([Z[:, :D], Z[:, D:]])
            clusters = KMeans(3, n_init=10, random_state=seeds[s]).fit_predict(P)
            modality = np.repeat([0, 1], test.size)
            # Each modality's rows against the labels, averaged: a pair votes once.
            halves = (clusters[:test.size], clusters[test.size:])
            assert _wide(table, "clustering", "ARI")[s, j] == pytest.approx(
                np.mean([adjusted_rand_score(y[test], c) for c in halves]))
            assert _wide(table, "clustering", "AMI")[s, j] == pytest.approx(
                np.mean([adjusted_mutual_info_score(y[test], c) for c in halves]))
            assert _wide(table, "clustering", "modality_ARI")[s, j] == pytest.approx(
                adjusted_rand_score(modality, clusters))


def _probe():
    return LogisticRegression(class_weight="balanced", max_iter=1000)


def test_cross_modal_transfer_and_single_block_probes(classes3):
    X, y = classes3
    tasks = ("text_to_image", "image_to_text", "image", "text")
    table = gap_sweep(X, y, lams=LAMS, n_seeds=2, tasks=tasks, as_frame=False)
    img, txt = slice(0, D), slice(D, 2 * D)
    for s, (train, test) in enumerate(_splits(X, y)):
        for j, lam in enumerate(LAMS):
            _, Ztr, Zte = _shifted(X, train, test, lam)
            for task, fit_on, score_on in (("text_to_image", txt, img),
                                           ("image_to_text", img, txt),
                                           ("image", img, img), ("text", txt, txt)):
                model = _probe().fit(Ztr[:, fit_on], y[train])
                P = model.predict_proba(Zte[:, score_on])
                auc = roc_auc_score(y[test], P, multi_class="ovr")
                assert _wide(table, task, "auc")[s, j] == pytest.approx(auc)
                if task in ("text_to_image", "image_to_text"):
                    acc = np.mean(model.predict(Zte[:, score_on]) == y[test])
                    assert _wide(table, task, "accuracy")[s, j] == pytest.approx(acc)


def test_closing_the_gap_moves_clustering_off_the_modality_split():
    X, y = make_paired_embeddings(400, 16, n_classes=3, class_sep=1.0, preset="mimic-clip",
                                  random_state=0)
    table = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=2, tasks=("clustering",), as_frame=False)
    mask = table["metric"] == "modality_ARI"
    m = table["score"][mask].reshape(2, 2)
    assert np.all(m[:, 0] > 0.5) and np.all(m[:, 1] < m[:, 0] - 0.3)


def test_every_task_family_runs_and_names_its_metrics(classes3):
    X, y = classes3
    # 'captioning' needs texts: its metrics are checked in test_captioning.py.
    tasks = [t for t in TASK_FAMILIES if t != "captioning"]
    table = gap_sweep(X, y, lams=[0.0], n_seeds=1, tasks=tasks, as_frame=False)
    got = {(t, m) for t, m in zip(table["task"], table["metric"])}
    want = {("fusion", "auc"), ("image", "auc"), ("text", "auc"), ("zeroshot", "accuracy"),
            ("zeroshot", "auc"), ("clustering", "ARI"), ("clustering", "AMI"),
            ("clustering", "modality_ARI"), ("text_to_image", "accuracy"),
            ("text_to_image", "auc"), ("image_to_text", "accuracy"), ("image_to_text", "auc")}
    want |= {("retrieval", f"{d}_R@{k}") for d in ("i2t", "t2i") for k in (1, 5, 10)}
    assert got == want
    assert np.isfinite(table["score"]).all()


def test_tasks_that_need_one_space_or_one_class_per_row():
    X, Y = make_paired_embeddings(80, 8, n_classes=3, multilabel=True, random_state=0)
    with pytest.raises(ValueError, match="one class per row"):
        gap_sweep(X, Y, lams=[0], n_seeds=1, tasks=("fusion", "clustering"))
    X, y = make_paired_embeddings(80, 8, random_state=0)
    wide = np.hstack([X, X[:, :4]])
    with pytest.raises(ValueError, match="one width"):
        gap_sweep(wide, y, lams=[0], n_seeds=1, tasks=("retrieval",), modality_dims=(8, 12))


# -- label leakage ----------------------------------------------------------------


def test_class_name_captions_warn_of_label_leakage(classes3):
    X, y = classes3
    leaky = X.copy()
    names = np.random.RandomState(0).normal(size=(3, D))
    leaky[:, D:] = names[y]  # one caption per class, as in CIFAR-style zero-shot sets
    with pytest.warns(LabelLeakageWarning, match="one distinct row per class.*zeroshot"):
        gap_sweep(leaky, y, lams=[0.0], n_seeds=1)
    assert issubclass(LabelLeakageWarning, UserWarning)


def test_a_perfect_text_probe_warns_of_label_leakage(classes3):
    X, y = classes3
    leaky = X.copy()
    rng = np.random.RandomState(0)
    leaky[:, D:] = 5 * np.eye(3, D)[y] + 0.01 * rng.normal(size=(y.size, D))  # distinct rows
    with pytest.warns(LabelLeakageWarning, match="text-only probe scores AUC 1.0000"):
        gap_sweep(leaky, y, lams=[0.0], n_seeds=1)
    with pytest.warns(LabelLeakageWarning, match="text-only probe"):
        gap_sweep(leaky, y, lams=[0.0], n_seeds=1, tasks=("fusion", "text"))


def test_no_leakage_warning_on_ordinary_data_or_without_fusion(classes3):
    X, y = classes3
    leaky = X.copy()
    leaky[:, D:] = np.random.RandomState(0).normal(size=(3, D))[y]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelLeakageWarning)
        gap_sweep(X, y, lams=[0.0], n_seeds=1)
        gap_sweep(leaky, y, lams=[0.0], n_seeds=1, tasks=("image", "clustering"))


def test_sweep_with_the_paper_probe(classes3):
    X, y = classes3
    paper = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=1, probe="paper", as_frame=False)
    converged = gap_sweep(X, y, lams=[0.0, 1.0], n_seeds=1, as_frame=False)
    assert np.all((paper["score"] > 0.4) & (paper["score"] <= 1))
    assert not np.allclose(paper["score"], converged["score"])


def test_zeroshot_scores_float32_rows_without_a_float64_copy():
    import tracemalloc

    from skgap.evaluate._tasks import _zeroshot_metrics

    rng = np.random.default_rng(0)
    V = rng.standard_normal((20_000, 256)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    C = rng.standard_normal((4, 256))  # float64, as the sweep's class embeddings
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    y = rng.integers(0, 4, V.shape[0])
    tracemalloc.start()
    found = dict(_zeroshot_metrics(V, C, y, np.arange(4)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # A float64 copy of the rows alone would take twice their size.
    assert peak < V.nbytes / 4
    pred = np.argmax(V.astype(np.float64) @ C.T, axis=1)
    assert found["accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-4)
