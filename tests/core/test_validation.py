"""Errors that say what is wrong, and the one way in.

Each case was a silent wrong answer or an error from deep inside NumPy
before; each now names the argument and the problem.
"""

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from skgap import AnchorAffineAligner, pair, unpair
from skgap.datasets import load_coco_clip
from skgap.evaluate import groupwise_scores
from skgap.measure import uniformity
from skgap.transform._align import IllPosedAlignmentWarning


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(60, 8))


def test_groupwise_scores_refuse_continuous_labels(X):
    y = np.random.default_rng(1).normal(size=60)
    with pytest.raises(ValueError, match="y looks continuous .*class labels"):
        groupwise_scores(X, y)
    # Integral floats are class labels.
    groupwise_scores(X, np.repeat([0.0, 1.0, 2.0], 20), n_init=1)


@pytest.mark.parametrize("step", [np.nan, np.inf, [1, np.nan]])
def test_expert_probability_refuses_non_finite_steps(step):
    pytest.importorskip("torch")
    from skgap.train import expert_probability

    with pytest.raises(ValueError, match="step must be a finite number"):
        expert_probability(step, 100)


def test_expert_probability_refuses_non_numeric_steps():
    pytest.importorskip("torch")
    from skgap.train import expert_probability

    with pytest.raises(TypeError, match="step must be a number"):
        expert_probability("early", 100)


@pytest.mark.parametrize("block_size", [0, -5, 2.5, True])
def test_uniformity_block_size_must_be_positive(X, block_size):
    with pytest.raises(ValueError, match="'block_size' parameter"):
        uniformity(X, block_size=block_size)


def test_uniformity_block_size_does_not_change_the_value(X):
    assert uniformity(X, block_size=7) == pytest.approx(uniformity(X, block_size=1000), rel=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "coo"])
def test_pair_and_unpair_refuse_sparse(fmt):
    S = sp.random(5, 4, density=0.5, format=fmt, random_state=0)
    with pytest.raises(TypeError, match="Block 0 is a sparse matrix .*toarray"):
        pair(S, np.ones((5, 2)))
    with pytest.raises(TypeError, match="X is a sparse matrix .*toarray"):
        unpair(S)


def test_pair_and_unpair_refuse_object_arrays():
    O = np.array([[1.0, "a"], [2.0, "b"]], dtype=object)
    with pytest.raises(TypeError, match="Block 1 has dtype object"):
        pair(np.ones((2, 2)), O)
    with pytest.raises(TypeError, match="X has dtype object"):
        unpair(O)
    with pytest.raises(TypeError, match="has dtype <U"):
        unpair(np.array([["a", "b"]]))


def test_pair_still_takes_integers_and_bools():
    X = pair(np.ones((2, 1), dtype=int), np.zeros((2, 1), dtype=bool))
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[1, 0], [1, 0]])


@pytest.mark.parametrize(
    "content, match",
    [
        (b"hello, not numpy", "is not a NumPy .npy file"),
        (np.zeros((3, 4)), r"shape \(2, n, d\); got \(3, 4\)"),
        (np.array([[["a"]], [["b"]]]), "floating-point embeddings; got dtype <U1"),
        (np.array([[[1.0]], [[None]]], dtype=object), "is not a NumPy .npy file"),
    ],
)
def test_load_coco_clip_names_a_wrong_file(tmp_path, content, match):
    f = tmp_path / "features_clip.npy"
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        np.save(f, content, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        load_coco_clip(f)
    with pytest.raises(ValueError, match=match):
        load_coco_clip(tmp_path)  # the folder form finds the same file


def test_load_coco_clip_reads_a_right_file(tmp_path):
    arr = np.random.default_rng(0).normal(size=(2, 5, 3))
    np.save(tmp_path / "features_clip.npy", arr)
    X = load_coco_clip(tmp_path)
    assert X.dtype == np.float32 and X.shape == (5, 6)
    np.testing.assert_allclose(X, np.hstack([arr[0], arr[1]]), rtol=1e-6)


def test_cka_of_an_underflowing_variance_is_the_cka_of_the_unscaled_data():
    """Before: float32 1e-30 data had a variance that underflowed to zero, and
    cka called such a block constant. CKA is scale-invariant, so it is a value."""
    from skgap.measure import cka

    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 4)).astype(np.float32)
    B = (A @ rng.normal(size=(4, 3)) + rng.normal(size=(50, 3))).astype(np.float32)
    assert cka(A * np.float32(1e-30), B) == pytest.approx(cka(A, B), rel=1e-5)
    with pytest.raises(ValueError, match="A is constant"):
        cka(np.ones((50, 4), np.float32) * np.float32(1e-30), B)


def _rank_two_target(rng):
    S = rng.normal(size=(40, 6))
    return np.hstack([S, S[:, :2] @ rng.normal(size=(2, 6))])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_lortho_warns_on_a_rank_deficient_least_squares_map(alpha):
    X = _rank_two_target(np.random.default_rng(0))
    with pytest.warns(IllPosedAlignmentWarning, match="lortho.*least-squares map has rank 2"):
        AnchorAffineAligner(kind="lortho", alpha=alpha).fit(X)
    # 'ortho' warns on the same anchors, as before.
    with pytest.warns(IllPosedAlignmentWarning, match="rank 2"):
        AnchorAffineAligner(kind="ortho").fit(X)


def test_lortho_is_silent_when_well_posed():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(40, 6))
    X = np.hstack([S, S @ rng.normal(size=(6, 6))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllPosedAlignmentWarning)
        AnchorAffineAligner(kind="lortho").fit(X)


def test_losses_refuse_non_finite_input():
    torch = pytest.importorskip("torch")
    from skgap.train import losses

    V = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    T = V.clone()
    T[2, 1] = float("nan")
    T[4, 0] = float("inf")
    with pytest.raises(ValueError, match=r"T has 2 row\(s\) with NaN or infinite entries \(rows 2, 4\)"):
        losses.clip_loss(V, T)
    with pytest.raises(ValueError, match="NaN or infinite"):
        losses.align_true_pairs(V, T)
    with pytest.raises(ValueError, match="NaN or infinite"):
        losses.uniformity(T)
    assert torch.isfinite(losses.clip_loss(V, V))


# --- One way in: no estimator module imports helpers from a sibling estimator ---

PACKAGE = Path(__file__).resolve().parents[2] / "skgap"


def _module_file(module):
    return PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _estimator_modules():
    """Modules of the package that define a scikit-learn estimator class.

    An estimator class derives from ``BaseEstimator`` directly or through an
    estimator class of the package. A module whose estimator classes are all
    base classes of others (e.g. ``skgap._translation``) is the shared layer
    below the estimators, not an estimator module.
    """
    classes = []  # (module, class name, base names)
    for f in PACKAGE.rglob("*.py"):
        tree = ast.parse(f.read_text())
        rel = ".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                classes.append((rel, node.name, bases))
    estimators, grew = {"BaseEstimator"}, True
    while grew:
        new = {name for _, name, bases in classes if bases & estimators} - estimators
        estimators |= new
        grew = bool(new)
    used_as_base = set().union(*(bases for _, _, bases in classes)) & estimators
    own = {}
    for mod, name, bases in classes:
        if bases & estimators:
            own.setdefault(mod, set()).add(name)
    return {mod for mod, names in own.items() if not names <= used_as_base}


def _imports(module):
    tree = ast.parse(_module_file(module).read_text())
    pkg = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
            target = f"{base}.{node.module}" if node.module else base
            yield target, [a.name for a in node.names]


def test_no_estimator_module_imports_helpers_from_a_sibling_estimator_module():
    """Estimator modules may use another module's *estimator* class (the CV
    wrapper refits the shifter), never its helpers: validation, block names and
    shared maths live in private modules below all estimators."""
    mods = _estimator_modules()
    assert {
        "skgap.transform._shift",
        "skgap.measure._cone_stats",
        "skgap.transform._shift_cv",
        "skgap.transform._align",
    } <= mods
    offences = []
    for mod in sorted(mods):
        for target, names in _imports(mod):
            if target in mods and target != mod:
                helpers = [n for n in names if not n[:1].isupper()]
                if helpers:
                    offences.append(f"{mod} imports {helpers} from {target}")
    assert not offences, offences
