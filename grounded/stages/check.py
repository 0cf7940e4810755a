"""check: Candidate -> QAPair with its verdict, or a `check` Rejection with the checker's reasons.

The checks themselves live in `grounded.checker`; this stage batches candidates, fans the batches
out (Ray workers, or the stage's one check thread under an event loop) and turns verdicts into
records. Generation hands each call's candidates to it (`acheck`), and `grounded check` runs it
over a file's pairs (`run`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from grounded.stages.base import Ledger, Stage
from grounded.types import Candidate, Chunk, QAPair, Reason, Rejected, Rejection, Verdict

if TYPE_CHECKING:
    from grounded.stages.context import Context

R = TypeVar("R")
CHECK_BATCH = 64


class NoCheck:
    """A checker that keeps every pair; the verdict says it was not checked (`--no-check`)."""

    checks = False  # the summary then says checked: false

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        return Verdict(True, 1.0, (Reason("unchecked", "generated with --no-check"),))


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


class CheckStage(Stage):
    """Candidates -> kept pairs (verdict attached) or `check` rejections with the checker's reasons.

    With a Ray executor the batches go to Ray workers (the checker is shipped once through the
    object store); a checker with an LLM judge stays in the driver, where the LLM calls keep their
    one concurrency and rate limit. In the driver, `acheck` checks in the stage's one check
    thread, so the event loop never blocks on check work (close the stage to stop the thread).
    """

    name = "check"

    def __init__(
        self,
        checker: Any = None,
        *,
        executor: Any = None,
        workers: int = 1,
        batch_size: int = CHECK_BATCH,
    ) -> None:
        self._checker = checker  # None: the built-in checker, loaded when first needed
        self.executor = executor
        self.workers = workers  # processes of its own for `run` (an LLM judge stays here)
        self.batch_size = batch_size
        self._shared: Any = None
        self._thread: ThreadPoolExecutor | None = None

    @property
    def checker(self) -> Any:
        if self._checker is None:
            from grounded.checker import default_checker

            self._checker = default_checker()
        return self._checker

    @checker.setter
    def checker(self, checker: Any) -> None:
        self._checker = checker
        self._shared = None

    @property
    def checks(self) -> bool:
        """False for a checker that keeps everything unchecked (`NoCheck`); loads nothing."""
        return self._checker is None or getattr(self._checker, "checks", True) is not False

    @property
    def remote(self) -> bool:
        """Batches go to Ray workers: a Ray executor, and no LLM judge (which stays here)."""
        ray = self.executor is not None and getattr(self.executor, "name", "") == "ray"
        return ray and getattr(self.checker, "judge", None) is None

    def _target(self) -> Any:
        if not self.remote:
            return self.checker
        if self._shared is None:
            self._shared = [self.executor.put(self.checker)]
        return self._shared

    def process(
        self, records: Iterable[Candidate | Rejected], ctx: Context
    ) -> Iterator[QAPair | Rejected]:
        """Verdicts in input order, `batch_size` candidates per batch (several batches in
        flight); rejections made before the check (a row that could not be read) pass through in
        their place, counted as this stage's own when they are `check` rejections."""
        held: deque[Rejected | None] = deque()  # read ahead, in order; None: a candidate

        def candidates() -> Iterator[Candidate]:
            for rec in records:
                if isinstance(rec, Candidate):
                    held.append(None)
                    yield rec
                else:
                    held.append(rec)

        for cand, verdict in self._verdicts(candidates()):
            while (ahead := held.popleft()) is not None:
                yield ahead  # a rejection read before this candidate
            yield from self._decide([cand], [verdict], ctx.ledger)
        yield from (rec for rec in held if rec is not None)

    def _verdicts(self, candidates: Iterable[Candidate]) -> Iterator[tuple[Candidate, Verdict]]:
        """Each candidate with its verdict, in order: batches on Ray workers, in `workers`
        processes (`grounded check --workers N`), or here."""
        from grounded.checker.stream import batched, check_items
        from grounded.executors import ordered

        if self.remote:
            batches = batched(candidates, self.batch_size)
            for batch, verdicts in ordered(
                self.executor, check_batch, batches, args=lambda b: (self._target(), _items(b))
            ):
                yield from zip(batch, verdicts, strict=True)
            return
        items = ((c.pair, c.sources) for c in candidates)
        for (pair, sources), verdict in check_items(
            self.checker, items, batch_size=self.batch_size, workers=self.workers
        ):
            yield Candidate(pair, tuple(sources)), verdict

    async def acheck(
        self, candidates: Sequence[Candidate], ledger: Ledger | None = None
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
        elif hasattr(self.checker, "score_batch"):
            verdicts = await self._judged(items)
        else:  # another checker's own acheck
            verdicts = [await self.checker.acheck(p, s) for p, s in items]
        return list(self._decide(candidates, verdicts, ledger))

    async def _judged(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """The built-in checker with a judge: its check work in the check thread, the judge's
        LLM calls awaited on the loop (which holds their cache and limits), as its `acheck` does."""
        checker = self.checker
        verdicts = []
        for ctx, (reasons, signals, score) in await self.in_thread(checker.score_batch, items):
            judged = await checker.judge.arun(ctx) if checker.wants_judge(score) else None
            verdicts.append(checker.finish(ctx, reasons, signals, score, judged=judged))
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
            checker.lexical(ctx)
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
        self, batch: Sequence[Candidate], verdicts: Sequence[Verdict], ledger: Ledger | None
    ) -> Iterator[QAPair | Rejection]:
        st = ledger.stage(self.name) if ledger is not None else None
        for cand, verdict in zip(batch, verdicts, strict=True):
            pair = replace(cand.pair, verdict=verdict)
            if st is not None:
                st.records_in += 1
            if verdict.supported:
                if st is not None:
                    st.records_out += 1
                yield pair
                continue
            # counted by the stage base as it leaves the stage, like every other drop
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
