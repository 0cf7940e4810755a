"""JSON Lines I/O, the one reader and writer: streaming reads that name file:line of a bad row,
appends that survive a crash (`JsonlWriter`), whole files replaced atomically (`write_jsonl`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from grounded.errors import GroundedError
from grounded.rundir import atomic_write

log = logging.getLogger(__name__)


def read_jsonl(
    path: str | Path,
    *,
    skip_bad: bool = False,
    error: type[GroundedError] = GroundedError,
) -> Iterator[dict[str, Any]]:
    """Yield one object per non-blank line, streaming; a bad line is an error naming file:line.

    A half-written last line (what a kill -9 leaves) is dropped silently. With `skip_bad`, every
    other bad line is logged as a warning with its file:line and skipped instead.
    """
    for _, obj in numbered_rows(path, skip_bad=skip_bad, error=error):
        yield obj


def numbered_rows(
    path: str | Path,
    *,
    skip_bad: bool = False,
    error: type[GroundedError] = GroundedError,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`read_jsonl` with each row's line number, for messages and ids that point into the file."""
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise error(f"cannot read {p}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                obj = _parse(raw, first=lineno == 1)
            except ValueError as exc:
                if not raw.endswith(b"\n"):
                    return
                if not skip_bad:
                    raise error(f"{p}:{lineno}: {exc}") from exc
                log.warning("%s:%d: skipped, %s", p, lineno, exc)
                continue
            if obj is not None:
                yield lineno, obj


def _parse(raw: bytes, *, first: bool) -> dict[str, Any] | None:
    """The object on one line, None for a blank line; ValueError says what is wrong with it."""
    try:
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def dumps(obj: Mapping[str, Any]) -> str:
    """One row as a JSON line (no newline): UTF-8 kept, unknown types as strings."""
    return json.dumps(obj, ensure_ascii=False, default=str)


class JsonlWriter:
    """Append rows and flush+fsync each batch, so a crash loses at most the row being written."""

    def __init__(self, path: str | Path, *, mode: str = "a") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "a":
            _truncate_partial_line(self.path)
        self._fh = self.path.open(mode, encoding="utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        self._fh.write(dumps(row) + "\n")

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)
        self.flush()

    def flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows to a new file atomically (temp file, fsync, rename); return the count."""
    n = 0
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
            n += 1
    return n


def _truncate_partial_line(path: Path) -> None:
    """Drop a trailing half-written line left by a crash, so appends start on a clean line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return
        # Walk back to the last newline.
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            data = fh.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return
            pos = start
        fh.truncate(0)
