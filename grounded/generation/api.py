"""`generate`: an index -> kept pairs in `out/qa.jsonl`, rejections in `out/rejected.jsonl`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Unpack

from grounded import offline
from grounded.errors import ConfigError
from grounded.generation.plan import (
    STOP_REACHED,
    GenerateSummary,
    Sink,
    Task,
    _Planner,
    _Written,
    default_max_calls,
)
from grounded.generation.run import Asking, _Run
from grounded.llm import (
    LLM,
    LOCAL_TIMEOUT_S,
    _litellm,
    count_message_tokens,
    default_model,
    is_local,
    price,
)
from grounded.llm.options import Connection, Limits, Retries, Sampling
from grounded.options import (
    GenerateOptions,
    GenerateSettings,
    ModelOptions,
    merged,
    unexpected,
)
from grounded.prompting import Prompt, load_prompt
from grounded.seeds import seed_order
from grounded.stages.check import CheckStage
from grounded.stages.verify import VerifyStage

EST_COMPLETION_TOKENS_PER_PAIR = 90  # for --dry-run: quote + answer + question + JSON framing
DEFAULT_TIMEOUT_S = 60.0


def generate(
    *,
    index: Any,
    out: str | Path,
    options: GenerateOptions | None = None,
    llm: ModelOptions | None = None,
    checker: Any = None,
    executor: Any = None,
    cache: str | Path | None = None,
    chroma_url: str | None = None,
    progress: bool = False,
    sink: Sink | None = None,
    **settings: Unpack[GenerateSettings],
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
    options, llm: the same settings as typed objects (`grounded.options.GenerateOptions`,
    `ModelOptions`); keywords given as well override them.
    checker: the checker (default: the built-in one, loaded once there is work to check).
    executor: where the check stage runs its batches (`grounded.executors`; default here).
    sink: called with every row of the folder, as a QAPair (kept) or a rejection (a Rejection,
    or the row an earlier run wrote), so a caller gets them without reading the files back.
    Raises LLMFatalError at once (pending calls cancelled, rows written so far kept) when the
    model refuses a call for good (bad key, unknown model).
    """
    rest: dict[str, Any] = dict(settings)
    gen, model_opts = merged(GenerateOptions, options, rest), merged(ModelOptions, llm, rest)
    unexpected(rest, "generate")
    check = CheckStage(checker, executor=executor)
    return generate_into(
        index,
        out,
        gen,
        model_opts,
        check=check,
        cache=cache,
        chroma_url=chroma_url,
        progress=progress,
        sink=sink,
    )


def generate_into(
    index: Any,
    out: str | Path,
    gen: GenerateOptions,
    model_opts: ModelOptions,
    *,
    check: CheckStage | None,
    cache: str | Path | None = None,
    chroma_url: str | None = None,
    progress: bool = False,
    sink: Sink | None = None,
) -> GenerateSummary:
    """`generate` with its options built, each call's candidates through `check` (the run's
    check stage; None keeps every candidate unchecked)."""
    offline.configure()
    n, pairs_per_call, max_calls = gen.n, gen.pairs_per_call, gen.max_calls
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if pairs_per_call < 1:
        raise ConfigError(f"pairs_per_call must be at least 1, got {pairs_per_call}")
    if max_calls is not None and max_calls < 1:
        raise ConfigError(f"max_calls must be at least 1, got {max_calls}")
    from grounded.checker.roundtrip import DEFAULT_LOCAL_VERIFY, DEFAULT_VERIFY, VERIFIERS

    model = model_opts.model or default_model()
    api_base = model_opts.api_base
    language, dry_run = gen.language, gen.dry_run
    # a local model reads its own pairs back by default: it costs time, not money
    reads = is_local(model) and check is not None and check.checks  # not --no-check
    verify = gen.verify or (DEFAULT_LOCAL_VERIFY if reads else DEFAULT_VERIFY)
    if verify not in VERIFIERS:
        raise ConfigError(f"verify must be one of {', '.join(VERIFIERS)}, not {verify!r}")
    tmpl = gen.prompt if isinstance(gen.prompt, Prompt) else load_prompt(gen.prompt)
    idx = _open(index, chroma_url)
    with ExitStack() as opened:
        if idx is not index:
            opened.callback(idx.close)  # opened here, so closed here
        out_dir = Path(out)
        format_style = model_opts.response_format
        if format_style == "auto":
            format_style = "json_object" if api_base else "json_schema"
        tmpl.response_format(1, format_style)  # validates the style before any work
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
        seeds = seed_order(idx.chunks(), seed=gen.seed)
        if not seeds:
            raise ConfigError(
                "the index has no chunks long enough to ask about", hint="ingest documents first"
            )
        written = _Written.read(out_dir / "qa.jsonl", out_dir / "rejected.jsonl", sink=sink)
        summary.already_written = len(written.kept)
        planner = _Planner(idx, tmpl, seeds, pairs_per_call, n)
        params: dict[str, Any] = {
            "temperature": model_opts.temperature
            if model_opts.temperature is not None
            else (0.2 if is_local(model) else 0.7),
            "max_tokens": model_opts.max_tokens or (160 * planner.size + 120),
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
        summary.checked = check is not None and check.checks
        cache_path = Path(cache) if cache is not None else out_dir / ".cache" / "llm.sqlite"
        llm = _client(model, model_opts, Sampling.from_params(params), cache_path)
        if verify == "judge":
            if check is None:
                raise ConfigError(
                    "--verify judge needs the built-in checker (the judge runs inside it)",
                    hint="drop --no-check, or use --verify roundtrip",
                )
            check.checker = _with_judge(check.checker, llm)
        quote_choices = gen.quote_choices
        if quote_choices is None:
            # small models run locally or behind a self-hosted server invent quotes; big ones rarely do
            quote_choices = is_local(model) or bool(api_base)
        verifier = None
        if verify == "roundtrip":
            verifier = VerifyStage(
                llm,
                style=format_style,
                refusal=tmpl.kind == "unanswerable",
                threshold=getattr(check.checker, "threshold", None) if check else None,
            )
        asking = Asking(language, bool(quote_choices), format_style, gen.retry_invalid)
        run = _Run(
            llm=llm,
            prompt=tmpl,
            asking=asking,
            check=check,
            verify=verifier,
            summary=summary,
            out_dir=out_dir,
            params=params,
            written=written,
            sink=sink,
        )
        try:
            # The first LLM call's setup and the checker's model loads hold the GIL for long
            # stretches that no thread can slice: done here, before any reply is waited for.
            warm_llm(model)
            if check is not None:
                check.warm()
            asyncio.run(run.execute(planner, first, progress=progress, max_rounds=gen.max_rounds))
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
        summary.rejected_by_reason = run.ledger.rejected_by_reason
        summary.check_seconds = round(run.check_seconds, 3)
        _finish(summary, written, run.call_costs, started)
        return summary


def _client(model: str, opts: ModelOptions, sampling: Sampling, cache: Path) -> LLM:
    """The generation model's client: its sampling, where it is served, its limits and retries."""
    connection = Connection()
    if opts.api_base:
        # OpenAI-compatible local servers ignore the key, but the client insists on one.
        key = opts.api_key or os.environ.get("OPENAI_API_KEY") or "sk-local"
        connection = Connection(api_base=opts.api_base, api_key=key)
    elif opts.api_key:
        connection = Connection(api_key=opts.api_key)
    timeout = opts.timeout
    if timeout is None:
        timeout = LOCAL_TIMEOUT_S if is_local(model) else DEFAULT_TIMEOUT_S
    return LLM(
        model,
        cache=cache,
        sampling=sampling,
        connection=connection,
        limits=Limits(concurrency=opts.concurrency, rpm=opts.rpm, tpm=opts.tpm),
        retries=Retries(timeout=timeout, max_retries=opts.max_retries),
    )


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
