"""ModalityGapShifterCV: the fast lambda search agrees with GridSearchCV(Pipeline)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from skgap.datasets import make_paired_embeddings
from skgap.transform._implicit import fold_statistics, row_scalars
from skgap.transform._shift import ModalityGapShifter
from skgap.transform._shift_cv import ModalityGapShifterCV
from skgap.transform._solver import fit_shifted_logistic


@pytest.fixture(scope="module")
def data():
    return make_paired_embeddings(600, 16, 2, noise=3.0, random_state=0)


def _grid(lams, cv, tol=1e-4, max_iter=100, refit=True, **probe):
    pipe = Pipeline(
        [
            ("shifter", ModalityGapShifter()),
            ("probe", LogisticRegression(tol=tol, max_iter=max_iter, **probe)),
        ]
    )
    return GridSearchCV(
        pipe, {"shifter__lam": list(lams)}, cv=cv, scoring="roc_auc", refit=refit
    )


def _one_se_index(cv_results, ratio=0.0):
    """The one-standard-error choice, written out from the split scores.

    Independent of skgap._selection: the best mean, the standard error of each
    lambda's paired per-split difference from it (with the overlap term
    ``ratio`` = n_test / n_train of the corrected resampled t), then the
    smallest lambda within one such error of the best.
    """
    lams = np.asarray(cv_results["param_lam"], dtype=float)
    n = sum(key.startswith("split") and key.endswith("_test_score") for key in cv_results)
    split = np.array([cv_results[f"split{k}_test_score"] for k in range(n)])
    mean = split.mean(axis=0)
    best = int(np.argmax(mean))
    se = [np.std(split[:, j] - split[:, best], ddof=1) * np.sqrt(1 / n + ratio)
          for j in range(len(lams))]
    within = [j for j in range(len(lams)) if mean[j] >= mean[best] - se[j]]
    return min(within, key=lambda j: (lams[j], -mean[j]))


def test_implicit_features_are_the_shifter_output(data):
    """The per-row scalars reproduce ModalityGapShifter.transform exactly."""
    X, _ = data
    X = X.astype(np.float64) * np.linspace(1, 3, len(X))[:, None]  # raw, not unit
    slices = (slice(0, 16), slice(16, 32))
    shifter = ModalityGapShifter(lam=0.7).fit(X[:400])
    stats = fold_statistics(X, slices, shifter.shift_vectors_)
    alpha, gamma = row_scalars(X, slices, stats, 0.7)
    S = stats[2]
    Z = np.hstack(
        [alpha[:, [m]] * X[:, sl] + gamma[:, [m]] * S[m, sl] for m, sl in enumerate(slices)]
    )
    np.testing.assert_allclose(Z, shifter.transform(X), atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_probe_solver_is_logistic_regression(data, n_classes):
    """The implicit-feature solver reaches LogisticRegression's optimum."""
    X, _ = data
    _, y = make_paired_embeddings(600, 16, n_classes, noise=3.0, random_state=0)
    X = X.astype(np.float64)
    slices = (slice(0, 16), slice(16, 32))
    shifter = ModalityGapShifter(lam=0.4).fit(X)
    stats = fold_statistics(X, slices, shifter.shift_vectors_)
    alpha, gamma = row_scalars(X, slices, stats, 0.4)
    sw = np.where(y == 0, 2.0, 1.0)
    coef, _ = fit_shifted_logistic(
        X, slices, stats[2], alpha, gamma, y, n_classes, sw, C=0.5, tol=1e-10, max_iter=5000
    )
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(
        shifter.transform(X), y, sample_weight=sw
    )
    np.testing.assert_allclose(coef[:, :-1], ref.coef_, atol=1e-5)
    np.testing.assert_allclose(coef[:, -1], ref.intercept_, atol=1e-5)


def test_scores_agree_with_gridsearch_at_tight_tolerance(data):
    """Same folds, converged probes: the same CV scores and the same lambda."""
    X, y = data
    X = X.astype(np.float64)  # float32 rounding could swap near-tied ranks
    lams = np.linspace(0, 1, 5)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = _grid(lams, cv, tol=1e-10, max_iter=5000).fit(X, y)
    fast = ModalityGapShifterCV(
        lams, cv=cv, scoring="roc_auc", tol=1e-10, max_iter=5000, select="best"
    ).fit(X, y)
    np.testing.assert_allclose(
        fast.cv_results_["mean_test_score"], grid.cv_results_["mean_test_score"], atol=1e-6
    )
    assert fast.lam_ == grid.best_params_["shifter__lam"]
    assert fast.best_score_ == pytest.approx(grid.best_score_, abs=1e-6)


def test_one_se_agrees_with_gridsearch_refit_callable(data):
    """Like with like: GridSearchCV(refit=<one-SE rule>) picks the same lambda."""
    X, y = data
    X = X.astype(np.float64)
    lams = np.linspace(0, 1, 6)
    cv = StratifiedKFold(4, shuffle=True, random_state=1)

    folds = list(cv.split(X, y))
    ratio = np.mean([t.size for _, t in folds]) / np.mean([t.size for t, _ in folds])

    def refit(cv_results):
        res = dict(cv_results, param_lam=np.asarray(cv_results["param_shifter__lam"], float))
        return _one_se_index(res, ratio)

    grid = _grid(lams, cv, tol=1e-10, max_iter=5000, refit=refit).fit(X, y)
    fast = ModalityGapShifterCV(lams, cv=cv, scoring="roc_auc", tol=1e-10, max_iter=5000,
                                select="one_se")
    fast.fit(X, y)
    assert fast.test_train_ratio_ == pytest.approx(ratio)
    assert fast.best_index_ == grid.best_index_
    assert fast.lam_ == grid.best_params_["shifter__lam"]


@pytest.mark.parametrize("lams", [np.linspace(0, 1, 6), [1.0, 0.0, 0.25, 0.5]])
def test_one_se_is_the_smallest_lambda_within_one_standard_error(lams):
    X, y = make_paired_embeddings(300, 8, 2, noise=4.0, random_state=3)
    fast = ModalityGapShifterCV(lams, cv=5, scoring="roc_auc", select="one_se").fit(X, y)
    res = fast.cv_results_
    assert fast.best_index_ == _one_se_index(res, fast.test_train_ratio_)
    assert fast.lam_ == res["param_lam"][fast.best_index_]
    assert fast.best_score_ == res["mean_test_score"][fast.best_index_]
    np.testing.assert_array_equal(res["selected"], np.arange(len(lams)) == fast.best_index_)
    split = np.array([res[f"split{k}_test_score"] for k in range(5)])
    best = int(np.argmax(split.mean(0)))
    np.testing.assert_allclose(  # 5 folds: n_test / n_train = 1/4
        res["se_to_best"], (split - split[:, [best]]).std(0, ddof=1) * np.sqrt(1 / 5 + 1 / 4)
    )
    assert res["se_to_best"][best] == 0.0


def test_one_se_never_picks_a_larger_lambda_than_best(data):
    """On an ascending grid the best lambda is itself a one-SE candidate."""
    X, y = data
    lams = np.linspace(0, 1, 5)
    one_se = ModalityGapShifterCV(lams, cv=3, scoring="roc_auc", select="one_se").fit(X, y)
    best = ModalityGapShifterCV(lams, cv=3, scoring="roc_auc", select="best").fit(X, y)
    np.testing.assert_array_equal(
        one_se.cv_results_["mean_test_score"], best.cv_results_["mean_test_score"]
    )
    assert one_se.lam_ <= best.lam_
    assert best.best_index_ == int(np.argmax(best.cv_results_["mean_test_score"]))
    assert one_se.best_score_ >= best.best_score_ - one_se.cv_results_["se_to_best"][
        one_se.best_index_
    ]


def test_scores_agree_with_gridsearch_at_default_tolerance(data):
    X, y = data
    lams = np.linspace(0, 1, 5)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = _grid(lams, cv).fit(X, y)
    fast = ModalityGapShifterCV(lams, cv=cv, scoring="roc_auc", select="best").fit(X, y)
    np.testing.assert_allclose(
        fast.cv_results_["mean_test_score"], grid.cv_results_["mean_test_score"], atol=2e-3
    )
    i = int(np.argmin(np.abs(lams - grid.best_params_["shifter__lam"])))
    assert grid.cv_results_["mean_test_score"][i] - grid.cv_results_["mean_test_score"][
        fast.best_index_
    ] <= 2e-3


def test_warm_start_needs_fewer_iterations_after_the_first_lambda(data):
    X, y = data
    fast = ModalityGapShifterCV(np.linspace(0, 1, 6), cv=3).fit(X, y)
    iters = fast.cv_results_["mean_n_iter"]
    assert iters[1:].mean() < iters[0]


def test_refit_pipeline_is_the_best_lambda_refitted(data):
    """The implicit refit is LogisticRegression on the shifted rows (converged)."""
    X, y = data
    X = X.astype(np.float64)
    params = dict(C=0.3, class_weight="balanced", tol=1e-10, max_iter=5000)
    fast = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, **params).fit(X, y)
    shifter = ModalityGapShifter(lam=fast.lam_).fit(X)
    probe = LogisticRegression(**params).fit(shifter.transform(X), y)
    fitted = fast.best_estimator_.named_steps
    assert type(fitted["probe"]) is LogisticRegression
    assert fitted["probe"].get_params() == probe.get_params()
    np.testing.assert_allclose(fitted["shifter"].gap_vector_, shifter.gap_vector_)
    np.testing.assert_allclose(fitted["probe"].coef_, probe.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted["probe"].intercept_, probe.intercept_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fast.predict(X), probe.predict(shifter.transform(X)))
    Z = shifter.transform(X)
    np.testing.assert_allclose(fast.predict_proba(X), probe.predict_proba(Z), rtol=1e-5)
    np.testing.assert_allclose(
        fast.decision_function(X), probe.decision_function(Z), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(fast.predict_log_proba(X), probe.predict_log_proba(Z), rtol=1e-5)
    assert fast.score(X, y) == pytest.approx(probe.score(shifter.transform(X), y))


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_refit_at_default_tolerance_is_a_solution_within_tol(data, tol):
    """Started from the folds' solutions of lam_, stopped by LogisticRegression(tol=tol)'s
    rule: the largest absolute gradient of its objective on the shifted rows <= tol."""
    X, y = data
    fast = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, C=0.3, class_weight="balanced", tol=tol)
    fast.fit(X, y)
    probe = fast.best_estimator_.named_steps["probe"]
    assert probe.coef_.dtype == X.dtype == np.float32  # as LogisticRegression keeps it
    assert probe.intercept_.dtype == np.float32
    np.testing.assert_array_equal(probe.classes_, [0, 1])
    assert probe.n_features_in_ == X.shape[1] and 0 <= probe.n_iter_[0] < 100
    Z = fast.best_estimator_.named_steps["shifter"].transform(X).astype(np.float64)
    w, b = probe.coef_[0].astype(np.float64), float(probe.intercept_[0])
    sw = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    omega = sw / sw.sum()
    resid = omega * (1.0 / (1.0 + np.exp(-(Z @ w + b))) - y)
    grad = np.r_[Z.T @ resid + w / (0.3 * sw.sum()), resid.sum()]
    assert np.max(np.abs(grad)) <= tol * 1.01  # float32 coefficients
    old = LogisticRegression(C=0.3, class_weight="balanced", tol=tol).fit(Z.astype(np.float32), y)
    assert np.mean(old.predict(Z.astype(np.float32)) == fast.predict(X)) > 0.99


def test_cv_results_layout_and_ranking(data):
    X, y = data
    lams = [1.0, 0.0, 0.5]  # unsorted on purpose: results stay in grid order
    fast = ModalityGapShifterCV(lams, cv=3, scoring="roc_auc", select="best").fit(X, y)
    res = fast.cv_results_
    np.testing.assert_array_equal(res["param_lam"], lams)
    assert [p["lam"] for p in res["params"]] == lams
    split = np.vstack([res[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_allclose(res["mean_test_score"], split.mean(0))
    np.testing.assert_allclose(res["std_test_score"], split.std(0))
    assert res["rank_test_score"][fast.best_index_] == 1
    assert fast.lam_ == lams[fast.best_index_]
    assert fast.best_score_ == res["mean_test_score"].max()
    assert fast.n_iter_.shape == (3, 3)
    assert np.all(res["mean_fit_time"] > 0)


def test_int_lams_is_an_even_grid(data):
    X, y = data
    fast = ModalityGapShifterCV(lams=3, cv=2).fit(X, y)
    np.testing.assert_allclose(fast.cv_results_["param_lam"], [0.0, 0.5, 1.0])


def test_scoring_default_is_accuracy(data):
    X, y = data
    fast = ModalityGapShifterCV([0.0, 1.0], cv=2).fit(X, y)
    assert fast.score(X, y) == pytest.approx(np.mean(fast.predict(X) == y))
    assert 0.5 <= fast.best_score_ <= 1.0


def test_multiclass_and_string_labels():
    X, y = make_paired_embeddings(450, 16, 3, noise=2.0, random_state=1)
    labels = np.array(["cardiomegaly", "edema", "normal"])[y]
    fast = ModalityGapShifterCV([0.0, 1.0], cv=3, scoring="accuracy").fit(X, labels)
    assert list(fast.classes_) == list(labels[np.sort(np.unique(y, return_index=True)[1])])
    assert fast.predict_proba(X[:5]).shape == (5, 3)
    assert set(fast.predict(X)) <= set(labels)
    assert fast.best_score_ > 0.5


def test_groups_are_passed_to_the_splitter(data):
    X, y = data
    groups = np.arange(len(y)) // 10  # ten studies per patient
    fast = ModalityGapShifterCV([0.0, 1.0], cv=GroupKFold(3), scoring="roc_auc").fit(
        X, y, groups=groups
    )
    grid = _grid([0.0, 1.0], GroupKFold(3)).fit(X, y, groups=groups)
    for k in range(3):
        np.testing.assert_allclose(
            fast.cv_results_[f"split{k}_test_score"],
            grid.cv_results_[f"split{k}_test_score"],
            atol=2e-3,
        )
    with pytest.raises(ValueError, match="groups"):
        ModalityGapShifterCV([0.0, 1.0], cv=GroupKFold(3)).fit(X, y)


def test_parallel_folds_give_the_same_results(data):
    X, y = data
    a = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, n_jobs=1).fit(X, y)
    b = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"]
    )


def test_float32_and_float64_give_the_same_choice(data):
    X, y = data
    a = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, tol=1e-8, max_iter=2000).fit(X, y)
    b = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, tol=1e-8, max_iter=2000).fit(
        X.astype(np.float64), y
    )
    np.testing.assert_allclose(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"], atol=1e-4
    )


def test_input_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="lams must lie in"):
        ModalityGapShifterCV([0.0, 1.5]).fit(X, y)
    with pytest.raises(ValueError, match="lams"):
        ModalityGapShifterCV(lams=0).fit(X, y)
    with pytest.raises(ValueError, match="'select' parameter"):
        ModalityGapShifterCV(select="1se").fit(X, y)
    with pytest.raises(ValueError, match="multi-label"):
        ModalityGapShifterCV().fit(X, np.c_[y, 1 - y])
    with pytest.raises(ValueError, match="one class"):
        ModalityGapShifterCV().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Unknown label type"):
        ModalityGapShifterCV().fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="modality_dims"):
        ModalityGapShifterCV().fit(X[:, :31], y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ModalityGapShifterCV(cv=2).fit(bad, y)
    with pytest.raises(NotFittedError):
        ModalityGapShifterCV().predict(X)
    fitted = ModalityGapShifterCV([0.0], cv=2).fit(X, y)
    with pytest.raises(ValueError, match="32 features"):
        fitted.predict(X[:, :30])


def test_pickle_clone_and_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"img{i}" for i in range(16)] + [f"txt{i}" for i in range(16)])
    fast = ModalityGapShifterCV([0.0, 1.0], cv=2).fit(df, y)
    assert list(fast.feature_names_in_) == list(df.columns)
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(again.predict_proba(df), fast.predict_proba(df))
    assert clone(fast).get_params() == fast.get_params()
    assert not hasattr(clone(fast), "lam_")


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_memory_mapped_input_is_read_in_place_with_the_same_results(data, tmp_path, class_weight):
    """A memmap trains on all rows with zero held-out weights: the same objective."""
    X, y = data
    X = X.astype(np.float64)  # float32 rounding could swap near-tied ranks
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = dict(lams=[0.0, 0.5, 1.0], cv=3, scoring="roc_auc", class_weight=class_weight)
    for tol in (1e-10, 1e-4):
        a = ModalityGapShifterCV(**params, tol=tol, max_iter=5000).fit(X, y)
        b = ModalityGapShifterCV(**params, tol=tol, max_iter=5000).fit(mapped, y)
        atol = 1e-7 if tol == 1e-10 else 2e-3
        for k in range(3):
            np.testing.assert_allclose(
                b.cv_results_[f"split{k}_test_score"], a.cv_results_[f"split{k}_test_score"],
                atol=atol,
            )
        np.testing.assert_allclose(
            b.best_estimator_[-1].coef_, a.best_estimator_[-1].coef_,
            atol=1e-4 if tol == 1e-10 else 5e-2,
        )
    assert b.lam_ == a.lam_


def test_in_place_path_never_copies_the_training_rows(data, tmp_path, monkeypatch):
    """The training rows of a memory-mapped fold are only ever read in chunks."""
    from skgap._core import _streaming as streaming
    from skgap.transform import _shift_cv as shift_cv

    X, y = data
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 100 * X.shape[1] * X.itemsize)
    seen = []
    fit = shift_cv.ModalityGapShifter.partial_fit

    def partial_fit(self, X, y=None):
        seen.append(len(X))
        return fit(self, X, y)

    monkeypatch.setattr(shift_cv.ModalityGapShifter, "partial_fit", partial_fit)
    ModalityGapShifterCV([0.0, 1.0], cv=3).fit(mapped, y)
    assert seen and max(seen) <= 100 and sum(seen) == 3 * 400


def test_threads_of_the_evaluations_do_not_change_the_search(data, monkeypatch):
    """With one fold at a time the BLAS-allowed cores share each evaluation;
    under ``threadpool_limits(1)`` it runs on one thread with the same result."""
    from threadpoolctl import threadpool_limits

    from skgap.transform import _implicit as implicit_features

    X, y = data
    monkeypatch.setattr(implicit_features, "_ITEM_BYTES", 64 * X.shape[1] * X.itemsize)  # 64-row items
    default = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3).fit(X, y)
    with threadpool_limits(limits=1):
        one = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3).fit(X, y)
    np.testing.assert_array_equal(
        default.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(default.n_iter_, one.n_iter_)
    np.testing.assert_array_equal(
        default.best_estimator_[-1].coef_, one.best_estimator_[-1].coef_
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_refit_of_several_classes_meets_tol(n_classes):
    """The refit's warm start (binary: CG steps; several classes: L-BFGS-B)
    stops where LogisticRegression's rule says, on all rows."""
    X, y = make_paired_embeddings(600, 16, n_classes, noise=3.0, random_state=4)
    X = X.astype(np.float64)
    fast = ModalityGapShifterCV([0.0, 0.5, 1.0], cv=3, C=0.3, tol=1e-6).fit(X, y)
    probe = fast.best_estimator_.named_steps["probe"]
    Z = fast.best_estimator_.named_steps["shifter"].transform(X)
    ref = LogisticRegression(C=0.3, tol=1e-12, max_iter=10000).fit(Z, y)
    np.testing.assert_allclose(probe.coef_, ref.coef_, atol=1e-3)
    np.testing.assert_allclose(probe.intercept_, ref.intercept_, atol=1e-3)
    if n_classes == 2:
        proba = probe.predict_proba(Z)[:, 1]
        resid = (proba - y) / len(y)
        grad = np.r_[Z.T @ resid + probe.coef_[0] / (0.3 * len(y)), resid.sum()]
    else:
        resid = (probe.predict_proba(Z) - np.eye(n_classes)[y]) / len(y)
        grad = np.column_stack([resid.T @ Z + probe.coef_ / (0.3 * len(y)), resid.sum(axis=0)])
    assert np.max(np.abs(grad)) <= 1e-6


@pytest.mark.parametrize(
    "scoring, n_classes",
    [(None, 2), ("accuracy", 2), ("roc_auc", 2), (None, 3), ("accuracy", 3), ("roc_auc_ovr", 3)],
)
@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_built_in_scores_equal_the_scorers(scoring, n_classes, labels):
    """Accuracy and the AUCs are computed from the decision values directly;
    the scorer objects themselves (callables) give the same cv_results_."""
    from sklearn.metrics import get_scorer

    X, y = make_paired_embeddings(300, 8, n_classes, noise=4.0, random_state=5)
    if labels == "strings":
        y = np.array(["normal", "effusion", "edema"])[y]
    params = dict(lams=[0.0, 0.5, 1.0], cv=3)
    fast = ModalityGapShifterCV(scoring=scoring, **params).fit(X, y)
    scorer = get_scorer("accuracy" if scoring is None else scoring)
    slow = ModalityGapShifterCV(scoring=scorer, **params).fit(X, y)
    for k in range(3):
        np.testing.assert_allclose(
            fast.cv_results_[f"split{k}_test_score"], slow.cv_results_[f"split{k}_test_score"],
            rtol=0, atol=1e-12,
        )


def test_rank_auc_counts_ties_as_one_half():
    from sklearn.metrics import roc_auc_score

    from skgap.transform._shift_cv import _score_decisions

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    raw = np.round(rng.standard_normal(500) + y, 1)  # many ties
    classes = np.array([0, 1])
    assert _score_decisions("roc_auc", raw, y, classes) == pytest.approx(
        roc_auc_score(y, raw), abs=1e-14
    )
    # Positive class is classes[1], as for the scorer's decision values.
    assert _score_decisions("roc_auc", raw, 1 - y, classes) == pytest.approx(
        roc_auc_score(1 - y, raw), abs=1e-14
    )
    # One class held out, several classes or another scorer: the scorer decides.
    assert _score_decisions("roc_auc", raw, np.ones(500, int), classes) is None
    assert _score_decisions("roc_auc", raw, np.where(y == 0, 2, 1), classes) is None
    assert _score_decisions("roc_auc", np.c_[raw, -raw], y, classes) is None
    assert _score_decisions("f1", raw, y, classes) is None
    assert _score_decisions(None, raw, y, classes) == np.mean((raw > 0) == y)


def test_one_vs_rest_auc_of_the_softmax_probabilities():
    from scipy.special import softmax
    from sklearn.metrics import roc_auc_score

    from skgap.transform._shift_cv import _score_decisions

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 600)
    raw = np.round(rng.standard_normal((600, 4)) + np.eye(4)[y], 1)
    classes = np.arange(4)
    expected = roc_auc_score(y, softmax(raw, axis=1), multi_class="ovr")
    assert _score_decisions("roc_auc_ovr", raw, y, classes) == pytest.approx(expected, abs=1e-14)
    # A class missing from the held-out labels, or one unknown to the training
    # rows: the scorer decides (it raises there).
    assert _score_decisions("roc_auc_ovr", raw, np.minimum(y, 2), classes) is None
    assert _score_decisions("roc_auc_ovr", raw, y + 1, classes) is None
    assert _score_decisions("roc_auc_ovo", raw, y, classes) is None


def test_rank_ties_share_the_smallest_rank():
    """A lambda given twice scores twice the same: both get the smaller rank, as in
    GridSearchCV (rankdata's 'min'), and the next rank skips one."""
    X, y = make_paired_embeddings(200, 8, 2, random_state=0)
    fast = ModalityGapShifterCV([0.0, 1.0, 1.0], cv=3, scoring="roc_auc", select="best").fit(X, y)
    mean = fast.cv_results_["mean_test_score"]
    assert mean[1] == mean[2] != mean[0]
    want = [1, 2, 2] if mean[0] > mean[1] else [3, 1, 1]
    assert fast.cv_results_["rank_test_score"].tolist() == want


def test_holm_default_needs_zero_and_stays_at_zero_on_noise():
    X, _ = make_paired_embeddings(240, 8, 2, random_state=1)
    y = np.random.RandomState(1).randint(0, 2, size=240)  # labels carry nothing
    fast = ModalityGapShifterCV(np.linspace(0, 1, 6), cv=5, scoring="roc_auc").fit(X, y)
    assert fast.select == "holm_one_se"  # the default
    assert fast.lam_ == 0.0
    assert np.isnan(fast.cv_results_["p_holm"][0])
    assert np.all(fast.cv_results_["p_holm"][1:] >= 0.05)
    with pytest.raises(ValueError, match="no 0"):
        ModalityGapShifterCV([0.5, 1.0], cv=3).fit(X, y)
