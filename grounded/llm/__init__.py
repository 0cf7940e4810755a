"""LLM calls: a client with a call cache, bounded concurrency, retries and rate limits, over a
transport that talks to the model.

Any litellm model string works (`openai/gpt-4o-mini`, `ollama/llama3`, `openai/<name>` with an
`api_base` for a local OpenAI-compatible server). The offline default, `DEFAULT_LOCAL_MODEL`, is
Qwen2.5-Coder-1.5B-Instruct run by llama.cpp in a worker process, reached through its own
transport (see `grounded.local_llm`); tests register a fake one the same way
(`register_transport`).

Every finished call is stored in the cache before its result is used, keyed by a hash of
(model, messages, params, response_format): a rerun after a crash never pays for a call twice.

    llm.models      default model choice, local or hosted
    llm.options     Sampling, Connection, Limits, Retries: the client's typed options
    llm.cache       Completion, call_key, CallCache
    llm.limits      RateLimiter
    llm.failures    retry / stop / fail classification and messages
    llm.pricing     what a call costs
    llm.transport   the Transport protocol, its registry, LiteLLMTransport
    llm.client      LLM
    llm.structured  JSON replies and the repair loop
"""

from grounded.llm.cache import CallCache, Completion, call_key
from grounded.llm.client import LLM, LLMStats, ensure_provider
from grounded.llm.failures import EmptyReplyError, TransportError, fatal_cause
from grounded.llm.limits import RateLimiter, count_message_tokens
from grounded.llm.models import (
    DEFAULT_LOCAL_MODEL,
    LOCAL_PROVIDER,
    LOCAL_TIMEOUT_S,
    Message,
    _litellm,
    default_model,
    is_local,
)
from grounded.llm.options import CONNECTION_PARAMS, Connection, Limits, Options, Retries, Sampling
from grounded.llm.pricing import price
from grounded.llm.structured import (
    Repair,
    Repaired,
    StructuredResult,
    acomplete_structured,
    arepair,
    extract_json,
    validation_problems,
)
from grounded.llm.transport import (
    LiteLLMTransport,
    Request,
    Response,
    Transport,
    register_transport,
    transport_for,
    transports,
    unregister_transport,
)

__all__ = [
    "CONNECTION_PARAMS",
    "DEFAULT_LOCAL_MODEL",
    "LLM",
    "LOCAL_PROVIDER",
    "LOCAL_TIMEOUT_S",
    "CallCache",
    "Completion",
    "Connection",
    "EmptyReplyError",
    "LLMStats",
    "Limits",
    "LiteLLMTransport",
    "Message",
    "Options",
    "RateLimiter",
    "Repair",
    "Repaired",
    "Request",
    "Response",
    "Retries",
    "Sampling",
    "StructuredResult",
    "Transport",
    "TransportError",
    "_litellm",
    "acomplete_structured",
    "arepair",
    "call_key",
    "count_message_tokens",
    "default_model",
    "ensure_provider",
    "extract_json",
    "fatal_cause",
    "is_local",
    "price",
    "register_transport",
    "transport_for",
    "transports",
    "unregister_transport",
    "validation_problems",
]
