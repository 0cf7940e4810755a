"""Reading with an LLM: a round-trip span answer and a Yes/No judgement from token probabilities.

A ModelCheck (signals `llm_yes`, the log-odds that the model says "Yes" to "is this a clear
question the passage answers, and is this its answer?", and `llm_agree`, whether the model's own
answer to the question, asked without the proposed one, agrees with it). Both join the hand
signals in the "qa+llm_yes+llm_agree" calibration (benchmarks/fit_llm_read.py), sign-constrained
like every signal: a yes can only raise the score, a no only lower it.

Prompts put the fixed instructions and the passage first, so llama.cpp reuses the evaluated
prefix across a passage's calls (its reader call, then one Yes/No call per question). A
passage's questions go to the reader in one request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from grounded.checker.context import CheckResult, Context, short
from grounded.types import Reason

READ_SYSTEM = (
    "You read a passage and answer questions about it using only what the passage says. "
    "Be strict: a question that is vague, asks for something else, or is not answered by the "
    "passage gets No."
)
JUDGE_ASK = (
    "Is this a clear question that the passage answers, and is the proposed answer its correct "
    "and complete answer according to the passage? Reply Yes or No."
)
YES_CLIP = 6.0  # log-odds are clipped to +-YES_CLIP: one confident token must not swamp the rest
# Below this probability of Yes the pair carries `llm_says_no` (a reason, not a block: the
# calibrated score decides).
NO_BELOW = 0.5
MAX_PASSAGE_CHARS = 6000
# One token, and the first token's rivals to read "Yes" and "No" from.
JUDGE_CALL: dict[str, Any] = {
    "temperature": 0.0,
    "max_tokens": 1,
    "logprobs": True,
    "top_logprobs": 10,
}
READ_TOKENS_PER_QUESTION = 40


def passage_of(ctx: Context) -> str:
    """What the model reads for a pair: its sources as generation shows them, in order."""
    from grounded.prompting import format_passages

    texts = [c.text for c in ctx.sources if c.text.strip()] or [
        t for t in ctx.support_texts if t.strip()
    ]
    return format_passages(texts)[:MAX_PASSAGE_CHARS]


def judge_messages(passage: str, question: str, answer: str) -> list[dict[str, str]]:
    """The Yes/No request: instructions, the passage(s), then the pair (the shared prefix first).

    passage: the passages as `grounded.prompting.format_passages` tags them.
    """
    user = (
        f"{passage}\n\n"
        f"Question: {' '.join(question.split())}\n"
        f"Proposed answer: {' '.join(answer.split())}\n\n{JUDGE_ASK}"
    )
    return [{"role": "system", "content": READ_SYSTEM}, {"role": "user", "content": user}]


def reader_messages(passage: str, questions: Sequence[str]) -> list[dict[str, str]]:
    """The reader's request: the passage, then its numbered questions (never the answers)."""
    from grounded.verify import CANNOT_ANSWER

    numbered = "\n".join(f"{i}. {' '.join(q.split())}" for i, q in enumerate(questions, 1))
    user = (
        f"{passage}\n\n"
        "Answer each question with a short span copied from the passage (a few words). If the "
        f'passage does not answer a question, answer "{CANNOT_ANSWER}".\n'
        f"Questions:\n{numbered}\n\n"
        'Reply as JSON: {"answers": [{"n": <question number>, "answer": "<short span>"}, ...]}'
    )
    return [{"role": "system", "content": READ_SYSTEM}, {"role": "user", "content": user}]


def yes_log_odds(alternatives: Sequence[tuple[str, float]], text: str = "") -> float | None:
    """log P(yes) - log P(no) over the first token's alternatives; from the text when there are none.

    None when neither word is among them (the model said something else).
    """
    yes = no = 0.0
    for token, logprob in alternatives:
        word = token.strip().lower()
        if word in ("yes", "y", "ye"):
            yes += math.exp(logprob)
        elif word in ("no", "n"):
            no += math.exp(logprob)
    if not alternatives:
        word = text.strip().lower()
        yes, no = float(word.startswith("yes")), float(word.startswith("no"))
    if yes == 0.0 and no == 0.0:
        return None
    eps = math.exp(-YES_CLIP)
    return max(-YES_CLIP, min(YES_CLIP, math.log((yes + eps) / (no + eps))))


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
        from grounded.verify import ReaderReply, reader_format

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
        from grounded.verify import agreement

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


def says_no(odds: float) -> Reason:
    """`llm_says_no` with the model's probability of Yes."""
    p = 1.0 / (1.0 + math.exp(-odds))
    return Reason(
        "llm_says_no",
        f"the model reads the passage as not answering the question with this answer (p={p:.2f})",
    )
