"""The one SQLite helper: WAL, shared by threads, rolled back on error, old tables readable."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from grounded.errors import GroundedError
from grounded.store import KeyValueStore, SQLiteStore


def test_store_is_wal_and_shared_by_threads(tmp_path: Path) -> None:
    db = SQLiteStore(tmp_path / "x.sqlite", schema="CREATE TABLE IF NOT EXISTS t (k INTEGER)")
    assert db.read_one("PRAGMA journal_mode") == ("wal",)
    threads = [
        threading.Thread(
            target=lambda i=i: [
                db.write("INSERT INTO t VALUES (?)", (i * 100 + j,)) for j in range(50)
            ]
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.read_one("SELECT COUNT(DISTINCT k) FROM t") == (200,)
    db.close()


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = SQLiteStore(
        tmp_path / "x.sqlite", schema="CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)"
    )
    with pytest.raises(sqlite3.IntegrityError), db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (1)")
    assert db.read("SELECT k FROM t") == []


def test_an_unopenable_file_is_one_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GroundedError, match="cannot open the LLM cache .*not-a-db.sqlite"):
        SQLiteStore(bad, schema="CREATE TABLE IF NOT EXISTS t (k)", what="LLM cache")


def test_key_value_batches_namespaces_and_survives_reopen(tmp_path: Path) -> None:
    kv = KeyValueStore(tmp_path / "kv.sqlite")
    kv.put_many("a", [(str(i), bytes([i % 256])) for i in range(1200)])  # more than one IN batch
    kv.put("b", "1", b"other")
    got = kv.get_many("a", [str(i) for i in range(1300)])
    assert len(got) == 1200 and got["7"] == b"\x07"
    assert kv.get("b", "1") == b"other" and kv.get("a", "missing") is None
    kv.close()
    assert len(KeyValueStore(tmp_path / "kv.sqlite")) == 1201


def test_an_embedding_cache_written_before_the_helper_still_serves(tmp_path: Path) -> None:
    import numpy as np

    from grounded.embed import EmbeddingCache

    path = tmp_path / "embeddings.sqlite"
    old = sqlite3.connect(path)  # the layout the cache had before grounded.store
    old.execute(
        "CREATE TABLE vectors (embedder TEXT, key TEXT, vec BLOB, PRIMARY KEY (embedder, key))"
    )
    vec = np.arange(4, dtype=np.float32)
    old.execute("INSERT INTO vectors VALUES (?, ?, ?)", ("minilm", "k", vec.tobytes()))
    old.commit()
    old.close()
    cache = EmbeddingCache(path)
    assert np.array_equal(cache.get_many("minilm", ["k"])["k"], vec)
    assert cache.get_many("fast", ["k"]) == {}
