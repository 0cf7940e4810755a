"""The stages of a run, one shape each: `run(records, stats) -> Iterator[records]`.

    ingest    Path                      -> IngestSummary   (load -> chunk -> embed -> index)
    generate  Index                     -> QAPair | Rejected (candidates with evidence, each
                                           call's candidates through `CheckStage`, checkpointed)
    check     Candidate                 -> QAPair | Rejection (verdicts; batched, fans out)
    dedup     QAPair | Rejected         -> QAPair | Rejected (duplicates become rejections)
    health    QAPair                    -> dict            (diversity, coverage, narrowing)
    report    (pairs, rejected, summary) -> report.html

Records pass between stages in memory; disk holds only checkpoints (the LLM call cache, the
generate stage's rows, the index manifest) and outputs. Every drop is counted once, with its
reason codes, in `Stats`, which goes to summary.json and the report (datatrove's filters do the
same with their exclusion writers and stats); a code counts once per record it dropped
(`grounded.types.count_reasons`, the one rule every count of drops follows). Fan-out work goes through an executor
(`grounded.executors`): in this process by default, or Ray.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from grounded.generation import GenerateSummary
    from grounded.index import Index
    from grounded.ingestion import IngestSummary

from grounded.rundir import atomic_write_text
from grounded.types import Chunk, QAPair, Reason, Rejection, Verdict, count_reasons

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
R = TypeVar("R")

# A rejection made in this run, or a row an earlier run wrote (kept verbatim, so a rerun rewrites
# the same bytes).
Rejected = Rejection | Mapping[str, Any]
CHECK_BATCH = 64


@dataclass
class StageStats:
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


class Stats:
    """Every stage's counts in one place; `rejected_by_reason` is what the summary and report show."""

    def __init__(self) -> None:
        self.stages: dict[str, StageStats] = {}

    def stage(self, name: str) -> StageStats:
        """The counts of stage `name` (created on first use, in run order)."""
        if name not in self.stages:
            self.stages[name] = StageStats(name)
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


def rejected_row(rejected: Rejected) -> dict[str, Any]:
    """A rejection as the row `rejected.jsonl` holds."""
    return rejected.to_dict() if isinstance(rejected, Rejection) else dict(rejected)


class Stage(Protocol[In, Out]):
    """A step of a run: a generator over one stream of records, counting what it drops."""

    name: str

    def run(self, records: Iterable[In], stats: Stats) -> Iterator[Out]: ...


def collect(
    records: Iterable[QAPair | Rejected], stats: Stats
) -> tuple[list[QAPair], list[Rejected]]:
    """The end of the stream: kept pairs and rejections, each in arrival order. Every drop of
    the run is counted here, once, under the stage that made it."""
    kept: list[QAPair] = []
    rejected: list[Rejected] = []
    for rec in records:
        if isinstance(rec, QAPair):
            kept.append(rec)
            continue
        rejected.append(rec)
        stage = rec.stage if isinstance(rec, Rejection) else str(rec.get("stage") or "unknown")
        stats.drop(stage, rec)
    return kept, rejected


# ---------------------------------------------------------------- ingest


class IngestStage:
    """Files and folders -> one IngestSummary; the documents' chunks are embedded into `index`.

    Unchanged files are skipped by the index manifest (the checkpoint); skipped files are drops
    with reason `skipped`.
    """

    name = "ingest"

    def __init__(self, index: Index, *, executor: Any = None, **options: Any) -> None:
        self.index = index
        self.executor = executor
        self.options = options

    def run(self, records: Iterable[Path], stats: Stats) -> Iterator[IngestSummary]:
        from grounded.ingestion import ingest

        st = stats.stage(self.name)
        started = time.perf_counter()
        summary = ingest(list(records), index=self.index, executor=self.executor, **self.options)
        st.seconds += time.perf_counter() - started
        st.records_in += summary.files
        st.records_out += summary.files - len(summary.skipped)
        for skipped in summary.skipped:
            stats.drop(
                self.name,
                Rejection(self.name, (Reason("skipped", f"{skipped.path}: {skipped.reason}"),)),
            )
        yield summary


# ---------------------------------------------------------------- generate


class GenerateStage:
    """An index -> every row of the generate checkpoint folder: kept pairs and rejections.

    Each LLM call's candidates go through `CheckStage` (in the executor's workers when it has
    them) before they are written to `out` (qa.jsonl, rejected.jsonl: the checkpoint a rerun
    resumes from, paying for no call twice); rows of earlier runs come first. LLM calls stay
    in this process, under one concurrency and rate limit.
    """

    name = "generate"

    def __init__(self, *, checker: Any, executor: Any = None, **options: Any) -> None:
        self.checker = checker
        self.executor = executor
        self.options = options
        self.summary: GenerateSummary | None = None

    def run(self, records: Iterable[Index], stats: Stats) -> Iterator[QAPair | Rejected]:
        from grounded.generation import generate

        for index in records:
            rows: list[QAPair | Rejected] = []
            self.summary = generate(
                index=index,
                checker=self.checker,
                executor=self.executor,
                sink=rows.append,
                **self.options,
            )
            st, chk = stats.stage(self.name), stats.stage(CheckStage.name)
            st.records_in += self.summary.calls
            st.records_out += self.summary.candidates
            st.seconds += max(0.0, self.summary.elapsed_s - self.summary.check_seconds)
            chk.seconds += self.summary.check_seconds
            chk.records_in += self.summary.candidates
            # Kept pairs in an order that does not depend on which call finished first (nor on
            # the run that wrote them), so dedup's ties, and so the kept set, are the same on every
            # executor and every rerun.
            rows.sort(key=_pair_order)
            yield from rows


def _pair_order(rec: QAPair | Rejected) -> tuple[int, int, str]:
    if not isinstance(rec, QAPair):
        return (1, 0, "")  # rejections after the pairs, in arrival order (a stable sort)
    task = rec.metadata.get("task", 0)
    return (0, task if isinstance(task, int) else 0, rec.id)


class NoCheck:
    """A checker that keeps every pair; the verdict says it was not checked (`--no-check`)."""

    checks = False  # the summary then says checked: false

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        return Verdict(True, 1.0, (Reason("unchecked", "generated with --no-check"),))


# ---------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class Candidate:
    """A generated pair with the passages it was written from: what the check stage judges."""

    pair: QAPair
    sources: tuple[Chunk, ...]


def check_batch(checker: Any, batch: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
    """Verdicts for a batch (the checker's `check_many` when it has one); runs in any worker,
    the checker given or sent by reference to Ray."""
    from grounded.checker.stream import check_batch as verdicts_of

    return verdicts_of(_resolve(checker), batch)


_RESOLVED: dict[str, Any] = {}


def _resolve(holder: Any) -> Any:
    """A checker sent by reference (a one-item list holding a Ray ObjectRef), fetched once per worker."""
    if not isinstance(holder, list):
        return holder
    ref = holder[0]
    key = ref.hex()
    if key not in _RESOLVED:
        import ray

        _RESOLVED[key] = ray.get(ref)
    return _RESOLVED[key]


class CheckStage:
    """Candidates -> kept pairs (verdict attached) or `check` rejections with the checker's reasons.

    With a Ray executor the batches go to Ray workers (the checker is shipped once through the
    object store); a checker with an LLM judge stays in the driver, where the LLM calls keep their
    one concurrency and rate limit. In the driver, `acheck` checks in the stage's one check
    thread, so the event loop never blocks on check work (close the stage to stop the thread).
    """

    name = "check"

    def __init__(
        self, checker: Any, *, executor: Any = None, batch_size: int = CHECK_BATCH
    ) -> None:
        self.checker = checker
        self.executor = executor
        self.batch_size = batch_size
        self._shared: Any = None
        self._thread: ThreadPoolExecutor | None = None
        remote = executor is not None and getattr(executor, "name", "") == "ray"
        self.remote = remote and getattr(checker, "judge", None) is None

    def _target(self) -> Any:
        if not self.remote:
            return self.checker
        if self._shared is None:
            self._shared = [self.executor.put(self.checker)]
        return self._shared

    def run(self, records: Iterable[Candidate], stats: Stats) -> Iterator[QAPair | Rejection]:
        """Verdicts in input order, `batch_size` candidates per batch (several batches in flight)."""
        from grounded.checker.stream import batched
        from grounded.executors import ordered

        batches = batched(records, self.batch_size)
        if self.remote:
            results: Iterator[tuple[list[Candidate], list[Verdict]]] = ordered(
                self.executor, check_batch, batches, args=lambda b: (self._target(), _items(b))
            )
        else:
            results = ((b, check_batch(self.checker, _items(b))) for b in batches)
        for batch, verdicts in results:
            yield from self._decide(batch, verdicts, stats)

    async def acheck(
        self, candidates: Sequence[Candidate], stats: Stats | None = None
    ) -> list[QAPair | Rejection]:
        """`run` for an event loop, which never blocks on it: the batch is checked in a Ray worker
        or in the check thread, and the judge's calls are awaited."""
        if not candidates:
            return []
        items = _items(candidates)
        if self.remote:
            fut = self.executor.submit(check_batch, self._target(), items)
            verdicts = list(await asyncio.wrap_future(fut))
        elif getattr(self.checker, "judge", None) is None:
            verdicts = await self.in_thread(check_batch, self.checker, items)
        elif hasattr(self.checker, "_scored"):
            verdicts = await self._judged(items)
        else:  # another checker's own acheck
            verdicts = [await self.checker.acheck(p, s) for p, s in items]
        return list(self._decide(candidates, verdicts, stats))

    async def _judged(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """The built-in checker with a judge: its check work in the check thread, the judge's
        LLM calls awaited on the loop (which holds their cache and limits), as its `acheck` does."""
        checker = self.checker
        verdicts = []
        for ctx, (reasons, signals, score) in await self.in_thread(checker._scored, items):
            judged = await checker.judge.arun(ctx) if checker._wants_judge(score) else None
            verdicts.append(checker._finish(ctx, reasons, signals, score, judged=judged))
        return verdicts

    def in_thread(self, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        """`fn(*args)` in the check thread. One thread: checks (and the generation's per-reply
        work, which queues here too) run one at a time in the order they were asked for, so the
        checker's models and caches are never shared between threads."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="grounded-check")
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def warm(self) -> None:
        """Load the built-in checker's models now, before the event loop waits on replies: a
        model's first load holds the GIL for stretches of up to a quarter second that the check
        thread cannot slice (another checker loads as it goes; an LLM judge or reader is not
        called)."""
        from grounded.checker.context import Context
        from grounded.checker.scoring import PipelineChecker

        checker = self.checker
        if self.remote or not isinstance(checker, PipelineChecker):
            return
        ctxs = [Context(p, s, answer_only=checker.answer_only) for p, s in _warm_up_items()]
        for ctx in ctxs:
            checker._lexical(ctx)
        # Every model check, whatever its policy would pick, unless it calls an LLM.
        for model, _ in checker.models:
            if getattr(model, "llm", None) is not None:
                continue
            try:
                model.prefetch(ctxs)
                for ctx in ctxs:
                    model.run(ctx)
            except Exception:  # noqa: BLE001, S112 - a model that cannot load fails where it is needed
                continue

    def close(self) -> None:
        """Stop the check thread (after the check it is running, if any)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
            self._thread = None

    def _decide(
        self, batch: Sequence[Candidate], verdicts: Sequence[Verdict], stats: Stats | None
    ) -> Iterator[QAPair | Rejection]:
        st = stats.stage(self.name) if stats is not None else None
        for cand, verdict in zip(batch, verdicts, strict=True):
            pair = replace(cand.pair, verdict=verdict)
            if st is not None:
                st.records_in += 1
            if verdict.supported:
                if st is not None:
                    st.records_out += 1
                yield pair
                continue
            # counted where the stream ends (`collect`), like every other drop
            yield Rejection("check", tuple(verdict.reasons), pair=pair, provenance=pair.provenance)


def _warm_up_items() -> list[tuple[QAPair, Sequence[Chunk]]]:
    """A pair and its passage that run every part of the built-in checker (`CheckStage.warm`)."""
    from grounded.types import Evidence

    text = (
        "The old bridge at Kelso has five arches. "
        "It was rebuilt in 1754 by Scottish masons after a flood."
    )
    chunk = Chunk(id="warm-up", doc_id="warm-up", text=text, start=0, end=len(text))
    start = text.index("It was")
    evidence = Evidence("warm-up", "warm-up", start, len(text), text[start:], 1.0)
    pair = QAPair(
        id="warm-up",
        question="When was the bridge at Kelso rebuilt?",
        answer="1754",
        evidence=(evidence,),
        doc_ids=("warm-up",),
        chunk_ids=("warm-up",),
    )
    return [(pair, [chunk])]


def _items(batch: Sequence[Candidate]) -> list[tuple[QAPair, Sequence[Chunk]]]:
    return [(c.pair, c.sources) for c in batch]


# ---------------------------------------------------------------- dedup


class DedupStage:
    """Kept pairs -> the same pairs less duplicates, which become `dedup` rejections; rejections pass."""

    name = "dedup"

    def __init__(
        self, *, embedder: Any = "minilm", near: float | None = 0.9, semantic: float | None = 0.92
    ) -> None:
        self.embedder = embedder
        self.near = near
        self.semantic = semantic

    def run(
        self, records: Iterable[QAPair | Rejected], stats: Stats
    ) -> Iterator[QAPair | Rejected]:
        """Rejections first as they come, then the kept pairs and the duplicates found among them."""
        from grounded.dedup import dedup

        pairs: list[QAPair] = []
        for rec in records:
            if isinstance(rec, QAPair):
                pairs.append(rec)
            else:
                yield rec
        st = stats.stage(self.name)  # after the stages upstream, so stats keep the run's order
        st.records_in += len(pairs)
        started = time.perf_counter()
        kept, removed = dedup(pairs, near=self.near, semantic=self.semantic, embedder=self.embedder)
        st.seconds += time.perf_counter() - started
        st.records_out += len(kept)
        yield from kept
        yield from removed


# ---------------------------------------------------------------- health and report


class HealthStage:
    """Kept pairs -> one health dict (diversity, question types, coverage of the index's documents)."""

    name = "health"

    def __init__(
        self,
        *,
        documents: Sequence[Mapping[str, Any]] | None = None,
        embedder: Any = "minilm",
        reference: str | Path | None = None,
    ) -> None:
        self.documents = documents
        self.embedder = embedder
        self.reference = reference

    def run(self, records: Iterable[QAPair], stats: Stats) -> Iterator[dict[str, Any]]:
        from grounded.eval.dataset import dataset_health
        from grounded.qaset import QASet

        st = stats.stage(self.name)
        started = time.perf_counter()
        pairs = tuple(records)
        st.records_in += len(pairs)
        qaset = QASet(pairs)
        if self.documents is not None:
            docs = tuple(dict(d) for d in self.documents)
            qaset = replace(
                qaset, documents=docs, chunks_total=sum(int(d.get("chunks") or 0) for d in docs)
            )
        health = dataset_health(qaset, reference=self.reference, embedder=self.embedder)
        st.seconds += time.perf_counter() - started
        st.records_out += 1
        yield health


class ReportStage:
    """(pairs, rejection rows, summary, health) -> `report.html`, rendered from memory."""

    name = "report"

    def __init__(self, out_dir: str | Path, *, index: Any = None) -> None:
        self.out_dir = Path(out_dir)
        self.index = index  # the run's open index (the report reads source passages from it)

    def write(
        self,
        pairs: Sequence[QAPair],
        rejected: Sequence[Mapping[str, Any]],
        summary: Mapping[str, Any],
        health: Mapping[str, Any],
        stats: Stats,
    ) -> Path:
        """Write the report and return its path (the file appears whole or not at all)."""
        from grounded.eval.report import render

        st = stats.stage(self.name)
        started = time.perf_counter()
        data = {
            "run": self.out_dir,
            "pairs": list(pairs),
            "rejected": list(rejected),
            "summary": dict(summary),
        }
        if self.index is not None:
            data["index"] = self.index
        html = render(data, health, title=f"grounded report: {self.out_dir.resolve().name}")
        path = self.out_dir / "report.html"
        atomic_write_text(path, html)
        st.records_in += len(pairs)
        st.records_out += 1
        st.seconds += time.perf_counter() - started
        return path
