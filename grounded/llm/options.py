"""The LLM client's options as small frozen values (httpx's `Timeout`, `Limits`): validated once.

`Sampling` is what is asked (it is part of every call's cache key), `Connection` where and as
whom (never in a key, never stored), `Limits` how many calls at once and per minute, `Retries`
how long one call may take and how often it is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

from grounded.errors import ConfigError

# Where and as whom a call is sent, not what is asked: kept out of cache keys (and never stored).
CONNECTION_PARAMS = frozenset(
    {"api_key", "api_base", "base_url", "api_version", "organization", "extra_headers"}
)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Generation options; None leaves one to the provider (and out of the call's cache key).

    `extra` carries provider-specific options (`repeat_penalty` for a local model) as they are.
    """

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | Sequence[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None  # alternatives per generated token, with `logprobs`
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Sampling:
        """A `{name: value}` dict of litellm-style options; unknown names go to `extra`."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in params.items() if k in known},
            extra={k: v for k, v in params.items() if k not in known},
        )

    def params(self) -> dict[str, Any]:
        """The options set, as litellm keywords: what a call's cache key holds."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        return {**out, **self.extra}

    def merged(self, other: Sampling | None) -> Sampling:
        """These options with `other`'s set ones on top (a call's own options over the client's)."""
        if other is None:
            return self
        return Sampling.from_params({**self.params(), **other.params()})


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and as whom calls are sent (an OpenAI-compatible server's `api_base` and key)."""

    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_version: str | None = None
    organization: str | None = None
    extra_headers: Mapping[str, str] | None = None

    def kwargs(self) -> dict[str, Any]:
        """The settings given, as litellm keywords."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True, slots=True)
class Limits:
    """Calls in flight at once, and optional per-minute budgets of requests and tokens."""

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency}")


@dataclass(frozen=True, slots=True)
class Retries:
    """Seconds one call may take, and how often a call that may pass is tried again."""

    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0  # first wait, doubled per attempt, jittered
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")


_LIMITS = frozenset({"concurrency", "rpm", "tpm"})
_RETRIES = frozenset({"timeout", "max_retries", "backoff", "max_backoff"})


@dataclass(frozen=True, slots=True)
class Options:
    """All four option values of one client."""

    sampling: Sampling = Sampling()
    connection: Connection = Connection()
    limits: Limits = Limits()
    retries: Retries = Retries()

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        """The keyword style `LLM(model, timeout=..., temperature=..., api_base=...)`, typed.

        Limit and retry names, connection names, and every other name as a sampling option.
        """
        return cls(
            Sampling.from_params(
                {k: v for k, v in kwargs.items() if k not in _LIMITS | _RETRIES | CONNECTION_PARAMS}
            ),
            Connection(**{k: v for k, v in kwargs.items() if k in CONNECTION_PARAMS}),
            Limits(**{k: v for k, v in kwargs.items() if k in _LIMITS}),
            Retries(**{k: v for k, v in kwargs.items() if k in _RETRIES}),
        )


class LLMSettings(TypedDict, total=False):
    """`LLM`'s keyword style: the four option values' fields, flat (read once by `from_kwargs`)."""

    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    seed: int | None
    stop: str | Sequence[str] | None
    logprobs: bool | None
    top_logprobs: int | None
    api_base: str | None
    api_key: str | None
    base_url: str | None
    api_version: str | None
    organization: str | None
    extra_headers: Mapping[str, str] | None
    concurrency: int
    rpm: float | None
    tpm: float | None
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float
