"""One generate run's calls: rounds of tasks, each call asked (with one repair request), its
candidates checked and read back, its rows written in task order to the checkpoint files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from grounded.errors import LLMError, LLMFatalError
from grounded.generation.evidence import build_pair, constrain_schema
from grounded.generation.plan import (
    STOP_BUDGET,
    STOP_EXHAUSTED,
    STOP_FAILING,
    STOP_REACHED,
    STOP_ROUNDS,
    GenerateSummary,
    Sink,
    Task,
    _Planner,
    _reply_key,
    _Written,
)
from grounded.jsonl import JsonlWriter
from grounded.llm import LLM, Completion
from grounded.llm.structured import Repair, arepair
from grounded.prompting import ParsedReply, Prompt, ReplyPair, parse_reply
from grounded.stages.base import Ledger
from grounded.stages.check import CheckStage
from grounded.stages.verify import VerifyStage
from grounded.types import Candidate, Provenance, QAPair, Reason, Rejection

R = TypeVar("R")
# One reply's rows, keyed: kept pairs, rejections.
Rows = tuple[list[tuple[str, QAPair]], list[tuple[str, Rejection]]]

FSYNC_INTERVAL_S = 1.0
MAX_INVALID_RETRIES = 3  # fresh asks per call, one per rerun, after its reply yielded no pair


@dataclass(frozen=True, slots=True)
class Asking:
    """How each call is asked: in which language, with the quotes (and short answers) limited to
    the passages' text in the schema, the schema sent how, and asked afresh on a rerun when a
    cached reply yielded nothing."""

    language: str = "en"
    quote_choices: bool = False
    format_style: str = "json_schema"
    retry_invalid: bool = True


@dataclass(slots=True)
class _Reply:
    """What one call (its request, and a repair request if one was needed) yielded."""

    completions: list[Completion]
    pairs: list[ReplyPair]
    dropped: list[tuple[str, str, str]]
    error: str = ""
    raw: str = ""

    @property
    def cached(self) -> bool:
        return all(c.cached for c in self.completions)


class _Run:
    """One generate run: executes tasks, writes rows as each call finishes, counts reasons."""

    def __init__(
        self,
        *,
        llm: LLM,
        prompt: Prompt,
        asking: Asking,
        check: CheckStage | None,
        verify: VerifyStage | None,
        summary: GenerateSummary,
        out_dir: Path,
        params: dict[str, Any],
        written: _Written,
        sink: Sink | None = None,
    ) -> None:
        self.llm = llm
        self.verify = verify
        self.prompt = prompt
        self.language = asking.language
        self.check = check
        self.check_seconds = 0.0
        self._checking = 0
        self._check_started = 0.0
        self.sink = sink
        self.summary = summary
        self.params = params
        self.written = written
        self.ledger = Ledger()  # this invocation's drops, by stage (generate, check, verify)
        self.run_keys: set[str] = set()
        self.call_costs: dict[str, float] = {}
        self.asked = 0  # pairs asked for by the calls that answered
        self.kept_in_calls = 0  # of those, pairs the checks kept (written before or not)
        self._synced: dict[int, float] = {}
        self.qa = JsonlWriter(out_dir / "qa.jsonl")
        self.rejected = JsonlWriter(out_dir / "rejected.jsonl")
        self.quote_choices = asking.quote_choices
        self.format_style = asking.format_style
        self.retry_invalid = asking.retry_invalid
        self._bar: Any = None
        from grounded import __version__

        self.version = __version__
        # the round's jobs whose reply has arrived (a fatal error lets them finish their rows)
        self._replied: set[asyncio.Future[Any]] = set()

    def close(self) -> None:
        self.qa.close()
        self.rejected.close()
        if self._bar is not None:
            self._bar.close()

    @property
    def kept_total(self) -> int:
        return len(self.written.kept)

    async def execute(
        self, planner: _Planner, first: list[Task], *, progress: bool, max_rounds: int | None
    ) -> None:
        s = self.summary
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=s.requested,
                initial=min(self.kept_total, s.requested),
                unit="pair",
                desc="generate",
            )
        tasks = first
        while True:
            if not tasks:
                s.stopped = STOP_EXHAUSTED
                return
            s.calls += len(tasks)
            s.rounds += 1
            failed = await self._round(tasks)
            if self.kept_total >= s.requested:
                s.stopped = STOP_REACHED
            elif failed == len(tasks):
                s.stopped = STOP_FAILING  # more rounds would only multiply the failing requests
            elif s.calls >= s.max_calls:
                s.stopped = STOP_BUDGET
            elif max_rounds is not None and s.rounds >= max_rounds:
                s.stopped = STOP_ROUNDS
            else:
                rate = self.kept_in_calls / self.asked if self.asked else 1.0
                tasks = planner.plan(
                    s.requested - self.kept_total, limit=s.max_calls - s.calls, yield_rate=rate
                )
                continue
            return

    async def _round(self, tasks: Sequence[Task]) -> int:
        """Run the round's calls; how many failed. A fatal error cancels the rest at once.

        The calls run at once and their replies are cached as they arrive, but their rows are
        written in task order: the files, and which pairs fill `n`, never depend on which call
        finished first, so every executor and every rerun after a kill ends with the same rows.
        """
        turns = [asyncio.Event() for _ in tasks]
        broken = [False] * len(tasks)  # the turn ended without its rows: later ones write none
        jobs = [
            asyncio.ensure_future(self._in_turn(t, i, turns, broken)) for i, t in enumerate(tasks)
        ]
        try:
            answered = await asyncio.gather(*jobs)
        except BaseException:
            for job in jobs:
                # a task whose reply arrived finishes its rows (its call is paid for) as long as
                # every task before it does; the others stop now
                if job not in self._replied:
                    job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
        finally:
            self._replied.difference_update(jobs)
        return sum(1 for ok in answered if not ok)

    async def _in_turn(
        self, task: Task, i: int, turns: list[asyncio.Event], broken: list[bool]
    ) -> bool:
        """`_task`, its rows written once the task before it has written its own. A task that
        ends without its rows (a fatal error, a cancel) ends the writing for every later task,
        so the files always hold a run of tasks from the first, as an uninterrupted run would."""
        rows: list[Rows] = []
        try:
            answered = await self._task(task, rows)
            if i:
                await turns[i - 1].wait()
            if i and broken[i - 1]:
                broken[i] = True
                return answered
            for kept, rejected in rows:
                await self._off_loop(self._write, *self._emit(kept, rejected))
        except BaseException:
            broken[i] = True
            raise
        finally:
            turns[i].set()
        return answered

    async def _task(self, task: Task, rows: list[Rows]) -> bool:
        """One planned call to its rows (into `rows`); False when the call failed (a rerun
        retries it)."""
        attempt = 0
        while True:
            try:
                reply = await self._ask(task, attempt)
                current = asyncio.current_task()
                if current is not None:
                    self._replied.add(current)  # paid for: a fatal error elsewhere lets it finish
                rows.append(await self._record(task, reply))
            except LLMFatalError:
                raise
            except LLMError as exc:
                # Not written: a rerun retries it (transient outages must not become rejections).
                self.summary.errors.append(str(exc))
                return False
            # A cached reply that yielded nothing was seen by an earlier run: ask afresh.
            if (
                reply.pairs
                or not reply.cached
                or not self.retry_invalid
                or attempt >= MAX_INVALID_RETRIES
            ):
                if not reply.pairs:
                    self.summary.invalid_replies += 1
                return True
            attempt += 1
            self.summary.retried_invalid += 1

    def _format(self, task: Task, n: int) -> dict[str, Any] | None:
        response_format = self.prompt.response_format(n, self.format_style)
        if self.quote_choices and response_format is not None:
            response_format = constrain_schema(
                response_format, task.chunks, answers=self.prompt.kind != "unanswerable"
            )
        return response_format

    def _messages(self, task: Task, attempt: int) -> list[dict[str, str]]:
        messages = self.prompt.messages(
            [c.text for c in task.chunks], n=task.n, language=self.language
        )
        if attempt:
            # A different request (and cache key) than the reply that could not be used.
            last = messages[-1]
            messages[-1] = {
                **last,
                "content": last["content"]
                + (
                    f"\n\n(Attempt {attempt + 1}: an earlier reply could not be used. "
                    "Reply with only the JSON object.)"
                ),
            }
        return messages

    async def _ask(self, task: Task, attempt: int) -> _Reply:
        """The call, and one repair request for what its reply lacked (the llm package's one
        repair loop); usable pairs of both are kept."""

        async def read(text: str) -> ParsedReply:
            return await self._off_loop(parse_reply, text)

        def needs(readings: Sequence[ParsedReply]) -> Repair | None:
            parsed = readings[0]
            # Pairs beyond those asked for are candidates too: the cap on n applies when writing.
            missing = task.n - len(parsed.pairs)
            if parsed.complete or missing <= 0:
                return None
            request = _repair_request(parsed, missing, have=len(parsed.pairs))
            return Repair(request, self._format(task, missing))

        done = await arepair(
            self.llm,
            self._messages(task, attempt),
            read,
            needs,
            response_format=self._format(task, task.n),
        )
        first, parsed = done.completions[0], done.readings[0]
        reply = _Reply([first], list(parsed.pairs), list(parsed.dropped), parsed.error, first.text)
        if len(done.completions) == 1:
            return reply
        second, again = done.completions[1], done.readings[1]
        reply.completions.append(second)
        reply.pairs += again.pairs
        reply.dropped += again.dropped
        if not reply.pairs:
            reply.error = f"{parsed.problems()}; after repair: {again.problems()}"
            reply.raw = first.text + "\n---repair---\n" + second.text
        return reply

    async def _record(self, task: Task, reply: _Reply) -> Rows:
        """Turn a reply into rows, each carrying its share of the call's cost, to write."""
        call_id = reply.completions[0].call_id
        self.summary.candidates += len(reply.pairs) + len(reply.dropped)
        self.asked += task.n
        prov, slots, candidates = await self._off_loop(self._candidates, task, reply)
        self.call_costs[call_id] = prov[0].call_cost
        # The check stage: a verdict per candidate (in a worker when the executor has them).
        checked = iter(await self._check(candidates))
        kept: list[tuple[str, QAPair]] = []
        rejected: list[tuple[str, Rejection]] = []
        for slot in slots:  # rows keep the order of the reply's pairs
            key, rec = slot if slot is not None else ("", next(checked))
            if isinstance(rec, Rejection):
                rejected.append((key or (rec.pair.id if rec.pair else ""), rec))
            else:
                kept.append((rec.id, rec))
        for j, (code, raw, why) in enumerate(reply.dropped, len(reply.pairs)):
            rejected.append(
                (
                    _reply_key(call_id, raw),
                    Rejection("generate", (Reason(code, why),), raw=raw, provenance=prov[j]),
                )
            )
        if not reply.pairs and not reply.dropped:
            rej = Rejection(
                "generate",
                (Reason("invalid_reply", reply.error),),
                raw=reply.raw,
                provenance=prov[0],
            )
            rejected.append((_reply_key(call_id, reply.raw), rej))
        kept = await self._verify(task, kept, rejected)
        return kept, rejected

    def _candidates(
        self, task: Task, reply: _Reply
    ) -> tuple[list[Provenance], list[tuple[str, QAPair | Rejection] | None], list[Candidate]]:
        """A reply's provenance per row, and its pairs with evidence located in the passages:
        candidates, or rejections of generation's own (a slot per pair, None for a candidate)."""
        rows = len(reply.pairs) + len(reply.dropped) or 1
        prov = [self._provenance(reply.completions, i, rows) for i in range(rows)]
        slots: list[tuple[str, QAPair | Rejection] | None] = []
        candidates: list[Candidate] = []
        for i, reply_pair in enumerate(reply.pairs):
            pair, problems = build_pair(reply_pair, task, prov[i], kind=self.prompt.kind)
            if problems:
                slots.append(
                    (pair.id, Rejection("generate", tuple(problems), pair=pair, provenance=prov[i]))
                )
                continue
            slots.append(None)
            candidates.append(Candidate(pair, task.chunks))
        return prov, slots, candidates

    async def _off_loop(self, fn: Callable[..., R], *args: Any) -> R:
        """`fn(*args)` in the check stage's one thread, behind the checks asked for before it:
        the loop keeps reading and caching replies while a reply is parsed, its quotes located
        and its rows written (a run without a check stage has no thread to compete with)."""
        if self.check is None:
            return fn(*args)
        return await self.check.in_thread(fn, *args)

    async def _check(self, candidates: Sequence[Candidate]) -> list[QAPair | Rejection]:
        """The check stage's results for one call's candidates (all kept when nothing checks)."""
        if self.check is None:
            return [c.pair for c in candidates]
        # Wall time with at least one check in flight: concurrent calls' checks overlap.
        if self._checking == 0:
            self._check_started = time.perf_counter()
        self._checking += 1
        try:
            return await self.check.acheck(candidates)
        finally:
            self._checking -= 1
            if self._checking == 0:
                self.check_seconds += time.perf_counter() - self._check_started

    async def _verify(
        self, task: Task, kept: list[tuple[str, QAPair]], rejected: list[tuple[str, Rejection]]
    ) -> list[tuple[str, QAPair]]:
        """The verify stage on the call's checked pairs (one reader request); its rejections to
        `rejected`."""
        if self.verify is None or not kept or all(key in self.written.keys for key, _ in kept):
            return kept  # a rerun that wrote these pairs already needs no reader call
        verified = await self.verify.averify(task.chunks, [p for _, p in kept])
        self.summary.reader_calls += verified.calls
        out = []
        for (key, _), rec, unverified in zip(
            kept, verified.results, verified.unverified, strict=True
        ):
            if isinstance(rec, Rejection):
                rejected.append((key, rec))
                continue
            if unverified and key not in self.written.keys:
                self.summary.unverified += 1
            out.append((key, rec))
        return out

    def _provenance(self, completions: Sequence[Completion], row: int, rows: int) -> Provenance:
        """Row `row` of `rows` from one call: its share of the call's tokens and cost."""
        cost = sum(c.cost for c in completions)
        return Provenance(
            model=self.llm.model,
            params=dict(self.params),
            prompt=self.prompt.name,
            prompt_hash=self.prompt.sha256,
            call_id=completions[0].call_id,
            prompt_tokens=_share(sum(c.prompt_tokens for c in completions), row, rows),
            completion_tokens=_share(sum(c.completion_tokens for c in completions), row, rows),
            cost=round(cost / rows, 10),
            call_cost=round(cost, 10),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            grounded_version=self.version,
            language=self.language,
        )

    def _emit(
        self, kept: list[tuple[str, QAPair]], rejected: list[tuple[str, Rejection]]
    ) -> tuple[list[Rejection], list[QAPair]]:
        """Count each result once per run; what is new to write (never more kept than requested)."""
        new_rej: list[Rejection] = []
        for key, rej in rejected:
            if self._seen_in_run(key):
                continue
            self.summary.rejected += 1
            self.ledger.drop(rej.stage, rej)
            if key not in self.written.keys:
                self.written.keys.add(key)
                new_rej.append(rej)
                if self.sink is not None:
                    self.sink(rej)
        new_kept: list[QAPair] = []
        for key, pair in kept:
            if self._seen_in_run(key):
                continue
            self.kept_in_calls += 1
            if key in self.written.keys:
                continue  # already in qa.jsonl (or rejected there by an earlier run)
            if self.kept_total >= self.summary.requested:
                self.summary.surplus += (
                    1  # not written: a rerun with a larger n gets it from the cache
                )
                continue
            self.written.keys.add(key)
            self.written.kept.add(key)
            new_kept.append(pair)
            if self.sink is not None:
                self.sink(pair)
            if self._bar is not None and self._bar.n < self._bar.total:
                self._bar.update(1)
        self.summary.written += len(new_kept) + len(new_rej)
        return new_rej, new_kept

    def _write(self, rejected: Sequence[Rejection], kept: Sequence[QAPair]) -> None:
        """Append rows to the files, rejections first: a kill between the two writes then loses
        no kept pair's accounting."""
        for writer, batch in ((self.rejected, rejected), (self.qa, kept)):
            if batch:
                for row in batch:
                    writer.write(row.to_dict())
                self._flush(writer)

    def _seen_in_run(self, key: str) -> bool:
        if key in self.run_keys:
            self.summary.duplicates += 1
            return True
        self.run_keys.add(key)
        return False

    def _flush(self, writer: JsonlWriter) -> None:
        """Hand rows to the OS now (a killed process loses nothing); fsync at most once a second."""
        writer._fh.flush()  # the OS keeps written data when the process dies
        now = time.monotonic()
        if now - self._synced.get(id(writer), 0.0) >= FSYNC_INTERVAL_S:
            writer.flush()  # flush + fsync, for power loss
            self._synced[id(writer)] = now


def _repair_request(parsed: ParsedReply, missing: int, *, have: int) -> str:
    """Ask for the pairs a reply lacked, saying what was wrong with it."""
    kept = f"The {have} complete pair(s) are kept. " if have else ""
    return (
        f"Your reply could not be fully used: {parsed.problems()}\n{kept}"
        f"Reply again with only one valid JSON object that follows the schema, holding "
        f"{missing} {'new ' if have else ''}pair(s), no other text."
    )


def _share(total: int, row: int, rows: int) -> int:
    """Row `row`'s part of `total` split over `rows` (the parts sum to `total`)."""
    return total // rows + (1 if row < total % rows else 0)
