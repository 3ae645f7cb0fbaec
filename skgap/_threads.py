"""How skgap spends the cores: one BLAS thread per fit, parallelism across fits.

Cross-validated λ searches and sweeps run many small fits (an L-BFGS probe on a
few thousand rows). Inside such a fit a multi-threaded BLAS spends more time
starting and synchronising threads than computing, and several BLAS and OpenMP
pools then fight over the cores: on a 2-core machine the default threading was
measured 4x slower than one thread. So every entry point that loops over fits
runs them with one BLAS thread each, and spends extra cores on *independent*
fits instead (``n_jobs``, as in scikit-learn: ``None`` means one job unless a
:func:`joblib.parallel_config` context says otherwise).
"""

import threading
from contextlib import contextmanager

from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread", "run_fits"]

# Only the outermost block of a thread sets and restores the limits: nested
# blocks (every fit inside run_fits, in the calling process) cost nothing --
# threadpoolctl scans the loaded libraries on each call, about 2.6 ms. Per
# thread, because OpenMP's limit is a per-thread setting (BLAS's is
# process-wide).
_state = threading.local()


@contextmanager
def one_blas_thread():
    """Limit every BLAS/OpenMP pool of this process to one thread within the block."""
    depth = getattr(_state, "depth", 0)
    if depth:
        _state.depth = depth + 1
        try:
            yield
        finally:
            _state.depth = depth
        return
    with threadpool_limits(limits=1):
        _state.depth = 1
        try:
            yield
        finally:
            _state.depth = 0


def run_fits(fn, tasks, n_jobs=None):
    """``[fn(*task) for task in tasks]``, each fit with one BLAS thread.

    Parameters
    ----------
    fn : callable
        The fit-and-score function; must be picklable for process backends.
    tasks : iterable of tuple
        Positional arguments of each call.
    n_jobs : int or None, default=None
        Number of concurrent fits, as in scikit-learn. Process workers (loky,
        dask) set one BLAS thread around each call; thread workers share this
        process's limit. scikit-learn's configuration (``config_context``)
        travels to the workers, as in scikit-learn's own ``Parallel``.

    Returns
    -------
    list
        The results, in the order of ``tasks``.
    """
    tasks = list(tasks)
    with one_blas_thread():
        return Parallel(n_jobs=n_jobs)(delayed(_call_with_one_thread)(fn, task) for task in tasks)


def _call_with_one_thread(fn, task):
    # In the calling process this nests inside one_blas_thread() and costs little;
    # in a worker process it is what sets the limit.
    with one_blas_thread():
        return fn(*task)
