"""Generate grounded QA pairs from an index: seed chunks -> LLM -> aligned evidence -> checked.

Generation makes candidates (pairs whose quotes were found in the passages, as
`grounded.stages.Candidate`); each call's candidates go through the check stage
(`grounded.stages.CheckStage`, in a worker when the executor has them) before they are written.

`n` is the number of kept pairs wanted: calls run in rounds on new passages until `n` pairs are
kept, the call budget (`max_calls`) is spent, the passages run out, or a whole round of calls
fails. Each call's pairs are written as soon as the call and those planned before it have
finished (`qa.jsonl`, `rejected.jsonl`), so the rows, and which pairs fill `n` (the first kept in
task order), never depend on which call finished first; every reply is cached in SQLite as it
arrives, while earlier calls' candidates are still being checked. A rerun, after success or
`kill -9`, counts the pairs already written toward `n`, replays cached calls for free and skips
pairs already written, so nothing is paid for twice, lost, duplicated, or kept beyond `n`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from grounded import offline
from grounded.align import align, normalise
from grounded.errors import ConfigError, LLMError, LLMFatalError
from grounded.jsonl import JsonlWriter, read_jsonl
from grounded.llm import (
    LLM,
    LOCAL_TIMEOUT_S,
    Completion,
    _litellm,
    count_message_tokens,
    default_model,
    is_local,
    price,
)
from grounded.prompting import ParsedReply, Prompt, ReplyPair, load_prompt, parse_reply
from grounded.seeds import partners, seed_order
from grounded.stages import Candidate, CheckStage, Rejected
from grounded.text import content, sentence_spans, split_sentences, tokens_of
from grounded.types import Chunk, Evidence, Provenance, QAPair, Reason, Rejection, count_reasons

Sink = Callable[[QAPair | Rejected], None]
R = TypeVar("R")
# One reply's rows, keyed: kept pairs, rejections.
Rows = tuple[list[tuple[str, QAPair]], list[tuple[str, Rejection]]]

MIN_QUOTE_SCORE = 0.85  # fuzzy alignment below this is a quote the model made up
EST_COMPLETION_TOKENS_PER_PAIR = 90  # for --dry-run: quote + answer + question + JSON framing
FSYNC_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 60.0
MIN_YIELD = 0.25  # a later round plans for at least this share of asked pairs being kept
MAX_INVALID_RETRIES = 3  # fresh asks per call, one per rerun, after its reply yielded no pair
STOP_REACHED = "reached n"
STOP_BUDGET = "max_calls"
STOP_EXHAUSTED = "passages exhausted"
STOP_FAILING = "calls failing"
STOP_ROUNDS = "max_rounds"


def default_max_calls(n: int, pairs_per_call: int) -> int:
    """The default call budget: 4x the calls `n` needs if every pair were kept, at least 10.

    4x lets a model whose pairs the checker keeps one time in four still reach `n`; below that
    the model is the problem and more calls mostly buy rejections. The floor gives small `n`
    a few tries on other passages.
    """
    return max(10, 4 * math.ceil(n / pairs_per_call))


@dataclass(frozen=True, slots=True)
class Task:
    """One planned LLM call: the passages shown and how many pairs to ask for."""

    number: int
    chunks: tuple[Chunk, ...]
    n: int


@dataclass(slots=True)
class GenerateSummary:
    """What a generate run did and spent (`to_dict()` is the CLI's `--json`).

    kept: pairs in `qa.jsonl` counted toward `requested` (those of earlier runs included);
    candidates: pairs the model wrote in this invocation's calls (valid or not);
    cost: new spend of this invocation; cost_total: spend on every call behind this folder.
    """

    out: str
    model: str
    prompt: str
    prompt_hash: str
    requested: int
    max_calls: int = 0
    stopped: str = ""
    planned_calls: int = 0
    calls: int = 0
    rounds: int = 0
    candidates: int = 0
    kept: int = 0
    rejected: int = 0
    surplus: int = 0
    written: int = 0
    already_written: int = 0
    duplicates: int = 0
    invalid_replies: int = 0
    retried_invalid: int = 0
    llm_calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    cost: float = 0.0
    cost_total: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    checked: bool = False
    verify: str = "off"  # off | roundtrip | judge: the LLM verifier that ran after the checker
    reader_calls: int = 0  # round-trip reader requests (cached and repair requests included)
    unverified: int = 0  # kept pairs the reader could not be read for (reason reader_unavailable)
    dry_run: bool = False
    estimated_cost: float | None = None
    estimated_prompt_tokens: int = 0
    estimated_completion_tokens: int = 0
    elapsed_s: float = 0.0
    check_seconds: float = 0.0  # of elapsed_s, time in the check stage
    errors: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def calls_per_kept_pair(self) -> float | None:
        # every request through the generation LLM: generation, repairs, reader and judge calls
        total = self.llm_calls + self.cached_calls
        return round(total / self.kept, 3) if self.kept else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calls_per_kept_pair"] = self.calls_per_kept_pair
        return data


def generate(
    *,
    index: Any,
    out: str | Path,
    n: int = 20,
    model: str | None = None,
    prompt: str | Path | Prompt = "factoid",
    concurrency: int = 8,
    pairs_per_call: int = 3,
    language: str = "en",
    seed: int = 0,
    dry_run: bool = False,
    timeout: float | None = None,
    max_retries: int = 4,
    rpm: float | None = None,
    tpm: float | None = None,
    cache: str | Path | None = None,
    checker: Any = None,
    progress: bool = False,
    chroma_url: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    quote_choices: bool | None = None,
    response_format: str = "auto",
    api_base: str | None = None,
    api_key: str | None = None,
    max_calls: int | None = None,
    retry_invalid: bool = True,
    max_rounds: int | None = None,
    verify: str | None = None,
    executor: Any = None,
    sink: Sink | None = None,
) -> GenerateSummary:
    """Keep `n` checked QA pairs in `out/qa.jsonl` (rejects to `out/rejected.jsonl`).

    >>> s = generate(
    ...     index="out/index", out="out/gen", n=20, model="openai/gpt-4o-mini"
    ... )  # doctest: +SKIP
    >>> s.kept, s.stopped, s.cost_total  # doctest: +SKIP

    max_calls: generation calls allowed (cached replays included, so rerunning the same command
    never goes past it; each call may add one repair request); default `default_max_calls`.
    retry_invalid: on a rerun, ask again (with a different request) for a call whose cached
    reply yielded no usable pair, up to MAX_INVALID_RETRIES times over reruns.
    quote_choices: constrain quotes to the passages' sentences and answers to short spans of
    them (names, numbers, dates) in the JSON schema (`enum`s), so a small model cannot invent
    either; default on for local models and `api_base` servers.
    response_format: json_schema | json_object | none | auto (json_object with a schema when
    `api_base` points at a self-hosted server such as llama.cpp's, else json_schema).
    api_base, api_key: for OpenAI-compatible servers (`model="openai/<name>"`).
    timeout: seconds per call; default 60, or 600 for in-process models on a busy CPU.
    max_rounds: stop after this many rounds of calls (default: no limit but `max_calls`).
    verify: off | roundtrip | judge (default roundtrip for a local model, which also scores a
    Yes/No per pair, else off). roundtrip: the model answers each call's
    questions from the passages without the proposed answers, and pairs whose answers disagree
    are rejected (stage "verify"; see grounded.checker.roundtrip). judge: the checker's LLM judge (the
    generation model unless the checker has its own) scores borderline pairs, awaited so it never
    blocks the other calls. Reader and judge calls are not counted in `max_calls`.
    executor: where the check stage runs its batches (`grounded.executors`; default here).
    sink: called with every row of the folder, as a QAPair (kept) or a rejection (a Rejection,
    or the row an earlier run wrote), so a caller gets them without reading the files back.
    Raises LLMFatalError at once (pending calls cancelled, rows written so far kept) when the
    model refuses a call for good (bad key, unknown model).
    """
    offline.configure()
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if pairs_per_call < 1:
        raise ConfigError(f"pairs_per_call must be at least 1, got {pairs_per_call}")
    if max_calls is not None and max_calls < 1:
        raise ConfigError(f"max_calls must be at least 1, got {max_calls}")
    from grounded.checker.roundtrip import DEFAULT_LOCAL_VERIFY, DEFAULT_VERIFY, VERIFIERS

    model = model or default_model()
    # a local model reads its own pairs back by default: it costs time, not money
    reads = is_local(model) and getattr(checker, "checks", True) is not False  # not --no-check
    verify = verify or (DEFAULT_LOCAL_VERIFY if reads else DEFAULT_VERIFY)
    if verify not in VERIFIERS:
        raise ConfigError(f"verify must be one of {', '.join(VERIFIERS)}, not {verify!r}")
    tmpl = prompt if isinstance(prompt, Prompt) else load_prompt(prompt)
    model = model or default_model()
    idx = _open(index, chroma_url)
    with ExitStack() as opened:
        if idx is not index:
            opened.callback(idx.close)  # opened here, so closed here
        out_dir = Path(out)
        format_style = response_format
        if format_style == "auto":
            format_style = "json_object" if api_base else "json_schema"
        tmpl.response_format(1, format_style)  # validates the style before any work
        connection: dict[str, Any] = {}
        if api_base:
            connection["api_base"] = api_base
            # OpenAI-compatible local servers ignore the key, but the client insists on one.
            connection["api_key"] = api_key or os.environ.get("OPENAI_API_KEY") or "sk-local"
        elif api_key:
            connection["api_key"] = api_key
        files = {
            "qa": str(out_dir / "qa.jsonl"),
            "rejected": str(out_dir / "rejected.jsonl"),
            "summary": str(out_dir / "summary.json"),
        }
        if isinstance(index, (str, Path)):
            files["index"] = str(index)
        summary = GenerateSummary(
            out=str(out_dir),
            model=model,
            prompt=tmpl.name,
            prompt_hash=tmpl.sha256,
            requested=n,
            dry_run=dry_run,
            max_calls=max_calls or default_max_calls(n, pairs_per_call),
            files=files,
            verify=verify,
        )
        started = time.monotonic()
        seeds = seed_order(idx.chunks(), seed=seed)
        if not seeds:
            raise ConfigError(
                "the index has no chunks long enough to ask about", hint="ingest documents first"
            )
        written = _Written.read(out_dir / "qa.jsonl", out_dir / "rejected.jsonl", sink=sink)
        summary.already_written = len(written.kept)
        planner = _Planner(idx, tmpl, seeds, pairs_per_call, n)
        params: dict[str, Any] = {
            "temperature": temperature
            if temperature is not None
            else (0.2 if is_local(model) else 0.7),
            "max_tokens": max_tokens or (160 * planner.size + 120),
        }
        first = planner.plan(n - len(written.kept), limit=summary.max_calls)
        summary.planned_calls = len(first)
        if dry_run:
            _estimate(summary, first, tmpl, model, language)
            summary.elapsed_s = round(time.monotonic() - started, 3)
            return summary
        if len(written.kept) >= n:
            # Nothing to do: not even the checker is loaded.
            summary.stopped = STOP_REACHED
            _finish(summary, written, {}, started)
            return summary
        if checker is None:
            checker = _default_checker()
        summary.checked = checker is not None and getattr(checker, "checks", True)
        cache_path = Path(cache) if cache is not None else out_dir / ".cache" / "llm.sqlite"
        if timeout is None:
            timeout = LOCAL_TIMEOUT_S if is_local(model) else DEFAULT_TIMEOUT_S
        llm = LLM(
            model,
            cache=cache_path,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            rpm=rpm,
            tpm=tpm,
            **params,
            **connection,
        )
        if verify == "judge":
            checker = _with_judge(checker, llm)
        if quote_choices is None:
            # small models run locally or behind a self-hosted server invent quotes; big ones rarely do
            quote_choices = is_local(model) or bool(api_base)
        check = CheckStage(checker, executor=executor) if checker is not None else None
        run = _Run(
            llm=llm,
            prompt=tmpl,
            language=language,
            check=check,
            summary=summary,
            out_dir=out_dir,
            params=params,
            written=written,
            quote_choices=quote_choices,
            format_style=format_style,
            retry_invalid=retry_invalid,
            verify=verify,
            sink=sink,
        )
        try:
            # The first LLM call's setup and the checker's model loads hold the GIL for long
            # stretches that no thread can slice: done here, before any reply is waited for.
            warm_llm(model)
            if check is not None:
                check.warm()
            asyncio.run(run.execute(planner, first, progress=progress, max_rounds=max_rounds))
        finally:
            if check is not None:
                check.close()  # first: a row write in the check thread finishes before the files close
            run.close()
            if llm.cache is not None:
                llm.cache.close()
        stats = llm.stats
        summary.llm_calls = stats.calls
        summary.cached_calls = stats.cached_calls
        summary.failed_calls = stats.failures
        summary.retries = stats.retries
        summary.cost = round(stats.cost, 6)
        summary.prompt_tokens = stats.prompt_tokens
        summary.completion_tokens = stats.completion_tokens
        summary.rejected_by_reason = dict(run.reasons.most_common())
        summary.check_seconds = round(run.check_seconds, 3)
        _finish(summary, written, run.call_costs, started)
        return summary


def _finish(
    summary: GenerateSummary, written: _Written, call_costs: dict[str, float], started: float
) -> None:
    """Totals from the rows on disk and this invocation's calls; write `summary.json`."""
    summary.kept = len(written.kept)
    summary.cost_total = round(sum({**written.call_costs, **call_costs}.values()), 6)
    summary.elapsed_s = round(time.monotonic() - started, 3)
    path = Path(summary.files["summary"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def _open(index: Any, chroma_url: str | None) -> Any:
    if isinstance(index, (str, Path)):
        from grounded.index import open_index

        return open_index(index, chroma_url=chroma_url)
    return index


def _with_judge(checker: Any, llm: LLM) -> Any:
    """The checker with an LLM judge: its own when it has one, else the generation model."""
    if getattr(checker, "acheck", None) is None or not hasattr(checker, "judge"):
        raise ConfigError(
            "--verify judge needs the built-in checker (the judge runs inside it)",
            hint="drop --no-check, or use --verify roundtrip",
        )
    if checker.judge is not None:
        return checker
    import copy

    from grounded.checker import JudgeCheck

    judged = copy.copy(checker)  # the caller's checker stays as it was
    judged.judge = JudgeCheck(llm)
    return judged


def warm_llm(model: str) -> None:
    """litellm's first call spends about 0.7 s of CPU on lazy imports and setup: spend it on a
    mock reply in an event loop of its own, so the run's loop never does."""
    litellm = _litellm()

    async def once() -> None:
        messages = [{"role": "user", "content": "warm-up"}]
        await litellm.acompletion(
            model=model, messages=messages, mock_response="ok", **{"no-log": True}
        )
        # Its logging task runs here, not carried over to the run's loop.
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout=5.0)

    try:
        asyncio.run(once())
        # What the first real reply does lazily besides: litellm's service logger, and the
        # OpenAI SDK's response models (the route of OpenAI-compatible servers) built once.
        import litellm._service_logger  # noqa: F401
        from openai.types.chat import ChatCompletion

        ChatCompletion.construct(
            id="warm-up",
            object="chat.completion",
            created=0,
            model=model,
            choices=[
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        )
    except Exception:  # noqa: BLE001, S110 - only a warm-up: the first real call does the rest
        pass


def _default_checker() -> Any:
    try:
        from grounded.checker import default_checker
    except ImportError:
        return None
    return default_checker()


@dataclass(slots=True)
class _Written:
    """What earlier runs left in the output files."""

    keys: set[str]  # ids of pairs and keys of reply-level rejections
    kept: set[str]  # ids of kept pairs: they count toward n
    call_costs: dict[str, float]  # call id -> what the call cost

    @classmethod
    def read(cls, qa_path: Path, rejected_path: Path, *, sink: Sink | None = None) -> _Written:
        """What the files hold; each row also goes to `sink` (kept rows as QAPairs)."""
        out = cls(set(), set(), {})
        for path, kept in ((qa_path, True), (rejected_path, False)):
            if not path.exists():
                continue
            for row in read_jsonl(path):
                out._add(row, kept=kept)
                if sink is not None:
                    sink(QAPair.from_dict(row) if kept else row)
        return out

    def _add(self, row: dict[str, Any], *, kept: bool) -> None:
        pair = row.get("pair") if not kept else row
        prov = row.get("provenance") or (pair or {}).get("provenance") or {}
        if isinstance(pair, dict) and pair.get("id"):
            self.keys.add(str(pair["id"]))
            if kept:
                self.kept.add(str(pair["id"]))
        elif not kept:
            self.keys.add(_reply_key(str(prov.get("call_id", "")), str(row.get("raw", ""))))
        call = str(prov.get("call_id") or "")
        if call:
            # Rows written before costs were apportioned carry the whole call's cost in `cost`.
            spent = max(float(prov.get("call_cost") or 0.0), float(prov.get("cost") or 0.0))
            self.call_costs[call] = max(spent, self.call_costs.get(call, 0.0))


def _reply_key(call_id: str, raw: str) -> str:
    """The key of a rejection that has no pair: its call and the part of the reply it was."""
    return f"call:{call_id}:{hashlib.sha256(raw.encode('utf-8')).hexdigest()[:16]}"


class _Planner:
    """Hands out tasks over the seed order; later rounds continue where the last one stopped.

    Every task asks for the same number of pairs (`pairs_per_call`, more when there are fewer
    passages than calls), whatever the round, so a passage's call is the same request (the same
    cache entry) however many pairs are still missing.
    """

    def __init__(
        self, index: Any, prompt: Prompt, seeds: Sequence[Chunk], pairs_per_call: int, n: int
    ) -> None:
        self.index = index
        self.prompt = prompt
        self.seeds = seeds
        # Fewer passages than calls: ask each passage for more pairs instead of repeating it.
        self.size = max(pairs_per_call, math.ceil(n / len(seeds)))
        self.pos = 0
        self.count = 0

    def plan(self, pairs: int, *, limit: int, yield_rate: float = 1.0) -> list[Task]:
        """Tasks for `pairs` more kept pairs at the expected keep rate, at most `limit` of them."""
        remaining_seeds = len(self.seeds) - self.pos
        if pairs <= 0 or remaining_seeds <= 0 or limit <= 0:
            return []
        calls = min(limit, math.ceil(pairs / (self.size * max(MIN_YIELD, min(1.0, yield_rate)))))
        tasks: list[Task] = []
        extra = self.prompt.spec.sources - 1
        while len(tasks) < calls and self.pos < len(self.seeds):
            seed_chunk = self.seeds[self.pos]
            self.pos += 1
            others = partners(self.index, seed_chunk, extra) if extra else []
            if len(others) < extra:
                continue  # no related passage: this seed cannot carry a multi-hop question
            tasks.append(Task(self.count, (seed_chunk, *others), self.size))
            self.count += 1
        return tasks


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
        language: str,
        check: CheckStage | None,
        summary: GenerateSummary,
        out_dir: Path,
        params: dict[str, Any],
        written: _Written,
        quote_choices: bool = False,
        format_style: str = "json_schema",
        retry_invalid: bool = True,
        verify: str = "off",
        sink: Sink | None = None,
    ) -> None:
        self.llm = llm
        self.verify = verify
        self.prompt = prompt
        self.language = language
        self.check = check
        self.check_seconds = 0.0
        self._checking = 0
        self._check_started = 0.0
        self.sink = sink
        self.summary = summary
        self.params = params
        self.written = written
        self.reasons: Counter[str] = Counter()
        self.run_keys: set[str] = set()
        self.call_costs: dict[str, float] = {}
        self.asked = 0  # pairs asked for by the calls that answered
        self.kept_in_calls = 0  # of those, pairs the checks kept (written before or not)
        self._synced: dict[int, float] = {}
        self.qa = JsonlWriter(out_dir / "qa.jsonl")
        self.rejected = JsonlWriter(out_dir / "rejected.jsonl")
        self.quote_choices = quote_choices
        self.format_style = format_style
        self.retry_invalid = retry_invalid
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
        """The call, and one repair request for what its reply lacked; usable pairs are kept."""
        messages = self._messages(task, attempt)
        first = await self.llm.acomplete(messages, response_format=self._format(task, task.n))
        parsed = await self._off_loop(parse_reply, first.text)
        # Pairs beyond those asked for are candidates too: the cap on n applies when writing.
        reply = _Reply([first], list(parsed.pairs), list(parsed.dropped), parsed.error, first.text)
        missing = task.n - len(reply.pairs)
        if parsed.complete or missing <= 0:
            return reply
        repair = [
            *messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": _repair_request(parsed, missing, have=len(reply.pairs))},
        ]
        second = await self.llm.acomplete(repair, response_format=self._format(task, missing))
        again = await self._off_loop(parse_reply, second.text)
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
            pair, problems = self._pair(reply_pair, task, prov[i])
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
        """Round trip: one reader request for the call's checked pairs; disagreements to `rejected`."""
        if (
            self.verify != "roundtrip"
            or not kept
            or all(key in self.written.keys for key, _ in kept)
        ):
            return kept  # a rerun that wrote these pairs already needs no reader call
        from grounded.checker.roundtrip import read_back

        result = await read_back(
            self.llm,
            [c.text for c in task.chunks],
            [p for _, p in kept],
            style=self.format_style,
            refusal=self.prompt.kind == "unanswerable",
            # the Yes/No joins the score: fitted on the local model's probabilities
            judge=is_local(self.llm.model),
            threshold=getattr(getattr(self.check, "checker", None), "threshold", None),
        )
        self.summary.reader_calls += result.calls
        out = []
        for (key, pair), found in zip(kept, result.checks, strict=True):
            pair = found.apply(pair)
            if found.rejects and found.reasons:
                # the reader's reason, the model's No and the score below the threshold
                rejected.append(
                    (
                        key,
                        Rejection("verify", found.reasons, pair=pair, provenance=pair.provenance),
                    )
                )
                continue
            if found.reason is not None and key not in self.written.keys:
                self.summary.unverified += 1
            out.append((key, pair))
        return out

    def _pair(self, rp: ReplyPair, task: Task, prov: Provenance) -> tuple[QAPair, list[Reason]]:
        kind = self.prompt.kind
        question = " ".join(rp.question.split())
        answer = " ".join(rp.answer.split())
        evidence: list[Evidence] = []
        dropped: list[str] = []
        for quote in rp.all_quotes:
            ev = locate(quote, task.chunks)
            if ev is None:
                dropped.append(quote)
            elif not any(
                e.start == ev.start and e.end == ev.end and e.doc_id == ev.doc_id for e in evidence
            ):
                evidence.append(ev)
        chunk_ids = tuple(c.id for c in task.chunks)
        metadata: dict[str, Any] = {"task": task.number}
        if dropped:
            metadata["dropped_quotes"] = dropped
        if (
            evidence
            and answer
            and kind != "unanswerable"
            and not any(holds(e.text, answer) for e in evidence)
        ):
            # Small models often quote another sentence than the one that holds their answer:
            # when the answer is a span of a passage, its sentence is the evidence (a located
            # one, not a quote); quotes of other passages stay (a multi-hop pair's other hop).
            located = locate_answer(answer, question, task.chunks)
            if located is not None:
                metadata["evidence_source"] = "located"
                metadata["model_quotes"] = list(rp.all_quotes)
                evidence = [located, *(e for e in evidence if e.chunk_id != located.chunk_id)]
        pair = QAPair(
            id=QAPair.make_id(question, answer, *chunk_ids),
            question=question,
            answer=answer,
            evidence=tuple(evidence),
            kind=kind,
            doc_ids=tuple(dict.fromkeys(c.doc_id for c in task.chunks)),
            chunk_ids=chunk_ids,
            provenance=prov,
            metadata=metadata,
        )
        problems: list[Reason] = []
        if not evidence:
            problems.append(
                Reason(
                    "quote_not_found",
                    f"no quote found in the passages: {_short(dropped[0] if dropped else '')!r}",
                )
            )
        elif kind == "multi_hop" and len({e.chunk_id for e in evidence}) < 2:
            problems.append(
                Reason("single_source", "a multi-hop pair must quote at least two passages")
            )
        if not answer:
            problems.append(Reason("empty_answer", "the reply has no answer"))
        elif kind == "unanswerable" and not _is_refusal(answer):
            # The model answered: evidence that the passages may answer it, so it is no refusal.
            problems.append(
                Reason(
                    "not_a_refusal",
                    f"an unanswerable question needs an answer saying the documents do not tell; the model answered {_short(answer)!r}",
                )
            )
        return pair, problems

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
            self.reasons.update(count_reasons([rej]))
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


def locate(
    quote: str, chunks: Sequence[Chunk], *, min_score: float = MIN_QUOTE_SCORE
) -> Evidence | None:
    """Align a quote to the best-matching chunk; Evidence in document offsets, or None."""
    best: tuple[float, Chunk, Any] | None = None
    for c in chunks:
        a = align(quote, c.text, min_score=min_score)
        if a is not None and (best is None or a.score > best[0]):
            best = (a.score, c, a)
            if a.score >= 1.0:
                break
    if best is None:
        return None
    score, c, a = best
    return Evidence(
        doc_id=c.doc_id,
        chunk_id=c.id,
        start=c.start + a.start,
        end=c.start + a.end,
        text=c.text[a.start : a.end],
        score=round(score, 4),
        quote=quote,
    )


def holds(text: str, answer: str) -> bool:
    """True when `answer` is in `text` as whole words, case, whitespace and typography aside."""
    return bool(_spans_of(answer, text))


def locate_answer(answer: str, question: str, chunks: Sequence[Chunk]) -> Evidence | None:
    """The sentence that holds `answer` where the answer is a span of a passage (case and
    whitespace aside), as Evidence in document offsets; among several, the sentence sharing most
    content words with the question (the first on a tie). None when no passage holds the
    answer: evidence is never invented."""
    asked = {t.stem for t in content(tokens_of(question))}
    best: tuple[int, Chunk, int, int] | None = None
    for c in chunks:
        spans = sentence_spans(c.text)
        for a, b in _spans_of(answer, c.text):
            # the sentences the answer lies in (one, unless the splitter cut through it)
            start = next((s for s, e in spans if s <= a < e), a)
            end = next((e for s, e in spans if s < b <= e), b)
            shared = len(asked & {t.stem for t in content(tokens_of(c.text[start:end]))})
            if best is None or shared > best[0]:
                best = (shared, c, start, end)
    if best is None:
        return None
    _, c, start, end = best
    return Evidence(
        doc_id=c.doc_id,
        chunk_id=c.id,
        start=c.start + start,
        end=c.start + end,
        text=c.text[start:end],
        score=1.0,
    )


def _spans_of(needle: str, text: str) -> list[tuple[int, int]]:
    """(start, end) in `text` of each whole-word occurrence of `needle`, compared normalised."""
    nn, _ = normalise(needle)
    nn = nn.strip()
    if not nn:
        return []
    nt, idx = normalise(text)
    pattern = re.compile(
        (r"(?<!\w)" if nn[0].isalnum() else "")
        + re.escape(nn)
        + (r"(?!\w)" if nn[-1].isalnum() else "")
    )
    return [(idx[m.start()], idx[m.end() - 1] + 1) for m in pattern.finditer(nt)]


def sentences(text: str, *, min_words: int = 4, max_chars: int = 400) -> list[str]:
    """Sentences of a passage, verbatim (exact substrings), long enough to quote."""
    out = []
    for s in split_sentences(text):
        # llama.cpp's schema-to-grammar converter cannot take quotes or backslashes in an enum
        if len(s.split()) >= min_words and len(s) <= max_chars and '"' not in s and "\\" not in s:
            out.append(s)
    return list(dict.fromkeys(out))


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{4}})\b"
)
_NUMBER = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?(?:\s?%|\s(?:percent|per cent))?(?:\s+(?!(?:and|or|by|in|on|at|to|of|the|a|an|for|from|with|was|were|is|are)\b)[a-z]+)?"
)
_NAME = re.compile(
    r"\b[A-Z][\w'’-]*(?:[ \t]+(?:(?:of|the|de|del|la|von|van|and|for|upon)[ \t]+)*[A-Z][\w'’-]*)*"
)
_NOT_NAMES = frozenset(
    "The A An It In On At This That These Those He She They We I Its His Her Their Our As But And Or If When While After Before During For From By With Of To Many Most Some Though Although However Since Because Also Then Today".split()
)


def answer_candidates(text: str, *, limit: int = 60) -> list[str]:
    """Short spans worth asking about, verbatim from the text: dates, numbers, names."""
    found: list[str] = []
    for pattern in (_DATE, _NUMBER, _NAME):
        for m in pattern.finditer(text):
            span = m.group(0).strip(" ,.;:")
            words = span.split()
            while words and words[0] in _NOT_NAMES:
                words = words[1:]
            span = " ".join(words)
            if (
                pattern is _NAME
                and len(words) == 1
                and _sentence_initial(text, m.start())
                and span == m.group(0)
            ):
                continue  # a capitalised first word is grammar, not a name
            if span and len(span) <= 60 and '"' not in span and "\\" not in span and span in text:
                found.append(span)
    return list(dict.fromkeys(found))[:limit]


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?:\n\"'" or text[pos - 1 : pos] == "\n"


def constrain_schema(
    response_format: dict[str, Any], chunks: Sequence[Chunk], *, answers: bool
) -> dict[str, Any]:
    """Restrict `quote(s)` in the schema to the passages' sentences, and (answers=True) the
    `answer` to short spans of the passages, so a small model can only pick real text."""
    choices = [s for c in chunks for s in sentences(c.text)]
    if not choices:
        return response_format
    rf = json.loads(json.dumps(response_format))
    schema = rf["json_schema"]["schema"] if "json_schema" in rf else rf.get("schema") or {}
    try:
        props = schema["properties"]["pairs"]["items"]["properties"]
    except (KeyError, TypeError):
        return response_format
    if isinstance(props.get("quote"), dict):
        props["quote"] = {**props["quote"], "type": "string", "enum": choices}
    if isinstance(props.get("quotes"), dict):
        props["quotes"] = {**props["quotes"], "items": {"type": "string", "enum": choices}}
    spans = list(dict.fromkeys(a for c in chunks for a in answer_candidates(c.text)))
    if answers and len(spans) >= 3 and isinstance(props.get("answer"), dict):
        props["answer"] = {k: v for k, v in props["answer"].items() if k != "maxLength"} | {
            "type": "string",
            "enum": spans,
        }
    return rf


def _estimate(
    summary: GenerateSummary, tasks: Sequence[Task], prompt: Prompt, model: str, language: str
) -> None:
    pt = sum(
        count_message_tokens(prompt.messages([c.text for c in t.chunks], n=t.n, language=language))
        for t in tasks
    )
    ct = sum(t.n for t in tasks) * EST_COMPLETION_TOKENS_PER_PAIR
    summary.estimated_prompt_tokens = pt
    summary.estimated_completion_tokens = ct
    cost = price(model, pt, ct)
    summary.estimated_cost = round(cost, 6) if cost is not None else None


def _is_refusal(answer: str) -> bool:
    if not answer:
        return False
    from grounded.checker import says_not_in_sources  # the checker's own rule: one definition

    return says_not_in_sources(answer)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
