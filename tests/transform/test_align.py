import pickle
import warnings

import numpy as np
import pytest
from estimator_registry import instances_of
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_array_api_input
from strategies import random_orthogonal, seeds

from skgap._core._layout import pair
from skgap.measure import cka
from skgap.measure._cone_stats import ConeStats
from skgap.transform._align import AnchorAffineAligner, IllPosedAlignmentWarning

KINDS = ["affine", "linear", "lortho", "ortho"]
STANDARDIZE = ["feature", "isotropic", "center", None]
dims = st.integers(2, 6)
fast = settings(max_examples=15, deadline=None)


def planted(seed, n, d_s, d_t, *, noise=0.0):
    """Source anchors, a semi-orthogonal Q (d_s x d_t) and a shift b."""
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n, d_s)) * rng.uniform(0.5, 2.0, d_s) + rng.normal(0, 3, d_s)
    Q = random_orthogonal(max(d_s, d_t), seed)[:d_s, :d_t]
    b = rng.normal(0, 2, d_t)
    return S, Q, b, rng.normal(0, noise, (n, d_t))


def effective_map(aligner, d_s):
    """``(W, c)`` with ``translate(S) = S W + c``, read off the aligner."""
    c = aligner.translate(np.zeros((1, d_s)))[0]
    return aligner.translate(np.eye(d_s)) - c, c


# -- recovery theorems -----------------------------------------------------


@fast
@given(seed=seeds, d=dims, standardize=st.sampled_from(["isotropic", "center", None]))
def test_ortho_recovers_planted_rotation(seed, d, standardize):
    S, Q, b, _ = planted(seed, 4 * d, d, d)
    if standardize is None:
        b[:] = 0  # a linear map cannot shift
    T = S @ Q + b
    aligner = AnchorAffineAligner(kind="ortho", standardize=standardize).fit(pair(S, T))
    np.testing.assert_allclose(aligner.coef_, Q, atol=1e-9)
    S_new = np.random.default_rng(seed + 1).standard_normal((5, d))
    np.testing.assert_allclose(aligner.translate(S_new), S_new @ Q + b, atol=1e-8)


@fast
@given(seed=seeds, d=dims, scale=st.floats(0.1, 10.0))
def test_isotropic_ortho_recovers_planted_similarity(seed, d, scale):
    S, Q, b, _ = planted(seed, 4 * d, d, d)
    T = scale * S @ Q + b
    aligner = AnchorAffineAligner(kind="ortho", standardize="isotropic").fit(pair(S, T))
    np.testing.assert_allclose(aligner.coef_, Q, atol=1e-9)
    np.testing.assert_allclose(aligner.translate(S), T, atol=1e-8 * (1 + np.abs(T).max()))


@fast
@given(
    seed=seeds,
    d_s=dims,
    d_t=dims,
    standardize=st.sampled_from(STANDARDIZE),
)
def test_affine_recovers_planted_affine_map_across_widths(seed, d_s, d_t, standardize):
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((3 * d_s + 3, d_s)) + rng.normal(0, 3, d_s)
    A = rng.standard_normal((d_s, d_t))
    b = rng.normal(0, 2, d_t)
    aligner = AnchorAffineAligner(
        kind="affine", modality_dims=(d_s, d_t), standardize=standardize
    ).fit(pair(S, S @ A + b))
    W, c = effective_map(aligner, d_s)
    np.testing.assert_allclose(W, A, atol=1e-8)
    np.testing.assert_allclose(c, b, atol=1e-8)


@fast
@given(
    seed=seeds,
    d_s=dims,
    extra=st.integers(0, 3),
    standardize=st.sampled_from(["isotropic", "center"]),
)
def test_lortho_equals_ortho_for_an_orthogonal_map(seed, d_s, extra, standardize):
    # An isometric embedding (orthonormal rows, d_s <= d_t): both find it exactly.
    d_t = d_s + extra
    S, Q, b, _ = planted(seed, 3 * d_t + 2, d_s, d_t)
    X = pair(S, S @ Q + b)
    dims_ = (d_s, d_t)
    ortho = AnchorAffineAligner(kind="ortho", modality_dims=dims_, standardize=standardize)
    lortho = clone(ortho).set_params(kind="lortho")
    np.testing.assert_allclose(lortho.fit(X).coef_, ortho.fit(X).coef_, atol=1e-8)


@fast
@given(
    seed=seeds,
    d_s=dims,
    d_t=dims,
    kind=st.sampled_from(KINDS),
    standardize=st.sampled_from(["isotropic", "center", None]),
)
def test_translation_is_equivariant_under_source_rotations(seed, d_s, d_t, kind, standardize):
    """Fitting on (S P, T) and translating s P gives what (S, T) gives for s."""
    S, _, _, _ = planted(seed, 3 * d_s + 3, d_s, d_t)
    rng = np.random.default_rng(seed + 1)
    T = rng.standard_normal((S.shape[0], d_t))
    P = random_orthogonal(d_s, seed + 2)
    params = dict(kind=kind, modality_dims=(d_s, d_t), standardize=standardize)
    base = AnchorAffineAligner(**params).fit(pair(S, T))
    rotated = AnchorAffineAligner(**params).fit(pair(S @ P, T))
    S_new = rng.standard_normal((4, d_s))
    np.testing.assert_allclose(rotated.translate(S_new @ P), base.translate(S_new), atol=1e-8)


def test_feature_standardization_is_not_rotation_equivariant(rng):
    # Why 'isotropic' exists: per-feature scales do not commute with rotations.
    S = rng.standard_normal((40, 4)) * [1.0, 5.0, 0.2, 2.0]
    T = rng.standard_normal((40, 4))
    P = random_orthogonal(4, 3)
    base = AnchorAffineAligner(standardize="feature").fit(pair(S, T))
    rotated = AnchorAffineAligner(standardize="feature").fit(pair(S @ P, T))
    assert not np.allclose(rotated.translate(S @ P), base.translate(S), atol=1e-3)


# -- the standardisations, padding and anchors ------------------------------


def test_feature_standardization_uses_anchor_statistics_only(rng):
    X = rng.standard_normal((60, 10)) * 3 + 1
    aligner = AnchorAffineAligner(n_anchors=20, random_state=0).fit(X)
    anchors = X[aligner.anchor_indices_]
    assert aligner.n_anchors_ == 20 and np.all(np.diff(aligner.anchor_indices_) > 0)
    np.testing.assert_allclose(aligner.source_mean_, anchors[:, :5].mean(0))
    np.testing.assert_allclose(aligner.target_scale_, anchors[:, 5:].std(0))
    # The map is the Procrustes solution between the z-scored anchor blocks.
    Z = (anchors - anchors.mean(0)) / anchors.std(0)
    R, _ = orthogonal_procrustes(Z[:, :5], Z[:, 5:])
    np.testing.assert_allclose(aligner.coef_, R, atol=1e-10)
    expected = (X[:, :5] - anchors[:, :5].mean(0)) / anchors[:, :5].std(0) @ R
    expected = expected * anchors[:, 5:].std(0) + anchors[:, 5:].mean(0)
    np.testing.assert_allclose(aligner.translate(X[:, :5]), expected, atol=1e-10)


def test_anchor_draw_follows_random_state(rng):
    X = rng.standard_normal((50, 6))
    a = AnchorAffineAligner(n_anchors=10, random_state=1).fit(X).anchor_indices_
    b = AnchorAffineAligner(n_anchors=10, random_state=1).fit(X).anchor_indices_
    c = AnchorAffineAligner(n_anchors=10, random_state=2).fit(X).anchor_indices_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_isotropic_scale_is_one_number_per_space(rng):
    X = rng.standard_normal((30, 8)) * np.arange(1, 9)
    aligner = AnchorAffineAligner(standardize="isotropic").fit(X)
    S_c = X[:, :4] - X[:, :4].mean(0)
    rms = np.sqrt((S_c**2).sum(1).mean())
    np.testing.assert_allclose(aligner.source_scale_, np.full(4, rms))


def test_constant_feature_scale_is_one(rng):
    X = rng.standard_normal((30, 6))
    X[:, 1] = 1e3
    aligner = AnchorAffineAligner(kind="linear").fit(X)
    assert aligner.source_scale_[1] == 1.0
    assert np.all(np.isfinite(aligner.coef_))


@pytest.mark.parametrize("kind", ["ortho", "lortho"])
@pytest.mark.parametrize("d_s, d_t", [(3, 6), (6, 3)])
def test_square_kinds_zero_pad_the_smaller_space(rng, kind, d_s, d_t):
    """Different widths: pad with zeros, solve the square problem, cut back."""
    S = rng.standard_normal((40, d_s))
    T = rng.standard_normal((40, d_t))
    aligner = AnchorAffineAligner(kind=kind, modality_dims=(d_s, d_t), standardize=None)
    aligner.fit(pair(S, T))
    d = max(d_s, d_t)
    S_pad = np.hstack([S, np.zeros((40, d - d_s))])
    T_pad = np.hstack([T, np.zeros((40, d - d_t))])
    if kind == "ortho":
        R, _ = orthogonal_procrustes(S_pad, T_pad)
    else:
        U, _, Vt = np.linalg.svd(np.linalg.lstsq(S_pad, T_pad, rcond=None)[0])
        R = U @ Vt
    np.testing.assert_allclose(aligner.coef_, R[:d_s, :d_t], atol=1e-10)
    # Semi-orthogonal: an isometry when d_s <= d_t, a projection otherwise.
    gram = aligner.coef_ @ aligner.coef_.T if d_s <= d_t else aligner.coef_.T @ aligner.coef_
    np.testing.assert_allclose(gram, np.eye(min(d_s, d_t)), atol=1e-10)
    if d_s <= d_t:
        np.testing.assert_allclose(
            np.linalg.norm(aligner.translate(S), axis=1), np.linalg.norm(S, axis=1)
        )


def test_ortho_alignment_leaves_cka_unchanged_affine_raises_it(rng):
    # CKA is blind to rotations and isotropic scale: ortho cannot fake similarity.
    S = rng.standard_normal((200, 6))
    T = S @ rng.standard_normal((6, 8)) + 0.3 * rng.standard_normal((200, 8))
    X = pair(S, T)
    before = cka(S, T)
    ortho = AnchorAffineAligner(modality_dims=(6, 8), standardize="isotropic").fit(X)
    affine = AnchorAffineAligner(kind="affine", modality_dims=(6, 8)).fit(X)
    assert cka(ortho.translate(S), T) == pytest.approx(before, abs=1e-10)
    assert cka(affine.translate(S), T) > before + 0.05


# -- ill-posed fits ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_too_few_anchors_warn(rng, kind):
    X = rng.standard_normal((4, 16))
    with pytest.warns(IllPosedAlignmentWarning, match="4 anchors"):
        AnchorAffineAligner(kind=kind).fit(X)


def test_enough_anchors_do_not_warn(rng):
    X = rng.standard_normal((40, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in KINDS:
            AnchorAffineAligner(kind=kind).fit(X)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("standardize", ["feature", None])
def test_anchors_one_rank_short_warn(rng, kind, standardize):
    # Plenty of anchors, but one source feature is the sum of two others: the
    # anchors have rank d_s - 1 exactly, the smallest deficiency there is.
    S = rng.standard_normal((40, 6))
    S[:, 5] = S[:, 0] + S[:, 1]
    T = rng.standard_normal((40, 6))
    assert np.linalg.matrix_rank(S - S.mean(0)) == 5
    with pytest.warns(IllPosedAlignmentWarning, match="rank 5 <"):
        AnchorAffineAligner(kind=kind, standardize=standardize).fit(pair(S, T))
    # One rank more and every kind is well posed.
    S[:, 5] = rng.standard_normal(40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AnchorAffineAligner(kind=kind, standardize=standardize).fit(pair(S, T))


def test_a_constant_feature_leaves_the_map_of_the_others_unchanged(rng):
    # A constant column whose computed std is rounding noise, not zero: scaling
    # by that noise would turn the column into O(1) garbage the fit then uses.
    S = rng.standard_normal((30, 5))
    T = S @ rng.standard_normal((5, 6)) + 0.1 * rng.standard_normal((30, 6))
    constant = np.full((30, 1), 0.1)
    assert 0 < np.std(constant) < 1e-15
    with_constant = np.hstack([S, constant])
    kw = dict(kind="affine", standardize="feature")
    with warnings.catch_warnings():
        # The centred constant column is (nearly) zero: the anchors are rank 5 < 6.
        warnings.simplefilter("ignore", IllPosedAlignmentWarning)
        wide = AnchorAffineAligner(modality_dims=(6, 6), **kw).fit(pair(with_constant, T))
    narrow = AnchorAffineAligner(modality_dims=(5, 6), **kw).fit(pair(S, T))
    assert wide.source_scale_[5] == 1.0
    S_new = rng.standard_normal((10, 5))
    np.testing.assert_allclose(
        wide.translate(np.hstack([S_new, np.full((10, 1), 0.1)])),
        narrow.translate(S_new),
        atol=1e-9,
    )


def test_underdetermined_linear_gives_minimum_norm_solution(rng):
    S, T = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    aligner = AnchorAffineAligner(kind="linear", standardize=None)
    with pytest.warns(IllPosedAlignmentWarning, match="minimum-norm"):
        aligner.fit(pair(S, T))
    np.testing.assert_allclose(aligner.coef_, np.linalg.lstsq(S, T, rcond=None)[0], atol=1e-12)
    np.testing.assert_allclose(aligner.translate(S), T, atol=1e-12)  # interpolates


@pytest.mark.parametrize("kind, fit_intercept", [("linear", False), ("affine", True)])
def test_alpha_gives_the_ridge_solution_without_warning(rng, kind, fit_intercept):
    S, T = rng.standard_normal((5, 8)) + 1.0, rng.standard_normal((5, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = AnchorAffineAligner(kind=kind, standardize=None, alpha=0.5).fit(pair(S, T))
    ridge = Ridge(alpha=0.5, fit_intercept=fit_intercept).fit(S, T)
    np.testing.assert_allclose(aligner.coef_, ridge.coef_.T, atol=1e-10)
    np.testing.assert_allclose(aligner.translate(S), ridge.predict(S), atol=1e-10)


def test_alpha_does_not_change_ortho(rng):
    X = rng.standard_normal((30, 8))
    a = AnchorAffineAligner(alpha=10.0).fit(X).coef_
    np.testing.assert_allclose(a, AnchorAffineAligner().fit(X).coef_)


# -- bad input ---------------------------------------------------------------


def test_unknown_kind(rng):
    with pytest.raises(InvalidParameterError, match="kind"):
        AnchorAffineAligner(kind="procrustes").fit(rng.standard_normal((10, 4)))


def test_nan_in_anchors(rng):
    X = rng.standard_normal((10, 4))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AnchorAffineAligner().fit(X)


@pytest.mark.parametrize(
    "params, n_rows, match",
    [
        ({"n_anchors": 11}, 10, "n_anchors=11 exceeds the 10 rows"),
        ({"n_anchors": 1}, 10, "n_anchors"),
        ({}, 1, "minimum of 2"),
    ],
)
def test_too_few_anchors_raise(rng, params, n_rows, match):
    with pytest.raises(ValueError, match=match):
        AnchorAffineAligner(**params).fit(rng.standard_normal((n_rows, 4)))


def test_layout_errors(rng):
    X = rng.standard_normal((10, 7))
    with pytest.raises(ValueError, match="modality_dims"):
        AnchorAffineAligner().fit(X)  # odd width, no modality_dims
    with pytest.raises(ValueError, match="exactly two blocks"):
        AnchorAffineAligner(modality_dims=(2, 2, 3)).fit(X)
    aligner = AnchorAffineAligner(modality_dims=(3, 4)).fit(X)
    with pytest.raises(ValueError, match="source block of 3 columns"):
        aligner.translate(X[:, :4])
    with pytest.raises(ValueError, match="features"):
        aligner.transform(X[:, :6])


# -- estimator API -----------------------------------------------------------


def test_transform_layout_names_and_pandas_output(rng):
    pd = pytest.importorskip("pandas")
    X = rng.standard_normal((20, 7))
    cols = [f"s{j}" for j in range(3)] + [f"t{j}" for j in range(4)]
    aligner = AnchorAffineAligner(kind="affine", modality_dims=(3, 4)).set_output(
        transform="pandas"
    )
    out = aligner.fit_transform(pd.DataFrame(X, columns=cols))
    assert list(out.columns) == [f"translated_t{j}" for j in range(4)] + cols[3:]
    np.testing.assert_allclose(out.to_numpy()[:, :4], aligner.translate(X[:, :3]))
    np.testing.assert_array_equal(out.to_numpy()[:, 4:], X[:, 3:])


def test_pipeline_into_cone_stats(rng):
    """The output has two blocks of the target width, as ConeStats needs."""
    X = rng.standard_normal((50, 10))
    pipe = make_pipeline(AnchorAffineAligner(modality_dims=(4, 6)), ConeStats()).fit(X)
    assert pipe[-1].modality_dims_ == (6, 6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(rng, dtype):
    X = rng.standard_normal((30, 8)).astype(dtype)
    aligner = AnchorAffineAligner(kind="affine").fit(X)
    assert aligner.coef_.dtype == dtype
    assert aligner.transform(X).dtype == dtype


def test_clone_and_pickle(rng):
    X = rng.standard_normal((30, 8))
    aligner = AnchorAffineAligner(kind="lortho", n_anchors=20, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(again.transform(X), aligner.transform(X))
    np.testing.assert_array_equal(clone(aligner).fit(X).coef_, aligner.coef_)


# The instances scikit-learn's checks run on (tests/test_common.py).
ESTIMATORS = instances_of("skgap.AnchorAffineAligner")


# -- array API ---------------------------------------------------------------

ARRAY_API_CASES = [
    ("array_api_strict", "CPU_DEVICE", "float64"),
    ("array_api_strict", "device1", "float32"),
    ("torch", "cpu", "float64"),
    ("torch", "cpu", "float32"),
]


@pytest.mark.parametrize("namespace, device, dtype", ARRAY_API_CASES)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.kind)
def test_array_api_input(monkeypatch, estimator, namespace, device, dtype):
    pytest.importorskip(namespace)
    # scikit-learn refuses dispatch without it; this module never calls scipy.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllPosedAlignmentWarning)
        check_array_api_input(
            type(estimator).__name__,
            estimator,
            array_namespace=namespace,
            device_name=device,
            dtype_name=dtype,
            # The check's data has rank-deficient blocks: the minimum-norm
            # least-squares solution is unique, an orthogonal map is not.
            check_values=estimator.kind in ("linear", "affine"),
        )


@pytest.mark.parametrize("namespace, device, dtype", ARRAY_API_CASES)
@pytest.mark.parametrize("kind", KINDS)
def test_array_api_values_match_numpy(monkeypatch, rng, kind, namespace, device, dtype):
    """On well-posed anchors every kind gives NumPy's answer in any namespace."""
    xp = pytest.importorskip(namespace)
    from sklearn import config_context
    from sklearn.utils._array_api import move_to

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    if namespace == "array_api_strict":
        device = xp.Device(device)
    X = rng.standard_normal((40, 10)).astype(dtype)
    ref = AnchorAffineAligner(kind=kind, modality_dims=(4, 6), standardize="isotropic").fit(X)
    X_xp = xp.asarray(X, device=device)
    with config_context(array_api_dispatch=True):
        aligner = clone(ref).fit(X_xp)
        out = aligner.transform(X_xp)
    assert type(out) is type(X_xp) and out.dtype == X_xp.dtype
    assert type(aligner.coef_) is type(X_xp)
    atol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(move_to(out, xp=np, device="cpu"), ref.transform(X), atol=atol)
