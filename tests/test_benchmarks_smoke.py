"""Each benchmark script runs at its --smoke size and prints its ratio.

Timing figures are not checked (machines are noisy); only that every script
runs to the end and reports what it measures.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SCRIPTS = {
    "bench_transform.py": ["of np.copy(X)", "of X.sum(axis=0)", "x the output"],
    "calibration.py": ["null, synthetic", "default moves", "power, planted effect",
                       "power, CIFAR-10-style"],
    "bench_lambda_search.py": ["speed-up", "selected lambda", "lambda target met"],
    "bench_streaming.py": ["of the read pass", "peak RSS"],
    "bench_array_api.py": ["shifter.transform(X)"],
    "bench_archive.py": ["gap_sweep", "ModalityGapShifterCV", "peak RSS", "target < 10 min"],
    "bench_threads.py": ["ModalityGapShifterCV.fit", "groupwise_scores", "default / one-thread"],
    "bench_expert.py": ["expert - plain", "random gaze - plain", "train images/s"],
    "bench_validation.py": ["twin us/call", "sweep, validated calls"],
    "gpu_suite.py": [
        "ModalityGapShifter.transform",
        "ConeStats",
        "torch L-BFGS on cpu",
        "ratio = candidate / baseline",
    ],
}
# The suite's encoder part builds two random-weight ViTs: its own (slow) test.
EXTRA_ARGS = {"gpu_suite.py": ["--parts", "transform,cone,cv"]}



@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_at_smoke_size(script, tmp_path):
    if script in ("bench_array_api.py", "gpu_suite.py", "bench_expert.py"):
        pytest.importorskip("torch")
    args = [sys.executable, str(BENCHMARKS / script), "--smoke", *EXTRA_ARGS.get(script, [])]
    if script in ("bench_streaming.py", "bench_archive.py"):
        args += ["--dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        args, capture_output=True, text=True, cwd=BENCHMARKS, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in SCRIPTS[script]:
        assert needle in proc.stdout, f"{needle!r} missing from:\n{proc.stdout}"
    if script in ("bench_streaming.py", "bench_archive.py"):
        assert list(tmp_path.iterdir()) == []  # the data file is deleted


def test_gpu_suite_torch_search_matches_shifter_cv():
    """The suite's torch lambda search is the same protocol: same CV AUC when converged.

    In a child process: array API dispatch needs SCIPY_ARRAY_API set before
    SciPy is imported, which must not leak into this test process.
    """
    pytest.importorskip("torch")
    code = """
import numpy as np, torch
from sklearn.model_selection import StratifiedKFold
from gpu_suite import torch_lambda_search
from skgap import ModalityGapShifterCV
from skgap.datasets import make_paired_embeddings
X, y = make_paired_embeddings(300, 8, 2, noise=3.0, random_state=0)
X = X.astype(np.float64)
lams = np.array([0.0, 0.5, 1.0])
folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
ref = ModalityGapShifterCV(
    lams, cv=folds, scoring="roc_auc", tol=1e-9, max_iter=5000, select="best"
).fit(X, y)
scores = torch_lambda_search(torch.as_tensor(X), y, folds, lams, tol=1e-9, max_iter=5000)
ref = np.array([ref.cv_results_[f"split{k}_test_score"] for k in range(3)])
print("MAXDIFF", np.abs(scores - ref).max(), "SPREAD", np.ptp(ref))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIPY_ARRAY_API": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=BENCHMARKS,
        env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = proc.stdout.split()
    maxdiff = float(words[words.index("MAXDIFF") + 1])
    spread = float(words[words.index("SPREAD") + 1])
    assert maxdiff < 1e-6
    assert spread > 1e-3  # the scores differ between folds and lambdas: a real comparison


@pytest.mark.slow
def test_gpu_suite_encoder_part_at_smoke_size():
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_suite.py"), "--smoke", "--parts", "encode"],
        capture_output=True, text=True, cwd=BENCHMARKS, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in ("OpenCLIPEncoder images/s", "OpenCLIPEncoder texts/s", "plain open_clip"):
        assert needle in proc.stdout, f"{needle!r} missing from:\n{proc.stdout}"


@pytest.mark.slow
@pytest.mark.parametrize("script, part, needles", [
    ("bench_archive.py", "encode", ("encode_archive, 2 worker(s)", "speed-up, 2 workers vs 1")),
    ("gpu_suite.py", "archive", ("encode_archive 1 worker(s)", "/GPU")),
])
def test_encoder_cluster_benchmarks_at_smoke_size(script, part, needles):
    pytest.importorskip("torch")
    pytest.importorskip("distributed")
    pytest.importorskip("pyarrow")
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", "--parts", part],
        capture_output=True, text=True, cwd=BENCHMARKS, timeout=600,
        # The worker processes import the skgap of this source tree.
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(BENCHMARKS.parent)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stdout, f"{needle!r} missing from:\n{proc.stdout}"
