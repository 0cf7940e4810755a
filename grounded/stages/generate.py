"""generate: the ingested index -> every row of the generate checkpoint folder: kept pairs and
rejections. Work in grounded.generation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.options import GenerateOptions, ModelOptions
from grounded.stages.base import Stage
from grounded.types import QAPair, Rejected

if TYPE_CHECKING:
    from grounded.generation import GenerateSummary
    from grounded.stages.check import CheckStage
    from grounded.stages.context import Context


class GenerateStage(Stage):
    """Ingested documents -> the rows of `out` (the checkpoint a rerun resumes from, paying for no
    call twice): each LLM call's candidates go through `check`, the check stage the pipeline
    built (in the executor's workers when it has them), and the verify stage, before they are
    written; rows of earlier runs come first. LLM calls stay in this process, under one
    concurrency and rate limit. Drops of the stages it runs per call are counted here, as their
    rejections leave it.
    """

    name = "generate"
    makes = frozenset({"generate", "check", "verify"})

    def __init__(
        self,
        options: GenerateOptions,
        model: ModelOptions,
        *,
        out: str | Path,
        check: CheckStage | None,
        cache: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.options = options
        self.model = model
        self.out = out
        self.check = check
        self.cache = cache
        self.progress = progress
        self.summary: GenerateSummary | None = None

    def process(self, records: Iterable[Any], ctx: Context) -> Iterator[QAPair | Rejected]:
        from grounded.generation.api import generate_into

        for _ in records:  # what ingest made of the input: the index in ctx holds it
            pass
        name = self.model.model or "the local Qwen2.5-Coder-1.5B model"
        ctx.notify(f"[2/4] generate {self.options.n} pairs with {name} and check them")
        rows: list[QAPair | Rejected] = []
        self.summary = summary = generate_into(
            ctx.index,
            self.out,
            self.options,
            self.model,
            check=self.check,
            cache=self.cache,
            progress=self.progress,
            sink=rows.append,
        )
        counts, checks = ctx.ledger.stage(self.name), ctx.ledger.stage("check")
        counts.records_in += summary.calls
        counts.records_out += summary.candidates
        counts.seconds += max(0.0, summary.elapsed_s - summary.check_seconds)
        checks.seconds += summary.check_seconds
        checks.records_in += summary.candidates
        if ctx.summary is not None:
            ctx.summary.take_generate(summary.to_dict())
        # Kept pairs in an order that does not depend on which call finished first (nor on the
        # run that wrote them), so dedup's ties, and so the kept set, are the same on every
        # executor and every rerun.
        rows.sort(key=_pair_order)
        yield from rows


def _pair_order(rec: QAPair | Rejected) -> tuple[int, int, str]:
    if not isinstance(rec, QAPair):
        return (1, 0, "")  # rejections after the pairs, in arrival order (a stable sort)
    task = rec.metadata.get("task", 0)
    return (0, task if isinstance(task, int) else 0, rec.id)
