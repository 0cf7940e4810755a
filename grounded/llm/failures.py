"""What a failed call means: retry it, stop the run, or fail that call; and the one-line message.

Transports raise what their library raises (litellm's exceptions, an HTTP status on
`status_code`), `TransportError` for a failure that may pass, or an `LLMError` they classified
themselves (`LLMFatalError` stops the run).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

from grounded.errors import LLMError, LLMFatalError
from grounded.llm.models import _litellm, provider_of


class EmptyReplyError(Exception):
    """A 200 reply without a usable choice (empty `choices`): the server misbehaved, retry."""


class TransportError(Exception):
    """A transport's failure that may pass (its worker or connection failed): retried."""


def retryable() -> tuple[type[BaseException], ...]:
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
        TransportError,
    )


def is_fatal(exc: BaseException) -> bool:
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
    return isinstance(exc, fatal) or status_of(exc) in (400, 401, 403, 404, 422)


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def transient_status(exc: BaseException) -> bool:
    """5xx (502 Bad Gateway included, which litellm does not class as a server error), 408, 429."""
    status = status_of(exc)
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


def fatal_cause(exc: BaseException) -> LLMFatalError | None:
    """The `LLMFatalError` behind an exception, through litellm's wrapping of custom providers."""
    return next((e for e in _chain(exc) if isinstance(e, LLMFatalError)), None)


# litellm prefixes a provider's message with its own class names: "litellm.X: X: OpenAIException - "
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)?(?:\w+Exception\s*-\s*)?")


def _detail(exc: BaseException, limit: int = 200) -> str:
    """The provider's own message, without litellm's class-name prefixes."""
    return short(_LITELLM_PREFIX.sub("", " ".join(str(exc).split()), count=1) or exc, limit)


def short(exc: object, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(exc: BaseException) -> float | None:
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


def key_env(model: str) -> str:
    """The environment variable that holds the key for a litellm model string."""
    provider = provider_of(model) or "openai"
    return f"{provider.upper().replace('-', '_')}_API_KEY"


def transient_message(
    model: str, exc: BaseException, attempts: int, *, timeout: float, where: str | None
) -> LLMError:
    """A call that kept failing for a reason that may pass: rerun to retry."""
    litellm = _litellm()
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)):
        what = f"timed out after {timeout:g} s"
        hint = "rerun to retry; --timeout allows slower calls"
    elif isinstance(exc, litellm.RateLimitError):
        what = f"rate limited (429): {_detail(exc)}"
        hint = "rerun later, or set --rpm/--tpm below your provider's limits"
    elif isinstance(exc, (EmptyReplyError, TransportError)):
        what = str(exc)
        hint = "rerun to retry"
    elif _caused_by(exc, "ConnectError", "APIConnectionError", "ConnectionError"):
        what = f"cannot connect{f' to {where}' if where else ''}: {_detail(exc)}"
        hint = "check that the server is running, then rerun to retry"
    elif _caused_by(exc, "JSONDecodeError"):
        what = f"the server's reply was not valid JSON: {_detail(exc)}"
        hint = "rerun to retry; check the server (--api-base) if it keeps happening"
    else:
        status = status_of(exc)
        what = f"server error{f' {status}' if status else ''}: {_detail(exc)}"
        hint = "rerun to retry"
    return LLMError(f"{model}: {what} ({type(exc).__name__}, {tries})", hint=hint)


def fatal_message(model: str, exc: BaseException, *, where: str | None) -> LLMFatalError:
    """One line naming the model, the status and what to change."""
    litellm = _litellm()
    status = status_of(exc)
    code = f"{status} {type(exc).__name__}" if status else type(exc).__name__
    detail = f"({code}: {_detail(exc)})"
    env = key_env(model)
    if isinstance(exc, litellm.AuthenticationError) or status == 401:
        what = "the API key was refused"
        hint = f"check {env}" + (f", the key the server at {where} expects" if where else "")
    elif isinstance(exc, litellm.PermissionDeniedError) or status == 403:
        what = "access to this model was denied"
        hint = f"check that the key in {env} may use this model"
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
    return LLMFatalError(f"{model}: {what} {detail}; stopping, no retry can fix this", hint=hint)
