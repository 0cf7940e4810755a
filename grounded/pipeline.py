"""The main job: documents -> index -> generated pairs -> checked -> deduplicated -> health report.

`run` is the stage list of `grounded.stages` and one loop over it (datatrove's `_run_for_rank`):
ingest (files -> index), generate (pairs with evidence; each call's candidates through the check
and verify stages), dedup, health, report, over one stream of records held in memory. The index,
the embedder and the checker are opened once here and closed at the end; the embedder chosen for
ingest also measures dedup and health. Disk holds only checkpoints (index manifest, LLM call
cache, the generate stage's rows in `OUT/stages/generate`) and outputs (`qa.jsonl`,
`rejected.jsonl`, `report.html`, `summary.json`, each written once). Every stage is resumable:
ingest skips unchanged files, generation serves finished calls from its cache and skips pairs
already written, and the last stages are cheap and recomputed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Unpack

from grounded import offline
from grounded.checker import default_checker
from grounded.errors import ConfigError
from grounded.options import RunOptions, RunSettings
from grounded.rundir import RunFolder, atomic_write_json
from grounded.stages import (
    CheckStage,
    Context,
    DedupStage,
    GenerateStage,
    HealthStage,
    IngestStage,
    NoCheck,
    ReportStage,
    RunSummary,
    Stage,
)

__all__ = ["RunSummary", "run", "run_stages"]


def run(
    paths: Sequence[str | Path],
    *,
    options: RunOptions | None = None,
    **settings: Unpack[RunSettings],
) -> RunSummary:
    """Turn documents into a checked, deduplicated QA set with a health report.

        >>> summary = grounded.run(["examples/corpus"], out="out", n=10)  # doctest: +SKIP
        >>> summary.kept, summary.failed_calls, summary.report  # doctest: +SKIP

    The keywords are the fields of `grounded.options.RunOptions`' sections, flat (`out`, `model`,
    `n`, `embedder`, `threshold`, `executor`, ...), or `options` holds them built.
    executor: "local" (this process; `workers` processes parse files) or "ray": parsing,
    chunking, embedding and checking fan out over Ray workers (a local Ray with `workers` CPUs,
    or the cluster at `ray_address`, which needs the index on a Chroma server, `chroma_url`);
    LLM calls stay in this process under one concurrency and rate limit either way.
    Raises OutputLockedError when another process writes to `out`, LLMFatalError when the
    model refuses every call (bad key, unknown model). Calls that failed for good are counted
    in `failed_calls` and `errors`; a rerun retries them.
    """
    if options is None:
        if "out" not in settings:
            raise TypeError("run() needs out=, the run folder")
        flat: dict[str, Any] = dict(settings)
        options = RunOptions.from_settings(out=flat.pop("out"), **flat)
    elif settings:
        raise TypeError("run() takes options or keywords, not both")
    return run_stages([Path(p) for p in paths], options)


def run_stages(paths: Sequence[Path], options: RunOptions) -> RunSummary:
    """`run` with its options built: the stage list, and one loop over it."""
    offline.configure()
    _validate(options)
    folder = RunFolder(options.out)
    index_dir = Path(options.index) if options.index is not None else folder.index
    with folder.lock(), ExitStack() as opened:
        ctx = _open(opened, folder, index_dir, options)
        check = CheckStage(
            NoCheck() if options.no_check else default_checker(options.check), executor=ctx.executor
        )
        gen = options.generate
        if options.check.judge and gen.verify is None:
            gen = replace(gen, verify="judge")  # --judge implies --verify judge
        generate = GenerateStage(
            gen,
            options.model,
            out=folder.path / "stages" / "generate",
            check=check,
            cache=folder.llm_cache_path(),
            progress=options.progress,
        )
        stages: list[Stage] = [
            IngestStage(
                options.ingest, workers=options.executor.workers, progress=options.progress
            ),
            generate,
            DedupStage(),
            HealthStage(reference=options.reference),
            ReportStage(),
        ]
        records: Iterable[Any] = paths
        for stage in stages:
            records = stage.run(records, ctx)
        deque(records, maxlen=0)  # the stream is pulled through every stage by its last
        assert ctx.summary is not None
        atomic_write_json(folder.summary, ctx.summary.to_dict())
        return ctx.summary


def _validate(options: RunOptions) -> None:
    check, gen, ex = options.check, options.generate, options.executor
    if check.judge and gen.verify not in (None, "judge"):
        raise ConfigError(f"--judge goes with --verify judge, not --verify {gen.verify}")
    if check.judge and options.no_check:
        raise ConfigError("--judge runs inside the checker: drop --no-check")
    if gen.dry_run:
        raise ConfigError("a run does not dry-run", hint="use grounded generate --dry-run")
    if ex.executor == "ray" and ex.ray_address and not options.ingest.chroma_url:
        raise ConfigError(
            "on a Ray cluster the index must live on a Chroma server every worker can reach",
            hint="pass --chroma-url http://HOST:8000 (chroma run --path DIR)",
        )


def _open(opened: ExitStack, folder: RunFolder, index_dir: Path, options: RunOptions) -> Context:
    """What a run opens once and closes at the end: the executor and the index (with its
    embedder, which also measures dedup and health)."""
    from grounded.executors import FanOutEmbedder, open_executor
    from grounded.index import Index

    ex = options.executor
    # Local: `workers` parse processes are the ingest stage's own; Ray: `workers` CPUs locally.
    executor = open_executor(
        ex.executor, address=ex.ray_address, num_cpus=ex.workers if ex.workers > 1 else None
    )
    opened.callback(executor.close)
    embedder: Any = options.ingest.embedder
    if executor.remote:
        embedder = FanOutEmbedder(embedder, executor)
    index = Index(index_dir, chroma_url=options.ingest.chroma_url, embedder=embedder, create=True)
    opened.callback(index.close)
    summary = RunSummary(out=str(folder.path), executor=executor.name)
    notify = options.notify or (lambda _msg: None)
    return Context(
        folder=folder,
        executor=executor,
        index=index,
        embedder=index.embedder,
        summary=summary,
        notify=notify,
    )
