"""An output folder owned by one process at a time, its files, atomic writes, a full disk said plainly.

    run = RunFolder("out")        # run.qa, run.rejected, run.summary, run.index, run.llm_cache, ...
    with run.lock():              # OutputLockedError if another grounded process writes there
        atomic_write_text(run.report, html)  # readers see the old file or the new one
        ...                       # an ENOSPC while writing becomes a one-line "disk is full"

The lock is an OS file lock (`filelock`, which uses flock on Unix): the kernel drops it when
the process dies, even on `kill -9`, so a lock file left behind never blocks the next run.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from grounded.errors import GroundedError, OutputLockedError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from grounded.llm import CallCache

LOCK_NAME = ".grounded.lock"
PID_NAME = ".grounded.pid"
LLM_CACHE = "cache/llm.sqlite"
# Where `grounded generate` kept its call cache before there was one place: copied in, left as is.
OLD_LLM_CACHES = (".cache/llm.sqlite",)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_DISK_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")
LOW_SPACE_BYTES = 64 * 1024 * 1024
RESUME_HINT = (
    "finished LLM calls are saved in the cache: free some space and rerun the same command "
    "to resume"
)


class RunFolder:
    """An output folder of `grounded run` or `generate` and the files grounded keeps in it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def of(cls, qa_file: str | Path) -> RunFolder:
        """The run folder a QA file (its qa.jsonl) lies in."""
        return cls(Path(qa_file).parent)

    @property
    def qa(self) -> Path:
        return self.path / "qa.jsonl"

    @property
    def rejected(self) -> Path:
        return self.path / "rejected.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def index(self) -> Path:
        """Where `grounded run` builds its index unless told another folder."""
        return self.path / "index"

    @property
    def llm_cache(self) -> Path:
        """The one LLM call cache of this folder (run and generate alike)."""
        return self.path / LLM_CACHE

    @property
    def old_llm_caches(self) -> list[Path]:
        """Call caches an older grounded left here; their calls are copied in, never repeated."""
        return [p for p in (self.path / name for name in OLD_LLM_CACHES) if p.is_file()]

    def lock(self) -> AbstractContextManager[Path]:
        """Hold this folder for this process (see `lock_output`)."""
        return lock_output(self.path)

    def llm_cache_path(self) -> Path:
        """`llm_cache`, holding every call an old-location cache here holds (left in place).

        Run it while holding the folder's lock, before the cache is opened for writing.
        """
        old = self.old_llm_caches
        if old:
            from grounded.llm import CallCache

            cache = CallCache(self.llm_cache)
            try:
                for path in old:
                    cache.absorb(path)
            finally:
                cache.close()
        return self.llm_cache

    def open_llm_cache(self) -> CallCache:
        """The folder's call cache, opened (see `llm_cache_path`)."""
        from grounded.llm import CallCache

        return CallCache(self.llm_cache_path())

    def read_summary(self) -> dict[str, Any]:
        """summary.json as a dict; {} when it is missing or unreadable."""
        try:
            data = json.loads(self.summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def index_path(self, summary: dict[str, Any] | None = None) -> Path | None:
        """The index this folder's pairs came from: as summary.json records it, else OUT/index."""
        data = self.read_summary() if summary is None else summary
        recorded = (
            _dict(data.get("files")).get("index")
            or data.get("index")
            or _dict(data.get("ingest")).get("index")
        )
        for candidate in (recorded, self.index):
            if candidate and Path(candidate).is_dir():
                return Path(candidate)
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@contextmanager
def lock_output(out: str | Path) -> Iterator[Path]:
    """Hold `out` for this process; a second run on it fails at once naming the holder's PID."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    pid_file = folder / PID_NAME
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(
            f"output folder {folder} is in use by {_holder(pid_file)}",
            hint="wait for that run to finish, or use another --out",
        ) from None
    try:
        # Beside the lock file, not in it: filelock truncates the lock file on every attempt.
        pid_file.write_text(str(os.getpid()), encoding="utf-8")
        with disk_full_is_an_error(folder):
            yield folder
    finally:
        lock.release()


def _holder(pid_file: Path) -> str:
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return "another grounded process"
    return f"PID {pid} (another grounded run or generate)"


@contextmanager
def disk_full_is_an_error(folder: str | Path) -> Iterator[None]:
    """Turn a full disk while writing under `folder` into one line saying a rerun resumes."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only a full disk is translated, the rest re-raised
        full = disk_full_error(folder, exc)
        if full is None:
            raise
        raise full from exc


def disk_full_error(
    folder: str | Path,
    exc: BaseException,
    *,
    error: type[GroundedError] = GroundedError,
    hint: str = RESUME_HINT,
) -> GroundedError | None:
    """An `error` naming the disk when `exc` says it is full or the disk is nearly full, else None.

    The second case is for libraries that do not say why a write failed (Chroma's
    "Error in compaction"). Errors grounded raised on purpose are left alone.
    """
    if isinstance(exc, GroundedError) or not (is_disk_full(exc) or low_on_space(folder)):
        return None
    detail = " ".join(str(exc).split())[:200]
    return error(f"{disk_full_message(folder)}: {detail}", hint=hint)


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the disk or quota is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _DISK_FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_message(folder: str | Path) -> str:
    """'the disk holding X is full', with the space left when there is little."""
    path = Path(folder)
    where = path if path.exists() else path.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = None
    # A quota or a device that refuses writes can be "full" with the disk itself half empty.
    left = f" ({free / 1e6:.1f} MB free)" if free is not None and free < LOW_SPACE_BYTES else ""
    return f"the disk holding {path} is full{left}"


def low_on_space(folder: str | Path) -> bool:
    """True when the disk holding `folder` has less than LOW_SPACE_BYTES free."""
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
    except OSError:
        return False


@contextmanager
def atomic_write(
    path: str | Path, *, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Write `path` through a temp file beside it, synced and renamed over it when the block ends.

    A reader (or a rerun after kill -9) sees the old file or the new one, never half of one;
    on an error the temp file is removed and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name per writer, opened normally so the file gets the usual (umask) permissions.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    binary = "b" in mode
    try:
        with open(
            tmp, mode.replace("w", "x"), encoding=None if binary else encoding, newline=newline
        ) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace `path` with `text` atomically; return the path."""
    with atomic_write(path) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Replace `path` with `data` as JSON atomically; return the path."""
    return atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False, default=str))
