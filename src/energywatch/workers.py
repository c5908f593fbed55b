"""The extraction worker pool: processes forked from a preloaded fork server, whatever `__main__` is.

multiprocessing's forkserver and spawn start methods re-run the parent's `__main__` in every child
before it does any work, so that functions defined there can be unpickled. Our workers only ever
run functions of `energywatch`, and re-running `__main__` is what broke them where users run us:
inside an Airflow task `__main__` is the `airflow` console script, whose import raises under the task
supervisor's environment; a Celery worker, a Jupyter kernel or a console script with side effects
fail or misbehave the same way. So the pool's processes are started with `__main__` hidden from
multiprocessing: children never import it, and nothing else changes.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver
from multiprocessing import process as mp_process
from typing import Any

# imported once by the fork server: trafilatura, lxml, the enrichment code and the language model; each
# worker used to load them itself, ~1.3 s of CPU per worker in every run (every Airflow task). No
# "__main__" here: that is the very import that must not happen (see above)
WORKER_PRELOAD = ("energywatch.worker_preload",)

_START_LOCK = threading.RLock()  # one worker start at a time: both hooks below change process-wide state


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Show multiprocessing a `__main__` with neither a file nor a module name while a worker starts."""
    real = sys.modules.get("__main__")
    stand_in = types.ModuleType("__main__")
    if real is not None:
        # a snapshot of the real namespace, so that anything reading __main__ meanwhile still finds it
        stand_in.__dict__.update({k: v for k, v in vars(real).items() if k not in {"__file__", "__spec__"}})
    stand_in.__spec__ = None
    with _START_LOCK:
        sys.modules["__main__"] = stand_in
        try:
            yield
        finally:
            if real is not None:
                sys.modules["__main__"] = real


class _WorkerPopen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        # start the fork server first, with the real __main__ (it reads only sys.path from it), so that
        # __main__ is hidden just while this worker's start-up data is written and the fork server forks
        forkserver.ensure_running()
        with _main_hidden():
            super()._launch(process_obj)  # type: ignore[misc]


class _WorkerProcess(mp_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _WorkerPopen:
        return _WorkerPopen(process_obj)

    def start(self) -> None:
        """Start the worker, also from a process forked from a Celery worker (Airflow's CeleryExecutor)."""
        # neither flag has a public setter that keeps the stdlib type
        config = mp_process.current_process()._config  # type: ignore[attr-defined]
        # Celery's prefork pool (billiard) leaves its own AuthenticationString in the process's config,
        # which Airflow's task process inherits by fork; the stdlib refuses to pickle that type for a
        # child ("Pickling an AuthenticationString object is disallowed"). Same key, stdlib type:
        key = config.get("authkey")  # set directly: billiard's setter would wrap it in its own type again
        stdlib_type = mp_process.AuthenticationString  # type: ignore[attr-defined]
        if key is not None and type(key) is not stdlib_type:
            config["authkey"] = stdlib_type(bytes(key))
        self._config["authkey"] = config.get("authkey")  # type: ignore[attr-defined]
        # The pool also marks its processes daemonic, a mark the task process inherits too, and then
        # multiprocessing refuses every child ("daemonic processes are not allowed to have children").
        # The mark exists so that a daemon's children are not left behind; ours end with the pool at
        # the end of each run, and a worker whose parent dies reads end-of-file on its queue and exits.
        if not config.get("daemon"):
            super().start()
            return
        with _START_LOCK:
            config["daemon"] = False
            try:
                super().start()
            finally:
                config["daemon"] = True


class WorkerContext(mp_context.ForkServerContext):
    """The forkserver start method, with children that never import the parent's `__main__`."""

    Process = _WorkerProcess


def make_pool(workers: int, initializer: Callable[..., object] | None = None,
              initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of worker processes forked from a fork server that has loaded the extraction stack."""
    context = WorkerContext()
    # process-wide, as multiprocessing has one fork server per process; set before it starts
    multiprocessing.set_forkserver_preload(list(WORKER_PRELOAD))
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(initializer, initargs))


def _start_worker(initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    die_with_parent()
    if initializer is not None:
        initializer(*initargs)


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent ends (Linux; elsewhere nothing happens).

    The fork server and the workers call this: a run killed with SIGKILL (an Airflow time-out, the
    OOM killer) used to leave them behind, ~600 MB each time. The fork server is the workers' parent
    and the run's process (the thread that started it) the fork server's.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    except (OSError, AttributeError):  # no prctl: a libc without it, a sandbox that forbids it
        return
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(0)
