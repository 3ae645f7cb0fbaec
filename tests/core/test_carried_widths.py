"""Unequal block widths travel with the array from pair(): never split down the middle
(skgap/_core/_layout.py PairedArray, _validation.py record_layout)."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline

from skgap import AnchorAffineAligner, ConeStats, ModalityGapShifter, pair, unpair


@pytest.fixture
def unequal():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(60, 8))
    T = rng.normal(size=(60, 6))
    y = (V[:, 0] + T[:, 0] > 0).astype(int)
    return V, T, y


def test_pair_of_unequal_widths_carries_them(unequal):
    V, T, _ = unequal
    X = pair(V, T)
    assert X.shape == (60, 14) and X.modality_dims == (8, 6)
    assert X[10:20].modality_dims == (8, 6)           # rows: a split keeps them
    assert X.take([0, 5, 7], axis=0).modality_dims == (8, 6)
    assert X[:, :8].modality_dims is None             # columns: no longer those blocks
    assert pickle.loads(pickle.dumps(X)).modality_dims == (8, 6)
    a, b = unpair(X)
    assert a.shape[1] == 8 and b.shape[1] == 6
    assert type(pair(V, V)) is np.ndarray             # equal widths: a plain array


def test_estimators_read_the_widths_or_refuse(unequal):
    V, T, _ = unequal
    X = pair(V, T)
    assert AnchorAffineAligner().fit(X).modality_dims_ == (8, 6)
    for estimator in (ConeStats(), ModalityGapShifter()):
        with pytest.raises(ValueError, match=r"modality_dims=\(8, 6\)"):
            estimator.fit(X)
    with pytest.raises(ValueError, match=r"widths \(8, 6\), but AnchorAffineAligner has "
                                         r"modality_dims=\(7, 7\)"):
        AnchorAffineAligner(modality_dims=(7, 7)).fit(X)


def test_widths_travel_through_grid_search_and_pipeline(unequal):
    V, T, y = unequal
    X = pair(V, T)
    search = GridSearchCV(
        Pipeline([("align", AnchorAffineAligner()), ("clf", LogisticRegression())]),
        {"align__alpha": [0.0, 0.5]}, cv=3,
    ).fit(X, y)
    assert search.best_estimator_.named_steps["align"].modality_dims_ == (8, 6)
    # Each fold's fit sees the widths too (its rows are X[train]).
    folds = cross_validate(search.best_estimator_, X, y, cv=3, return_estimator=True)
    assert [e.named_steps["align"].modality_dims_ for e in folds["estimator"]] == [(8, 6)] * 3
