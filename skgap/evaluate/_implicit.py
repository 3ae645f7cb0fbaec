r"""Probes on gap-shifted training rows that are never written out (private).

At archive scale (hundreds of thousands of pairs) the sweep's memory is the
shifted copy of the training rows: with the data itself (or its mapped pages)
that is already twice the data. For the default gap shift and scikit-learn's
``LogisticRegression(solver='lbfgs')`` -- the probe of
:func:`~skgap.evaluate.make_linear_probe` -- the shifted rows are not needed:
block :math:`m` of the shifted row :math:`i` is
:math:`z_{im} = \alpha_{im} x_{im} + \gamma_{im} s_m` with per-row scalars
(:mod:`skgap.transform._implicit`), so the probe trains on the raw rows of ``X``. A
memory-mapped ``X`` is read in place: the held-out rows get weight zero, which
leaves scikit-learn's objective -- the weighted mean loss plus
:math:`\lVert W \rVert^2 / (2 C \sum_i w_i)` -- exactly that of the
training rows alone. The fit follows scikit-learn's own L-BFGS path
(:func:`skgap.transform._solver.fit_logistic_regression`); the fitted model is a
``LogisticRegression`` scored like any other.
"""

from sklearn.linear_model import LogisticRegression

from ..transform._implicit import block_norms, fold_statistics
from ..transform._solver import fit_logistic_regression

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
    X : ndarray of shape (n_rows, n_features)
        The rows the probe reads: all rows of a memory-mapped archive (read in
        place), or a copy of the training rows.
    rows : ndarray of int or None
        The training rows of ``X``; the others get weight zero (the same
        objective). ``None``: every row of ``X`` is a training row.
    shifter : ModalityGapShifter
        Fitted on the training rows.
    slices : sequence of slice
        Column block of each modality.
    norms : ndarray of shape (n_rows, n_modalities), optional
        Block norms of the rows of ``X`` (:func:`skgap.transform._implicit.block_norms`),
        when the caller has them: they depend on neither the split nor the
        lambda. ``None``: computed here, once for every probe of this split
        and lambda.
    """

    def __init__(self, X, rows, shifter, slices, norms=None):
        self.X, self.rows, self.slices = X, rows, tuple(slices)
        self.shifts, self.lam = shifter.shift_vectors_, float(shifter.lam)
        self.norms = block_norms(self.X, self.slices) if norms is None else norms

    def fit(self, probe, columns, y, threads=1):
        """Fit a clone of ``probe`` on ``columns`` of the shifted training rows.

        Parameters
        ----------
        probe : LogisticRegression
            Unfitted; :func:`fits_in_place` must hold.
        columns : slice
            ``slice(None)`` for every block, or the slice of one block.
        y : ndarray of shape (n_rows,)
            Labels of the rows of ``X`` (only the training rows are read).
        threads : int, default=1
            Threads sharing each solver evaluation (the result does not
            depend on them).

        Returns
        -------
        model : LogisticRegression
            Fitted: ``probe``'s own L-BFGS path from zero on the same
            objective, so equal up to rounding to ``probe`` fitted on the
            written-out shifted training rows
            (:func:`skgap.transform._solver.fit_logistic_regression`). Not
            preconditioned: the sweep's scores stay those of scikit-learn's
            fit at the probe's ``tol``.
        """
        blocks = [m for m, sl in enumerate(self.slices)
                  if columns == slice(None) or sl == columns]
        if len(blocks) == len(self.slices):
            X, slices = self.X, self.slices
        else:
            sl = self.slices[blocks[0]]
            X = self.X[:, sl]  # a strided view: BLAS reads it in place
            slices = (slice(0, sl.stop - sl.start),)
        stats = fold_statistics(X, slices, self.shifts[blocks], self.norms[:, blocks])
        return fit_logistic_regression(
            probe.get_params(), X, y, slices, stats, self.lam, rows=self.rows,
            precondition=False, threads=threads,
        )
