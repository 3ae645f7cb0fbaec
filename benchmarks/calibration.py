"""How often the sweep's verdicts are wrong when nothing can help, and right when something does.

Null simulation: labels drawn independently of the embeddings (three
classes, uniformly at random), so no lambda can change any label-based score
in expectation. Each repetition runs ``gap_sweep`` (fusion, zero-shot and
clustering tasks) and ``summarize_sweep`` with its defaults, on

- synthetic pairs (``make_paired_embeddings``, a new draw per repetition), and
- the shared real CLIP pairs of 500 COCO images
  (``../shared/data/coco-clip-vitb16-500``; a random subset of rows per
  repetition; skipped when absent),

and records, per task and metric:

- ``verdict@1``: the default verdict at lambda = 1 is not "no evidence"
  (the per-lambda false-verdict rate; nominal 5%);
- ``plain t@1``: the same with the uncorrected paired t-interval
  (``test_train_ratio=0``), for comparison;
- ``any lambda``: some lambda != 0 gets a verdict other than "no evidence"
  (per-lambda intervals, no family-wise control);
- ``family-wise``: some lambda != 0 has a Holm-adjusted p-value below 0.05;
- ``default moves``: the default selection ('holm_one_se') leaves lambda = 0;
- ``one-SE moves``: the classic one-SE rule (``select='one_se'``) leaves it;
- the mean change at lambda = 1 (clustering: should be 0 under the null).

Every rate comes with its exact binomial (Clopper-Pearson) 95% interval.
Two power checks plant an effect and report how often the default summary
says "helps" at lambda = 1 and how often the default selection moves off 0:

- ``power``: a small effect on small data -- synthetic pairs whose classes
  are visible to both modalities (``class_sep=0.8``, three classes, ``--n``
  pairs), where closing the gap lets k-means find the classes instead of the
  modalities (clustering ARI +0.14 on average);
- ``cifar``: effects of the size measured on real CLIP features of CIFAR-10
  (zero-shot accuracy about +0.14, clustering ARI about +0.35 at lambda = 1),
  planted in 2,000 synthetic pairs of ten classes, swept with every default
  of ``gap_sweep`` (eleven lambdas, five splits) on the zero-shot and
  clustering tasks. Its texts carry a class-specific offset along the gap
  direction (class prompts that sit nearer to or farther from the image
  cone), which biases nearest-prototype zero-shot towards some classes until
  the shift centres the two modalities.

Run ``python benchmarks/calibration.py`` (the full run of the user guide) or
``--smoke`` (one repetition each). Each repetition's record is
appended to ``--records`` (JSON lines), so a long run can be read while it
goes and continued with ``--resume``.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from skgap.datasets import make_paired_embeddings
from skgap.evaluate import gap_sweep, summarize_sweep

COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-clip-vitb16-500"
TASKS = ("fusion", "zeroshot", "clustering")
#: Scores that do not read the labels: a change there is real, not a false verdict.
NOT_LABEL_BASED = ("modality_ARI",)
N_CLASSES = 3
#: The CIFAR-10-style planted effect: pairs, classes, class separation, and the
#: largest class offset of the texts along the gap direction.
CIFAR = {"n": 2000, "classes": 10, "class_sep": 1.6, "offset": 0.095}
CIFAR_TASKS = ("zeroshot", "clustering")


def _coco():
    path = COCO / "features_clip.npy"
    if not path.exists():
        return None
    F = np.load(path)
    return np.hstack([F[0], F[1]]).astype(np.float32)


def _cifar_style(rep, n):
    """Ten classes whose texts sit at class-specific offsets along the gap direction."""
    d = 32
    X, y = make_paired_embeddings(n, d, n_classes=CIFAR["classes"],
                                  class_sep=CIFAR["class_sep"], preset="coco-clip",
                                  random_state=rep)
    V, T = X[:, :d], X[:, d:]
    g = T.mean(axis=0) - V.mean(axis=0)
    g /= np.linalg.norm(g)
    rng = np.random.default_rng(30_000 + rep)
    offsets = rng.permutation(np.linspace(-CIFAR["offset"], CIFAR["offset"], CIFAR["classes"]))
    T = T + offsets[y][:, None] * g
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    return np.hstack([V, T]).astype(np.float32), y


def _data(kind, rep, n, coco):
    """``(X, y)`` of one repetition: ``y`` random (null) or planted (power)."""
    if kind == "cifar":
        return _cifar_style(rep, n)
    rng = np.random.default_rng(10_000 * ("synthetic", "coco", "power").index(kind) + rep)
    if kind == "synthetic":
        X, _ = make_paired_embeddings(n, 16, random_state=rep)
    elif kind == "coco":
        X = coco[np.sort(rng.choice(coco.shape[0], size=min(n, coco.shape[0]), replace=False))]
    else:
        X, y = make_paired_embeddings(n, 16, n_classes=N_CLASSES, class_sep=0.8,
                                      random_state=rep)
        return X, y
    return X, rng.integers(0, N_CLASSES, size=X.shape[0])


def _record(kind, rep, args, coco):
    if kind == "cifar":
        # Every default of gap_sweep: the power a user gets without asking for more.
        X, y = _data(kind, rep, args.cifar_n, coco)
        sweep = {"tasks": CIFAR_TASKS}
    else:
        X, y = _data(kind, rep, args.n, coco)
        sweep = {"tasks": TASKS, "lams": args.lams, "n_seeds": args.seeds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = gap_sweep(X, y, random_state=rep, as_frame=False, **sweep)
        default = summarize_sweep(table, as_frame=False)
        plain = summarize_sweep(table, test_train_ratio=0.0, as_frame=False)
        one_se = summarize_sweep(table, select="one_se", as_frame=False)
    out = {"kind": kind, "rep": rep, "n": int(X.shape[0]), "metrics": {}}
    for key in dict.fromkeys(zip(default["task"].tolist(), default["metric"].tolist())):
        rows = (default["task"] == key[0]) & (default["metric"] == key[1])
        at1 = rows & (default["lam"] == 1.0)
        moved = rows & (default["lam"] != 0.0)
        out["metrics"]["/".join(key)] = {
            "verdict@1": bool((default["verdict"][at1] != "no evidence").any()),
            "helps@1": bool((default["verdict"][at1] == "helps").any()),
            "plain t@1": bool((plain["verdict"][at1] != "no evidence").any()),
            "any lambda": bool((default["verdict"][moved] != "no evidence").any()),
            "family-wise": bool((default["p_holm"][moved] < 0.05).any()),
            "default moves": bool(default["selected"][moved].any()),
            "one-SE moves": bool(one_se["selected"][moved].any()),
            "diff@1": float(default["diff"][at1][0]),
        }
    return out


def _rate(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{100 * k / n:5.1f}% [{100 * ci.low:4.1f}, {100 * ci.high:4.1f}]"


COLUMNS = ("verdict@1", "plain t@1", "any lambda", "family-wise", "default moves",
           "one-SE moves")


def report(records, header):
    """Print the rates of each (kind, task/metric) with Clopper-Pearson intervals."""
    print(header)
    for kind in ("synthetic", "coco"):
        recs = [r for r in records if r["kind"] == kind]
        if not recs:
            continue
        print(f"\nnull, {kind}: {len(recs)} repetitions; rate [exact 95% CI]")
        print(f"{'task/metric':<22s}" + "".join(f"{c:>22s}" for c in COLUMNS)
              + f"{'mean change @1':>20s}")
        for name in recs[0]["metrics"]:
            if name.split("/")[1] in NOT_LABEL_BASED:
                continue
            vals = [r["metrics"][name] for r in recs]
            cells = "".join(f"{_rate(sum(v[c] for v in vals), len(vals)):>22s}" for c in COLUMNS)
            diffs = np.array([v["diff@1"] for v in vals])
            se = diffs.std(ddof=1) / np.sqrt(diffs.size) if diffs.size > 1 else np.nan
            print(f"{name:<22s}{cells}{diffs.mean():+10.4f} ± {1.96 * se:.4f}")
    recs = [r for r in records if r["kind"] == "cifar"]
    if recs:
        sizes = sorted({r["n"] for r in recs})
        print(f"\npower, CIFAR-10-style effect ({'/'.join(map(str, sizes))} pairs, "
              f"{CIFAR['classes']} classes, "
              f"gap_sweep defaults: 11 lambdas, 5 splits): {len(recs)} repetitions")
        for name in ("zeroshot/accuracy", "clustering/ARI", "clustering/AMI"):
            vals = [r["metrics"][name] for r in recs]
            diffs = np.mean([v["diff@1"] for v in vals])
            print(f"{name:<22s} helps@1 {_rate(sum(v['helps@1'] for v in vals), len(vals))}"
                  f"   default moves {_rate(sum(v['default moves'] for v in vals), len(vals))}"
                  f"   mean change @1 {diffs:+.3f}")
    recs = [r for r in records if r["kind"] == "power"]
    if recs:
        print(f"\npower, planted effect (class_sep=0.8): {len(recs)} repetitions")
        for name in ("clustering/ARI", "clustering/AMI"):
            vals = [r["metrics"][name] for r in recs]
            diffs = np.mean([v["diff@1"] for v in vals])
            print(f"{name:<22s} helps@1 {_rate(sum(v['helps@1'] for v in vals), len(vals))}"
                  f"   default moves {_rate(sum(v['default moves'] for v in vals), len(vals))}"
                  f"   mean change @1 {diffs:+.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="one repetition of each, small data")
    p.add_argument("--reps", type=int, default=300, help="null repetitions per data set")
    p.add_argument("--power-reps", type=int, default=50)
    p.add_argument("--cifar-reps", type=int, default=100,
                   help="repetitions of the CIFAR-10-style power check")
    p.add_argument("--cifar-n", type=int, default=CIFAR["n"],
                   help="pairs per CIFAR-10-style repetition")
    p.add_argument("--n", type=int, default=300, help="pairs per repetition")
    p.add_argument("--lams", default="0,0.2,0.4,0.6,0.8,1",
                   help="comma-separated lambda grid (must hold 0 and 1)")
    p.add_argument("--seeds", type=int, default=5, help="random splits per sweep")
    p.add_argument("--kinds", default="synthetic,coco,power,cifar")
    p.add_argument("--records", default=None, help="JSON-lines file of the records")
    p.add_argument("--resume", action="store_true", help="skip repetitions already recorded")
    p.add_argument("--start", type=int, default=0,
                   help="first repetition (to share a run between processes)")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    args.lams = [float(v) for v in args.lams.split(",")]
    if 0.0 not in args.lams or 1.0 not in args.lams:
        p.error("--lams must hold 0 and 1")
    if args.smoke:
        args.reps, args.power_reps, args.cifar_reps, args.n, args.cifar_n = 1, 1, 1, 100, 300
    coco = _coco()
    kinds = [k for k in args.kinds.split(",") if k != "coco" or coco is not None]
    if "coco" in args.kinds.split(",") and coco is None:
        print(f"(no COCO pairs at {COCO}: the real-data null is skipped)")
    path = Path(args.records) if args.records else None
    records = []
    if path is not None and path.exists() and (args.resume or args.report_only):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        # Several processes' records appended to one file: each repetition once.
        records = list({(r["kind"], r["rep"]): r for r in reversed(records)}.values())[::-1]
    header = (f"gap_sweep(n={args.n}, lams={args.lams}, n_seeds={args.seeds}, tasks={TASKS}) "
              f"+ summarize_sweep defaults; {N_CLASSES} random classes under the null")
    if not args.report_only:
        done = {(r["kind"], r["rep"]) for r in records}
        start = time.perf_counter()
        for kind in kinds:
            reps = {"power": args.power_reps, "cifar": args.cifar_reps}.get(kind, args.reps)
            for rep in range(args.start, reps):
                if (kind, rep) in done:
                    continue
                rec = _record(kind, rep, args, coco)
                records.append(rec)
                if path is not None:
                    with path.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
        print(f"({time.perf_counter() - start:.0f} s)")
    report(records, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
