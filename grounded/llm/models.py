"""Which model: the default choice, local or hosted, and litellm imported offline-safe."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from grounded import offline

DEFAULT_LOCAL_MODEL = "grounded-local/qwen2.5-coder-1.5b"
LOCAL_PROVIDER = "grounded-local"
LOCAL_TIMEOUT_S = 600.0  # an in-process model on a busy CPU writes a few tokens a second

# Environment variables that select a hosted default model when no --model is given.
_HOSTED_DEFAULTS = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-3-5-haiku-20241022"),
)

Message = Mapping[str, Any]


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


def provider_of(model: str) -> str:
    """The part of a model string before its first `/` (`openai/gpt-4o-mini` -> `openai`)."""
    return model.split("/", 1)[0] if "/" in model else ""


def _litellm() -> Any:
    """litellm, imported offline-safe and quiet (it prints provider help to stdout otherwise)."""
    offline.configure()
    import litellm

    litellm.suppress_debug_info = True
    return litellm
