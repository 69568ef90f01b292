"""Run evaluation tasks on a Dask cluster through joblib.

Evaluations fan their (dataset, subject, pipeline) tasks out with
:class:`joblib.Parallel`. With ``backend="dask"`` joblib hands each task to
the Dask client that is current in the calling process, so the same code runs
serially, on local processes or on a multi-node cluster. :func:`dask_client`
provides that client: it starts a :class:`dask.distributed.LocalCluster`
(``n_workers``) or joins a running scheduler (``scheduler="tcp://host:8786"``)
whose workers may live on other machines (dask-jobqueue on SLURM, dask-kubernetes).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from neuroenc.errors import DataError, FileError

__all__ = ["dask_client", "cluster_threads", "run_tasks", "make_parallel", "check_dask_available"]


def check_dask_available() -> None:
    """Raise a clear error if ``dask.distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise DataError("Dask scale-out needs dask.distributed; install it with `pip install neuroenc[dask]`") from None


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    timeout: float = 30.0,
    quiet: bool = True,
    tune_workers: bool = True,
) -> Iterator[Any]:
    """A Dask client for the duration of the block (``None`` when neither argument is given).

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) to join; its
        workers are left running when the block ends.
    n_workers : int, optional
        Start a local cluster of this many workers instead; it is shut down
        when the block ends.
    threads_per_worker : int
        Threads of each local worker (1: one task per process, which avoids
        oversubscribing the cores when tasks use BLAS or numba threads).
    processes : bool
        Local workers are processes (True) or threads of this process.
    timeout : float
        Seconds to wait for the scheduler to answer.
    quiet : bool
        Silence distributed's INFO logs (cluster start/stop) while the block runs.
    tune_workers : bool
        Start local workers without Dask's statistical profiler (it samples
        every worker thread's stack every 10 ms) and without the
        ``MALLOC_TRIM_THRESHOLD_`` Dask sets for them (it hands freed memory
        back to the system at once, so numpy pays fresh page faults on every
        large allocation). Both slow evaluation tasks by 10 % and 25 % here;
        the price is a worker memory footprint that shrinks later after a
        peak. False keeps Dask's configuration.

    Yields
    ------
    distributed.Client or None
        The client; it is the default client inside the block, which is what
        joblib's ``"dask"`` backend uses.
    """
    if scheduler is not None and n_workers is not None:
        raise DataError("give either a scheduler address or a number of local Dask workers, not both")
    if scheduler is None and n_workers is None:
        yield None
        return
    check_dask_available()
    from distributed import Client, LocalCluster

    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.scheduler", "distributed.nanny")]
    levels = [lg.level for lg in loggers]
    if quiet:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise FileError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
            with client:
                yield client
        else:
            if int(n_workers) < 1:
                raise DataError(f"the number of Dask workers must be >= 1, got {n_workers}")
            with _worker_config(tune_workers):  # read when the workers start
                cluster = LocalCluster(
                    n_workers=int(n_workers),
                    threads_per_worker=int(threads_per_worker),
                    processes=processes,
                    dashboard_address=None,
                )
            with cluster, Client(cluster, timeout=timeout) as client:
                yield client
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _worker_config(tune: bool) -> Iterator[None]:
    """Dask configuration for new local workers: no profiler, no immediate memory trimming (see dask_client)."""
    if not tune:
        yield
        return
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    dask_trim = environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # Nannies also write it into this process's environment, which later workers inherit;
    # a value of the user's own (not Dask's) is left alone.
    ours = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    poisoned = ours is not None and dask_trim is not None and ours == str(dask_trim)
    if poisoned:
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    try:
        with dask.config.set(
            {"distributed.nanny.pre-spawn-environ": environ, "distributed.worker.profile.enabled": False}
        ):
            yield
    finally:
        if poisoned:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = ours


def cluster_threads(client: Any) -> int:
    """Number of task slots (worker threads) of a Dask client's cluster (1 without a client)."""
    if client is None:
        return 1
    return max(1, sum(client.nthreads().values()))


def run_tasks(
    func: Callable[..., Any],
    tasks: Iterable[tuple],
    *,
    n_jobs: int = 1,
    backend: str | None = None,
) -> list[Any]:
    """``[func(*task) for task in tasks]`` fanned out with joblib, in task order.

    Parameters
    ----------
    func : callable
        Function of one task; must be picklable for process or Dask workers.
    tasks : iterable of tuple
        Positional arguments of each call.
    n_jobs : int
        Parallel calls (``-1``: all cores, or all Dask worker threads).
    backend : {"loky", "threading", "dask"}, optional
        joblib backend; ``"dask"`` needs a current Dask client (see :func:`dask_client`).

    Returns
    -------
    list
        Results in the order of ``tasks`` whatever the backend, so a
        parallel run returns what a serial run returns.
    """
    from joblib import delayed

    tasks = list(tasks)
    if backend == "dask":
        check_dask_available()
        from distributed import default_client

        try:
            default_client()
        except ValueError:
            raise DataError("backend='dask' needs a running Dask client; use dask_client(...) first") from None
    if n_jobs == 1 and backend != "dask":
        return [func(*t) for t in tasks]
    return make_parallel(n_jobs, backend)(delayed(func)(*t) for t in tasks)


def make_parallel(n_jobs: int, backend: str | None, **kwargs: Any) -> Any:
    """A :class:`joblib.Parallel` bound to ``backend`` without changing joblib's global configuration.

    Built inside ``parallel_config`` (the only way joblib 1.6 sets up its Dask
    backend) but called outside it: joblib calls made while the tasks are
    produced (MNE filtering inside a paradigm) or inside the tasks then keep
    their own default backend instead of submitting to the same cluster from
    within the dispatch loop, which deadlocks.

    Parameters
    ----------
    n_jobs : int
        Parallel calls (``-1``: all cores or all Dask worker threads).
    backend : str or None
        joblib backend name (None: joblib's default).
    **kwargs
        Other :class:`joblib.Parallel` arguments (e.g. ``return_as``).

    Returns
    -------
    joblib.Parallel
    """
    from joblib import Parallel, parallel_config

    if backend is None:
        return Parallel(n_jobs=n_jobs, **kwargs)
    with parallel_config(backend=backend, n_jobs=n_jobs):
        return Parallel(**kwargs)
