"""ingest: paths -> IngestSummary (load -> chunk -> embed -> index), work in grounded.ingestion."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from grounded.options import IngestOptions
from grounded.stages.base import Stage, Timer
from grounded.types import Reason, Rejection

if TYPE_CHECKING:
    from grounded.ingestion import IngestSummary
    from grounded.stages.context import Context


class IngestStage(Stage):
    """Files and folders -> one IngestSummary; the documents' chunks are embedded into the run's
    index (`ctx.index`).

    Unchanged files are skipped by the index manifest (the checkpoint); skipped files are drops
    with reason `skipped`. Files are parsed in `workers` processes, or in the executor's workers
    when it is remote (Ray).
    """

    name = "ingest"

    def __init__(
        self, options: IngestOptions | None = None, *, workers: int = 1, progress: bool = False
    ) -> None:
        self.options = options or IngestOptions()
        self.workers = workers
        self.progress = progress

    def process(self, records: Iterable[Path], ctx: Context) -> Iterator[IngestSummary]:
        from grounded.ingestion import ingest

        if ctx.index is None:
            raise ValueError("the ingest stage needs the run's open index (ctx.index)")
        paths = list(records)
        ctx.notify(f"[1/4] ingest {', '.join(str(p) for p in paths)} -> {ctx.index.path}")
        counts = ctx.ledger.stage(self.name)
        remote = ctx.executor if ctx.executor is not None and ctx.executor.remote else None
        with Timer(counts):
            summary = ingest(
                paths,
                index=ctx.index,
                executor=remote,
                chunk_tokens=self.options.chunk_tokens,
                overlap_tokens=self.options.overlap_tokens,
                workers=self.workers,
                progress=self.progress,
            )
        counts.records_in += summary.files
        counts.records_out += summary.files - len(summary.skipped)
        for skipped in summary.skipped:
            reason = Reason("skipped", f"{skipped.path}: {skipped.reason}")
            ctx.ledger.drop(self.name, Rejection(self.name, (reason,)))
        if ctx.summary is not None:
            ctx.summary.ingest = summary.to_dict()
        yield summary
