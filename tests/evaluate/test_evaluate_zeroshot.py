import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import balanced_accuracy_score

from skgap._core._shift import shift_block
from skgap.evaluate import zero_shot_scores
from skgap.transform._shift import ModalityGapShifter


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


@pytest.fixture
def task():
    """Images near one of three class directions, three noisy prompts per class."""
    rng = np.random.default_rng(0)
    d = 12
    centers = _unit(rng.standard_normal((3, d)))
    y = rng.integers(0, 3, 150)
    V = centers[y] + 2.0 * rng.standard_normal((150, d)) / np.sqrt(d)
    prompts = centers[:, None, :] + 0.3 * rng.standard_normal((3, 3, d)) / np.sqrt(d)
    return V, y, prompts


def _manual(V, y, C):
    pred = np.argmax(_unit(V) @ _unit(C).T, axis=1)
    return np.mean(pred == y), balanced_accuracy_score(y, pred)


def test_scores_equal_the_cosine_argmax_with_prompt_ensembles(task):
    V, y, prompts = task
    pooled = _unit(_unit(prompts.reshape(9, -1)).reshape(3, 3, -1).mean(axis=1))
    acc, bacc = _manual(V, y, pooled)
    got = zero_shot_scores(V, y, prompts)
    assert got["accuracy"] == pytest.approx(acc)
    assert got["balanced_accuracy"] == pytest.approx(bacc)
    assert 0.6 < got["accuracy"] < 1.0


def test_dict_of_prompts_names_the_classes(task):
    V, y, prompts = task
    names = np.array(["effusion", "normal", "edema"])
    # Insertion order defines the rows, whatever the sorted order of the names.
    by_name = {names[k]: prompts[k] for k in range(3)}
    by_index = zero_shot_scores(V, y, prompts)
    assert zero_shot_scores(V, names[y], by_name) == pytest.approx(by_index)
    # A ragged list of prompts and explicit class names.
    ragged = [prompts[0], prompts[1][:1], prompts[2][:2]]
    got = zero_shot_scores(V, names[y], ragged, classes=names)
    pooled = np.stack([_unit(p).mean(axis=0) for p in ragged])
    assert got["accuracy"] == pytest.approx(_manual(V, y, pooled)[0])


def test_shifter_moves_images_and_class_embeddings(task):
    V, y, prompts = task
    rng = np.random.default_rng(1)
    pooled = _unit(_unit(prompts.reshape(9, -1)).reshape(3, 3, -1).mean(axis=1))
    # A paired set whose gap runs along class 0: shifting the class embeddings
    # turns the others away from it, which changes the predictions.
    T = V + 1.0 * pooled[0] + 0.1 * rng.standard_normal(V.shape)
    shifter = ModalityGapShifter(lam=0.8).fit(np.hstack([V, T]))
    V_s = shift_block(V, 0.8 * shifter.shift_vectors_[0])
    C_s = shift_block(pooled, 0.8 * shifter.shift_vectors_[1])
    acc, bacc = _manual(V_s, y, C_s)
    assert acc != _manual(V_s, y, pooled)[0]  # both moves matter here
    got = zero_shot_scores(V, y, prompts, shifter=shifter)
    assert got == {"accuracy": pytest.approx(acc), "balanced_accuracy": pytest.approx(bacc)}
    assert got != zero_shot_scores(V, y, prompts)


def test_aligner_maps_images_into_the_text_space(task):
    from skgap.transform._align import AnchorAffineAligner

    V, y, prompts = task
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    V_rot = V @ Q  # a vision-only encoder: the same content, rotated
    anchors = rng.standard_normal((80, 12))
    aligner = AnchorAffineAligner(kind="ortho", standardize=None).fit(
        np.hstack([anchors @ Q, anchors])
    )
    aligned = zero_shot_scores(V_rot, y, prompts, aligner=aligner)
    assert aligned["accuracy"] == pytest.approx(zero_shot_scores(V, y, prompts)["accuracy"])
    assert zero_shot_scores(V_rot, y, prompts)["accuracy"] < aligned["accuracy"] - 0.2
    # With a shifter, the aligner is applied first, in the shared space.
    shifter = ModalityGapShifter(lam=0.0).fit(np.hstack([V, V]))
    assert zero_shot_scores(V_rot, y, prompts, aligner=aligner, shifter=shifter)[
        "accuracy"
    ] == pytest.approx(aligned["accuracy"])


def test_errors(task):
    V, y, prompts = task
    with pytest.raises(ValueError, match="no class embedding"):
        zero_shot_scores(V, y + 5, prompts)
    with pytest.raises(ValueError, match="one class per image row"):
        zero_shot_scores(V, y[:-1], prompts)
    with pytest.raises(ValueError, match="name each of the 3 classes"):
        zero_shot_scores(V, y, prompts, classes=["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        zero_shot_scores(V, y, prompts, classes=[0, 0, 1])
    with pytest.raises(ValueError, match="at least two classes"):
        zero_shot_scores(V, np.zeros(150, dtype=int), prompts[:1])
    with pytest.raises(NotFittedError):
        zero_shot_scores(V, y, prompts, shifter=ModalityGapShifter())
    other = ModalityGapShifter().fit(np.random.default_rng(0).standard_normal((20, 8)))
    with pytest.raises(ValueError, match="4 dimensions"):
        zero_shot_scores(V, y, prompts, shifter=other)
    bad = V.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        zero_shot_scores(bad, y, prompts)
    with pytest.raises(ValueError, match="width"):
        zero_shot_scores(V[:, :10], y, prompts)
