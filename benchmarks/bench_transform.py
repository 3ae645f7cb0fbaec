"""Transforms at memory speed: ModalityGapShifter.transform and ConeStats.fit.

Baselines, measured in the same run:

- ``np.copy(X)``: one read and one write of ``X`` into a fresh array, the
  physical floor of any transform that returns a new array (target for the
  shifter: within 1.3x);
- ``X.sum(axis=0)``: one read of ``X``, the floor of any statistic (target for
  ``ConeStats.fit``: within 1.5x; ``k=2`` times its one fused pass alone, the
  other lines add the O(k^2 d) uniformity of the row sample);
- the unfused NumPy reference (normalise, add the shift, renormalise, each a
  pass with its temporaries), to show what fusion buys.

Every candidate is also timed under ``threadpool_limits(1)`` (its fused
passes then run on one thread), and the default / one-thread ratio printed: the
default must not be the slower one.

Peak extra memory is read with tracemalloc (NumPy reports its allocations to
it): the target is at most one output array.

Usage::

    python benchmarks/bench_transform.py              # 200k x (2 x 512) float32
    python benchmarks/bench_transform.py --n 50000 --repeat 3
    python benchmarks/bench_transform.py --smoke      # tiny, for CI
    python benchmarks/bench_transform.py --before /tmp/old   # also the code of /tmp/old/skgap_old
"""

import argparse

import numpy as np
from _util import header, interleaved, peak_traced, ratio_line
from threadpoolctl import threadpool_limits

from skgap.datasets import make_paired_embeddings
from skgap.measure._cone_stats import ConeStats
from skgap.transform._shift import ModalityGapShifter


def unfused_reference(X, d, shifts):
    """The textbook transform: three passes, each with a temporary."""
    out = np.empty_like(X)
    for m, s in enumerate(shifts):
        B = X[:, m * d : (m + 1) * d]
        U = B / np.linalg.norm(B, axis=1, keepdims=True) + s.astype(X.dtype)
        out[:, m * d : (m + 1) * d] = U / np.linalg.norm(U, axis=1, keepdims=True)
    return out


def _before_candidates(folder, X):
    """The transform and ConeStats of the package copy ``folder/skgap_old``."""
    import sys

    sys.path.insert(0, folder)
    from skgap_old.shift import ModalityGapShifter as OldShifter
    from skgap_old.stats import ConeStats as OldConeStats

    old = OldShifter(lam=1.0).fit(X)
    return {
        "shifter.transform(X)": lambda: old.transform(X),
        "ConeStats(k=1000).fit": lambda: OldConeStats(
            max_uniformity_samples=1000, random_state=0
        ).fit(X),
        "ConeStats().fit [k=5000]": lambda: OldConeStats(random_state=0).fit(X),
    }


def one_thread(fn):
    """``fn`` run under ``threadpool_limits(1)``."""

    def run():
        with threadpool_limits(1):
            return fn()

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="rows (pairs)")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="a folder holding an older copy of the package renamed skgap_old "
        "(git archive <commit> skgap | tar -x -C DIR && mv DIR/skgap DIR/skgap_old): "
        "its transform and ConeStats are timed in the same rounds, after / before printed",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.d, args.repeat = 2000, 16, 2

    X, _ = make_paired_embeddings(args.n, args.d, preset="coco-clip", random_state=0)
    # Raw encoder outputs are not unit rows: scale them so that the
    # normalisation is real work, as in practice.
    X *= np.random.default_rng(0).uniform(5, 15, size=(args.n, 1)).astype(np.float32)
    header(
        "ModalityGapShifter.transform and ConeStats.fit",
        n=args.n, d=args.d, dtype=X.dtype, MiB=round(X.nbytes / 2**20),
    )
    shifter = ModalityGapShifter(lam=1.0).fit(X)
    shifts = shifter.lam * shifter.shift_vectors_

    def cone(k):
        return lambda: ConeStats(max_uniformity_samples=k, random_state=0).fit(X)

    candidates = {
        "shifter.transform(X)": lambda: shifter.transform(X),
        # k = 2: the one fused pass over X (and a two-row sample).
        "ConeStats(k=2).fit [one pass]": cone(2),
        "ConeStats(k=1000).fit": cone(1000),
        "ConeStats().fit [k=5000]": cone(5000),
    }
    fns = {"np.copy(X)": lambda: np.copy(X), "X.sum(axis=0)": lambda: X.sum(axis=0)}
    for name, fn in candidates.items():
        fns[name] = fn
        # The same call with every BLAS pool (and so the fused passes) on one thread.
        fns[name + " 1thr"] = one_thread(fn)
    before = _before_candidates(args.before, X) if args.before else {}
    for name, fn in before.items():
        fns["before: " + name] = fn
        fns["before: " + name + " 1thr"] = one_thread(fn)
    fns["unfused reference"] = lambda: unfused_reference(X, args.d, shifts)
    times = interleaved(fns, repeat=args.repeat)
    for base in ("np.copy(X)", "X.sum(axis=0)"):
        print(f"{base:<34s} {min(times[base]):8.4f} s   (baseline)")
    def baseline(name):
        """A transform against a copy, a statistic against one read."""
        return "np.copy(X)" if name.startswith("shifter") else "X.sum(axis=0)"

    for name in candidates:
        base = baseline(name)
        print(ratio_line(name, times, base))
        print(ratio_line(name + " 1thr", times, base))
        print(ratio_line(name, times, name + " 1thr"))
    print(ratio_line("unfused reference", times, "np.copy(X)"))
    for name in before:
        for suffix in ("", " 1thr"):
            print(ratio_line("before: " + name + suffix, times, baseline(name)))
            print(ratio_line(name + suffix, times, "before: " + name + suffix))

    peak, out_bytes = peak_traced(lambda: shifter.transform(X))
    print(
        f"shifter.transform peak traced memory: {peak / 2**20:.1f} MiB = "
        f"{peak / out_bytes:.3f} x the output ({out_bytes / 2**20:.1f} MiB)"
    )
    peak, out_bytes = peak_traced(lambda: unfused_reference(X, args.d, shifts))
    print(
        f"unfused reference peak traced memory: {peak / 2**20:.1f} MiB = "
        f"{peak / out_bytes:.3f} x the output"
    )
    peak, _ = peak_traced(lambda: ConeStats(max_uniformity_samples=1000).fit(X))
    print(
        f"ConeStats(k=1000).fit peak traced memory: {peak / 2**20:.1f} MiB "
        f"({peak / X.nbytes:.3f} x X)"
    )


if __name__ == "__main__":
    main()
