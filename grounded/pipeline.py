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
from grounded.errors import ConfigError
from grounded.jsonl import read_jsonl, write_jsonl
from grounded.llm import DEFAULT_LOCAL_MODEL, is_local
from grounded.rundir import lock_output
from grounded.types import QAPair, Rejection

Notify = Callable[[str], None]


@dataclass
class RunSummary:
    """What a run produced, where it lies, and what it cost.

    cost: what this invocation spent; cost_total: every call behind the folder's rows.
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
    rpm: float | None = None,
    tpm: float | None = None,
    temperature: float | None = None,
    max_calls: int | None = None,
    response_format: str = "auto",
    workers: int = 1,
    threshold: float | None = None,
    judge: str | None = None,
    verify: str | None = None,
    reference: str | Path | None = None,
    progress: bool = False,
    notify: Notify | None = None,
) -> RunSummary:
    """Turn documents into a checked, deduplicated QA set with a health report.

        >>> summary = grounded.run(["examples/corpus"], out="out", n=10)  # doctest: +SKIP
        >>> summary.kept, summary.failed_calls, summary.report  # doctest: +SKIP

    Raises OutputLockedError when another process writes to `out`, LLMFatalError when the
    model refuses every call (bad key, unknown model). Calls that failed for good are counted
    in `failed_calls` and `errors`; a rerun retries them.
    """
    offline.configure()
    from grounded.checker import default_checker
    from grounded.dedup import dedup
    from grounded.eval.report import write_report
    from grounded.generate import generate
    from grounded.ingest import ingest

    if judge and verify not in (None, "judge"):
        raise ConfigError(f"--judge goes with --verify judge, not --verify {verify}")
    out_dir = Path(out)
    with lock_output(out_dir):
        say = notify or (lambda _msg: None)
        started = time.monotonic()
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
            workers=workers,
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
            rpm=rpm,
            tpm=tpm,
            temperature=temperature,
            max_calls=max_calls,
            response_format=response_format,
            api_base=api_base,
            cache=out_dir / "cache" / "llm.sqlite",
            checker=checker,
            progress=progress,
            verify=verify or ("judge" if judge else None),
        )
        summary.generate = generated.to_dict()
        summary.cost = float(summary.generate.get("cost", 0.0))
        summary.cost_total = float(summary.generate.get("cost_total", summary.cost))
        summary.llm_calls = int(summary.generate.get("llm_calls", 0))
        summary.cached_calls = int(summary.generate.get("cached_calls", 0))
        summary.failed_calls = int(summary.generate.get("failed_calls", 0))
        summary.errors = distinct_errors(summary.generate.get("errors") or [])

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
        gen_model = str(summary.generate.get("model") or model or "")
        if is_local(gen_model):
            candidates = summary.kept + sum(1 for row in rejected_rows if row.get("pair"))
            summary.notice = local_model_notice(gen_model, summary.kept, candidates)

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


def distinct_errors(errors: Sequence[str]) -> list[dict[str, Any]]:
    """Each distinct failure message once, with how often it happened, most frequent first."""
    return [{"message": msg, "count": count} for msg, count in Counter(map(str, errors)).most_common()]


def local_model_notice(model: str, kept: int, candidates: int) -> str:
    """One plain line: what the bundled model kept, and the command for a capable model."""
    name = "the bundled SmolLM2-135M model" if model == DEFAULT_LOCAL_MODEL else f"the local model {model}"
    return (
        f"{name}: {kept} of {candidates} candidates kept; for a real dataset use a capable model: "
        "grounded run DOCS --out OUT --model openai/gpt-4o-mini "
        "(or ollama/llama3.1, or --api-base for a llama.cpp/vLLM server)"
    )


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
