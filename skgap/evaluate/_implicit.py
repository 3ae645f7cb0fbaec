r"""Probes on gap-shifted training rows that are never written out (private).

At archive scale (hundreds of thousands of pairs) the sweep's memory is the
shifted copy of the training rows: with the data itself (or its mapped pages)
that is already twice the data. For the default gap shift and scikit-learn's
``LogisticRegression(solver='lbfgs')`` -- the probe of
:func:`~skgap.evaluate.make_linear_probe` -- the shifted rows are not needed:
block :math:`m` of the shifted row :math:`i` is
:math:`z_{im} = \alpha_{im} x_{im} + \gamma_{im} s_m` with per-row scalars
(:mod:`skgap._probe`), so the probe trains on the raw rows ``X`` read in place.
The held-out rows get weight zero, which leaves scikit-learn's objective --
the weighted mean loss plus :math:`\lVert W \rVert^2 / (2 C \sum_i w_i)` --
exactly that of the training rows alone. The fitted model is a
``LogisticRegression`` with the solution's coefficients, scored like any other.
"""

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from .._probe import fit_shifted_logistic, fold_statistics, row_scalars

__all__ = ["ShiftedTrainingRows", "fits_in_place"]


def fits_in_place(probe):
    """Whether ``probe`` is plain lbfgs logistic regression, which trains in place.

    Subclasses do not qualify (they may override ``fit``), nor do other
    solvers, penalties, a warm start or a model without an intercept.
    """
    if type(probe) is not LogisticRegression:
        return False
    params = probe.get_params()
    return (
        params["solver"] == "lbfgs"
        and params["fit_intercept"]
        and not params["warm_start"]
        and params.get("l1_ratio") in (None, 0, 0.0)
        and params.get("penalty", "l2") in ("l2", "deprecated")
    )


class ShiftedTrainingRows:
    """The shifted training rows of one split and one lambda, kept implicit.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        All rows (a memmap is read in place, never copied).
    train : ndarray of int
        Indices of the training rows.
    shifter : ModalityGapShifter
        Fitted on the training rows.
    slices : sequence of slice
        Column block of each modality.
    """

    def __init__(self, X, train, shifter, slices):
        self.X, self.train, self.slices = X, train, tuple(slices)
        self.lam = float(shifter.lam)
        # One pass for the block norms, one for the products with the shifts;
        # the lambda only enters through the per-row scalars.
        stats = fold_statistics(X, self.slices, shifter.shift_vectors_)
        self.S = stats[2]
        self.alpha, self.gamma = row_scalars(X, self.slices, stats, self.lam)

    def fit(self, probe, columns, y):
        """Fit a clone of ``probe`` on ``columns`` of the shifted training rows.

        Parameters
        ----------
        probe : LogisticRegression
            Unfitted; :func:`fits_in_place` must hold.
        columns : slice
            ``slice(None)`` for every block, or the slice of one block.
        y : ndarray of shape (n_samples,)
            Labels of all rows (only the training rows are read).

        Returns
        -------
        model : LogisticRegression
            Fitted: equal, within the solver's tolerance, to ``probe`` fitted
            on the written-out shifted training rows.
        """
        blocks = [m for m, sl in enumerate(self.slices)
                  if columns == slice(None) or sl == columns]
        if len(blocks) == len(self.slices):
            X, slices, S = self.X, self.slices, self.S
        else:
            (m,) = blocks
            sl = self.slices[m]
            X = self.X[:, sl]  # a strided view: BLAS reads it in place
            slices = (slice(0, sl.stop - sl.start),)
            S = self.S[[m], sl]
        y_train = y[self.train]
        classes, y_enc_train = np.unique(y_train, return_inverse=True)
        if classes.size < 2:
            raise ValueError(  # scikit-learn's own message
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes[0]!r}"
            )
        params = probe.get_params()
        weights = np.ones(classes.size)
        if params["class_weight"] is not None:
            weights = compute_class_weight(params["class_weight"], classes=classes, y=y_train)
        n = self.X.shape[0]
        y_enc = np.zeros(n, dtype=np.intp)
        y_enc[self.train] = y_enc_train
        sample_weight = np.zeros(n)
        sample_weight[self.train] = weights[y_enc_train]
        coef, n_iter = fit_shifted_logistic(
            X, slices, S, self.alpha[:, blocks], self.gamma[:, blocks], y_enc, classes.size,
            sample_weight, C=params["C"], tol=params["tol"], max_iter=params["max_iter"],
        )
        model = clone(probe)
        model.classes_ = classes
        # In the data's dtype, as scikit-learn keeps them: float64 coefficients
        # would make every float32 prediction a float64 copy of its rows.
        model.coef_ = coef[:, :-1].astype(X.dtype)
        model.intercept_ = coef[:, -1].astype(X.dtype)
        model.n_features_in_ = X.shape[1]
        model.n_iter_ = np.array([n_iter], dtype=np.int32)
        return model
