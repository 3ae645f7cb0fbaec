"""The one registry of skgap's estimators for scikit-learn's estimator checks.

Every public estimator of skgap (a ``BaseEstimator`` subclass exported by
:mod:`skgap` or one of its public subpackages) is listed here once: either in
:data:`REGISTRY`, with the instances the checks run on, the layout of the
inputs it reads and the checks expected to fail (each with its reason), or in
:data:`UNCHECKED`, with the reason the checks cannot run on it at all.
``tests/test_common.py`` runs the checks on every registered instance and
fails when a public estimator is in neither list.

Expected failures are strict (``xfail(strict=True)``): one that starts
passing fails the suite, so each reason stays true.

Instances are built lazily (:meth:`Entry.cases`): the torch estimators are
only imported when torch is installed.
"""

from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skgap._testing import INTEGER_ZERO_ROW, fixed_width_columns, paired_columns, text_targets
from skgap.transform._align import IllPosedAlignmentWarning


@dataclass(frozen=True)
class Case:
    """One instance the checks run on, and the checks it is expected to fail.

    Parameters
    ----------
    estimator : estimator instance
    expected_failed_checks : dict of str to str
        ``{check_name: reason}``; each reason says why that check cannot pass.
    """

    estimator: object
    expected_failed_checks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A public estimator, its check instances and the inputs it reads.

    Parameters
    ----------
    name : str
        Public path of the class, e.g. ``'skgap.transform.ModalityCentering'``.
    cases : callable
        ``() -> list of Case``: the default instance and the non-default
        configurations whose code paths differ.
    layout : {'paired', 'fixed width', 'plain'}
        ``'paired'``: the checks' X is widened to ``[X | X[:, ::-1]]``;
        ``'fixed width'``: X's columns are repeated up to ``width(estimator)``;
        ``'plain'``: scikit-learn's own inputs (the estimator reads any width).
    width : callable, optional
        ``estimator -> int``, the width a ``'fixed width'`` estimator reads.
    target : callable, optional
        ``y -> y'`` for an estimator whose ``y`` is not a label (e.g.
        :func:`skgap._testing.text_targets`); None keeps the checks' ``y``.
    requires : tuple of str
        Optional modules the estimator needs (its checks are skipped without).
    ignore_warnings : tuple of Warning subclasses
        Warnings the checks provoke by design (few rows, few iterations) and
        that say nothing about the check.
    """

    name: str
    cases: Callable
    layout: str = "paired"
    width: Callable = None
    target: Callable = None
    requires: tuple = ()
    ignore_warnings: tuple = ()

    @property
    def available(self):
        for module in self.requires:
            try:
                import_module(module)
            except ImportError:
                return False
        return True

    @property
    def cls(self):
        module, _, name = self.name.rpartition(".")
        return getattr(import_module(module), name)

    def columns(self, estimator):
        """The column rule of :func:`skgap._testing.paired_check_inputs`, or None."""
        if self.layout == "paired":
            return paired_columns
        if self.layout == "fixed width":
            return fixed_width_columns(self.width(estimator))
        if self.layout == "plain":
            return None
        raise ValueError(f"{self.name}: unknown layout {self.layout!r}")


# -- reasons ---------------------------------------------------------------------

NOISE_REASON = (
    "fit_transform adds C3's training noise and transform does not (the TargetEncoder "
    "precedent), so fit_transform(X) != fit(X).transform(X) by design"
)

# class_embeddings fixes both the width of X (or the aligner's source width) and
# the number of classes of ZeroShotClassifier. The checks run with their X
# repeated cyclically to that width, so only the label sets they draw (1 to 4
# classes) and one check that builds X outside the tags hook stay out of reach.
ZS_LABELS = (
    "fits a binary and a 3-class problem in one check; the classes of a zero-shot "
    "classifier are the rows of class_embeddings, so one of the two cannot match"
)
ZS_ONE_LABEL = (
    "fits y with a single label and expects it always predicted; a zero-shot "
    "classifier keeps every class of class_embeddings (labels index its rows)"
)
ZS_FOUR_LABELS = (
    "fits y with 4 distinct labels while class_embeddings describes 3 classes: a "
    "ValueError naming class_embeddings, by design"
)
ZS_BLOBS = (
    "builds X with make_blobs(n_features=2) without the tags hook, so its width "
    "cannot be made that of class_embeddings (3): a ValueError naming "
    "class_embeddings, by design (the aligned instance, of source width 2, runs it)"
)
ZS_LABEL_FAILURES = {
    "check_dtype_object": ZS_FOUR_LABELS,
    "check_classifiers_one_label": ZS_ONE_LABEL,
    "check_classifiers_classes": ZS_LABELS,
    "check_classifiers_train": ZS_LABELS,
}

ON_THE_SPHERE = {"check_estimators_dtypes": INTEGER_ZERO_ROW}


# -- the cases of each estimator -----------------------------------------------


def _cone_stats():
    from skgap import ConeStats

    return [Case(ConeStats(), ON_THE_SPHERE)]


def _shifter():
    from skgap import ModalityGapShifter

    return [
        Case(ModalityGapShifter(), ON_THE_SPHERE),
        Case(ModalityGapShifter(lam=1.0, direction="unit"), ON_THE_SPHERE),
    ]


def _shifter_cv():
    from skgap import ModalityGapShifterCV

    return [Case(ModalityGapShifterCV(lams=[0.0, 0.5, 1.0], cv=3), ON_THE_SPHERE)]


def _centering():
    from skgap import ModalityCentering

    return [
        Case(ModalityCentering(), ON_THE_SPHERE),
        Case(ModalityCentering(alpha=0.3), ON_THE_SPHERE),
    ]


def _collapse_corrupt():
    from skgap import CollapseCorrupt

    noisy = ON_THE_SPHERE | {
        "check_transformer_general": NOISE_REASON,
        "check_transformer_data_not_an_array": NOISE_REASON,
    }
    return [Case(CollapseCorrupt(noise_scale=0.0), ON_THE_SPHERE), Case(CollapseCorrupt(), noisy)]


def _aligner():
    # Every check passes, check_estimators_dtypes included: the aligner does
    # not project rows onto the sphere, so integer rows of zeros are data.
    from skgap import AnchorAffineAligner

    return [
        Case(AnchorAffineAligner()),
        # n_anchors below the 10 rows that check_estimators_nan_inf and
        # check_fit2d_1feature fit on: n_anchors=15 made both checks fail on the
        # refusal to draw more anchors than rows (by design, tested in
        # test_align.py), so they never reached the NaN or one-feature inputs
        # they are about.
        Case(AnchorAffineAligner(kind="affine", standardize=None, n_anchors=8, random_state=0)),
        Case(AnchorAffineAligner(kind="lortho", standardize="isotropic", alpha=0.1)),
        Case(AnchorAffineAligner(kind="linear", standardize="center")),
    ]


def _zero_shot():
    from sklearn.frozen import FrozenEstimator

    from skgap import AnchorAffineAligner, ZeroShotClassifier

    plain = ZeroShotClassifier(np.eye(3) + 0.1)
    aligned = ZeroShotClassifier(
        np.eye(3) + 0.1,
        aligner=FrozenEstimator(
            AnchorAffineAligner(kind="affine", modality_dims=(2, 3)).fit(
                np.random.default_rng(0).standard_normal((20, 5))
            )
        ),
    )
    plain_failures = ZS_LABEL_FAILURES | ON_THE_SPHERE | {
        "check_decision_proba_consistency": ZS_BLOBS,
    }
    # The aligner maps integer rows of zeros to its intercept, which is not
    # zero, so check_estimators_dtypes passes for the aligned instance.
    return [Case(plain, plain_failures), Case(aligned, ZS_LABEL_FAILURES)]


def _zero_shot_width(estimator):
    # The width of the rows it classifies: the aligner's source block, or the
    # class embeddings' own width.
    return 3 if estimator.aligner is None else 2


def _late_fusion():
    # Every check passes on paired inputs; check_supervised_y_2d needs the
    # DataConversionWarning of a flattened column-vector y.
    from sklearn.naive_bayes import GaussianNB

    from skgap import LateFusionClassifier

    return [Case(LateFusionClassifier()), Case(LateFusionClassifier(GaussianNB(), weights=[2, 1]))]


def _paper_probe():
    # It trains to the accuracy the checks ask for (check_classifiers_train included).
    from skgap.evaluate import PaperProbe

    return [Case(PaperProbe())]


CAPTION_OF_OWN_ROW = (
    "predicts on the rows it was fitted on: the captioner refuses query rows that are "
    "pairs of its bank (their own texts would be retrieved), a ValueError by design"
)


def _captioner():
    # n_candidates=5: some checks set n_clusters to 1 or 2, and by default the
    # captioner then retrieves 20 * n_clusters texts, more than the 10 or 20
    # rows those checks fit on (a ValueError by design), so they never reached
    # the clustered retrieval they exercise.
    from skgap import RetrievalCaptioner

    own_rows = dict.fromkeys(
        [
            "check_fit_score_takes_y",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_dict_unchanged",
        ],
        CAPTION_OF_OWN_ROW,
    )
    expected = own_rows | {
        "check_n_features_in_after_fitting": (
            "predict takes paired rows or image rows of width d_image, so a wrong width gets "
            "a message naming both widths, not the one-width message the check matches"
        ),
        "check_fit_idempotent": (
            "compares two fits' predictions with assert_allclose, which cannot subtract "
            "the captions (texts) a captioner predicts"
        ),
    }
    return [Case(RetrievalCaptioner(n_candidates=5), expected)]


def _learned_probe():
    from skgap.train import LearnedGapProbe

    return [Case(LearnedGapProbe(max_iter=20, random_state=0), ON_THE_SPHERE)]


def _adapter():
    from skgap.train import GapClosingAdapter

    return [Case(GapClosingAdapter(epochs=2, batch_size=16, random_state=0), ON_THE_SPHERE)]


def _registry():
    return [
        Entry("skgap.ConeStats", _cone_stats),
        Entry("skgap.ModalityGapShifter", _shifter),
        # Three lambdas on 3 folds of the checks' few rows: the logistic
        # solver stops at max_iter there, which is what its warning says.
        Entry("skgap.ModalityGapShifterCV", _shifter_cv, ignore_warnings=(ConvergenceWarning,)),
        Entry("skgap.ModalityCentering", _centering),
        Entry("skgap.CollapseCorrupt", _collapse_corrupt),
        # The checks fit on few rows: the aligner warns that the map is ill-posed.
        Entry("skgap.AnchorAffineAligner", _aligner, ignore_warnings=(IllPosedAlignmentWarning,)),
        Entry("skgap.ZeroShotClassifier", _zero_shot, layout="fixed width", width=_zero_shot_width),
        Entry("skgap.LateFusionClassifier", _late_fusion),
        # Its y is the bank's texts: each label of a check's y becomes a text.
        Entry("skgap.RetrievalCaptioner", _captioner, target=text_targets),
        # A probe of any features (the paired layout is not read), and its
        # training warnings (few rows, no improvement) are UserWarnings.
        Entry("skgap.evaluate.PaperProbe", _paper_probe, layout="plain",
              ignore_warnings=(UserWarning,)),
        Entry("skgap.train.LearnedGapProbe", _learned_probe, requires=("torch",)),
        Entry("skgap.train.GapClosingAdapter", _adapter, requires=("torch",)),
    ]


#: Every estimator the checks run on.
REGISTRY = _registry()

#: Public estimators the checks cannot run on, each with the reason.
UNCHECKED = {
    "skgap.encode.OpenCLIPEncoder": (
        "transforms images and texts (a table of pairs), not a numeric matrix, and "
        "needs model weights; clone and pickle are tested in tests/encode/test_encode.py"
    ),
    "skgap.encode.TransformersEncoder": (
        "transforms images and texts (a table of pairs), not a numeric matrix, and "
        "needs model weights; pickle is tested in tests/encode/test_encode_transformers.py"
    ),
    "skgap.train.ExpertCLIPTrainer": (
        "fine-tunes an open_clip model on images, texts and gaze heatmaps, not a numeric "
        "matrix, and needs model weights"
    ),
}


def entry_of(estimator):
    """The registry entry of ``estimator``'s class."""
    for entry in REGISTRY:
        if entry.available and type(estimator) is entry.cls:
            return entry
    raise LookupError(f"{type(estimator).__name__} is not in the estimator registry")


def instances_of(name):
    """The check instances of the registered estimator ``name`` (its public path)."""
    (entry,) = [entry for entry in REGISTRY if entry.name == name]
    return [case.estimator for case in entry.cases()]
