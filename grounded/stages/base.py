"""The stage shape and the drop ledger every stage counts into.

A stage is `run(records, ctx) -> Iterator[records]` over the typed records of `grounded.types`
(datatrove's `PipelineStep`). The base `Stage.run` wraps the stage's own `process`: each
rejection a stage makes is counted in the run's one `Ledger` as it leaves the stage, under the
stage that made it, each of its reason codes once (`grounded.types.count_reasons`, as datatrove's
`BaseFilter.run` counts `dropped_{reason}`); rejections made upstream pass through uncounted.
summary.json, the report and `grounded check --json` all read the ledger.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from grounded.types import QAPair, Rejected, Rejection, count_reasons, rejected_stage

if TYPE_CHECKING:
    from grounded.stages.context import Context


@dataclass
class StageCounts:
    """One stage's counts: records in and out, drops by reason code, wall time."""

    name: str
    records_in: int = 0
    records_out: int = 0
    dropped: int = 0
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        rate = round(self.records_in / self.seconds, 1) if self.seconds > 0 else None
        return {
            "records_in": self.records_in,
            "records_out": self.records_out,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason.most_common()),
            "seconds": round(self.seconds, 3),
            "records_per_s": rate,
        }


class Ledger:
    """Every stage's counts in one place; `rejected_by_reason` is what the summary and report show."""

    def __init__(self) -> None:
        self.stages: dict[str, StageCounts] = {}

    def stage(self, name: str) -> StageCounts:
        """The counts of stage `name` (created on first use, in run order)."""
        if name not in self.stages:
            self.stages[name] = StageCounts(name)
        return self.stages[name]

    def drop(self, stage: str, rejected: Rejected) -> None:
        """Count one dropped record under `stage`, each of its reason codes once."""
        st = self.stage(stage)
        st.dropped += 1
        st.dropped_by_reason.update(count_reasons([rejected]))

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Reason codes of every dropped pair or reply (skipped input files are the ingest's own)."""
        total: Counter[str] = Counter()
        for name, st in self.stages.items():
            if name != "ingest":
                total.update(st.dropped_by_reason)
        return dict(total.most_common())

    def to_dict(self) -> dict[str, Any]:
        return {name: st.to_dict() for name, st in self.stages.items()}


class Stage:
    """A step of a run: a generator over one stream of records that counts what it drops.

    Subclasses implement `process`; `run` counts each rejection the stage makes (its `makes`:
    its own name, and the stages it runs inside itself, as generate runs check and verify per
    call) as it leaves; records in and out and seconds are the stage's own to count.
    """

    name: ClassVar[str] = "stage"
    makes: ClassVar[frozenset[str]] = frozenset()

    def process(self, records: Iterable[Any], ctx: Context) -> Iterator[Any]:
        raise NotImplementedError

    def run(self, records: Iterable[Any], ctx: Context) -> Iterator[Any]:
        makes = self.makes or frozenset((self.name,))
        for rec in self.process(records, ctx):
            if not isinstance(rec, QAPair) and _is_rejected(rec):
                stage = rejected_stage(rec)
                if stage in makes:
                    ctx.ledger.drop(stage, rec)
            yield rec


def _is_rejected(rec: Any) -> bool:
    return isinstance(rec, Rejection) or (isinstance(rec, dict) and "reasons" in rec)


def split(records: Iterable[QAPair | Rejected]) -> tuple[list[QAPair], list[Rejected]]:
    """The end of the stream: kept pairs and rejections, each in arrival order."""
    kept: list[QAPair] = []
    rejected: list[Rejected] = []
    for rec in records:
        (kept if isinstance(rec, QAPair) else rejected).append(rec)  # type: ignore[arg-type]
    return kept, rejected


class Timer:
    """Adds the seconds of a `with` block to a stage's counts."""

    def __init__(self, counts: StageCounts) -> None:
        self.counts = counts
        self.started = 0.0

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.counts.seconds += time.perf_counter() - self.started
