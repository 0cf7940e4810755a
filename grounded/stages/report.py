"""report: the run's records -> its outputs: `qa.jsonl`, `rejected.jsonl` and `report.html`,
rendered from memory (grounded.eval.report), with the summary's figures filled in."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from grounded.jsonl import write_jsonl
from grounded.llm import DEFAULT_LOCAL_MODEL, is_local
from grounded.rundir import atomic_write_text
from grounded.stages.base import Stage, Timer, split
from grounded.types import QAPair, Rejected, rejected_row

if TYPE_CHECKING:
    from grounded.stages.context import Context


class ReportStage(Stage):
    """Kept pairs and rejections -> the run folder's outputs; yields the report's path.

    Each file appears whole or not at all. The summary (`ctx.summary`) gets the kept and rejected
    counts, the drops by reason from the ledger, the local model's notice and the files.
    """

    name = "report"

    def process(self, records: Iterable[QAPair | Rejected], ctx: Context) -> Iterator[Path]:
        from grounded.eval.report import render

        if ctx.folder is None or ctx.summary is None:
            raise ValueError("the report stage needs the run folder and summary (ctx)")
        folder, summary = ctx.folder, ctx.summary
        kept, rejected = split(records)
        write_jsonl(folder.qa, (p.to_dict() for p in kept))
        rows = [rejected_row(r) for r in rejected]
        write_jsonl(folder.rejected, rows)
        summary.kept = len(kept)
        summary.rejected = len(rows)
        summary.duplicates = sum(1 for row in rows if row.get("stage") == "dedup")
        summary.rejected_by_reason = ctx.ledger.rejected_by_reason
        gen_model = str(summary.generate.get("model") or "")
        if is_local(gen_model):
            candidates = summary.kept + sum(1 for row in rows if row.get("pair"))
            summary.notice = local_model_notice(gen_model, summary.kept, candidates)
        summary.files = {
            "qa": str(folder.qa),
            "rejected": str(folder.rejected),
            "summary": str(folder.summary),
            "index": str(ctx.index.path) if ctx.index is not None else "",
            "report": str(folder.report),
        }
        summary.seconds = round(time.monotonic() - ctx.started, 2)
        summary.stages = ctx.ledger.to_dict()
        counts = ctx.ledger.stage(self.name)
        with Timer(counts):
            data = {
                "run": folder.path,
                "pairs": kept,
                "rejected": rows,
                "summary": summary.to_dict(),
            }
            if ctx.index is not None:
                data["index"] = ctx.index  # the report reads source passages from it
            title = f"grounded report: {folder.path.resolve().name}"
            atomic_write_text(folder.report, render(data, summary.health, title=title))
        counts.records_in += len(kept)
        counts.records_out += 1
        summary.stages = ctx.ledger.to_dict()
        yield folder.report


def local_model_notice(model: str, kept: int, candidates: int) -> str:
    """One plain line: what the local model kept, and the command for a hosted model."""
    if model == DEFAULT_LOCAL_MODEL:
        name, advice = "the local Qwen2.5-Coder-1.5B model", "for more pairs an hour"
    elif model.endswith("/smollm2"):
        name, advice = "the tiny SmolLM2-135M model", "for a real dataset"
    else:
        name, advice = f"the local model {model}", "for more pairs an hour"
    return (
        f"{name}: {kept} of {candidates} candidates kept; {advice} use a hosted model: "
        "grounded run DOCS --out OUT --model openai/gpt-4o-mini "
        "(or ollama/llama3.1, or --api-base for a llama.cpp/vLLM server)"
    )
