"""Where the fan-out parts of a run execute: in this process (default), a process pool, or Ray.

Stages hand an executor plain functions over batches (`submit(fn, *args)` returns a
`concurrent.futures.Future`), so the same stage code runs on any of them, as datatrove's steps
run on its local, Slurm or Ray executors. What must stay global, the LLM calls with their one
concurrency and rate limit, never goes through an executor: it runs in the driver.

    >>> with open_executor("ray") as ex:  # doctest: +SKIP
    ...     fut = ex.submit(len, [1, 2, 3])
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

import numpy as np

from grounded.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")
RAY_INSTALL = "'grounded[ray]'"


class Executor(Protocol):
    """Runs picklable functions somewhere; `parallelism` is how many run at once."""

    name: str
    parallelism: int
    remote: bool  # True when functions run in other processes (their arguments are pickled)

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """In this process (workers=1), or a spawn-context process pool of `workers` processes."""

    name = "local"

    def __init__(
        self,
        *,
        workers: int = 1,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.parallelism = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            # spawn, not fork: the parent may hold torch threads and Chroma's native handles.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=initializer, initargs=initargs
            )
        self.remote = self._pool is not None

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        """Run `fn(*args)` now (serial) or in the pool; its Future either way."""
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        fut: Future[R] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
            fut.set_exception(exc)
        return fut

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RayExecutor:
    """Ray tasks on a local Ray (address None: started here with `num_cpus`) or a cluster."""

    name = "ray"
    remote = True

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None) -> None:
        ray = import_ray()
        self.address = address
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
                # A local Ray on loopback: nothing is exposed beyond this machine.
                kwargs["_node_ip_address"] = "127.0.0.1"
            ray.init(**kwargs)
            self._started = True
        self.parallelism = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        """`fn(*args)` as a Ray task; its result as a concurrent Future."""
        task = self._remote.get(fn)
        if task is None:
            import ray

            task = self._remote[fn] = ray.remote(fn)
        fut: Future[R] = task.remote(*args).future()
        return fut

    def put(self, obj: Any) -> Any:
        """`obj` in Ray's object store once (a reference tasks can share)."""
        import ray

        return ray.put(obj)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_ray() -> Any:
    """The ray module, or MissingDependencyError saying what to install."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("the Ray executor (--ray)", RAY_INSTALL) from exc
    return ray


def open_executor(
    executor: str | Executor | None = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    workers: int = 1,
) -> Executor:
    """An executor by name ("local", "ray") or the one given; "local" with `workers` processes."""
    if executor is None or executor == "local":
        return LocalExecutor(workers=workers)
    if executor == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    if isinstance(executor, str):
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    return executor


def ordered(
    executor: Executor,
    fn: Callable[..., R],
    items: Iterable[T],
    *,
    args: Callable[[T], tuple[Any, ...]] = lambda x: (x,),
    window: int | None = None,
) -> Iterator[tuple[T, R]]:
    """(item, fn(*args(item))) in input order, with at most `window` calls in flight (memory stays flat)."""
    limit = window or 4 * executor.parallelism
    pending: deque[tuple[T, Future[R]]] = deque()
    for item in items:
        pending.append((item, executor.submit(fn, *args(item))))
        while len(pending) >= limit:
            done, fut = pending.popleft()
            yield done, fut.result()
    while pending:
        done, fut = pending.popleft()
        yield done, fut.result()


def picklable(obj: Any) -> bool:
    """True when `obj` can travel to another process (closures and lambdas cannot)."""
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - pickle raises many types
        return False
    return True


def embed_texts(name: str, texts: list[str]) -> Any:
    """Embeddings of `texts` by embedder `name` (in a worker, where get_embedder keeps the model loaded)."""
    from grounded.embed import get_embedder

    return get_embedder(name).embed(texts)


class FanOutEmbedder:
    """An Embedder whose batches are split over the executor's workers (the model loads once in each)."""

    def __init__(self, name: str, executor: Executor, *, min_part: int = 32) -> None:
        self.name = name
        self.executor = executor
        self.min_part = min_part  # smaller parts cost more in transfer than they save
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        if not items:
            from grounded.embed import get_embedder

            return get_embedder(self.name).embed(items)
        parts = max(1, min(self.executor.parallelism, len(items) // self.min_part))
        size = -(-len(items) // parts)
        futures = [
            self.executor.submit(embed_texts, self.name, items[i : i + size])
            for i in range(0, len(items), size)
        ]
        out = np.concatenate([np.asarray(f.result(), dtype=np.float32) for f in futures])
        self._dim = int(out.shape[1])
        return out
