"""What every stage of a run shares (`Context`), and what the run produced (`RunSummary`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grounded.embed import DEFAULT_EMBEDDER
from grounded.stages.base import Ledger

if TYPE_CHECKING:
    from grounded.executors import Executor
    from grounded.index import Index
    from grounded.rundir import RunFolder

Notify = Callable[[str], None]


def _quiet(_msg: str) -> None:
    return None


@dataclass
class RunSummary:
    """What a run produced, where it lies, and what it cost.

    cost: what this invocation spent; cost_total: every call behind the folder's rows.
    stages: per stage records in/out, drops by reason, seconds and records/s.
    """

    out: str
    kept: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    coverage: dict[str, Any] = field(default_factory=dict)
    narrowing: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    cost_total: float = 0.0
    llm_calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    notice: str = ""
    seconds: float = 0.0
    executor: str = "local"
    files: dict[str, str] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    generate: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> str:
        return self.files.get("report", "")

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["report"] = self.report
        return data

    def take_generate(self, gen: dict[str, Any]) -> None:
        """The generate stage's figures the run summary shows at the top."""
        self.generate = gen
        self.cost = float(gen.get("cost", 0.0))
        self.cost_total = float(gen.get("cost_total", self.cost))
        self.llm_calls = int(gen.get("llm_calls", 0))
        self.cached_calls = int(gen.get("cached_calls", 0))
        self.failed_calls = int(gen.get("failed_calls", 0))
        self.errors = distinct_errors(gen.get("errors") or [])


def distinct_errors(errors: Sequence[str]) -> list[dict[str, Any]]:
    """Each distinct failure message once, with how often it happened, most frequent first."""
    return [
        {"message": msg, "count": count} for msg, count in Counter(map(str, errors)).most_common()
    ]


@dataclass
class Context:
    """What the stages of one run share: the drop ledger, the run folder, the executor, the open
    index and its embedder (which also measures dedup and health), and the summary they fill."""

    ledger: Ledger = field(default_factory=Ledger)
    folder: RunFolder | None = None
    executor: Executor | None = None
    index: Index | None = None
    embedder: Any = DEFAULT_EMBEDDER
    summary: RunSummary | None = None
    notify: Notify = _quiet
    started: float = field(default_factory=time.monotonic)
