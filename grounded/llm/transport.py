"""The transport seam: one async method sends a chat request and returns the model's reply.

httpx's `BaseTransport.handle_request` is the model: the client (`grounded.llm.LLM`) owns the
cache, retries, rate limits, cost and repair; a transport only talks to a model. litellm is the
transport for every model string; others are chosen by the model's provider prefix
(`grounded-local/...` is the local worker's), through the registry third parties use too:

    register_transport("mine", MyTransport)   # "mine/<model>" strings now reach MyTransport()

A package makes that call run by naming its module under the `grounded.transports` entry-point
group (the module is imported on the registry's first use, as grounded.local_llm is).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from grounded.llm.failures import EmptyReplyError
from grounded.llm.models import Message, _litellm, provider_of
from grounded.llm.options import Connection, Sampling
from grounded.plugins import Registry

ENTRY_POINT_GROUP = "grounded.transports"


@dataclass(frozen=True, slots=True)
class Request:
    """One chat call: the model string, the chat, the reply format and the options."""

    model: str
    messages: Sequence[Message]
    response_format: Mapping[str, Any] | None = None
    sampling: Sampling = field(default_factory=Sampling)  # `logprobs` asks for alternatives
    connection: Connection = field(default_factory=Connection)
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Response:
    """A model's reply, normalised: its text, usage and the first token's alternatives."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # (token, logprob) rivals of the first generated token, when the request asked for logprobs
    top_logprobs: tuple[tuple[str, float], ...] = ()
    # USD, when the provider priced the call itself; else the client prices it
    cost: float | None = None


@runtime_checkable
class Transport(Protocol):
    """Sends one request; raises what the model's library raises (see grounded.llm.failures)."""

    async def handle_request(self, request: Request) -> Response: ...


TransportFactory = Callable[[], Transport]

# Built-ins register like plugins do (llm's DEFAULT_PLUGINS): grounded.local_llm registers the
# local worker's prefix when imported; litellm serves every prefix nobody registered.
TRANSPORTS: Registry[TransportFactory] = Registry(
    "transport", ENTRY_POINT_GROUP, defaults=("grounded.local_llm",)
)


def register_transport(prefix: str, factory: TransportFactory) -> TransportFactory:
    """Send `prefix/<model>` calls to `factory()`'s transport (clients made after this call)."""
    TRANSPORTS.load_plugins()  # first, so a built-in loaded later never replaces this one
    return TRANSPORTS.register(prefix, factory)


def unregister_transport(prefix: str) -> None:
    """Send `prefix/<model>` calls to litellm again (no error if none is registered)."""
    TRANSPORTS.unregister(prefix)


def transports() -> dict[str, TransportFactory]:
    """A copy of the registry: provider prefix -> transport factory."""
    return TRANSPORTS.items()


def transport_for(model: str) -> Transport:
    """A transport for a model string: the one registered for its prefix, else litellm's."""
    factory = TRANSPORTS.get(provider_of(model))
    return factory() if factory is not None else LiteLLMTransport()


class LiteLLMTransport:
    """Any litellm model string (`openai/gpt-4o-mini`, `ollama/llama3`, `openai/<name>` + api_base)."""

    async def handle_request(self, request: Request) -> Response:
        litellm = _litellm()
        kwargs: dict[str, Any] = {**request.sampling.params(), **request.connection.kwargs()}
        if not (litellm.callbacks or litellm.success_callback or litellm.failure_callback):
            # Nobody listens: skip litellm's logging tasks, which otherwise outlive each run
            # and cost seconds when asyncio.run() cancels them at the end.
            kwargs.setdefault("no-log", True)
        if request.response_format is not None:
            kwargs["response_format"] = dict(request.response_format)
        # litellm's own retries are off: the client's are counted, jittered and cache-aware.
        response = await litellm.acompletion(
            model=request.model,
            messages=[dict(m) for m in request.messages],
            timeout=request.timeout,
            num_retries=0,
            **kwargs,
        )
        choices = getattr(response, "choices", None)
        if not choices:
            raise EmptyReplyError("the server replied with no choices")
        choice = choices[0]
        usage = getattr(response, "usage", None)
        return Response(
            text=getattr(choice.message, "content", None) or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            top_logprobs=first_token_alternatives(getattr(choice, "logprobs", None)),
            cost=_charged(response),
        )


def _charged(response: Any) -> float | None:
    """What litellm priced the call at (its hidden cost, else its price map), None when unmapped."""
    hidden = getattr(response, "_hidden_params", None) or {}
    if isinstance(hidden.get("response_cost"), (int, float)):
        return float(hidden["response_cost"])
    try:
        return float(_litellm().completion_cost(completion_response=response) or 0.0)
    except Exception:  # noqa: BLE001 - unmapped or self-hosted models have no price
        return None


def first_token_alternatives(logprobs: Any) -> tuple[tuple[str, float], ...]:
    """The first generated token's (token, logprob) alternatives, from OpenAI-shaped logprobs."""
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
