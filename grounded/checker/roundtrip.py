"""Round-trip verification: a reader answers the generated questions from the passages alone.

One module for reading with an LLM: the prompts, the Yes/No log-odds and the answer agreement
are shared by generation's `read_back` (async, one request per generation call) and the checker's
`LLMReadCheck` (grounded.checker.llm_read, sync, a passage's pairs at a time).

The reader sees the passages and the questions of one generation call (never the proposed
answers), in one request, through the generation `LLM` (same cache, concurrency, rate limits and
stats). A pair is kept when the reader's answer agrees with the proposed one; otherwise it is
rejected with a reason code:

- `reader_disagrees`: the reader gave a different answer.
- `reader_cannot_answer`: the reader said the passages do not answer the question.
- `reader_answered`: an unanswerable pair (a refusal) that the reader answered from the passages.
- `reader_unavailable` (not blocking): the reader's reply could not be read, even after one repair
  request; the pair is kept unverified, with this reason in its verdict.

With `judge=True` (the default for local models) the model also says Yes or No to each pair
(grounded.checker.llm_read), and the reader's agreement and the Yes/No log-odds join the pair's
hand signals in the fitted "qa+llm_yes+llm_agree" calibration: the pair is rejected when that
score is below the checker's threshold (`low_support`, with `reader_disagrees` / `llm_says_no`
saying why), instead of on the reader's disagreement alone.

Agreement (`agreement`) is decided on SQuAD-normalised answers (lowercase, no punctuation, no
articles): token F1 > F1_MIN, or one answer contains the other as whole words, or a rapidfuzz
ratio >= FUZZY_MIN (spelling and number formatting: "12,000" / "12000"); answers that both hold
numbers agree only when they hold the same numbers ("12 June 1843" / "12 June 1848" disagree).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import fuzz

from grounded.checker.context import says_not_in_sources
from grounded.prompting import format_passages
from grounded.types import QAPair, Reason

VERIFIERS = ("off", "roundtrip", "judge")
# Reader calls cost money with a hosted model: the user opts in (README: "Round-trip
# verification"). A local model reads for free, so it reads unless told not to.
DEFAULT_VERIFY = "off"
DEFAULT_LOCAL_VERIFY = "roundtrip"
F1_MIN = (
    0.5  # SQuAD token F1 above which two answers agree ("Alan Stevenson"/"Robert Stevenson" is 0.5)
)
FUZZY_MIN = 85.0  # rapidfuzz ratio (0-100) on normalised answers: same words, other spelling
CANNOT_ANSWER = "not in the passage"
READER_TEMPERATURE = 0.0
READER_TOKENS_PER_QUESTION = 48

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
# One token, and the first token's rivals to read "Yes" and "No" from.
JUDGE_CALL: dict[str, Any] = {
    "temperature": 0.0,
    "max_tokens": 1,
    "logprobs": True,
    "top_logprobs": 10,
}
READER_SYSTEM = READ_SYSTEM  # the reader and the Yes/No share it: one evaluated prefix
READER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "description": "the question's number"},
                    "answer": {"type": "string", "maxLength": 200},
                },
                "required": ["n", "answer"],
            },
        }
    },
    "required": ["answers"],
}


class ReaderItem(BaseModel):
    """One answer of the reader's reply."""

    model_config = ConfigDict(extra="ignore")

    n: int = Field(ge=1)
    answer: str = ""


class ReaderReply(BaseModel):
    """`{"answers": [{"n": 1, "answer": ...}, ...]}`; a bare list of strings is read in order."""

    model_config = ConfigDict(extra="ignore")

    answers: list[ReaderItem] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _numbered(cls, data: Any) -> Any:
        items = data.get("answers") if isinstance(data, dict) else None
        if isinstance(items, list) and all(isinstance(x, str) for x in items):
            return {"answers": [{"n": i, "answer": a} for i, a in enumerate(items, 1)]}
        return data

    def by_number(self) -> dict[int, str]:
        """Question number -> answer (the first answer given for a number wins)."""
        out: dict[int, str] = {}
        for item in self.answers:
            out.setdefault(item.n, " ".join(item.answer.split()))
        return out


# --- agreement -----------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans(
    "", "", string.punctuation + "‘’“”–—…"
)  # deleted, as SQuAD does: 12,000 -> 12000


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, punctuation and articles removed, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def token_f1(a: str, b: str) -> float:
    """SQuAD token F1 between two answers (after `normalize_answer`)."""
    ta, tb = normalize_answer(a).split(), normalize_answer(b).split()
    if not ta or not tb:
        return float(ta == tb)
    common = sum((Counter(ta) & Counter(tb)).values())
    if not common:
        return 0.0
    precision, recall = common / len(tb), common / len(ta)
    return 2 * precision * recall / (precision + recall)


def cannot_answer(answer: str) -> bool:
    """True for an empty reply or one saying the passages do not tell."""
    norm = normalize_answer(answer)
    return (
        not norm
        or norm in {"not in passage", "none", "unknown", "n a", "no answer"}
        or says_not_in_sources(answer)
    )


@dataclass(frozen=True, slots=True)
class ReaderCheck:
    """The reader's answer to one pair's question, and whether it confirms the pair."""

    reader_answer: str | None  # None: the reader's reply had no usable answer for it
    f1: float = 0.0
    reason: Reason | None = None  # None when the reader agrees
    # With the Yes/No judgement: its log-odds, and the pair's score with the model's signals
    # (None: not judged, or no calibration fitted with them; the reader's agreement decides).
    llm_yes: float | None = None
    score: float | None = None
    threshold: float | None = None

    @property
    def rejects(self) -> bool:
        if self.score is not None and self.threshold is not None:
            return self.score < self.threshold
        return self.reason is not None and self.reason.code != "reader_unavailable"

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """Why the pair is rejected (or, when kept, what the reading noted)."""
        out = [self.reason] if self.reason is not None else []
        if self.llm_yes is not None and self.llm_yes < 0:
            out.append(says_no(self.llm_yes))
        if self.rejects and self.score is not None:
            out.append(
                Reason(
                    "low_support",
                    f"support score with the model's reading {self.score:.2f} below threshold "
                    f"{self.threshold:.2f}",
                )
            )
        return tuple(out)

    def apply(self, pair: QAPair) -> QAPair:
        """The pair with the reader's answer in its metadata (and a non-blocking reason, if any)."""
        meta = {
            **pair.metadata,
            "verify": "roundtrip",
            "reader_answer": self.reader_answer,
            "reader_f1": round(self.f1, 3),
        }
        pair = replace(pair, metadata=meta)
        if pair.verdict is None:
            return pair
        verdict = pair.verdict
        if self.llm_yes is not None:
            signals = {**verdict.signals, "llm_yes": round(self.llm_yes, 4)}
            if self.reader_answer is not None:
                signals["llm_agree"] = 0.0 if self.reason is not None else 1.0
            verdict = replace(verdict, signals=signals)
            if self.score is not None:
                verdict = replace(verdict, score=round(self.score, 4))
        if not self.rejects:
            verdict = replace(verdict, reasons=(*verdict.reasons, *self.reasons))
        return replace(pair, verdict=verdict)


def agreement(proposed: str, reader: str, *, refusal: bool = False) -> ReaderCheck:
    """Does the reader's answer confirm the proposed one? (refusal: the pair says "not in the documents")."""
    unable = cannot_answer(reader)
    if refusal:
        if unable:
            return ReaderCheck(reader, 1.0)
        return ReaderCheck(
            reader,
            0.0,
            Reason(
                "reader_answered",
                f"the reader answered the unanswerable question: {_short(reader)!r}",
            ),
        )
    if unable:
        return ReaderCheck(
            reader,
            0.0,
            Reason(
                "reader_cannot_answer",
                f"the reader found no answer in the passages (said {_short(reader)!r})",
            ),
        )
    f1 = token_f1(proposed, reader)
    numbers, said = _numbers(proposed), _numbers(reader)
    same_numbers = not (numbers and said) or numbers == said
    if same_numbers and (
        f1 > F1_MIN or _contains(proposed, reader) or _fuzzy(proposed, reader) >= FUZZY_MIN
    ):
        return ReaderCheck(reader, f1)
    why = f"the reader answered {_short(reader)!r}, not {_short(proposed)!r} (token F1 {f1:.2f})"
    return ReaderCheck(reader, f1, Reason("reader_disagrees", why))


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", text)))


def _contains(a: str, b: str) -> bool:
    na, nb = normalize_answer(a), normalize_answer(b)
    return bool(na and nb) and (f" {na} " in f" {nb} " or f" {nb} " in f" {na} ")


def _fuzzy(a: str, b: str) -> float:
    return float(fuzz.ratio(normalize_answer(a), normalize_answer(b)))


# --- the reader request --------------------------------------------------------------------------


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


def says_no(odds: float) -> Reason:
    """`llm_says_no` with the model's probability of Yes."""
    p = 1.0 / (1.0 + math.exp(-odds))
    return Reason(
        "llm_says_no",
        f"the model reads the passage as not answering the question with this answer (p={p:.2f})",
    )


def passage_block(passages: Sequence[str]) -> str:
    """The passages as every reading request shows them (generation's tags)."""
    return format_passages([t for t in passages if t.strip()])


def reader_format(style: str) -> dict[str, Any] | None:
    """The reply schema sent the way generation sends its own (json_schema | json_object | none)."""
    if style == "none":
        return None
    if style == "json_object":
        return {"type": "json_object", "schema": READER_SCHEMA}
    return {
        "type": "json_schema",
        "json_schema": {"name": "reader_answers", "schema": READER_SCHEMA, "strict": False},
    }


@dataclass(slots=True)
class ReadBack:
    """What one reader request (and its repair, if needed) said about a call's pairs."""

    checks: list[ReaderCheck]
    calls: int
    error: str = ""


async def read_back(
    llm: Any,
    passages: Sequence[str],
    pairs: Sequence[QAPair],
    *,
    style: str = "json_schema",
    refusal: bool = False,
    judge: bool = False,
    threshold: float | None = None,
) -> ReadBack:
    """Ask the reader all `pairs`' questions in one request; one check per pair, in order.

    refusal: the pairs are unanswerable ones (their answer says the passages do not tell).
    judge: also ask the model's Yes/No on each answerable pair (one short call each, after the
    reader's, on the same passage prefix) and rescore the pair with it (see the module doc).
    Raises LLMError when the reader's call fails (the caller leaves the pairs for a rerun).
    """
    from grounded.llm import acomplete_structured

    messages = reader_messages(passage_block(passages), [p.question for p in pairs])
    result = await acomplete_structured(
        llm,
        messages,
        ReaderReply,
        response_format=reader_format(style),
        temperature=READER_TEMPERATURE,
        max_tokens=READER_TOKENS_PER_QUESTION * len(pairs) + 40,
    )
    calls = len(result.completions)
    if result.value is None:
        why = Reason(
            "reader_unavailable",
            f"kept unverified: the reader's reply could not be read ({_short(result.error)})",
        )
        return ReadBack([ReaderCheck(None, 0.0, why) for _ in pairs], calls, result.error)
    answers = result.value.by_number()
    checks = []
    for i, pair in enumerate(pairs, 1):
        if i not in answers:
            checks.append(
                ReaderCheck(
                    None,
                    0.0,
                    Reason(
                        "reader_unavailable",
                        f"kept unverified: the reader did not answer question {i}",
                    ),
                )
            )
            continue
        checks.append(
            agreement(pair.answer, answers[i], refusal=refusal or says_not_in_sources(pair.answer))
        )
    if judge:
        for k, pair in enumerate(pairs):
            if refusal or says_not_in_sources(pair.answer) or pair.verdict is None:
                continue
            odds, n = await _yes_no(llm, passages, pair)
            calls += n
            if odds is not None:
                checks[k] = _judged(checks[k], pair, odds, threshold)
    return ReadBack(checks, calls)


async def _yes_no(llm: Any, passages: Sequence[str], pair: QAPair) -> tuple[float | None, int]:
    """The model's Yes/No log-odds on the pair (None when it failed or said neither)."""
    from grounded.errors import LLMFatalError

    try:
        reply = await llm.acomplete(
            judge_messages(passage_block(passages), pair.question, pair.answer), **JUDGE_CALL
        )
    except LLMFatalError:
        raise
    except Exception:  # noqa: BLE001 - a failed Yes/No leaves the reader's agreement to decide
        return None, 0
    return yes_log_odds(reply.top_logprobs, reply.text), 1


def _judged(check: ReaderCheck, pair: QAPair, odds: float, threshold: float | None) -> ReaderCheck:
    """The check with the Yes/No and, where a calibration is fitted with it, the pair's new score."""
    from grounded.checker.calibration import DEFAULT_THRESHOLD, calibration_for

    assert pair.verdict is not None
    signals = {**pair.verdict.signals, "llm_yes": odds}
    if check.reader_answer is not None:
        signals["llm_agree"] = 0.0 if check.reason is not None else 1.0
    else:
        signals["llm_agree"] = 0.5
    model = calibration_for("qa", signals)
    fitted = "llm_yes" in model.features
    return replace(
        check,
        llm_yes=odds,
        score=model.score(signals) if fitted else None,
        threshold=(threshold if threshold is not None else DEFAULT_THRESHOLD) if fitted else None,
    )


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
