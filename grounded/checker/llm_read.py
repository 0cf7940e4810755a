"""Reading with an LLM: a round-trip span answer and a Yes/No judgement from token probabilities.

A ModelCheck (signals `llm_yes`, the log-odds that the model says "Yes" to "is this a clear
question the passage answers, and is this its answer?", and `llm_agree`, whether the model's own
answer to the question, asked without the proposed one, agrees with it). Both join the hand
signals in the "qa+llm_yes+llm_agree" calibration (benchmarks/fit_llm_read.py), sign-constrained
like every signal: a yes can only raise the score, a no only lower it.

The prompts, the Yes/No log-odds and the answer agreement are grounded.checker.roundtrip's
(generation's round trip reads through the same code). Prompts put the fixed instructions and
the passage first, so llama.cpp reuses the evaluated prefix across a passage's calls (its reader
call, then one Yes/No call per question). A passage's questions go to the reader in one request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from grounded.checker.context import CheckResult, Context, short
from grounded.checker.roundtrip import (
    JUDGE_CALL,
    NO_BELOW,
    ReaderReply,
    agreement,
    judge_messages,
    reader_format,
    reader_messages,
    says_no,
    yes_log_odds,
)
from grounded.types import Reason

MAX_PASSAGE_CHARS = 6000
READ_TOKENS_PER_QUESTION = 40


def passage_of(ctx: Context) -> str:
    """What the model reads for a pair: its sources as generation shows them, in order."""
    from grounded.prompting import format_passages

    texts = [c.text for c in ctx.sources if c.text.strip()] or [
        t for t in ctx.support_texts if t.strip()
    ]
    return format_passages(texts)[:MAX_PASSAGE_CHARS]


class LLMReadCheck:
    """The model reads each pair: its own answer to the question, and its Yes/No on the pair.

    llm: an object with `complete(messages, **kw)` returning a `grounded.llm.Completion`
    (grounded.llm.LLM: calls are cached, so a rerun pays nothing twice).
    """

    name = "llm_read"
    signal = "llm_yes"
    modes: frozenset[str] = frozenset({"qa"})
    min_weight = 0.0
    band = 0.3  # policy "keepable": a yes can raise a pair by about this much
    neutral: dict[str, float] = {}  # pairs it did not read keep the model without it

    def __init__(self, llm: Any, *, reader: bool = True, style: str = "json_schema") -> None:
        self.llm = llm
        self.reader = reader
        self.style = style
        self.calls = 0
        self._found: dict[tuple[str, str, str], CheckResult] = {}

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Read every pair of the batch, a passage at a time (reader first, then the Yes/No)."""
        by_passage: dict[str, list[Context]] = {}
        for ctx in ctxs:
            if ctx.pair.question.strip() and ctx.pair.answer.strip():
                by_passage.setdefault(passage_of(ctx), []).append(ctx)
        for passage, group in by_passage.items():
            todo = [c for c in group if self._key(passage, c) not in self._found]
            if not todo:
                continue
            answers = self._read(passage, todo) if self.reader else {}
            for ctx in todo:
                self._found[self._key(passage, ctx)] = self._judge(
                    passage, ctx, answers.get(" ".join(ctx.pair.question.split()))
                )

    def run(self, ctx: Context) -> CheckResult:
        if not ctx.pair.question.strip() or not ctx.pair.answer.strip():
            return CheckResult()
        key = self._key(passage_of(ctx), ctx)
        if key not in self._found:
            self.prefetch([ctx])
        return self._found.pop(key)

    @staticmethod
    def _key(passage: str, ctx: Context) -> tuple[str, str, str]:
        return passage, ctx.pair.question, ctx.pair.answer

    def _read(self, passage: str, group: Sequence[Context]) -> dict[str, str]:
        """The reader's answer to each distinct question of the passage ({} when unreadable)."""
        from grounded.llm import extract_json

        questions = list(dict.fromkeys(" ".join(c.pair.question.split()) for c in group))
        try:
            reply = self.llm.complete(
                reader_messages(passage, questions),
                response_format=reader_format(self.style),
                temperature=0.0,
                max_tokens=READ_TOKENS_PER_QUESTION * len(questions) + 40,
            )
            self.calls += 1
            found = ReaderReply.model_validate(extract_json(reply.text)).by_number()
        except Exception:  # noqa: BLE001 - an unreadable reply leaves the pairs to the Yes/No
            return {}
        return {q: found[i] for i, q in enumerate(questions, 1) if i in found}

    def _judge(self, passage: str, ctx: Context, reader_answer: str | None) -> CheckResult:
        res = CheckResult()
        if reader_answer is not None:
            found = agreement(ctx.pair.answer, reader_answer)
            res.signals["llm_agree"] = 0.0 if found.reason is not None else 1.0
            if found.reason is not None:
                res.reasons.append(found.reason)
        try:
            reply = self.llm.complete(
                judge_messages(passage, ctx.pair.question, ctx.pair.answer), **JUDGE_CALL
            )
            self.calls += 1
        except Exception as exc:  # noqa: BLE001 - a failed call must not drop the pair
            res.reasons.append(
                Reason("llm_read_unavailable", f"the model's Yes/No failed: {short(str(exc))}")
            )
            return res
        odds = yes_log_odds(reply.top_logprobs, reply.text)
        if odds is None:
            res.reasons.append(
                Reason("llm_read_unavailable", f"the model said {short(reply.text)!r}, not Yes/No")
            )
            return res
        if "llm_agree" not in res.signals:
            res.signals["llm_agree"] = 0.5  # no reader answer: neither for nor against
        res.signals["llm_yes"] = odds
        if 1.0 / (1.0 + math.exp(-odds)) < NO_BELOW:
            res.reasons.append(says_no(odds))
        return res
