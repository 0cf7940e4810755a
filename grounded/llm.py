"""LLM calls through litellm: bounded concurrency, retries, rate limits and a SQLite call cache.

Any litellm model string works (`openai/gpt-4o-mini`, `ollama/llama3`, `openai/<name>` with an
`api_base` for a local OpenAI-compatible server). The offline default, `DEFAULT_LOCAL_MODEL`, is
Qwen2.5-Coder-1.5B-Instruct run by llama.cpp in a worker process and registered as a litellm
custom provider (see `grounded.local_llm`).

Every finished call is stored in the cache before its result is used, keyed by a hash of
(model, messages, params, response_format): a rerun after a crash never pays for a call twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.chunking import count_tokens
from grounded.errors import ConfigError, LLMError, LLMFatalError
from grounded.store import SQLiteStore

DEFAULT_LOCAL_MODEL = "grounded-local/qwen2.5-coder-1.5b"
LOCAL_PROVIDER = "grounded-local"
LOCAL_TIMEOUT_S = 600.0  # an in-process model on a busy CPU writes a few tokens a second

# Environment variables that select a hosted default model when no --model is given.
_HOSTED_DEFAULTS = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-3-5-haiku-20241022"),
)

Message = Mapping[str, Any]

# Where and as whom a call is sent, not what is asked: kept out of cache keys (and never stored).
CONNECTION_PARAMS = frozenset(
    {"api_key", "api_base", "base_url", "api_version", "organization", "extra_headers"}
)


def default_model() -> str:
    """`$GROUNDED_MODEL`, else a hosted model when its API key is set, else the local Qwen2.5-Coder-1.5B."""
    explicit = os.environ.get("GROUNDED_MODEL")
    if explicit:
        return explicit
    for env, model in _HOSTED_DEFAULTS:
        if os.environ.get(env):
            return model
    return DEFAULT_LOCAL_MODEL


def is_local(model: str) -> bool:
    """True for models that run on this machine (no cost, no key)."""
    return model.startswith(f"{LOCAL_PROVIDER}/")


@dataclass(frozen=True, slots=True)
class Completion:
    """One model reply with its usage; `cached` replies cost nothing new."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    call_id: str = ""
    latency_s: float = 0.0
    # The first generated token's alternatives, (token, logprob), when the call asked for
    # `logprobs` (a Yes/No judge reads its probability from them).
    top_logprobs: tuple[tuple[str, float], ...] = ()


@dataclass(slots=True)
class LLMStats:
    """Counters over the life of an `LLM`: new calls, cache hits, failures, spend."""

    calls: int = 0
    cached_calls: int = 0
    failures: int = 0
    retries: int = 0
    cost: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def call_key(
    model: str,
    messages: Sequence[Message],
    params: Mapping[str, Any],
    response_format: Mapping[str, Any] | None,
) -> str:
    """The cache key of a call: sha256 over its canonical JSON (connection settings left out)."""
    payload = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "params": {k: v for k, v in params.items() if k not in CONNECTION_PARAMS},
        "response_format": response_format,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """Content-addressed store of finished LLM calls (SQLite in WAL mode, safe across crashes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store = _call_store(self.path)

    def get(self, key: str) -> Completion | None:
        """The stored reply of call `key`, or None."""
        row = self._store.read_one(
            "SELECT model, text, prompt_tokens, completion_tokens, cost FROM calls WHERE key=?",
            (key,),
        )
        if row is None:
            return None
        model, text, pt, ct, cost = row
        top = self._store.read_one("SELECT top FROM logprobs WHERE key=?", (key,))
        alternatives = tuple((str(t), float(lp)) for t, lp in json.loads(top[0])) if top else ()
        return Completion(text, model, int(pt), int(ct), float(cost), True, key, 0.0, alternatives)

    def put(self, key: str, completion: Completion) -> None:
        """Store a finished call before its result is used."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    completion.model,
                    completion.text,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.cost,
                    time.time(),
                ),
            )
            if completion.top_logprobs:
                db.execute(
                    "INSERT OR REPLACE INTO logprobs VALUES (?, ?)",
                    (key, json.dumps(completion.top_logprobs)),
                )

    def __len__(self) -> int:
        row = self._store.read_one("SELECT COUNT(*) FROM calls")
        return int(row[0]) if row else 0

    def absorb(self, other: str | Path) -> int:
        """Copy in the calls another cache file holds and this one lacks; returns how many."""
        _call_store(Path(other)).close()  # an unreadable file fails here, naming it
        self._store.merge_from(other, "logprobs")
        return self._store.merge_from(other, "calls")

    def close(self) -> None:
        self._store.close()


def _call_store(path: Path) -> SQLiteStore:
    return SQLiteStore(
        path,
        schema=(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, text TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL, created REAL);"
            # a table of its own: caches written before it existed open unchanged
            "CREATE TABLE IF NOT EXISTS logprobs (key TEXT PRIMARY KEY, top TEXT)"
        ),
        what="LLM cache",
        error=ConfigError,
    )


class RateLimiter:
    """Sliding one-minute windows over requests and tokens; `acquire` waits for room."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Any = time.monotonic,
        sleep: Any = asyncio.sleep,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._lock: asyncio.Lock | None = None

    async def acquire(self, tokens: int = 0) -> None:
        if not self.rpm and not self.tpm:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                while self._requests and now - self._requests[0] >= 60:
                    self._requests.popleft()
                while self._tokens and now - self._tokens[0][0] >= 60:
                    self._tokens.popleft()
                wait = 0.0
                if self.rpm and len(self._requests) >= self.rpm:
                    wait = max(wait, 60 - (now - self._requests[0]))
                used = sum(t for _, t in self._tokens)
                # A single call larger than the whole budget still goes once the window is empty.
                if self.tpm and self._tokens and used + tokens > self.tpm:
                    wait = max(wait, 60 - (now - self._tokens[0][0]))
                if wait <= 0:
                    self._requests.append(now)
                    if tokens:
                        self._tokens.append((now, tokens))
                    return
                await self._sleep(wait)


def _litellm() -> Any:
    """litellm, imported offline-safe and quiet (it prints provider help to stdout otherwise)."""
    offline.configure()
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class EmptyReplyError(Exception):
    """A 200 reply without a usable choice (empty `choices`): the server misbehaved, retry."""


def _retryable() -> tuple[type[BaseException], ...]:
    litellm = _litellm()

    return (
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.Timeout,
        litellm.APIConnectionError,
        asyncio.TimeoutError,
        TimeoutError,
        ConnectionError,
        EmptyReplyError,
    )


def _fatal(exc: BaseException) -> bool:
    """True for refusals no retry can fix: bad key, no access, unknown model, a refused request."""
    litellm = _litellm()
    if isinstance(exc, litellm.ContextWindowExceededError):
        return False  # this prompt is too long; other calls may fit
    fatal = (
        litellm.AuthenticationError,
        litellm.PermissionDeniedError,
        litellm.NotFoundError,
        litellm.BadRequestError,  # includes ContentPolicyViolationError
        litellm.UnprocessableEntityError,
    )
    return isinstance(exc, fatal) or _status(exc) in (400, 401, 403, 404, 422)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _transient_status(exc: BaseException) -> bool:
    """5xx (502 Bad Gateway included, which litellm does not class as a server error), 408, 429."""
    status = _status(exc)
    return status is not None and (status >= 500 or status in (408, 429))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (litellm's `original_exception`, `__cause__`, `__context__`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = (
            getattr(current, "original_exception", None) or current.__cause__ or current.__context__
        )


def _caused_by(exc: BaseException, *names: str) -> bool:
    """True when `exc` or anything in its cause chain has a class named one of `names`."""
    return any(cls.__name__ in names for e in _chain(exc) for cls in type(e).__mro__)


# litellm prefixes a provider's message with its own class names: "litellm.X: X: OpenAIException - "
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)?(?:\w+Exception\s*-\s*)?")


def _detail(exc: BaseException, limit: int = 200) -> str:
    """The provider's own message, without litellm's class-name prefixes."""
    return _short(_LITELLM_PREFIX.sub("", " ".join(str(exc).split()), count=1) or exc, limit)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds a 429 asked us to wait, when the provider said so."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def count_message_tokens(messages: Sequence[Message]) -> int:
    """Approximate prompt tokens of a chat: the chunking tokenizer (cl100k_base) plus framing."""
    # ~4 tokens of chat framing per message, as OpenAI documents for its chat format.
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages) + 2


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for a call from litellm's bundled price map; 0 for local models, None when unknown."""
    if is_local(model):
        return 0.0
    litellm = _litellm()
    try:
        p, c = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # noqa: BLE001 - litellm raises plain Exception for unmapped models
        return None
    return float(p) + float(c)


def ensure_provider(model: str) -> None:
    """Register the in-process local provider before the first call that names it."""
    if is_local(model):
        from grounded.local_llm import register

        register()


class LLM:
    """A litellm model with a cache, bounded concurrency, retries and optional rate limits.

    >>> llm = LLM(
    ...     "openai/gpt-4o-mini", cache="out/cache/llm.sqlite", temperature=0.2
    ... )  # doctest: +SKIP
    >>> llm.complete([{"role": "user", "content": "Say hi"}]).text  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        *,
        cache: str | Path | CallCache | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
        rpm: float | None = None,
        tpm: float | None = None,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        **params: Any,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        offline.configure()
        self.model = model
        self.params = dict(params)
        if is_local(model):
            # One in-process model serves one call at a time; more would only queue on its lock
            # and eat into each call's timeout.
            concurrency = 1
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.limiter = RateLimiter(rpm, tpm)
        if cache is None or isinstance(cache, CallCache):
            self.cache = cache
        else:
            self.cache = CallCache(cache)
        self.stats = LLMStats()
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future[Completion]] = {}
        # Set by the first refusal no retry can fix; later calls fail at once without a request.
        self._fatal_error: LLMFatalError | None = None
        ensure_provider(model)

    def key(
        self,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> str:
        return call_key(self.model, messages, {**self.params, **params}, response_format)

    def cached(self, key: str) -> Completion | None:
        return self.cache.get(key) if self.cache is not None else None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._sem_loop = loop
            self._inflight = {}
        return self._sem

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Completion:
        """One chat completion: from the cache when seen before, else litellm with retries."""
        merged = {**self.params, **params}
        key = call_key(self.model, messages, merged, response_format)
        hit = self.cached(key)
        if hit is not None:
            self.stats.cached_calls += 1
            return hit
        sem = self._semaphore()
        # Identical calls in flight at the same time share one request.
        pending = self._inflight.get(key)
        if pending is not None:
            self.stats.cached_calls += 1
            done = await asyncio.shield(pending)
            return Completion(**{**asdict(done), "cached": True})
        if self._fatal_error is not None:
            raise self._fatal_error
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            async with sem:
                result = await self._call_with_retries(messages, merged, response_format, key)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._inflight.pop(key, None)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Completion:
        """Blocking `acomplete`, for scripts and notebooks without an event loop."""
        return asyncio.run(self.acomplete(messages, response_format=response_format, **params))

    async def _call_with_retries(
        self,
        messages: Sequence[Message],
        params: Mapping[str, Any],
        response_format: Mapping[str, Any] | None,
        key: str,
    ) -> Completion:
        retryable = _retryable()
        estimate = 0
        if self.limiter.tpm:
            estimate = count_message_tokens(messages) + int(params.get("max_tokens") or 512)
        attempt = 0
        while True:
            await self.limiter.acquire(estimate)
            try:
                completion = await self._call_once(messages, params, response_format, key)
            except LLMError as exc:  # e.g. the local model crashed (unwrapped by _call_once)
                self.stats.failures += 1
                if isinstance(exc, LLMFatalError):
                    self._fatal_error = exc
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, raised as LLMError
                if _fatal(exc):
                    self.stats.failures += 1
                    self._fatal_error = self._fatal_message(exc)
                    raise self._fatal_error from exc
                if not (isinstance(exc, retryable) or _transient_status(exc)):
                    self.stats.failures += 1
                    raise LLMError(f"{self.model}: {type(exc).__name__}: {_short(exc)}") from exc
                if attempt >= self.max_retries:
                    self.stats.failures += 1
                    raise self._transient_message(exc, attempt + 1) from exc
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay *= 0.5 + random.random()  # full-ish jitter so retries do not stampede
                hinted = _retry_after(exc)
                if hinted is not None:
                    delay = max(delay, min(hinted, self.max_backoff))
                attempt += 1
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue
            if self.cache is not None:
                self.cache.put(key, completion)
            self.stats.calls += 1
            self.stats.cost += completion.cost
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.completion_tokens += completion.completion_tokens
            return completion

    def _transient_message(self, exc: BaseException, attempts: int) -> LLMError:
        """A call that kept failing for a reason that may pass: rerun to retry."""
        litellm = _litellm()
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        where = self.params.get("api_base")
        if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)):
            what = f"timed out after {self.timeout:g} s"
            hint = "rerun to retry; --timeout allows slower calls"
        elif isinstance(exc, litellm.RateLimitError):
            what = f"rate limited (429): {_detail(exc)}"
            hint = "rerun later, or set --rpm/--tpm below your provider's limits"
        elif isinstance(exc, EmptyReplyError):
            what = str(exc)
            hint = "rerun to retry"
        elif _caused_by(exc, "ConnectError", "APIConnectionError", "ConnectionError"):
            what = f"cannot connect{f' to {where}' if where else ''}: {_detail(exc)}"
            hint = "check that the server is running, then rerun to retry"
        elif _caused_by(exc, "JSONDecodeError"):
            what = f"the server's reply was not valid JSON: {_detail(exc)}"
            hint = "rerun to retry; check the server (--api-base) if it keeps happening"
        else:
            status = _status(exc)
            what = f"server error{f' {status}' if status else ''}: {_detail(exc)}"
            hint = "rerun to retry"
        return LLMError(f"{self.model}: {what} ({type(exc).__name__}, {tries})", hint=hint)

    def _fatal_message(self, exc: BaseException) -> LLMFatalError:
        """One line naming the model, the status and what to change."""
        litellm = _litellm()
        status = _status(exc)
        code = f"{status} {type(exc).__name__}" if status else type(exc).__name__
        detail = f"({code}: {_detail(exc)})"
        where = self.params.get("api_base")
        key_env = _key_env(self.model)
        if isinstance(exc, litellm.AuthenticationError) or status == 401:
            what = "the API key was refused"
            hint = f"check {key_env}" + (
                f", the key the server at {where} expects" if where else ""
            )
        elif isinstance(exc, litellm.PermissionDeniedError) or status == 403:
            what = "access to this model was denied"
            hint = f"check that the key in {key_env} may use this model"
        elif isinstance(exc, litellm.NotFoundError) or status == 404:
            what = "unknown model"
            hint = "check the model name (--model, e.g. openai/gpt-4o-mini)"
            if where:
                hint += f" and --api-base {where} (usually ends in /v1)"
        elif isinstance(exc, litellm.ContentPolicyViolationError):
            what = "the provider refused the request (content policy)"
            hint = "use another model or prompt for these documents"
        else:
            what = "the request was refused"
            hint = "check the model name and its options; --response-format none if the server rejects the reply schema"
        return LLMFatalError(
            f"{self.model}: {what} {detail}; stopping, no retry can fix this", hint=hint
        )

    async def _call_once(
        self,
        messages: Sequence[Message],
        params: Mapping[str, Any],
        response_format: Mapping[str, Any] | None,
        key: str,
    ) -> Completion:
        litellm = _litellm()
        kwargs: dict[str, Any] = dict(params)
        if not (litellm.callbacks or litellm.success_callback or litellm.failure_callback):
            # Nobody listens: skip litellm's logging tasks, which otherwise outlive each run
            # and cost seconds when asyncio.run() cancels them at the end.
            kwargs.setdefault("no-log", True)
        if response_format is not None:
            kwargs["response_format"] = dict(response_format)
        started = time.monotonic()
        # litellm's own retries are off: ours are counted, jittered and cache-aware.
        try:
            response = await asyncio.wait_for(
                litellm.acompletion(
                    model=self.model,
                    messages=[dict(m) for m in messages],
                    timeout=self.timeout,
                    num_retries=0,
                    **kwargs,
                ),
                timeout=self.timeout,
            )
        except Exception as exc:
            fatal = fatal_cause(exc)
            if fatal is not None and fatal is not exc:
                raise fatal from exc  # e.g. the local model's crash, wrapped by litellm
            raise
        latency = time.monotonic() - started
        choices = getattr(response, "choices", None)
        if not choices:
            raise EmptyReplyError("the server replied with no choices")
        choice = choices[0]
        text = getattr(choice.message, "content", None) or ""
        usage = getattr(response, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost=_cost(self.model, response, pt, ct),
            cached=False,
            call_id=key,
            latency_s=latency,
            top_logprobs=_first_token_alternatives(choice),
        )


def _first_token_alternatives(choice: Any) -> tuple[tuple[str, float], ...]:
    """The first generated token's (token, logprob) alternatives, from an OpenAI-shaped choice."""
    logprobs = getattr(choice, "logprobs", None)
    content = (
        logprobs.get("content")
        if isinstance(logprobs, dict)
        else getattr(logprobs, "content", None)
    )
    if not content:
        return ()
    first = content[0]
    top = (
        first.get("top_logprobs")
        if isinstance(first, dict)
        else getattr(first, "top_logprobs", None)
    )
    out = []
    for alt in top or ():
        token = alt.get("token") if isinstance(alt, dict) else getattr(alt, "token", None)
        lp = alt.get("logprob") if isinstance(alt, dict) else getattr(alt, "logprob", None)
        if token is not None and lp is not None:
            out.append((str(token), float(lp)))
    return tuple(out)


def _cost(model: str, response: Any, prompt_tokens: int, completion_tokens: int) -> float:
    if is_local(model):
        return 0.0
    hidden = getattr(response, "_hidden_params", None) or {}
    if isinstance(hidden.get("response_cost"), (int, float)):
        return float(hidden["response_cost"])  # litellm already priced it
    litellm = _litellm()
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # noqa: BLE001 - unmapped or self-hosted models have no price
        return float(price(model, prompt_tokens, completion_tokens) or 0.0)


def _short(exc: object, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fatal_cause(exc: BaseException) -> LLMFatalError | None:
    """The `LLMFatalError` behind an exception, through litellm's wrapping of custom providers."""
    return next((e for e in _chain(exc) if isinstance(e, LLMFatalError)), None)


def _key_env(model: str) -> str:
    """The environment variable that holds the key for a litellm model string."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return f"{provider.upper().replace('-', '_')}_API_KEY"


# --- structured output -------------------------------------------------------------------------


def extract_json(text: str) -> Any:
    """The first JSON object in a reply, past any preamble or code fence; ValueError if none.

    Scans with `json.JSONDecoder.raw_decode` from each `{` in turn, so braces inside prose or
    strings never confuse it and trailing chatter is ignored.
    """
    decoder = json.JSONDecoder()
    pos = text.find("{")
    first_error: str | None = None
    while pos >= 0:
        try:
            obj, _ = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if first_error is None:
                first_error = f"invalid JSON at char {exc.pos}: {exc.msg}"
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            return obj
        pos = text.find("{", pos + 1)
    if first_error is not None:
        raise ValueError(first_error)
    raise ValueError("no JSON object in the reply" if text.strip() else "empty reply")


@dataclass(slots=True)
class StructuredResult:
    """A validated reply (or None) with every completion spent on it and the last error."""

    value: Any = None
    completions: list[Completion] = field(default_factory=list)
    error: str = ""
    raw: str = ""

    @property
    def call_id(self) -> str:
        return self.completions[0].call_id if self.completions else ""


async def acomplete_structured(
    llm: LLM,
    messages: Sequence[Message],
    model_type: Any,
    *,
    response_format: Mapping[str, Any] | None = None,
    repair: bool = True,
    **params: Any,
) -> StructuredResult:
    """Ask for JSON, validate it with a pydantic model; on failure ask once to repair it."""
    from pydantic import ValidationError

    result = StructuredResult()
    first = await llm.acomplete(messages, response_format=response_format, **params)
    result.completions.append(first)
    result.raw = first.text
    value, error = _validate(first.text, model_type, ValidationError)
    if value is not None:
        result.value = value
        return result
    result.error = error
    if not repair:
        return result
    repair_messages = [
        *messages,
        {"role": "assistant", "content": first.text},
        {
            "role": "user",
            "content": (
                "Your reply could not be used: "
                f"{error}\nReply again with only one valid JSON object that follows the schema, "
                "no other text."
            ),
        },
    ]
    second = await llm.acomplete(repair_messages, response_format=response_format, **params)
    result.completions.append(second)
    value, error2 = _validate(second.text, model_type, ValidationError)
    if value is not None:
        result.value = value
        result.error = ""
        return result
    result.error = f"{error}; after repair: {error2}"
    result.raw = first.text + "\n---repair---\n" + second.text
    return result


def _validate(text: str, model_type: Any, validation_error: type[Exception]) -> tuple[Any, str]:
    try:
        data = extract_json(text)
    except ValueError as exc:
        return None, str(exc)
    try:
        return model_type.model_validate(data), ""
    except validation_error as exc:
        return None, "schema mismatch: " + validation_problems(exc, limit=5)


def validation_problems(exc: Any, *, limit: int, root: str = "(root)") -> str:
    """A pydantic ValidationError's first `limit` problems as `loc: message; ...`."""
    problems = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or root
        problems.append(f"{loc}: {err.get('msg')}")
    return "; ".join(problems)
