"""Each benchmark script of issue 7 runs at its --smoke size and prints its ratio.

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
    "bench_lambda_search.py": ["speed-up", "selected lambda", "lambda target met"],
    "bench_streaming.py": ["of the read pass", "peak RSS"],
    "bench_array_api.py": ["shifter.transform(X)"],
    "bench_threads.py": ["ModalityGapShifterCV.fit", "groupwise_scores", "default / one-thread"],
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_at_smoke_size(script, tmp_path):
    if script == "bench_array_api.py":
        pytest.importorskip("torch")
    args = [sys.executable, str(BENCHMARKS / script), "--smoke"]
    if script == "bench_streaming.py":
        args += ["--dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        args, capture_output=True, text=True, cwd=BENCHMARKS, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in SCRIPTS[script]:
        assert needle in proc.stdout, f"{needle!r} missing from:\n{proc.stdout}"
    if script == "bench_streaming.py":
        assert list(tmp_path.iterdir()) == []  # the data file is deleted
