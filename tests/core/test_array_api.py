"""Array API dispatch: the shifter and ConeStats on array-api-strict and torch arrays.

array-api-strict refuses ``np.asarray`` on its arrays, so a passing run proves
that no step took a trip through NumPy. torch runs on the CPU here and on
CUDA where a GPU is present.
"""

import numpy as np
import pytest
import sklearn
from array_namespaces import array_namespaces
from sklearn.utils.estimator_checks import check_array_api_input

from skgap.datasets import make_paired_embeddings
from skgap.measure._cone_stats import ConeStats
from skgap.transform._shift import ModalityGapShifter

pytest.importorskip("array_api_compat")

NAMESPACES = array_namespaces()
if not NAMESPACES:  # pragma: no cover
    pytest.skip("neither array-api-strict nor torch is installed", allow_module_level=True)


@pytest.fixture(autouse=True)
def dispatch(monkeypatch):
    # scikit-learn refuses dispatch unless SciPy's array API flag is set; skgap
    # calls no SciPy function on non-NumPy arrays, so setting it here is enough.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _to(xp, device, A):
    if xp.__name__ == "torch":
        return xp.asarray(A, device=device)
    return xp.asarray(A, device=device)


def _back(a):
    from sklearn.utils._array_api import move_to

    return np.asarray(move_to(a, xp=np, device="cpu"))


def _namespace_name(a):
    from sklearn.utils._array_api import get_namespace

    return get_namespace(a)[0].__name__


@pytest.fixture
def X():
    X, _ = make_paired_embeddings(300, 12, random_state=0)
    # Raw rows: each block of each row gets its own norm.
    scale = np.random.default_rng(0).uniform(1, 4, size=(300, 2)).astype(np.float32)
    return X * np.repeat(scale, 12, axis=1)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shifter_in_and_out_of_the_namespace(ns, dtype, X):
    xp, device = ns
    X = X.astype(dtype)
    ref = ModalityGapShifter(lam=0.6).fit(X)
    Xt = _to(xp, device, X)
    est = ModalityGapShifter(lam=0.6).fit(Xt)
    out = est.transform(Xt)
    assert _namespace_name(out) == _namespace_name(Xt)
    assert str(out.device) == str(Xt.device)
    assert out.dtype == Xt.dtype
    atol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(_back(est.centroids_), ref.centroids_, atol=atol)
    np.testing.assert_allclose(_back(est.shift_vectors_), ref.shift_vectors_, atol=atol)
    np.testing.assert_allclose(_back(out), ref.transform(X), atol=5 * atol)
    assert est.gap_norm_ == pytest.approx(ref.gap_norm_, abs=atol)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_unit_direction_and_partial_fit(ns, X):
    xp, device = ns
    ref = ModalityGapShifter(lam=0.3, direction="unit").fit(X)
    est = ModalityGapShifter(lam=0.3, direction="unit")
    for part in np.array_split(X, 3):
        est.partial_fit(_to(xp, device, part))
    np.testing.assert_allclose(_back(est.shift_vectors_), ref.shift_vectors_, atol=1e-6)
    out = est.transform(_to(xp, device, X))
    np.testing.assert_allclose(_back(out), ref.transform(X), atol=1e-5)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_cone_stats_match_numpy(ns, X):
    xp, device = ns
    X = X.astype(np.float64)
    ref = ConeStats(max_uniformity_samples=120, random_state=0).fit(X)
    est = ConeStats(max_uniformity_samples=120, random_state=0).fit(_to(xp, device, X))
    for name in ("centroids_", "mean_resultant_length_", "mean_within_cosine_", "gap_vector_"):
        value = getattr(est, name)
        assert _namespace_name(value) == xp.__name__ or xp.__name__ in _namespace_name(value)
        np.testing.assert_allclose(_back(value), getattr(ref, name), atol=1e-10, err_msg=name)
    np.testing.assert_allclose(_back(est.uniformity_), ref.uniformity_, atol=1e-10)
    scalars = ("gap_norm_", "pairwise_gap_", "alignment_", "relative_gap_", "gap_principal_cosine_")
    for name in scalars:
        assert getattr(est, name) == pytest.approx(getattr(ref, name), abs=1e-8), name
    assert est.report() == pytest.approx(ref.report(), abs=1e-8)
    out = est.transform(_to(xp, device, X))
    assert _namespace_name(out) == _namespace_name(_to(xp, device, X))


@pytest.mark.parametrize("ns", NAMESPACES)
def test_cone_stats_streaming_in_the_namespace(ns, X):
    xp, device = ns
    ref = ConeStats(max_uniformity_samples=100, random_state=3).fit(X)
    est = ConeStats(max_uniformity_samples=100, random_state=3)
    for part in np.array_split(X, 4):
        est.partial_fit(_to(xp, device, part))
    np.testing.assert_allclose(_back(est.centroids_), ref.centroids_, atol=1e-6)
    np.testing.assert_allclose(_back(est.uniformity_), ref.uniformity_, atol=1e-5)
    assert est.gap_principal_cosine_ == pytest.approx(ref.gap_principal_cosine_, abs=1e-5)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_zero_rows_are_reported_in_the_namespace(ns, X):
    xp, device = ns
    bad = X.copy()
    bad[7, 12:] = 0
    with pytest.raises(ValueError, match=r"text block has 1 row\(s\) with zero norm \(rows 7\)"):
        ModalityGapShifter().fit(_to(xp, device, bad))
    est = ModalityGapShifter().fit(_to(xp, device, X))
    with pytest.raises(ValueError, match="text block has 1 row"):
        est.transform(_to(xp, device, bad))


@pytest.mark.parametrize("ns", NAMESPACES)
def test_other_namespace_at_transform_is_refused(ns, X):
    xp, device = ns
    est = ModalityGapShifter().fit(_to(xp, device, X))
    with pytest.raises(ValueError, match="same namespace"):
        est.transform(X)


def test_tags_declare_array_api_support():
    assert ModalityGapShifter().__sklearn_tags__().array_api_support
    assert ConeStats().__sklearn_tags__().array_api_support


@pytest.mark.parametrize(
    "namespace, device",
    [("array_api_strict", "CPU_DEVICE"), ("torch", "cpu")],
)
@pytest.mark.parametrize(
    "estimator",
    [ModalityGapShifter(lam=0.7), ModalityGapShifter(direction="unit"), ConeStats()],
    ids=lambda e: repr(e),
)
def test_scikit_learn_array_api_check_with_values(estimator, namespace, device):
    pytest.importorskip(namespace)
    check_array_api_input(
        type(estimator).__name__, estimator, namespace, device_name=device,
        dtype_name="float64", check_values=True,
    )
