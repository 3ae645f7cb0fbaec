"""Cost of ``@validate_params`` on skgap's public functions, and why loops use twins.

scikit-learn's ``validate_params`` binds the call's signature and checks every
constraint on each call. Public functions pay it once per user call; skgap's
own loops (a sweep scores every split and value, a training loop computes the
losses every step) call the unvalidated twins (``_binary_auc``,
``_modality_gap``, ``_clip_loss``, ... = ``f.__wrapped__``) instead.

Prints, per function, microseconds per call of the validated function and of
its twin on small inputs (where the overhead shows most), and the time of a
small ``gap_sweep`` with its internal calls switched to the validated
functions against the sweep as shipped (twins).

    python benchmarks/bench_validation.py            # a few minutes on a busy 2-core machine
    python benchmarks/bench_validation.py --smoke
"""

import argparse
import timeit
import warnings

import numpy as np

from _util import interleaved, ratio_line

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import _auc, _sweep, _tasks, binary_auc, gap_sweep, multiclass_auc
from skgap.measure import _cone, mean_resultant_length, modality_gap


def per_call(fn, number):
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    number = 20 if args.smoke else 300

    X, y = make_paired_embeddings(40, 8, random_state=0)
    V, T = X[:, :8], X[:, 8:]
    s = X[:, 0] - X[:, 8]
    P = np.random.default_rng(0).dirichlet(np.ones(2), 40)
    pairs = [
        ("binary_auc", lambda: binary_auc(y, s), lambda: _auc._binary_auc(y, s)),
        ("multiclass_auc", lambda: multiclass_auc(y, P), lambda: _auc._multiclass_auc(y, P)),
        ("modality_gap", lambda: modality_gap(V, T), lambda: _cone._modality_gap(V, T)),
        ("mean_resultant_length", lambda: mean_resultant_length(V),
         lambda: _cone._mean_resultant_length(V)),
    ]
    try:
        import torch

        from skgap.train import losses

        g = torch.Generator().manual_seed(0)
        A = torch.nn.functional.normalize(torch.randn(64, 16, generator=g), dim=1)
        B = torch.nn.functional.normalize(torch.randn(64, 16, generator=g), dim=1)
        pairs.append(("train.clip_loss (64 x 16)", lambda: losses.clip_loss(A, B),
                      lambda: losses._clip_loss(A, B)))
    except ImportError:
        pass
    print(f"{'function':<28s} {'validated us/call':>18s} {'twin us/call':>13s} {'overhead us':>12s}")
    for name, public, twin in pairs:
        a, b = per_call(public, number), per_call(twin, number)
        print(f"{name:<28s} {a:18.1f} {b:13.1f} {a - b:12.1f}")

    # A sweep as shipped (twins inside) against the same sweep calling the
    # validated functions at every split and value.
    n = 300 if args.smoke else 2000
    Xs, ys = make_paired_embeddings(n, 16, random_state=0)
    kwargs = dict(lams=np.linspace(0, 1, 6), n_seeds=3, tasks=("fusion", "retrieval"),
                  as_frame=False, n_jobs=1)

    def shipped():
        return gap_sweep(Xs, ys, **kwargs)

    def validated():
        saved = (_sweep.modality_gap, _sweep.mean_resultant_length, _tasks.binary_auc,
                 _tasks.continuous_scores, _tasks.retrieval_recall_at_k)
        from skgap.evaluate import continuous_scores
        from skgap.measure import retrieval_recall_at_k

        _sweep.modality_gap, _sweep.mean_resultant_length = modality_gap, mean_resultant_length
        _tasks.binary_auc, _tasks.continuous_scores = binary_auc, continuous_scores
        _tasks.retrieval_recall_at_k = retrieval_recall_at_k
        try:
            return gap_sweep(Xs, ys, **kwargs)
        finally:
            (_sweep.modality_gap, _sweep.mean_resultant_length, _tasks.binary_auc,
             _tasks.continuous_scores, _tasks.retrieval_recall_at_k) = saved

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = interleaved({"sweep, twins (shipped)": shipped,
                             "sweep, validated calls": validated},
                            repeat=2 if args.smoke else 5)
    print(f"gap_sweep of {n} rows, 6 lambdas x 3 splits, fusion + retrieval:")
    print(ratio_line("sweep, twins (shipped)", times, "sweep, twins (shipped)"))
    print(ratio_line("sweep, validated calls", times, "sweep, twins (shipped)"))


if __name__ == "__main__":
    main()
