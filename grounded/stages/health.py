"""health: the run's records pass through; the kept pairs' diversity, question types and
coverage of the index's documents go to the summary. Work in grounded.eval.dataset."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.stages.base import Stage, Timer
from grounded.types import QAPair, Rejected

if TYPE_CHECKING:
    from grounded.stages.context import Context


class HealthStage(Stage):
    """Records -> the same records; `health(pairs, ctx)` is the health dict of the kept pairs
    (against a human `reference` set when given), which `process` puts in the run's summary."""

    name = "health"

    def __init__(self, *, reference: str | Path | None = None) -> None:
        self.reference = reference

    def process(
        self, records: Iterable[QAPair | Rejected], ctx: Context
    ) -> Iterator[QAPair | Rejected]:
        held = list(records)
        ctx.notify("[4/4] measure diversity and coverage, write the report")
        health = self.health([r for r in held if isinstance(r, QAPair)], ctx)
        if ctx.summary is not None:
            ctx.summary.health = health
            ctx.summary.coverage = health.get("coverage") or {}
            ctx.summary.narrowing = health.get("narrowing") or {}
        yield from held

    def health(self, pairs: Iterable[QAPair], ctx: Context) -> dict[str, Any]:
        from grounded.eval.dataset import dataset_health
        from grounded.qaset import QASet

        counts = ctx.ledger.stage(self.name)
        with Timer(counts):
            kept = tuple(pairs)
            counts.records_in += len(kept)
            qaset = QASet(kept)
            if ctx.index is not None:
                docs = tuple(dict(d) for d in ctx.index.documents())
                chunks = sum(int(d.get("chunks") or 0) for d in docs)
                qaset = replace(qaset, documents=docs, chunks_total=chunks)
            health = dataset_health(qaset, reference=self.reference, embedder=ctx.embedder)
        counts.records_out += 1
        return health
