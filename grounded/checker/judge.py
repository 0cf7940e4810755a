"""Optional LLM judge: claim decomposition and per-claim verdicts, cached by the LLM's cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grounded.checker.context import CheckResult, Context, short
from grounded.types import Reason

JUDGE_SYSTEM = (
    "You check whether an answer is supported by source text. Split the answer into atomic "
    "claims (given the question). For each claim say whether the source text states it "
    "('supported'), states something else ('contradicted') or says nothing about it "
    "('not_found'). Reply with JSON only."
)
JUDGE_VERDICTS = ("supported", "contradicted", "not_found")
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "claim": {"type": "string"},
                    "verdict": {"type": "string", "enum": list(JUDGE_VERDICTS)},
                },
                "required": ["claim", "verdict"],
            },
        }
    },
    "required": ["claims"],
}


class JudgeCheck:
    """Claim decomposition and per-claim verdicts by an LLM (cached by the LLM's cache)."""

    name = "judge"

    def __init__(self, llm: Any, *, max_source_chars: int = 6000) -> None:
        self.llm = llm
        self.max_source_chars = max_source_chars

    def messages(self, ctx: Context) -> list[dict[str, str]]:
        source = "\n\n".join(ctx.support_texts)[: self.max_source_chars]
        question = ctx.pair.question.strip()
        user = f"Source text:\n{source}\n\n"
        if question and not ctx.answer_only:
            user += f"Question: {question}\n"
        user += f'Answer: {ctx.pair.answer}\n\nReply as JSON: {{"claims": [{{"claim": ..., "verdict": ...}}]}}'
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def run(self, ctx: Context) -> CheckResult:
        try:
            reply = _complete(
                self.llm, self.messages(ctx), response_format=JUDGE_SCHEMA, temperature=0.0
            )
        except Exception as exc:  # noqa: BLE001 - a failed judge call must not drop the pair
            return _judge_failed(exc)
        return self.read(reply)

    async def arun(self, ctx: Context) -> CheckResult:
        """`run` inside an event loop: the LLM's `acomplete` is awaited (a thread for sync judges)."""
        import asyncio

        messages = self.messages(ctx)
        try:
            if hasattr(self.llm, "acomplete"):
                reply = await self.llm.acomplete(
                    messages, response_format=JUDGE_SCHEMA, temperature=0.0
                )
            else:
                reply = await asyncio.to_thread(
                    self.llm.complete, messages, response_format=JUDGE_SCHEMA, temperature=0.0
                )
        except Exception as exc:  # noqa: BLE001 - a failed judge call must not drop the pair
            return _judge_failed(exc)
        return self.read(reply)

    def read(self, reply: Any) -> CheckResult:
        """The judge's reply as a signal (share of supported claims) and reasons."""
        import json

        res = CheckResult()
        text = getattr(reply, "text", reply)
        try:
            data = json.loads(_json_part(str(text)))
            claims = [c for c in data.get("claims", []) if isinstance(c, Mapping)]
        except (ValueError, AttributeError):
            res.reasons.append(
                Reason("judge_unparsable", f"judge reply is not JSON: {short(str(text))}")
            )
            return res
        # only well-formed verdicts count: a small model's off-schema reply must not decide
        claims = [c for c in claims if str(c.get("verdict", "")).strip().lower() in JUDGE_VERDICTS]
        if not claims:
            res.reasons.append(
                Reason("judge_unparsable", f"judge gave no valid verdict: {short(str(text))}")
            )
            return res
        verdicts = [str(c.get("verdict", "")).strip().lower() for c in claims]
        supported = sum(v == "supported" for v in verdicts) / len(verdicts)
        res.signals["judge"] = supported
        bad = [
            str(c.get("claim", ""))
            for c, v in zip(claims, verdicts, strict=True)
            if v != "supported"
        ]
        if bad:
            res.reasons.append(
                Reason(
                    "judge_unsupported",
                    "judge found unsupported claim(s): " + "; ".join(short(b, 80) for b in bad[:3]),
                )
            )
        return res


def _judge_failed(exc: BaseException) -> CheckResult:
    res = CheckResult()
    res.reasons.append(Reason("judge_failed", f"judge call failed: {type(exc).__name__}: {exc}"))
    return res


def _complete(llm: Any, messages: list[dict[str, str]], **kw: Any) -> Any:
    """`llm.complete`, also from inside a running event loop (in a worker thread)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return llm.complete(messages, **kw)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(llm.complete, messages, **kw).result()


def _json_part(text: str) -> str:
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start >= 0 and end > start else text


def default_judge_cache() -> Path:
    """Where judge calls are cached when no cache is given: $XDG_CACHE_HOME/grounded/judge.sqlite."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "grounded" / "judge.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
