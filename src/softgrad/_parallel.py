"""Row blocks of large inputs on several threads.

Every function in softgrad works on its input a block of rows at a time, and the rows are
independent: a block reads its own logits and writes its own outputs. Above a size where the
work dwarfs the cost of a hand-off (about 1 MiB of input), the blocks are split into one
contiguous run per thread. NumPy releases the GIL inside its loops, so the threads really run
at once; the results are bitwise the same as on one thread, because each row meets exactly the
same operations.

The number of threads is, in order: what :func:`set_num_threads` was given, the environment
variable ``SOFTGRAD_NUM_THREADS``, or the number of cores this process may run on.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "run_rows", "set_num_threads"]

# Inputs smaller than this run on the calling thread only: handing a chunk to another thread
# costs some tens of microseconds, which the work on a smaller input does not repay.
PARALLEL_BYTES = 1 << 20

_lock = threading.Lock()
_threads: int | None = None  # set by set_num_threads
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None  # (pid, workers) the pool was made for


def _default_threads() -> int:
    env = os.environ.get("SOFTGRAD_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(
                f"SOFTGRAD_NUM_THREADS must be a positive integer, got {env!r}"
            ) from None
        if n < 1:
            raise ValueError(f"SOFTGRAD_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The number of threads softgrad uses for large inputs.

    Examples
    --------
    >>> from softgrad import get_num_threads
    >>> get_num_threads() >= 1
    True
    """
    return _threads if _threads is not None else _default_threads()


def set_num_threads(n) -> None:
    """Use ``n`` threads for large inputs (``1``: always the calling thread only).

    ``None`` goes back to the default: ``SOFTGRAD_NUM_THREADS``, else the number of cores
    this process may run on. Results do not depend on the number of threads.

    Raises
    ------
    ValueError
        ``n`` is not a positive integer or None.

    Examples
    --------
    >>> from softgrad import get_num_threads, set_num_threads
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(None)
    """
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: n must be a positive integer or None, got {n!r}")
    _threads = n


def _start_pool(workers: int) -> ThreadPoolExecutor | None:
    """A pool whose ``workers`` threads are all running, or None if they cannot be started.

    The threads are started here, once, and wait at a barrier until all have started; so a
    later ``submit`` never has to start one. (If starting a thread failed inside ``submit``,
    under a process or thread limit, the task would stay queued and might run later, writing
    into an array its caller has since been given back.)
    """
    pool = ThreadPoolExecutor(workers, thread_name_prefix="softgrad")
    barrier = threading.Barrier(workers + 1)
    try:
        for _ in range(workers):
            pool.submit(barrier.wait, 10.0)
        barrier.wait(10.0)
    except (RuntimeError, threading.BrokenBarrierError):
        barrier.abort()
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


def _get_pool(workers: int) -> ThreadPoolExecutor | None:
    """The shared pool of helper threads, or None when threads cannot be started here.

    Made again after a fork (the threads do not survive it) or when the number changes.
    """
    global _pool, _pool_key
    key = (os.getpid(), workers)
    with _lock:
        if _pool_key != key:
            old, old_key = _pool, _pool_key
            _pool, _pool_key = _start_pool(workers), key
            # A pool inherited through fork has no threads and maybe a held lock: drop it.
            if old is not None and old_key[0] == key[0]:
                old.shutdown(wait=False)
        return _pool


def run_rows(N: int, step: int, nbytes: int, work) -> None:
    """Call ``work(lo, hi)`` so that together the calls cover rows ``0..N`` once each.

    The rows are cut at multiples of ``step`` (the block size) into one run per thread when
    the input has ``nbytes >= PARALLEL_BYTES`` and more than one block; otherwise this is
    ``work(0, N)``. ``work`` must touch only its own rows. If runs raise, the exception of the
    first such run is raised, after every run has finished: an error names the first bad row,
    as it would on one thread, and no thread is still writing when the caller sees it.
    """
    nblocks = -(-N // step)
    if nbytes < PARALLEL_BYTES or nblocks == 1:
        work(0, N)
        return
    threads = min(get_num_threads(), nblocks)
    pool = _get_pool(threads - 1) if threads > 1 else None
    if pool is None:
        work(0, N)
        return
    cuts = [min(N, (nblocks * i // threads) * step) for i in range(threads + 1)]
    # The helpers take the first runs, each in a copy of the caller's context (so that an
    # np.errstate of the caller applies there too); the calling thread takes the last.
    futures = [
        pool.submit(contextvars.copy_context().run, work, cuts[i], cuts[i + 1])
        for i in range(threads - 1)
    ]
    try:
        work(cuts[-2], cuts[-1])
        last = None
    except Exception as exc:  # noqa: BLE001 - raised below, unless an earlier run failed too
        last = exc
    errors = [f.exception() for f in futures]  # waits for every helper
    for exc in [*errors, last]:
        if exc is not None:
            raise exc
