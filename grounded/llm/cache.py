"""The call cache: every finished call is stored, keyed by a hash of what was asked, before use.

A rerun after a crash never pays for a call twice. The key and the stored columns are a file
format: caches written by earlier versions must replay unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.errors import ConfigError
from grounded.llm.models import Message
from grounded.llm.options import CONNECTION_PARAMS
from grounded.store import SQLiteStore


@dataclass(frozen=True, slots=True)
class Completion:
    """One model reply with its usage; `cached` replies cost nothing new."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    call_id: str = ""
    latency_s: float = 0.0
    # The first generated token's alternatives, (token, logprob), when the call asked for
    # `logprobs` (a Yes/No judge reads its probability from them).
    top_logprobs: tuple[tuple[str, float], ...] = ()


def call_key(
    model: str,
    messages: Sequence[Message],
    params: Mapping[str, Any],
    response_format: Mapping[str, Any] | None,
) -> str:
    """The cache key of a call: sha256 over its canonical JSON (connection settings left out)."""
    payload = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "params": {k: v for k, v in params.items() if k not in CONNECTION_PARAMS},
        "response_format": response_format,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """Content-addressed store of finished LLM calls (SQLite in WAL mode, safe across crashes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store = _call_store(self.path)

    def get(self, key: str) -> Completion | None:
        """The stored reply of call `key`, or None."""
        row = self._store.read_one(
            "SELECT model, text, prompt_tokens, completion_tokens, cost FROM calls WHERE key=?",
            (key,),
        )
        if row is None:
            return None
        model, text, pt, ct, cost = row
        top = self._store.read_one("SELECT top FROM logprobs WHERE key=?", (key,))
        alternatives = tuple((str(t), float(lp)) for t, lp in json.loads(top[0])) if top else ()
        return Completion(text, model, int(pt), int(ct), float(cost), True, key, 0.0, alternatives)

    def put(self, key: str, completion: Completion) -> None:
        """Store a finished call before its result is used."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    completion.model,
                    completion.text,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.cost,
                    time.time(),
                ),
            )
            if completion.top_logprobs:
                db.execute(
                    "INSERT OR REPLACE INTO logprobs VALUES (?, ?)",
                    (key, json.dumps(completion.top_logprobs)),
                )

    def __len__(self) -> int:
        row = self._store.read_one("SELECT COUNT(*) FROM calls")
        return int(row[0]) if row else 0

    def absorb(self, other: str | Path) -> int:
        """Copy in the calls another cache file holds and this one lacks; returns how many."""
        _call_store(Path(other)).close()  # an unreadable file fails here, naming it
        self._store.merge_from(other, "logprobs")
        return self._store.merge_from(other, "calls")

    def close(self) -> None:
        self._store.close()


def _call_store(path: Path) -> SQLiteStore:
    return SQLiteStore(
        path,
        schema=(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, text TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL, created REAL);"
            # a table of its own: caches written before it existed open unchanged
            "CREATE TABLE IF NOT EXISTS logprobs (key TEXT PRIMARY KEY, top TEXT)"
        ),
        what="LLM cache",
        error=ConfigError,
    )
