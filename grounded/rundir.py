"""An output folder owned by one process at a time, and a full disk said plainly.

    with lock_output("out"):      # OutputLockedError if another grounded process writes there
        ...                       # an ENOSPC while writing becomes a one-line "disk is full"

The lock is an OS file lock (`filelock`, which uses flock on Unix): the kernel drops it when
the process dies, even on `kill -9`, so a lock file left behind never blocks the next run.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from grounded.errors import GroundedError, OutputLockedError

LOCK_NAME = ".grounded.lock"
PID_NAME = ".grounded.pid"
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_DISK_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")
LOW_SPACE_BYTES = 64 * 1024 * 1024
RESUME_HINT = (
    "finished LLM calls are saved in the cache: free some space and rerun the same command "
    "to resume"
)


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
