"""Shared helpers of the benchmark scripts: interleaved timing and memory.

The machines these run on are shared and noisy, so every figure is a ratio to
a baseline measured in the same run, and the candidate and its baseline are
timed alternately (``repeat`` rounds) so that a burst of load hits both; the
best round of each is reported, with the median ratio over rounds beside it.
"""

import gc
import resource
import time
import tracemalloc

import numpy as np


def interleaved(fns, repeat=5):
    """Time each callable ``repeat`` times, round-robin.

    Returns ``{name: [seconds per round]}``; results are dropped between
    calls so that one run's output is freed before the next allocates.
    """
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            del out
    return times


def ratio_line(name, times, base):
    """``name: best s (ratio to base; median ratio over rounds)``."""
    t, b = np.asarray(times[name]), np.asarray(times[base])
    return (
        f"{name:<34s} {t.min():8.4f} s   x{t.min() / b.min():5.2f} of {base} "
        f"(median over rounds x{np.median(t / b):5.2f})"
    )


def peak_traced(fn):
    """Peak bytes allocated (numpy and Python, via tracemalloc) while ``fn`` runs.

    Returns ``(peak_bytes, result_bytes)`` so that the extra memory beyond
    the returned array can be read off.
    """
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nbytes = getattr(out, "nbytes", 0)
    del out
    return peak, nbytes


def max_rss_mib():
    """Peak resident set size of this process so far, MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def header(title, **sizes):
    import platform

    import numpy
    import sklearn

    print(f"== {title}")
    print(
        f"   numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, "
        f"{platform.processor() or platform.machine()}, "
        + ", ".join(f"{k}={v}" for k, v in sizes.items())
    )


def best_synced_time(fn, sync, repeat, warmup=True):
    """Fastest of ``repeat`` runs of ``fn``, each between two ``sync()`` calls.

    ``sync`` waits for queued device work (``torch.cuda.synchronize``; a no-op
    on the CPU), so the time covers the computation, not its launch. One
    untimed warm-up run first (kernel compilation, allocator) unless
    ``warmup=False``.
    """
    if warmup:
        sync()
        out = fn()
        sync()
        del out
    best = np.inf
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - start)
        del out
    return best
