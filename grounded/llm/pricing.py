"""What a call costs: litellm's bundled price map; local models are free."""

from __future__ import annotations

from grounded.llm.models import _litellm, is_local
from grounded.llm.transport import transports


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for a call from litellm's bundled price map; 0 for local models, None when unknown."""
    if is_local(model):
        return 0.0
    litellm = _litellm()
    tries: list[dict[str, str]] = [{"model": model}]
    prefix, _, name = model.partition("/")
    if name and prefix in transports():
        # litellm knows this prefix only as a custom provider (`litellm.register_model` prices)
        tries.append({"model": name, "custom_llm_provider": prefix})
    for names in tries:
        try:
            p, c = litellm.cost_per_token(
                **names, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # noqa: BLE001, S112 - litellm raises plain Exception for unmapped models
            continue
        return float(p) + float(c)
    return None


def call_cost(
    model: str, charged: float | None, prompt_tokens: int, completion_tokens: int
) -> float:
    """USD for one call: 0 for a local model, else what the provider charged, else the price map."""
    if is_local(model):
        return 0.0
    if charged is not None:
        return charged
    return float(price(model, prompt_tokens, completion_tokens) or 0.0)
