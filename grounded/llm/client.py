"""The LLM client: a call cache, bounded concurrency, retries and rate limits over a transport."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Unpack

from grounded import offline
from grounded.errors import LLMError, LLMFatalError
from grounded.llm.cache import CallCache, Completion, call_key
from grounded.llm.failures import (
    fatal_cause,
    fatal_message,
    is_fatal,
    retry_after,
    retryable,
    short,
    transient_message,
    transient_status,
)
from grounded.llm.limits import RateLimiter, count_message_tokens
from grounded.llm.models import Message, is_local
from grounded.llm.options import Connection, Limits, LLMSettings, Options, Retries, Sampling
from grounded.llm.pricing import call_cost
from grounded.llm.transport import Request, Transport, transport_for


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


def ensure_provider(model: str) -> None:
    """Make a model's transport ready before the first call that names it (the local worker's
    litellm provider included, for code that calls litellm with `grounded-local/...` itself)."""
    transport_for(model)


class LLM:
    """A model behind a transport, with a cache, bounded concurrency, retries and rate limits.

    >>> llm = LLM(
    ...     "openai/gpt-4o-mini", cache="out/cache/llm.sqlite", sampling=Sampling(temperature=0.2)
    ... )  # doctest: +SKIP
    >>> llm.complete([{"role": "user", "content": "Say hi"}]).text  # doctest: +SKIP

    The keyword style `LLM(model, timeout=..., rpm=..., temperature=..., api_base=...)` still
    works: its names are read once into the same four option values (`Options.from_kwargs`).
    """

    def __init__(
        self,
        model: str,
        *,
        cache: str | Path | CallCache | None = None,
        sampling: Sampling | None = None,
        connection: Connection | None = None,
        limits: Limits | None = None,
        retries: Retries | None = None,
        transport: Transport | None = None,
        **legacy: Unpack[LLMSettings],
    ) -> None:
        offline.configure()
        given = Options.from_kwargs(legacy)
        self.model = model
        self.sampling = given.sampling.merged(sampling)
        self.connection = connection or given.connection
        limits = limits or given.limits
        self.retry = retries or given.retries
        # One in-process model serves one call at a time; more would only queue on its lock
        # and eat into each call's timeout.
        self.concurrency = 1 if is_local(model) else limits.concurrency
        self.limiter = RateLimiter(limits.rpm, limits.tpm)
        if cache is None or isinstance(cache, CallCache):
            self.cache = cache
        else:
            self.cache = CallCache(cache)
        self.stats = LLMStats()
        self.transport = transport if transport is not None else transport_for(model)
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future[Completion]] = {}
        # Set by the first refusal no retry can fix; later calls fail at once without a request.
        self._fatal_error: LLMFatalError | None = None

    @property
    def timeout(self) -> float:
        return self.retry.timeout

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    @property
    def params(self) -> dict[str, Any]:
        """Sampling and connection options as one litellm-style dict (read-only view)."""
        return {**self.sampling.params(), **self.connection.kwargs()}

    def key(
        self,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        sampling: Sampling | None = None,
    ) -> str:
        """The cache key of a call with these options (the client's, `sampling`'s on top)."""
        merged = self.sampling.merged(sampling)
        return call_key(self.model, messages, merged.params(), response_format)

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
        sampling: Sampling | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
    ) -> Completion:
        """One chat completion: from the cache when seen before, else the transport with retries.

        `sampling` and the keywords set this call's options over the client's.
        """
        shorthand = Sampling(
            temperature=temperature,
            max_tokens=max_tokens,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )
        merged = self.sampling.merged(sampling).merged(shorthand)
        key = call_key(self.model, messages, merged.params(), response_format)
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
        request = Request(
            self.model, messages, response_format, merged, self.connection, self.retry.timeout
        )
        try:
            async with sem:
                if self._fatal_error is not None:  # refused while this call waited its turn
                    raise self._fatal_error
                result = await self._call_with_retries(request, key)
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
        sampling: Sampling | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
    ) -> Completion:
        """Blocking `acomplete`, for scripts and notebooks without an event loop."""
        return asyncio.run(
            self.acomplete(
                messages,
                response_format=response_format,
                sampling=sampling,
                temperature=temperature,
                max_tokens=max_tokens,
                logprobs=logprobs,
                top_logprobs=top_logprobs,
            )
        )

    async def _call_with_retries(self, request: Request, key: str) -> Completion:
        kinds = retryable()
        estimate = 0
        if self.limiter.tpm:
            estimate = count_message_tokens(request.messages) + int(
                request.sampling.max_tokens or 512
            )
        attempt = 0
        where = self.connection.api_base
        while True:
            await self.limiter.acquire(estimate)
            try:
                completion = await self._call_once(request, key)
            except LLMError as exc:  # e.g. the local model crashed (unwrapped by _call_once)
                self.stats.failures += 1
                if isinstance(exc, LLMFatalError):
                    self._fatal_error = exc
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, raised as LLMError
                if is_fatal(exc):
                    self.stats.failures += 1
                    self._fatal_error = fatal_message(self.model, exc, where=where)
                    raise self._fatal_error from exc
                if not (isinstance(exc, kinds) or transient_status(exc)):
                    self.stats.failures += 1
                    raise LLMError(f"{self.model}: {type(exc).__name__}: {short(exc)}") from exc
                if attempt >= self.retry.max_retries:
                    self.stats.failures += 1
                    raise transient_message(
                        self.model, exc, attempt + 1, timeout=self.retry.timeout, where=where
                    ) from exc
                delay = min(self.retry.max_backoff, self.retry.backoff * 2**attempt)
                delay *= 0.5 + random.random()  # full-ish jitter so retries do not stampede
                hinted = retry_after(exc)
                if hinted is not None:
                    delay = max(delay, min(hinted, self.retry.max_backoff))
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

    async def _call_once(self, request: Request, key: str) -> Completion:
        started = time.monotonic()
        try:
            reply = await asyncio.wait_for(
                self.transport.handle_request(request), timeout=self.retry.timeout
            )
        except Exception as exc:
            fatal = fatal_cause(exc)
            if fatal is not None and fatal is not exc:
                raise fatal from exc  # e.g. the local model's crash, wrapped by litellm
            raise
        latency = time.monotonic() - started
        pt, ct = reply.prompt_tokens, reply.completion_tokens
        return Completion(
            text=reply.text,
            model=self.model,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost=call_cost(self.model, reply.cost, pt, ct),
            cached=False,
            call_id=key,
            latency_s=latency,
            top_logprobs=reply.top_logprobs,
        )
