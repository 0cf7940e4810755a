"""One small SQLite helper behind grounded's on-disk tables (LLM call cache, embeddings, manifest).

    >>> db = SQLiteStore(
    ...     "out/cache/llm.sqlite", schema="CREATE TABLE IF NOT EXISTS t (k, v)"
    ... )  # doctest: +SKIP
    >>> db.write("INSERT INTO t VALUES (?, ?)", ("a", 1))
    ... db.read_one("SELECT v FROM t")  # doctest: +SKIP
    >>> vectors = KeyValueStore("index/embeddings.sqlite")  # doctest: +SKIP
    >>> vectors.put_many("minilm", [("k", b"...")])
    ... vectors.get_many("minilm", ["k"])  # doctest: +SKIP

Every store uses the WAL journal (readers never block the writer, a killed process loses at most
the write in flight), one lock per connection (threads share it) and a commit per write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grounded.errors import GroundedError

_BATCH = 500  # keys per `IN (...)`: well under SQLite's bound-parameter limit


class SQLiteStore:
    """A SQLite file shared by threads: WAL journal, one lock, a commit per write."""

    def __init__(
        self,
        path: str | Path,
        *,
        schema: str = "",
        what: str = "database",
        error: type[GroundedError] = GroundedError,
        timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=timeout)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (not a power cut) in WAL mode.
            self._db.execute("PRAGMA synchronous=NORMAL")
            if schema:
                self._db.executescript(schema)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise error(f"cannot open the {what} {self.path}: {exc}") from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement and commit it."""
        with self.transaction() as db:
            db.execute(sql, params)

    def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement per row, committed together."""
        with self.transaction() as db:
            db.executemany(sql, rows)

    def merge_from(self, other: str | Path, table: str) -> int:
        """Copy the rows of `table` that another file of the same layout has and this one lacks."""
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
            try:
                cur = self._db.execute(
                    f"INSERT OR IGNORE INTO main.{table} SELECT * FROM other.{table}"
                )
                self._db.commit()
                return max(cur.rowcount, 0)
            finally:
                self._db.execute("DETACH DATABASE other")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Statements committed together, or rolled back together when one fails."""
        with self._lock:
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeyValueStore:
    """(namespace, key) -> bytes in one table of a SQLite file, read and written in batches.

    `columns` names the namespace, key and value columns, so existing tables keep their layout.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        table: str = "kv",
        columns: tuple[str, str, str] = ("ns", "key", "value"),
        what: str = "cache",
        error: type[GroundedError] = GroundedError,
    ) -> None:
        ns, key, value = columns
        self.table = table
        self._cols = columns
        self.store = SQLiteStore(
            path,
            schema=(
                f"CREATE TABLE IF NOT EXISTS {table} "
                f"({ns} TEXT, {key} TEXT, {value} BLOB, PRIMARY KEY ({ns}, {key}))"
            ),
            what=what,
            error=error,
        )

    @property
    def path(self) -> Path:
        return self.store.path

    def get(self, ns: str, key: str) -> bytes | None:
        """The value stored under (ns, key), or None."""
        return self.get_many(ns, [key]).get(key)

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, bytes]:
        """key -> value for the keys present under `ns`."""
        ns_col, key_col, value_col = self._cols
        out: dict[str, bytes] = {}
        for i in range(0, len(keys), _BATCH):
            part = list(keys[i : i + _BATCH])
            marks = ",".join("?" * len(part))
            rows = self.store.read(
                f"SELECT {key_col}, {value_col} FROM {self.table}"
                f" WHERE {ns_col} = ? AND {key_col} IN ({marks})",
                [ns, *part],
            )
            out.update((k, bytes(v)) for k, v in rows)
        return out

    def put(self, ns: str, key: str, value: bytes) -> None:
        """Store one value (replacing an older one)."""
        self.put_many(ns, [(key, value)])

    def put_many(self, ns: str, items: Iterable[tuple[str, bytes]]) -> None:
        """Store many values in one transaction."""
        self.store.write_many(
            f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?, ?)", [(ns, k, v) for k, v in items]
        )

    def __len__(self) -> int:
        row = self.store.read_one(f"SELECT COUNT(*) FROM {self.table}")
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the file."""
        self.store.close()
