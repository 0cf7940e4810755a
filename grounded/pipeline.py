"""The main job: documents -> index -> generated pairs -> checked -> deduplicated -> health report.

Every stage is resumable: ingest skips unchanged files, generation serves finished calls from
its cache and skips pairs already written, and the last stages are cheap and recomputed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.jsonl import read_jsonl, write_jsonl
from grounded.types import QAPair, Rejection

Notify = Callable[[str], None]


@dataclass
class RunSummary:
    """What a run produced, where it lies, and what it cost."""

    out: str
    kept: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    coverage: dict[str, Any] = field(default_factory=dict)
    narrowing: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    llm_calls: int = 0
    cached_calls: int = 0
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
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


def run(
    paths: Sequence[str | Path],
    *,
    out: str | Path,
    model: str | None = None,
    n: int = 20,
    prompt: str = "factoid",
    index: str | Path | None = None,
    chroma_url: str | None = None,
    chunk_tokens: int = 256,
    overlap_tokens: int = 32,
    embedder: str = "minilm",
    concurrency: int = 4,
    pairs_per_call: int = 3,
    language: str = "en",
    seed: int = 0,
    timeout: float | None = None,
    api_base: str | None = None,
    max_retries: int = 4,
    threshold: float | None = None,
    judge: str | None = None,
    reference: str | Path | None = None,
    progress: bool = False,
    notify: Notify | None = None,
) -> RunSummary:
    """Turn documents into a checked, deduplicated QA set with a health report.

        >>> summary = grounded.run(["examples/corpus"], out="out", n=10)  # doctest: +SKIP
        >>> summary.kept, summary.report  # doctest: +SKIP
    """
    offline.configure()
    from grounded.check import default_checker
    from grounded.dedup import dedup
    from grounded.eval.report import write_report
    from grounded.generate import generate
    from grounded.ingest import ingest

    say = notify or (lambda _msg: None)
    started = time.monotonic()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    index_dir = Path(index) if index is not None else out_dir / "index"
    stage_dir = out_dir / "stages" / "generate"
    summary = RunSummary(out=str(out_dir))

    say(f"[1/4] ingest {', '.join(str(p) for p in paths)} -> {index_dir}")
    ingested = ingest(
        [Path(p) for p in paths],
        index=index_dir,
        chroma_url=chroma_url,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        embedder=embedder,
        progress=progress,
    )
    summary.ingest = ingested.to_dict()

    say(f"[2/4] generate {n} pairs with {model or 'the local SmolLM2 model'} and check them")
    checker = default_checker(threshold=threshold, judge=judge)
    generated = generate(
        index=index_dir,
        chroma_url=chroma_url,
        out=stage_dir,
        n=n,
        model=model,
        prompt=prompt,
        concurrency=concurrency,
        pairs_per_call=pairs_per_call,
        language=language,
        seed=seed,
        timeout=timeout,
        max_retries=max_retries,
        api_base=api_base,
        cache=out_dir / "cache" / "llm.sqlite",
        checker=checker,
        progress=progress,
    )
    summary.generate = generated.to_dict()
    summary.cost = float(summary.generate.get("cost", 0.0))
    summary.llm_calls = int(summary.generate.get("llm_calls", 0))
    summary.cached_calls = int(summary.generate.get("cached_calls", 0))

    say("[3/4] deduplicate")
    pairs = [QAPair.from_dict(row) for row in _rows(stage_dir / "qa.jsonl")]
    kept, removed = dedup(pairs)
    rejected_rows = list(_rows(stage_dir / "rejected.jsonl"))
    rejected_rows += [r.to_dict() if isinstance(r, Rejection) else r for r in removed]
    qa_path = out_dir / "qa.jsonl"
    rejected_path = out_dir / "rejected.jsonl"
    write_jsonl(qa_path, (p.to_dict() for p in kept))
    write_jsonl(rejected_path, rejected_rows)
    summary.kept = len(kept)
    summary.rejected = len(rejected_rows)
    summary.duplicates = len(removed)
    reasons: Counter[str] = Counter()
    for row in rejected_rows:
        for reason in row.get("reasons") or ():
            reasons[str(reason.get("code", "unknown"))] += 1
    summary.rejected_by_reason = dict(reasons.most_common())

    say("[4/4] measure diversity and coverage, write the report")
    summary.health = _health(kept, index_dir, chroma_url=chroma_url, reference=reference)
    summary.coverage = summary.health.get("coverage") or {}
    summary.narrowing = summary.health.get("narrowing") or {}
    summary.files = {
        "qa": str(qa_path),
        "rejected": str(rejected_path),
        "summary": str(out_dir / "summary.json"),
        "index": str(index_dir),
        "report": str(out_dir / "report.html"),
    }
    summary.seconds = round(time.monotonic() - started, 2)
    _write_summary(out_dir / "summary.json", summary)
    report_path = write_report(out_dir, reference=reference)
    summary.files["report"] = str(report_path)
    _write_summary(out_dir / "summary.json", summary)
    return summary


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path)) if path.exists() else []


def _health(
    kept: Sequence[QAPair],
    index_dir: Path,
    *,
    chroma_url: str | None,
    reference: str | Path | None,
) -> dict[str, Any]:
    from grounded.eval.dataset import dataset_health

    return dataset_health(kept, index=index_dir, chroma_url=chroma_url, reference=reference)


def _write_summary(path: Path, summary: RunSummary) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
