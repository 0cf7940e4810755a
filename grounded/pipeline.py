"""The main job: documents -> index -> generated pairs -> checked -> deduplicated -> health report.

`run` composes the stages of `grounded.stages` over one stream of records held in memory:
ingest (files -> index), generate (pairs with evidence; each call's candidates through the check
stage), dedup, health, report. The index, the embedder and the checker are opened once here and
closed at the end; the embedder chosen for ingest also measures dedup and health. Disk holds only
checkpoints (index manifest, LLM call cache, the generate stage's rows in `OUT/stages/generate`)
and outputs (`qa.jsonl`, `rejected.jsonl`, `report.html`, `summary.json`, each written once).
Every stage is resumable: ingest skips unchanged files, generation serves finished calls from
its cache and skips pairs already written, and the last stages are cheap and recomputed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.errors import ConfigError
from grounded.jsonl import write_jsonl
from grounded.llm import DEFAULT_LOCAL_MODEL, is_local
from grounded.rundir import RunFolder, atomic_write_json
from grounded.stages import (
    DedupStage,
    GenerateStage,
    HealthStage,
    IngestStage,
    NoCheck,
    Rejected,
    ReportStage,
    Stats,
    collect,
    rejected_row,
)
from grounded.types import QAPair

Notify = Callable[[str], None]


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
    concurrency: int = 8,
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
    retry_invalid: bool = True,
    response_format: str = "auto",
    workers: int = 1,
    threshold: float | None = None,
    judge: str | None = None,
    verify: str | None = None,
    no_check: bool = False,
    reference: str | Path | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    notify: Notify | None = None,
) -> RunSummary:
    """Turn documents into a checked, deduplicated QA set with a health report.

        >>> summary = grounded.run(["examples/corpus"], out="out", n=10)  # doctest: +SKIP
        >>> summary.kept, summary.failed_calls, summary.report  # doctest: +SKIP

    executor: "local" (this process; `workers` processes parse files) or "ray": parsing,
    chunking, embedding and checking fan out over Ray workers (a local Ray with `workers` CPUs,
    or the cluster at `ray_address`, which needs the index on a Chroma server, `chroma_url`);
    LLM calls stay in this process under one concurrency and rate limit either way.
    Raises OutputLockedError when another process writes to `out`, LLMFatalError when the
    model refuses every call (bad key, unknown model). Calls that failed for good are counted
    in `failed_calls` and `errors`; a rerun retries them.
    """
    offline.configure()
    if judge and verify not in (None, "judge"):
        raise ConfigError(f"--judge goes with --verify judge, not --verify {verify}")
    if judge and no_check:
        raise ConfigError("--judge runs inside the checker: drop --no-check")
    if executor == "ray" and ray_address and not chroma_url:
        raise ConfigError(
            "on a Ray cluster the index must live on a Chroma server every worker can reach",
            hint="pass --chroma-url http://HOST:8000 (chroma run --path DIR)",
        )
    folder = RunFolder(out)
    with (
        folder.lock(),
        _Resources(
            index=Path(index) if index is not None else folder.index,
            chroma_url=chroma_url,
            embedder=embedder,
            executor=executor,
            ray_address=ray_address,
            workers=workers,
            threshold=threshold,
            judge=judge,
            no_check=no_check,
        ) as res,
    ):
        say = notify or (lambda _msg: None)
        started = time.monotonic()
        stats = Stats()
        summary = RunSummary(out=str(folder.path), executor=res.executor.name)

        say(f"[1/4] ingest {', '.join(str(p) for p in paths)} -> {res.index_dir}")
        ingest = IngestStage(
            res.index,
            executor=res.executor if res.executor.remote else None,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            workers=workers,
            progress=progress,
        )
        for ingested in ingest.run([Path(p) for p in paths], stats):
            summary.ingest = ingested.to_dict()

        say(
            f"[2/4] generate {n} pairs with {model or 'the local Qwen2.5-Coder-1.5B model'} and check them"
        )
        generate = GenerateStage(
            checker=res.checker,
            executor=res.executor,
            out=folder.path / "stages" / "generate",
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
            retry_invalid=retry_invalid,
            response_format=response_format,
            api_base=api_base,
            cache=folder.llm_cache_path(),
            progress=progress,
            verify=verify or ("judge" if judge else None),
        )
        records: Iterable[QAPair | Rejected] = generate.run([res.index], stats)

        say("[3/4] deduplicate")
        records = DedupStage(embedder=res.embedder).run(records, stats)
        kept, rejected = collect(records, stats)
        _take_generate(summary, generate.summary.to_dict() if generate.summary else {})
        write_jsonl(folder.qa, (p.to_dict() for p in kept))
        rejected_rows = [rejected_row(r) for r in rejected]
        write_jsonl(folder.rejected, rejected_rows)
        summary.kept = len(kept)
        summary.rejected = len(rejected_rows)
        summary.duplicates = sum(1 for row in rejected_rows if row.get("stage") == "dedup")
        summary.rejected_by_reason = stats.rejected_by_reason
        gen_model = str(summary.generate.get("model") or model or "")
        if is_local(gen_model):
            candidates = summary.kept + sum(1 for row in rejected_rows if row.get("pair"))
            summary.notice = local_model_notice(gen_model, summary.kept, candidates)

        say("[4/4] measure diversity and coverage, write the report")
        health = HealthStage(
            documents=res.index.documents(), embedder=res.embedder, reference=reference
        )
        summary.health = next(iter(health.run(kept, stats)))
        summary.coverage = summary.health.get("coverage") or {}
        summary.narrowing = summary.health.get("narrowing") or {}
        summary.files = {
            "qa": str(folder.qa),
            "rejected": str(folder.rejected),
            "summary": str(folder.summary),
            "index": str(res.index_dir),
            "report": str(folder.report),
        }
        summary.seconds = round(time.monotonic() - started, 2)
        summary.stages = stats.to_dict()
        ReportStage(folder.path, index=res.index).write(
            kept, rejected_rows, summary.to_dict(), summary.health, stats
        )
        summary.stages = stats.to_dict()
        atomic_write_json(folder.summary, summary.to_dict())
        return summary


class _Resources:
    """What a run opens once and closes at the end: executor, index (with its embedder), checker."""

    def __init__(
        self,
        *,
        index: Path,
        chroma_url: str | None,
        embedder: str,
        executor: str,
        ray_address: str | None,
        workers: int,
        threshold: float | None,
        judge: str | None,
        no_check: bool,
    ) -> None:
        from grounded.executors import FanOutEmbedder, open_executor
        from grounded.index import Index

        self.index_dir = index
        # what opened is closed again if a later step fails; kept for __exit__ once all opened
        with ExitStack() as stack:
            # Local: `workers` parse processes are the ingest stage's own; Ray: `workers` CPUs locally.
            self.executor = open_executor(
                executor, address=ray_address, num_cpus=workers if workers > 1 else None
            )
            stack.callback(self.executor.close)
            index_embedder: Any = embedder
            if self.executor.remote:
                index_embedder = FanOutEmbedder(embedder, self.executor)
            self.index = Index(
                self.index_dir, chroma_url=chroma_url, embedder=index_embedder, create=True
            )
            stack.callback(self.index.close)
            self.embedder = self.index.embedder  # the ingest embedder measures dedup and health too
            self.checker: Any = (
                NoCheck() if no_check else _default_checker(threshold=threshold, judge=judge)
            )
            self._stack = stack.pop_all()

    def __enter__(self) -> _Resources:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _default_checker(*, threshold: float | None, judge: str | None) -> Any:
    from grounded import default_checker

    return default_checker(threshold=threshold, judge=judge)


def _take_generate(summary: RunSummary, gen: dict[str, Any]) -> None:
    """The generate stage's figures the run summary shows at the top."""
    summary.generate = gen
    summary.cost = float(gen.get("cost", 0.0))
    summary.cost_total = float(gen.get("cost_total", summary.cost))
    summary.llm_calls = int(gen.get("llm_calls", 0))
    summary.cached_calls = int(gen.get("cached_calls", 0))
    summary.failed_calls = int(gen.get("failed_calls", 0))
    summary.errors = distinct_errors(gen.get("errors") or [])


def distinct_errors(errors: Sequence[str]) -> list[dict[str, Any]]:
    """Each distinct failure message once, with how often it happened, most frequent first."""
    return [
        {"message": msg, "count": count} for msg, count in Counter(map(str, errors)).most_common()
    ]


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
