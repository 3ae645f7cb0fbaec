"""Scale invariance: every scale-free statistic and transform gives for ``c * X``
what it gives for ``X``, for ``c`` across the representable range.

Theorem: the statistics below depend on the direction of each row only (or,
for CKA and the aligner's standardisation, are invariant or equivariant under
one positive factor), so ``f(c X) = f(X)`` for every ``c > 0`` such that
``c X`` is finite and made of normal numbers. Squared sums overflow for
float32 entries near 1e19 (float64 near 1e154) and underflow near 1e-19
(1e-154); the explicit examples are the failures observed in the audit
float32 ``1e30 * X`` and ``1e-30 * X``, float64
``1e200 * X``.

The data are fixed; hypothesis draws the decimal exponent of ``c``: in
[-30, 30] for float32 (entries of ``X`` lie in about [1e-4, 1], so
``c X`` stays well inside the normal range 1.2e-38 .. 3.4e38) and in
[-290, 290] for float64.
"""

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skgap import AnchorAffineAligner, ConeStats, ModalityGapShifter, ModalityGapShifterCV, metrics
from skgap._core._norms import normalize_rows, row_norms
from skgap.datasets import make_paired_embeddings
from skgap.transform._zeroshot import ZeroShotClassifier

D = 8
X64, Y = make_paired_embeddings(n_samples=60, n_features=D, random_state=0)
X64 = X64.astype(np.float64)
X32 = X64.astype(np.float32)

exp32 = st.integers(-30, 30)
exp64 = st.integers(-290, 290)
fast = settings(max_examples=12, deadline=None)


def _data(dtype, e):
    X = X32 if dtype == np.float32 else X64
    c = dtype(10.0**e)
    Xc = X * c
    assert np.isfinite(Xc).all() and (np.abs(Xc[X != 0]) >= np.finfo(dtype).tiny).all()
    return X, Xc, c


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


def _cone_stats(X):
    s = ConeStats(random_state=0).fit(X)
    return {
        k: np.asarray(getattr(s, k), dtype=np.float64)
        for k in (
            "centroids_", "mean_resultant_length_", "mean_within_cosine_", "uniformity_",
            "gap_vector_", "gap_norm_", "pairwise_gap_", "alignment_", "mean_pair_cosine_",
            "relative_gap_", "gap_principal_cosine_",
        )
    }


def _assert_same_stats(a, b, dtype):
    for k in a:
        np.testing.assert_allclose(b[k], a[k], err_msg=k, **_tol(dtype))


def _metric_values(X):
    V, T = X[:, :D], X[:, D:]
    return {
        "mean_resultant_length": metrics.mean_resultant_length(V),
        "modality_gap": metrics.modality_gap(V, T)[1],
        "gap_vector": metrics.modality_gap(V, T)[0],
        "pairwise_gap": metrics.pairwise_gap(V, T),
        "alignment": metrics.alignment(V, T),
        "uniformity": metrics.uniformity(T),
        "relative_modality_gap": metrics.relative_modality_gap(V, T),
        "mean_pair_cosine": metrics.mean_pair_cosine(V, T),
        "mean_within_cosine": metrics.mean_within_cosine(V),
        "gap_principal_cosine": metrics.gap_principal_cosine(V, T),
        "recall": list(metrics.retrieval_recall_at_k(V, T, k=(1, 5)).values()),
    }


def _check_metrics(dtype, e):
    X, Xc, _ = _data(dtype, e)
    a, b = _metric_values(X), _metric_values(Xc)
    for k in a:
        np.testing.assert_allclose(
            np.asarray(b[k], float), np.asarray(a[k], float), err_msg=k, **_tol(dtype)
        )


@fast
@given(exp32)
@example(30)
@example(-30)
def test_cone_stats_float32(e):
    X, Xc, _ = _data(np.float32, e)
    _assert_same_stats(_cone_stats(X), _cone_stats(Xc), np.float32)


@fast
@given(exp64)
@example(200)
@example(-200)
def test_cone_stats_float64(e):
    X, Xc, _ = _data(np.float64, e)
    _assert_same_stats(_cone_stats(X), _cone_stats(Xc), np.float64)


@fast
@given(exp32)
@example(30)
@example(-30)
def test_metrics_float32(e):
    _check_metrics(np.float32, e)


@fast
@given(exp64)
@example(200)
@example(-200)
def test_metrics_float64(e):
    _check_metrics(np.float64, e)


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30),
                                     (np.float64, 200), (np.float64, -290)])
def test_cone_stats_streaming_and_dask(dtype, e):
    X, Xc, _ = _data(dtype, e)
    ref = _cone_stats(X)
    s = ConeStats(random_state=0)
    for chunk in np.array_split(Xc, 3):
        s.partial_fit(chunk)
    np.testing.assert_allclose(s.centroids_, ref["centroids_"], **_tol(dtype))
    da = pytest.importorskip("dask.array")
    d = ConeStats(random_state=0).fit(da.from_array(Xc, chunks=(25, -1)))
    np.testing.assert_allclose(d.alignment_, ref["alignment_"], **_tol(dtype))


def _check_shifter(dtype, e, fit_on_scaled):
    X, Xc, _ = _data(dtype, e)
    ref = ModalityGapShifter(lam=0.8).fit(X)
    shifter = ModalityGapShifter(lam=0.8).fit(Xc if fit_on_scaled else X)
    np.testing.assert_allclose(shifter.transform(Xc), ref.transform(X), **_tol(dtype))
    np.testing.assert_allclose(shifter.gap_vector_, ref.gap_vector_, **_tol(dtype))


@fast
@given(exp32, st.booleans())
@example(30, True)
@example(-30, True)
def test_shifter_transform_float32(e, fit_on_scaled):
    _check_shifter(np.float32, e, fit_on_scaled)


@fast
@given(exp64, st.booleans())
@example(200, True)
@example(-200, True)
def test_shifter_transform_float64(e, fit_on_scaled):
    _check_shifter(np.float64, e, fit_on_scaled)


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30), (np.float64, 200)])
def test_shifter_transform_on_dask(dtype, e):
    da = pytest.importorskip("dask.array")
    X, Xc, _ = _data(dtype, e)
    ref = ModalityGapShifter(lam=0.5).fit(X).transform(X)
    s = ModalityGapShifter(lam=0.5).fit(da.from_array(Xc, chunks=(20, -1)))
    np.testing.assert_allclose(s.transform(da.from_array(Xc, chunks=(20, -1))).compute(), ref,
                               **_tol(dtype))


@pytest.mark.parametrize("dtype,e", [(np.float32, 20), (np.float32, -30), (np.float64, 200)])
def test_shifter_cv_scores(dtype, e):
    X, Xc, _ = _data(dtype, e)
    ref = ModalityGapShifterCV(lams=3, cv=3).fit(X, Y)
    got = ModalityGapShifterCV(lams=3, cv=3).fit(Xc, Y)
    np.testing.assert_allclose(got.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"])
    assert got.lam_ == ref.lam_


@pytest.mark.parametrize("dtype,e", [(np.float32, 20), (np.float32, -30), (np.float64, 200),
                                     (np.float64, -200)])
@pytest.mark.parametrize("standardize", ["feature", "isotropic"])
def test_aligner_is_scale_equivariant(dtype, e, standardize):
    # Full-rank anchors, so that the map is unique (T = S Q + noise).
    rng = np.random.default_rng(1)
    S = rng.standard_normal((60, D))
    X = np.hstack([S, S @ np.linalg.qr(rng.standard_normal((D, D)))[0]
                   + 0.1 * rng.standard_normal((60, D))]).astype(dtype)
    c = dtype(10.0**e)
    Xc = X * c
    ref = AnchorAffineAligner(standardize=standardize).fit(X).transform(X)
    got = AnchorAffineAligner(standardize=standardize).fit(Xc).transform(Xc)
    np.testing.assert_allclose(got / c, ref, **_tol(dtype))


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30), (np.float64, 200)])
def test_zero_shot_probabilities(dtype, e):
    X, Xc, c = _data(dtype, e)
    V, C = X[:, :D], X[:4, D:]
    ref = ZeroShotClassifier(class_embeddings=C).fit(V).predict_proba(V)
    got = ZeroShotClassifier(class_embeddings=C * c).fit(V * c).predict_proba(V * c)
    np.testing.assert_allclose(got, ref, **_tol(dtype))


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30), (np.float64, 250),
                                     (np.float64, -250)])
def test_cka_is_scale_invariant(dtype, e):
    X, Xc, c = _data(dtype, e)
    ref = metrics.cka(X[:, :D], X[:, D:])
    np.testing.assert_allclose(metrics.cka(Xc[:, :D], X[:, D:]), ref, **_tol(dtype))
    np.testing.assert_allclose(metrics.cka(Xc[:, :D], Xc[:, D:]), ref, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_norms_and_unit_rows_across_the_range(dtype):
    """The norm kernel itself: ||c x|| = c ||x|| and unit(c x) = unit(x), also for
    rows whose entries are subnormal or whose squared sum overflows."""
    fi = np.finfo(dtype)
    x = np.array([[3.0, -4.0, 0.0]], dtype=dtype)
    for c in (fi.max / 8, dtype(2.0) ** (fi.minexp + 2), fi.tiny * dtype(4), dtype(1e-3)):
        np.testing.assert_allclose(row_norms(x * c), 5 * c, rtol=4 * fi.eps)
        np.testing.assert_allclose(normalize_rows(x * c), [[0.6, -0.8, 0.0]], rtol=4 * fi.eps)
    # Subnormal entries: not zero, so the row has a direction.
    sub = np.array([[3.0, 4.0]], dtype=dtype) * fi.smallest_subnormal
    np.testing.assert_allclose(normalize_rows(sub), [[0.6, 0.8]], rtol=0.3)
    with pytest.raises(ValueError, match="1 row\\(s\\) with zero norm \\(rows 1\\)"):
        normalize_rows(np.array([[1.0, 0.0], [0.0, 0.0]], dtype=dtype))


def test_unit_blocks_normalise_before_casting_to_float32():
    pytest.importorskip("torch")  # skgap.train needs the torch extra
    from skgap.train._data import unit_blocks

    slices = (slice(0, D), slice(D, 2 * D))
    ref = unit_blocks(X64, slices)
    for c in (1e200, 1e-200):
        got = unit_blocks(X64 * c, slices)
        for a, b in zip(got, ref):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_array_api_torch_paths_are_scale_safe(monkeypatch):
    torch = pytest.importorskip("torch")
    import sklearn

    # skgap calls no SciPy function on non-NumPy arrays (see test_array_api).
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")

    X, Xc, _ = _data(np.float32, 30)
    ref_stats = _cone_stats(X)
    ref_shift = ModalityGapShifter(lam=0.5).fit(X).transform(X)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.asarray(Xc)
        s = ConeStats(random_state=0).fit(t)
        out = ModalityGapShifter(lam=0.5).fit(t).transform(t)
    np.testing.assert_allclose(float(s.alignment_), ref_stats["alignment_"], rtol=2e-5)
    np.testing.assert_allclose(np.asarray(s.uniformity_.cpu()), ref_stats["uniformity_"],
                               rtol=2e-5)
    np.testing.assert_allclose(out.numpy(), ref_shift, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30), (np.float64, 200)])
def test_cli_report_is_scale_invariant(tmp_path, capsys, dtype, e):
    """`skgap report` printed the broken numbers of 1e30 * X and exited 0."""
    import json

    from skgap.cli import main

    X, Xc, _ = _data(dtype, e)
    reports = []
    for name, A in (("x.npz", X), ("xc.npz", Xc)):
        np.savez(tmp_path / name, image=A[:, :D], text=A[:, D:])
        assert main(["report", str(tmp_path / name), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out)["report"])
    assert reports[1] == pytest.approx(reports[0], rel=2e-5, abs=2e-5)


def _group_scores(X):
    from skgap.evaluate import binary_auc, groupwise_scores, knn_accuracy

    return {
        # kNN on the raw rows: Euclidean distances whose squares leave the
        # representable range at these scales unless the rows are rescaled.
        "knn_accuracy": knn_accuracy(X, Y, n_neighbors=5),
        "groupwise": np.array(list(groupwise_scores(X, Y, n_neighbors=5).values())),
        # An AUC ranks scores: one positive factor changes no rank.
        "binary_auc": binary_auc(Y, X[:, 0] - X[:, D]),
    }


@fast
@given(exp32)
@example(30)
@example(-30)
def test_group_scores_float32(e):
    X, Xc, _ = _data(np.float32, e)
    _assert_same_stats(_group_scores(X), _group_scores(Xc), np.float32)


@fast
@given(exp64)
@example(200)
@example(-200)
def test_group_scores_float64(e):
    X, Xc, _ = _data(np.float64, e)
    _assert_same_stats(_group_scores(X), _group_scores(Xc), np.float64)


@pytest.mark.parametrize("dtype,e", [(np.float32, 30), (np.float32, -30), (np.float64, 200),
                                     (np.float64, -200)])
def test_clustering_scorer_is_scale_invariant(dtype, e):
    from skgap.evaluate import make_clustering_scorer

    X, Xc, _ = _data(dtype, e)
    scorer = make_clustering_scorer("knn_accuracy", n_neighbors=5)
    identity = ModalityGapShifter(lam=0.0)
    assert scorer(identity.fit(Xc), Xc, Y) == pytest.approx(scorer(identity.fit(X), X, Y))


def test_losses_refuse_rows_far_from_the_sphere():
    """The torch losses take unit rows: rows of 1e30 are refused by name, never
    turned into inf/NaN; their normalised rows give the loss of the unit rows."""
    torch = pytest.importorskip("torch")
    from skgap.train import losses

    V = torch.tensor(X64[:, :D])
    T = torch.tensor(X64[:, D:])
    unit = [torch.nn.functional.normalize(A, dim=1) for A in (V, T)]
    for c in (1e30, 1e-30):
        with pytest.raises(ValueError, match="not unit vectors"):
            losses.clip_loss(c * V, c * T)
        # (torch's normalize divides by max(norm, 1e-12), so tiny rows are first
        # brought to norm ~1 by a power of two.)
        scaled = [torch.nn.functional.normalize(torch.ldexp(c * A, torch.tensor(
            -int(np.frexp(c)[1]))), dim=1) for A in (V, T)]
        assert float(losses.clip_loss(*scaled)) == pytest.approx(float(losses.clip_loss(*unit)))
        assert float(losses.uniformity(scaled[0])) == pytest.approx(float(losses.uniformity(unit[0])))
