"""Generate grounded QA pairs from an index: seed chunks -> LLM -> aligned evidence -> checked.

Each call's pairs are written as soon as the call finishes (`qa.jsonl`, `rejected.jsonl`);
every call is cached in SQLite first. A rerun, after success or `kill -9`, replays cached calls
for free and skips pairs already written, so nothing is paid for twice, lost or duplicated.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.align import align
from grounded.errors import ConfigError, LLMError
from grounded.jsonl import JsonlWriter, read_jsonl
from grounded.llm import (
    LLM,
    Completion,
    acomplete_structured,
    count_message_tokens,
    default_model,
    is_local,
    price,
)
from grounded.prompting import Prompt, Reply, ReplyPair, load_prompt
from grounded.seeds import partners, seed_order
from grounded.types import Chunk, Evidence, Provenance, QAPair, Reason, Rejection

MIN_QUOTE_SCORE = 0.85  # fuzzy alignment below this is a quote the model made up
UNANSWERABLE_ANSWER = "This is not stated in the documents."
EST_COMPLETION_TOKENS_PER_PAIR = 90  # for --dry-run: quote + answer + question + JSON framing
MAX_ROUNDS = 3
FSYNC_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 60.0
LOCAL_TIMEOUT_S = 600.0  # top-up rounds after rejections, so a weak model cannot spend without bound


@dataclass(frozen=True, slots=True)
class Task:
    """One planned LLM call: the passages shown and how many pairs to ask for."""

    number: int
    chunks: tuple[Chunk, ...]
    n: int


@dataclass(slots=True)
class GenerateSummary:
    """What a generate run did and spent (`to_dict()` is the CLI's `--json`)."""

    out: str
    model: str
    prompt: str
    prompt_hash: str
    requested: int
    planned_calls: int = 0
    kept: int = 0
    rejected: int = 0
    written: int = 0
    already_written: int = 0
    duplicates: int = 0
    llm_calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    cost: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    checked: bool = False
    dry_run: bool = False
    estimated_cost: float | None = None
    estimated_prompt_tokens: int = 0
    estimated_completion_tokens: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def calls_per_kept_pair(self) -> float | None:
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
    max_rounds: int = MAX_ROUNDS,
) -> GenerateSummary:
    """Generate up to `n` checked QA pairs into `out/qa.jsonl` (rejects to `out/rejected.jsonl`).

    >>> s = generate(index="out/index", out="out/gen", n=20, model="openai/gpt-4o-mini")  # doctest: +SKIP
    >>> s.kept, s.cost  # doctest: +SKIP

    quote_choices: constrain quotes to the passages' sentences and answers to short spans of
    them (names, numbers, dates) in the JSON schema (`enum`s), so a small model cannot invent
    either; default on for local models and `api_base` servers.
    response_format: json_schema | json_object | none | auto (json_object with a schema when
    `api_base` points at a self-hosted server such as llama.cpp's, else json_schema).
    api_base, api_key: for OpenAI-compatible servers (`model="openai/<name>"`).
    timeout: seconds per call; default 60, or 600 for in-process models on a busy CPU.
    max_rounds: 1 + how many top-up rounds may replace rejected pairs with calls on new passages.
    """
    offline.configure()
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if pairs_per_call < 1:
        raise ConfigError(f"pairs_per_call must be at least 1, got {pairs_per_call}")
    tmpl = prompt if isinstance(prompt, Prompt) else load_prompt(prompt)
    model = model or default_model()
    idx = _open(index, chroma_url)
    out_dir = Path(out)
    params: dict[str, Any] = {
        "temperature": temperature if temperature is not None else (0.2 if is_local(model) else 0.7),
        "max_tokens": max_tokens or (160 * pairs_per_call + 120),
    }
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
    summary = GenerateSummary(
        out=str(out_dir), model=model, prompt=tmpl.name, prompt_hash=tmpl.sha256, requested=n,
        dry_run=dry_run,
        files={"qa": str(out_dir / "qa.jsonl"), "rejected": str(out_dir / "rejected.jsonl")},
    )
    started = time.monotonic()
    seeds = seed_order(idx.chunks(), seed=seed)
    if not seeds:
        raise ConfigError("the index has no chunks long enough to ask about", hint="ingest documents first")
    planner = _Planner(idx, tmpl, seeds, pairs_per_call)
    first = planner.plan(n)
    summary.planned_calls = len(first)
    if dry_run:
        _estimate(summary, first, tmpl, model, language)
        summary.elapsed_s = round(time.monotonic() - started, 3)
        return summary
    if checker is None:
        checker = _default_checker()
    summary.checked = checker is not None
    cache_path = Path(cache) if cache is not None else out_dir / ".cache" / "llm.sqlite"
    if timeout is None:
        timeout = LOCAL_TIMEOUT_S if is_local(model) else DEFAULT_TIMEOUT_S
    llm = LLM(model, cache=cache_path, concurrency=concurrency, timeout=timeout,
              max_retries=max_retries, rpm=rpm, tpm=tpm, **params, **connection)
    if quote_choices is None:
        # small models run locally or behind a self-hosted server invent quotes; big ones rarely do
        quote_choices = is_local(model) or bool(api_base)
    run = _Run(llm=llm, prompt=tmpl, language=language, checker=checker, summary=summary,
               out_dir=out_dir, params=params, quote_choices=quote_choices,
               format_style=format_style)
    try:
        asyncio.run(run.execute(planner, first, progress=progress, max_rounds=max_rounds))
    finally:
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
    summary.elapsed_s = round(time.monotonic() - started, 3)
    return summary


def _open(index: Any, chroma_url: str | None) -> Any:
    if isinstance(index, (str, Path)):
        from grounded.index import open_index

        return open_index(index, chroma_url=chroma_url)
    return index


def _default_checker() -> Any:
    try:
        from grounded.check import default_checker
    except ImportError:
        return None
    return default_checker()


class _Planner:
    """Hands out tasks over the seed order; later rounds continue where the last one stopped."""

    def __init__(self, index: Any, prompt: Prompt, seeds: Sequence[Chunk], pairs_per_call: int) -> None:
        self.index = index
        self.prompt = prompt
        self.seeds = seeds
        self.k = pairs_per_call
        self.pos = 0
        self.count = 0

    def plan(self, n: int) -> list[Task]:
        remaining_seeds = len(self.seeds) - self.pos
        if n <= 0 or remaining_seeds <= 0:
            return []
        calls = math.ceil(n / self.k)
        if calls > remaining_seeds:
            # Fewer passages than calls: ask each passage for more pairs instead of repeating it.
            calls = remaining_seeds
        sizes = [n // calls + (1 if i < n % calls else 0) for i in range(calls)]
        tasks: list[Task] = []
        extra = self.prompt.spec.sources - 1
        for size in sizes:
            while self.pos < len(self.seeds):
                seed_chunk = self.seeds[self.pos]
                self.pos += 1
                others = partners(self.index, seed_chunk, extra) if extra else []
                if len(others) < extra:
                    continue  # no related passage: this seed cannot carry a multi-hop question
                tasks.append(Task(self.count, (seed_chunk, *others), size))
                self.count += 1
                break
        return tasks


class _Run:
    """One generate run: executes tasks, writes rows as each call finishes, counts reasons."""

    def __init__(self, *, llm: LLM, prompt: Prompt, language: str, checker: Any,
                 summary: GenerateSummary, out_dir: Path, params: dict[str, Any],
                 quote_choices: bool = False, format_style: str = "json_schema") -> None:
        self.llm = llm
        self.prompt = prompt
        self.language = language
        self.checker = checker
        self.summary = summary
        self.params = params
        self.reasons: Counter[str] = Counter()
        qa_path, rej_path = out_dir / "qa.jsonl", out_dir / "rejected.jsonl"
        self.seen = _written_keys(qa_path, rej_path)
        self.run_keys: set[str] = set()
        self._synced: dict[int, float] = {}
        self.qa = JsonlWriter(qa_path)
        self.rejected = JsonlWriter(rej_path)
        self.kept_total = 0
        self.quote_choices = quote_choices
        self.format_style = format_style
        self._bar: Any = None
        from grounded import __version__

        self.version = __version__

    def close(self) -> None:
        self.qa.close()
        self.rejected.close()
        if self._bar is not None:
            self._bar.close()

    async def execute(self, planner: _Planner, first: list[Task], *, progress: bool, max_rounds: int) -> None:
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=self.summary.requested, unit="pair", desc="generate")
        tasks = first
        for _round in range(max(1, max_rounds)):
            if not tasks:
                break
            await asyncio.gather(*(self._task(t) for t in tasks))
            deficit = self.summary.requested - self.kept_total
            if deficit <= 0:
                break
            tasks = planner.plan(deficit)

    async def _task(self, task: Task) -> None:
        messages = self.prompt.messages([c.text for c in task.chunks], n=task.n, language=self.language)
        response_format = self.prompt.response_format(task.n, self.format_style)
        if self.quote_choices and response_format is not None:
            response_format = constrain_schema(
                response_format, task.chunks, answers=self.prompt.kind != "unanswerable"
            )
        try:
            res = await acomplete_structured(self.llm, messages, Reply, response_format=response_format)
        except LLMError as exc:
            # Not written: a rerun retries it (transient outages must not become rejections).
            self.summary.errors.append(str(exc))
            return
        prov = self._provenance(res.completions)
        if res.value is None:
            rej = Rejection(
                stage="generate",
                reasons=(Reason("invalid_reply", res.error),),
                raw=res.raw,
                provenance=prov,
            )
            self._emit([], [("call:" + prov.call_id, rej)])
            return
        kept: list[tuple[str, QAPair]] = []
        rejected: list[tuple[str, Rejection]] = []
        for reply_pair in res.value.pairs[: task.n]:
            pair, problems = self._pair(reply_pair, task, prov)
            if problems:
                rejected.append((pair.id, Rejection("generate", tuple(problems), pair=pair, provenance=prov)))
                continue
            if self.checker is not None:
                verdict = self.checker.check(pair, task.chunks)
                pair = _with(pair, verdict=verdict)
                if not verdict.supported:
                    rejected.append((pair.id, Rejection("check", tuple(verdict.reasons), pair=pair, provenance=prov)))
                    continue
            kept.append((pair.id, pair))
        self._emit(kept, rejected)

    def _pair(self, rp: ReplyPair, task: Task, prov: Provenance) -> tuple[QAPair, list[Reason]]:
        kind = self.prompt.kind
        question = " ".join(rp.question.split())
        answer = " ".join(rp.answer.split())
        if kind == "unanswerable" and not _is_refusal(answer):
            answer = UNANSWERABLE_ANSWER
        evidence: list[Evidence] = []
        dropped: list[str] = []
        for quote in rp.all_quotes:
            ev = locate(quote, task.chunks)
            if ev is None:
                dropped.append(quote)
            elif not any(e.start == ev.start and e.end == ev.end and e.doc_id == ev.doc_id for e in evidence):
                evidence.append(ev)
        chunk_ids = tuple(c.id for c in task.chunks)
        metadata: dict[str, Any] = {"task": task.number}
        if dropped:
            metadata["dropped_quotes"] = dropped
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
            problems.append(Reason("quote_not_found", f"no quote found in the passages: {_short(dropped[0] if dropped else '')!r}"))
        elif kind == "multi_hop" and len({e.chunk_id for e in evidence}) < 2:
            problems.append(Reason("single_source", "a multi-hop pair must quote at least two passages"))
        if not answer:
            problems.append(Reason("empty_answer", "the reply has no answer"))
        return pair, problems

    def _provenance(self, completions: Sequence[Completion]) -> Provenance:
        first = completions[0]
        return Provenance(
            model=self.llm.model,
            params=dict(self.params),
            prompt=self.prompt.name,
            prompt_hash=self.prompt.sha256,
            call_id=first.call_id,
            prompt_tokens=sum(c.prompt_tokens for c in completions),
            completion_tokens=sum(c.completion_tokens for c in completions),
            cost=round(sum(c.cost for c in completions), 8),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            grounded_version=self.version,
            language=self.language,
        )

    def _emit(self, kept: list[tuple[str, QAPair]], rejected: list[tuple[str, Rejection]]) -> None:
        new_kept = [pair.to_dict() for key, pair in kept if self._fresh(key, kept=True)]
        new_rej = []
        for key, rej in rejected:
            if key in self.run_keys:
                self.summary.duplicates += 1
                continue
            for r in rej.reasons:
                self.reasons[r.code] += 1
            if self._fresh(key, kept=False):
                new_rej.append(rej.to_dict())
        self.summary.written += len(new_kept) + len(new_rej)
        # Rejections first: a kill between the two writes then loses no kept pair's accounting.
        for writer, batch in ((self.rejected, new_rej), (self.qa, new_kept)):
            if batch:
                for row in batch:
                    writer.write(row)
                self._flush(writer)

    def _flush(self, writer: JsonlWriter) -> None:
        """Hand rows to the OS now (a killed process loses nothing); fsync at most once a second."""
        writer._fh.flush()  # the OS keeps written data when the process dies
        now = time.monotonic()
        if now - self._synced.get(id(writer), 0.0) >= FSYNC_INTERVAL_S:
            writer.flush()  # flush + fsync, for power loss
            self._synced[id(writer)] = now

    def _fresh(self, key: str, *, kept: bool) -> bool:
        """Count a result once per run; True when it still has to be written."""
        if key in self.run_keys:
            self.summary.duplicates += 1
            return False
        self.run_keys.add(key)
        if kept:
            self.summary.kept += 1
            self.kept_total += 1
            if self._bar is not None and self._bar.n < self._bar.total:
                self._bar.update(1)
        else:
            self.summary.rejected += 1
        if key in self.seen:
            self.summary.already_written += 1
            return False
        self.seen.add(key)
        return True


def locate(quote: str, chunks: Sequence[Chunk], *, min_score: float = MIN_QUOTE_SCORE) -> Evidence | None:
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


_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|$)", re.M)


def sentences(text: str, *, min_words: int = 4, max_chars: int = 400) -> list[str]:
    """Sentences of a passage, verbatim (exact substrings), long enough to quote."""
    out = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0).strip()
        # llama.cpp's schema-to-grammar converter cannot take quotes or backslashes in an enum
        if len(s.split()) >= min_words and len(s) <= max_chars and '"' not in s and "\\" not in s:
            out.append(s)
    return list(dict.fromkeys(out))


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{4}})\b")
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?(?:\s?%|\s(?:percent|per cent))?(?:\s+(?!(?:and|or|by|in|on|at|to|of|the|a|an|for|from|with|was|were|is|are)\b)[a-z]+)?")
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:[ \t]+(?:(?:of|the|de|del|la|von|van|and|for|upon)[ \t]+)*[A-Z][\w'’-]*)*")
_NOT_NAMES = frozenset("The A An It In On At This That These Those He She They We I Its His Her Their Our As But And Or If When While After Before During For From By With Of To Many Most Some Though Although However Since Because Also Then Today".split())


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
            if pattern is _NAME and len(words) == 1 and _sentence_initial(text, m.start()) and span == m.group(0):
                continue  # a capitalised first word is grammar, not a name
            if span and len(span) <= 60 and '"' not in span and "\\" not in span and span in text:
                found.append(span)
    return list(dict.fromkeys(found))[:limit]


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?:\n\"'" or text[pos - 1 : pos] == "\n"


def constrain_schema(response_format: dict[str, Any], chunks: Sequence[Chunk], *, answers: bool) -> dict[str, Any]:
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
        props["answer"] = {k: v for k, v in props["answer"].items() if k != "maxLength"} | {"type": "string", "enum": spans}
    return rf


def _written_keys(*paths: Path) -> set[str]:
    """Ids of pairs (and call ids of unusable replies) already in the output files."""
    keys: set[str] = set()
    for path in paths:
        if not path.exists():
            continue
        for row in read_jsonl(path):
            pair = row.get("pair") if "stage" in row else row
            if isinstance(pair, dict) and pair.get("id"):
                keys.add(str(pair["id"]))
            elif "stage" in row:
                call = (row.get("provenance") or {}).get("call_id", "")
                keys.add("call:" + str(call))
    return keys


def _estimate(summary: GenerateSummary, tasks: Sequence[Task], prompt: Prompt, model: str, language: str) -> None:
    pt = sum(count_message_tokens(prompt.messages([c.text for c in t.chunks], n=t.n, language=language)) for t in tasks)
    ct = sum(t.n for t in tasks) * EST_COMPLETION_TOKENS_PER_PAIR
    summary.estimated_prompt_tokens = pt
    summary.estimated_completion_tokens = ct
    cost = price(model, pt, ct)
    summary.estimated_cost = round(cost, 6) if cost is not None else None


def _is_refusal(answer: str) -> bool:
    if not answer:
        return False
    try:
        from grounded.check import REFUSAL
    except ImportError:
        return False
    return bool(REFUSAL.search(answer))


def _with(pair: QAPair, **changes: Any) -> QAPair:
    from dataclasses import replace

    return replace(pair, **changes)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
