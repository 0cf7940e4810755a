"""Replies that must be JSON: find the object, validate it, and the one repair loop.

`arepair` asks, reads the reply, and while the reading needs a repair shows the model its own
reply with what to fix and reads the answer again. `acomplete_structured` is it with a pydantic
model; generation's pair requests use it with their own reader and repair request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from grounded.llm.cache import Completion
from grounded.llm.client import LLM
from grounded.llm.models import Message
from grounded.llm.options import Sampling

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class Repair:
    """What a reply lacked, as the user message that asks for it, and the repair call's format."""

    request: str
    response_format: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Repaired(Generic[T]):
    """Every completion of a repair loop and what `read` made of each, in order."""

    completions: list[Completion] = field(default_factory=list)
    readings: list[T] = field(default_factory=list)


async def arepair(
    llm: LLM,
    messages: Sequence[Message],
    read: Callable[[str], Awaitable[T]],
    needs: Callable[[Sequence[T]], Repair | None],
    *,
    response_format: Mapping[str, Any] | None = None,
    sampling: Sampling | None = None,
    rounds: int = 1,
) -> Repaired[T]:
    """Ask, read the reply; while `needs(readings so far)` names a repair (at most `rounds`
    times), send the chat so far, the model's reply and the repair request, and read again."""
    out: Repaired[T] = Repaired()
    chat = list(messages)
    fmt = response_format
    while True:
        completion = await llm.acomplete(chat, response_format=fmt, sampling=sampling)
        out.completions.append(completion)
        out.readings.append(await read(completion.text))
        repair = needs(out.readings) if len(out.completions) <= rounds else None
        if repair is None:
            return out
        chat = [
            *chat,
            {"role": "assistant", "content": completion.text},
            {"role": "user", "content": repair.request},
        ]
        fmt = repair.response_format


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
    sampling: Sampling | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> StructuredResult:
    """Ask for JSON, validate it with a pydantic model; on failure ask once to repair it."""
    from pydantic import ValidationError

    async def read(text: str) -> tuple[Any, str]:
        return _validate(text, model_type, ValidationError)

    def needs(readings: Sequence[tuple[Any, str]]) -> Repair | None:
        value, error = readings[-1]
        if value is not None:
            return None
        request = (
            f"Your reply could not be used: {error}\nReply again with only one valid JSON "
            "object that follows the schema, no other text."
        )
        return Repair(request, response_format)

    options = (sampling or Sampling()).merged(
        Sampling(temperature=temperature, max_tokens=max_tokens)
    )
    done = await arepair(
        llm,
        messages,
        read,
        needs,
        response_format=response_format,
        sampling=options,
        rounds=1 if repair else 0,
    )
    result = StructuredResult(completions=done.completions, raw=done.completions[0].text)
    value, error = done.readings[-1]
    if value is not None:
        result.value = value
        return result
    result.error = done.readings[0][1]
    if len(done.readings) > 1:
        result.error += f"; after repair: {error}"
        result.raw += "\n---repair---\n" + done.completions[1].text
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
