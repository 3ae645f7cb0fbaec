"""How skgap spends the cores.

Two rules, one home. *Across fits*: cross-validated λ searches and sweeps run
many small fits, inside which a multi-threaded BLAS spends more time
synchronising than computing, so every entry point that loops over fits runs
each with one BLAS thread (:func:`one_blas_thread`, :func:`run_fits`) and
spends extra cores on independent fits (``n_jobs``, as in scikit-learn).
*Within one pass*: a single large pass over the rows (a transform, the
sufficient statistics of a fit) is cut into row tiles that a small thread pool
shares while BLAS runs one thread per tile (:func:`run_work_items`); partial
results are combined in tile order, so the answer does not depend on the
number of threads.
"""

import os
import sys
import threading
from contextlib import contextmanager

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils.parallel import Parallel, delayed

from ._mapped import file_reference, open_reference

#: Bytes of input per row tile of the fused kernels: 512 rows of 2 x 512
#: float32. A tile and its output stay in the last-level cache (two threads:
#: 8 MiB); tiles of 0.5-1 MiB, which fit a 1 MiB L2, were measured slower:
#: every tile costs some twenty NumPy calls of fixed overhead.
TILE_BYTES = 1 << 21


#: Bytes per tile when a kernel is called from a thread other than the main
#: one (a dask or joblib worker thread). There the BLAS limit cannot be set
#: (it is process-wide), and OpenBLAS runs a GEMM above 65536 x 4
#: multiply-adds on all its threads: with 2 MiB tiles the tiles' rank update
#: went multi-threaded inside every dask worker and a dask transform ran 20x
#: slower. 128 rows of 2 x 512 float32 keep it under that size.
WORKER_TILE_BYTES = 1 << 19


#: Tiles per work item of a threaded pass (8 MiB of input at the default tile).
WORK_TILES = 4


def tile_rows(n_features, itemsize):
    """Rows per tile so that one tile of ``n_features`` columns holds ``TILE_BYTES``.

    Off the main thread the tile holds at most ``WORKER_TILE_BYTES``.
    """
    budget = TILE_BYTES
    if threading.current_thread() is not threading.main_thread():
        budget = min(budget, WORKER_TILE_BYTES)
    return max(16, budget // max(1, n_features * itemsize))


_controller = None
_modules_seen = 0


def _pools():
    """The thread pools of this process (threadpoolctl).

    A scan of the loaded libraries costs milliseconds and fits enter the
    limit often, so the scan is kept -- until an import may have loaded a
    library with a pool of its own (torch's OpenMP, faiss's BLAS): a change in
    the number of imported modules starts a new scan.
    """
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        import scipy.linalg.blas  # noqa: F401 - its BLAS (the tiles' GEMM) must be seen
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller


# BLAS's thread count is process-wide, so blocks entered by several threads
# share one BLAS limit: the first block to enter sets it, the last to leave
# restores it. (Two threads that each saved and restored it could restore
# each other's setting and leave BLAS on one thread for good.) OpenMP's count
# is per thread: each thread's outermost block sets and restores its own. A
# block nested in one thread costs nothing.
_lock = threading.Lock()
_holders = 0
_blas_limiter = None
_local = threading.local()


@contextmanager
def one_blas_thread():
    """Every BLAS pool, and this thread's OpenMP pool, at one thread within the block.

    The single rule by which skgap keeps BLAS out of the way: inside a fit
    (:func:`run_fits`) and inside a threaded pass (:func:`run_work_items`) the
    parallelism is skgap's own, and a multi-threaded BLAS would only wait and
    round differently. Nested and concurrent blocks share the BLAS limit
    (see above), restored when the last block ends.
    """
    global _holders, _blas_limiter
    if getattr(_local, "depth", 0):
        _local.depth += 1
        try:
            yield
        finally:
            _local.depth -= 1
        return
    pools = _pools()
    with _lock:
        if _holders == 0:
            _blas_limiter = pools.select(user_api="blas").limit(limits=1)
        _holders += 1
    openmp = pools.select(user_api="openmp").limit(limits=1)
    _local.depth = 1
    try:
        yield
    finally:
        _local.depth = 0
        openmp.restore_original_limits()
        with _lock:
            _holders -= 1
            if _holders == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def pass_threads(n_items):
    """Threads for a pass of ``n_items`` work items: 1, or what BLAS is allowed.

    The pass follows the BLAS thread limit, so ``threadpool_limits(1)`` (and
    :func:`run_fits`, joblib's workers) keep it on one thread.
    Called from any thread other than the main one (a dask or joblib worker,
    a user's pool) it stays on that thread, so that it never nests threads
    inside someone else's.
    """
    if n_items < 2 or threading.current_thread() is not threading.main_thread():
        return 1
    limits = [lib.num_threads for lib in _pools().select(user_api="blas").lib_controllers]
    if not limits:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(n_items, cpus, *limits))


#: Fewer multiply-adds than this in a whole pass: not worth starting threads
#: (a thread start costs 0.1-1 ms on a busy machine).
MIN_THREADED_FLOPS = 5e7


def run_work_items(n, item_rows, fn, flops=None, threads=None):
    """Call ``fn(start, stop)`` for each run of ``item_rows`` rows of ``0 .. n``.

    ``flops``, when given, is the work of the whole pass (multiply-adds); below
    :data:`MIN_THREADED_FLOPS` the pass stays on the calling thread.
    ``threads``, when given, replaces :func:`pass_threads`: a caller that
    already holds BLAS at one thread (inside :func:`run_fits`) passes the
    count it was allowed before.

    The items are shared among :func:`pass_threads` threads (the caller's
    included), each taking the next free item. Inside the pass every BLAS call
    is limited to one thread (the threads are the parallelism, and a BLAS
    call rounds the same on any number of threads). The first exception of
    any thread is re-raised here once all have stopped.
    """
    starts = range(0, n, item_rows)
    small = flops is not None and flops < MIN_THREADED_FLOPS
    if threads is not None:
        n_threads = max(1, min(int(threads), len(starts)))
    else:
        n_threads = 1 if small else pass_threads(len(starts))
    if n_threads == 1:
        # BLAS on one thread here too: a multi-threaded GEMM may round
        # differently, and the result must not depend on the threads.
        with one_blas_thread():
            for a in starts:
                fn(a, min(a + item_rows, n))
        return
    items = iter(starts)
    lock = threading.Lock()
    errors = []

    def work():
        try:
            while not errors:
                with lock:
                    a = next(items, None)
                if a is None:
                    return
                fn(a, min(a + item_rows, n))
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)

    with one_blas_thread():
        helpers = [threading.Thread(target=work) for _ in range(n_threads - 1)]
        for t in helpers:
            t.start()
        work()
        for t in helpers:
            t.join()
    if errors:
        raise errors[0]



def run_fits(fn, tasks, n_jobs=None, *, return_as="list", map_files=False):
    """``[fn(*task) for task in tasks]``, each fit with one BLAS thread.

    Each element of a task is an argument of its own in the parallel call
    (never one tuple), so that joblib's ``dask`` backend can recognise a large
    array that every task shares -- the rows, the labels -- and send it to
    the cluster once per call instead of pickling it into every task (it
    scatters, once per object and call, an argument of more than 1 kB that
    can be weakly referenced: an array can, a tuple or a list cannot). Tasks
    that share an array should hold the same object.

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
    return_as : {'list', 'generator'}, default='list'
        ``'generator'`` yields each result, in the order of ``tasks``, as soon
        as it and those before it are done (for a progress bar).
    map_files : bool, default=False
        With more than one job, send every argument that is a read-only
        memory map of a file as a :class:`~skgap._core._mapped.MappedFile`,
        which the worker maps again from the same path, instead of the
        file's contents. Only where every worker sees the file under the
        same path.

    Returns
    -------
    list or generator
        The results, in the order of ``tasks``.
    """
    if return_as not in ("list", "generator"):
        raise ValueError(f"return_as must be 'list' or 'generator', got {return_as!r}.")
    tasks = list(tasks)
    if map_files and effective_n_jobs(n_jobs) > 1:
        tasks = _as_file_references(tasks)
    calls = (delayed(_call_with_one_thread)(fn, *task) for task in tasks)
    if return_as == "generator":
        return _generate(calls, n_jobs)
    with one_blas_thread():
        return Parallel(n_jobs=n_jobs)(calls)


def _generate(calls, n_jobs):
    # The BLAS limit holds until the last result is taken (or the generator closed).
    with one_blas_thread():
        yield from Parallel(n_jobs=n_jobs, return_as="generator")(calls)


def _as_file_references(tasks):
    """The tasks with each read-only memory-mapped argument replaced by its file
    reference (one reference per array object)."""
    refs = {}

    def ref(arg):
        if not isinstance(arg, np.ndarray):
            return arg
        if id(arg) not in refs:
            refs[id(arg)] = (arg, file_reference(arg))  # keeps arg alive: ids stay unique
        found = refs[id(arg)][1]
        return arg if found is None else found

    return [tuple(ref(arg) for arg in task) for task in tasks]


def _call_with_one_thread(fn, *args):
    # In the calling process this nests inside one_blas_thread() and costs little;
    # in a worker process it is what sets the limit.
    args = [open_reference(arg) for arg in args]
    with one_blas_thread():
        return fn(*args)
