"""A feature-based span reader: is the proposed answer the span of the evidence the question points at?

The answer of a swapped pair is often in the passage, next to words of the passage, but not where
the question points: "When was the bridge reopened?" -> "1967", the year it first opened, from
another sentence than the one about the reopening. The reader scores every short span of the sentences the question is about
(runs of up to MAX_SPAN content words that are not the question's words) with a logistic model over
cheap features: the question's terms either side of it, its distance to the nearest one, how much
of the question its sentence holds, its form against what the question asks for, and the word
before it ("in", "by", ...) as a cue per expected type. Signals:
`rd_score` (the proposed answer's reader score, as a probability) and `rd_margin` (that score
minus the best competing span's, in [-1, 1]; 0 when there is no competitor).

The weights are package data (`grounded/checker/reader.json`), fitted by
`benchmarks/fit_reader.py` on the first half of SQuAD dev part a (human answers against the other
spans of their passages): the checker's held-out half is never read.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from grounded.checker.context import Bag, CheckResult, Context, token_weight
from grounded.text import Token, content, tokenize

# Longest competing span, in content words.
MAX_SPAN = 4
# A rival span must have a question term within this many content words (the features' widest window).
NEAR = 8
# Sentences whose share of the question's terms is below this fraction of the best are skipped.
MIN_SENTENCE_SHARE = 0.5
EXPECTED = ("person", "place", "date", "quantity", "description", "reason", "")
FORMS = ("name", "number", "date", "phrase")
# The word just before a span, as a cue to what it answers ("in 1994", "by Holloway", "at Ashby"):
# each expected type learns its own weight per cue.
CUES = ("in", "on", "at", "by", "from", "of", "to", "for", "with", "time", "article", "other")
_CUE_OF = {
    **{c: c for c in CUES[:9]},
    **dict.fromkeys(
        ("since", "until", "till", "during", "before", "after", "around", "circa"), "time"
    ),
    **dict.fromkeys(("the", "a", "an"), "article"),
}
_WORD = re.compile(r"\w+")
FEATURE_NAMES: tuple[str, ...] = (
    "left3",
    "right3",
    "left8",
    "right8",
    "nearest",
    "sentence_share",
    "best_sentence",
    "sentence_ratio",
    "type_match",
    "type_mismatch",
    "log_length",
    "has_capital",
    "has_number",
    "at_start",
    "question_words",
    *(f"{e or 'other'}:{f}" for e in EXPECTED for f in FORMS),
    *(f"{e or 'other'}:after_{c}" for e in EXPECTED for c in CUES),
)
READER_FILE = "reader.json"
# Index of the first expected:form and of the first expected:cue one-hot feature.
_TYPE0 = FEATURE_NAMES.index("person:name")
_CUE0 = FEATURE_NAMES.index("person:after_in")
NEUTRAL: dict[str, float] = {"rd_score": 0.5, "rd_margin": 0.0}


@dataclass(frozen=True, slots=True)
class ReaderModel:
    """logit = bias + weights . features (FEATURE_NAMES order)."""

    weights: tuple[float, ...]
    bias: float

    def logit(self, features: Sequence[float]) -> float:
        return self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))

    def span_logit(
        self, s: _Sentence, j: int, k: int, best: float, expected: str, qbag: Bag | None
    ) -> float:
        """logit(span_features(...)) without building the feature list (the checker's path)."""
        w = self.weights
        slot, cue, match, mismatch, capital, number = _typed(expected, s.text, j, k)
        z = self.bias + w[_TYPE0 + slot] + w[_CUE0 + cue] + w[8] * match + w[9] * mismatch
        z += (
            w[10] * math.log1p(k - j)
            + w[11] * capital
            + w[12] * number
            + (w[13] if j == 0 else 0.0)
        )
        z += w[5] * s.share + (w[6] if s.share >= best - 1e-9 else 0.0)
        z += w[7] * (s.share / best if best else 0.0)
        nearest = 99
        for h, hw in s.hits:
            if h < j:
                d = j - h
                if d <= 8:
                    z += w[2] * hw + (w[0] * hw if d <= 3 else 0.0)
            elif h > k:
                d = h - k
                if d <= 8:
                    z += w[3] * hw + (w[1] * hw if d <= 3 else 0.0)
            else:
                continue
            if d < nearest:
                nearest = d
        z += w[4] / (1.0 + nearest)
        if qbag is not None:
            span = s.tokens[j : k + 1]
            z += w[14] * sum(qbag.has(t) for t in span) / len(span)
        return z


def load_reader(data: Mapping[str, Any] | None = None) -> ReaderModel | None:
    """The fitted reader (grounded/checker/reader.json by default); None when there is none or
    it was fitted for other features (its signals then stay NEUTRAL)."""
    if data is None:
        path = files("grounded.checker").joinpath(READER_FILE)
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURE_NAMES:
        return None
    return ReaderModel(tuple(float(w) for w in data["weights"]), float(data["bias"]))


@lru_cache(maxsize=65536)
def _sentence_tokens(sentence: str) -> tuple[Token, ...]:
    return tuple(content(tokenize(sentence)))


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    tokens: tuple[Token, ...]
    share: float  # weighted share of the question's terms in it
    hits: tuple[tuple[int, float], ...]  # (token index, weight share) of each term occurrence


@lru_cache(maxsize=65536)
def _cues(sentence: str) -> tuple[int, ...]:
    """The cue slot (CUES index) of each content word of `sentence`: the word just before it."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(sentence)]
    starts = [a for a, _ in words]
    out = []
    for tok in _sentence_tokens(sentence):
        i = bisect_left(starts, tok.start) - 1  # the last word that starts before the token
        if i < 0:
            out.append(CUES.index("other"))
            continue
        word = sentence[words[i][0] : min(words[i][1], tok.start)].lower()
        out.append(CUES.index(_CUE_OF.get(word, "other")))
    return tuple(out)


@lru_cache(maxsize=262144)
def _span_form(sentence: str, j: int, k: int) -> tuple[str, int, float, float]:
    """(form, cue slot, has capital, has number) of content words j..k of `sentence`, whatever
    the question asks: the same spans recur across the questions of one passage."""
    from grounded.checker.fit import answer_form

    span = _sentence_tokens(sentence)[j : k + 1]
    return (
        answer_form(span),
        _cues(sentence)[j],
        1.0 if any(t.capital for t in span) else 0.0,
        1.0 if any(t.number is not None for t in span) else 0.0,
    )


@lru_cache(maxsize=262144)
def _typed(
    expected: str, sentence: str, j: int, k: int
) -> tuple[int, int, float, float, float, float]:
    """(form slot, cue slot, type match, type mismatch, has capital, has number) of content
    words j..k of `sentence` for a question that asks for `expected`."""
    from grounded.checker.fit import type_match, type_mismatch

    form, cue, capital, number = _span_form(sentence, j, k)
    row = EXPECTED.index(expected if expected in EXPECTED else "")
    return (
        row * len(FORMS) + FORMS.index(form if form in FORMS else "phrase"),
        row * len(CUES) + cue,
        1.0 if type_match(expected, form) else 0.0,
        1.0 if type_mismatch(expected, form, _sentence_tokens(sentence)[j : k + 1]) else 0.0,
        capital,
        number,
    )


def span_features(
    s: _Sentence, j: int, k: int, best: float, expected: str, qbag: Bag | None
) -> list[float]:
    """The features of span tokens[j..k] of sentence `s` (FEATURE_NAMES order); `qbag` None:
    the span has none of the question's words (a rival span)."""
    span = s.tokens[j : k + 1]
    slot, cue, match, mismatch, capital, number = _typed(expected, s.text, j, k)
    l3 = r3 = l8 = r8 = 0.0
    nearest = 99
    for h, w in s.hits:
        if h < j:
            d = j - h
        elif h > k:
            d = h - k
        else:
            continue
        if d <= 8:
            if h < j:
                l8 += w
                l3 += w if d <= 3 else 0.0
            else:
                r8 += w
                r3 += w if d <= 3 else 0.0
        nearest = min(nearest, d)
    onehot = [0.0] * (len(EXPECTED) * len(FORMS))
    onehot[slot] = 1.0
    cues = [0.0] * (len(EXPECTED) * len(CUES))
    cues[cue] = 1.0
    return [
        l3,
        r3,
        l8,
        r8,
        1.0 / (1.0 + nearest),
        s.share,
        1.0 if s.share >= best - 1e-9 else 0.0,
        s.share / best if best else 0.0,
        match,
        mismatch,
        math.log1p(k - j),
        capital,
        number,
        1.0 if j == 0 else 0.0,
        sum(qbag.has(t) for t in span) / len(span) if qbag is not None else 0.0,
        *onehot,
        *cues,
    ]


Span = tuple[_Sentence, int, int]


def inputs(ctx: Context) -> tuple[list[Token], list[Token], list[Token], str]:
    """What the reader reads of a pair: the question's and the answer's content words, the
    question's terms the answer does not hold, and the type the question asks for."""
    from grounded.checker.fit import expected_type, pointing_terms

    return (
        content(ctx.question_tokens),
        content(ctx.answer_tokens),
        pointing_terms(ctx),
        expected_type(ctx.pair.question),
    )


def candidates(
    ctx: Context,
    question: Sequence[Token],
    answer: Sequence[Token],
    terms: Sequence[Token],
    *,
    near_only: bool = True,
) -> tuple[float, list[Span], list[Span]]:
    """The best sentence share, each occurrence of the answer in the support, and each competing
    span (in the sentences that hold at least MIN_SENTENCE_SHARE of the best sentence's terms;
    `near_only`: only spans with a question term within NEAR words, the only ones that can
    outrank the answer; fitting reads them all)."""
    if not terms or not answer:
        return 0.0, [], []
    qbag, abag, tbag = Bag(question), Bag(answer), Bag(terms)
    weights = [token_weight(t) for t in terms]
    total = sum(weights)
    sentences = []
    share_of: dict[str, float] = {}
    for src in ctx.reading:
        for text in src.sentences:
            toks = _sentence_tokens(text)
            hits = []
            for i, tok in enumerate(toks):
                w = share_of.get(tok.text)
                if w is None:  # the terms' weight this token matches, -1 for none (once per text)
                    one = Bag([tok]) if tbag.has(tok) else None
                    w = share_of[tok.text] = (
                        sum(tw for t, tw in zip(terms, weights, strict=True) if one.has(t)) / total
                        if one is not None
                        else -1.0
                    )
                if w >= 0.0:
                    hits.append((i, w))
            share = min(1.0, sum(w for _, w in _first_hits(hits, toks)))
            sentences.append(_Sentence(text, toks, share, tuple(hits)))
    if not sentences:
        return 0.0, [], []
    best = max(s.share for s in sentences)
    aweight = sum(token_weight(t) for t in answer)
    mine: list[Span] = []
    rivals: list[Span] = []
    for s in sentences:
        inside = [abag.has(t) for t in s.tokens]
        for j, k in _runs(inside):
            run = Bag(s.tokens[j : k + 1])
            if sum(token_weight(t) for t in answer if run.has(t)) / aweight >= 0.5:
                mine.append((s, j, k))
        if s.share < MIN_SENTENCE_SHARE * best:
            continue
        inq = [qbag.has(t) for t in s.tokens]
        # a span with no question term within NEAR words has nothing pointing at it
        near = [not near_only] * len(s.tokens)
        for h, _ in s.hits:
            for i in range(max(0, h - NEAR), min(len(s.tokens), h + NEAR + 1)):
                near[i] = True
        for j in range(len(s.tokens)):
            for k in range(j, min(len(s.tokens), j + MAX_SPAN)):
                if inq[k] or inside[k]:
                    break
                if near[j] or near[k]:
                    rivals.append((s, j, k))
    return best, mine, rivals


def spans(
    ctx: Context,
    question: Sequence[Token],
    answer: Sequence[Token],
    terms: Sequence[Token],
    expected: str,
) -> tuple[list[list[float]], list[list[float]]]:
    """The features of each occurrence of the answer, and of each competing span (fitting)."""
    best, mine, rivals = candidates(ctx, question, answer, terms, near_only=False)
    qbag = Bag(question)
    return (
        [span_features(s, j, k, best, expected, qbag) for s, j, k in mine],
        [span_features(s, j, k, best, expected, None) for s, j, k in rivals],
    )


def read(
    model: ReaderModel,
    ctx: Context,
    question: Sequence[Token],
    answer: Sequence[Token],
    terms: Sequence[Token],
    expected: str,
) -> dict[str, float]:
    """`rd_score` and `rd_margin` of the pair (NEUTRAL when the answer is not in the support or
    the question has no terms to point with)."""
    best, mine, rivals = candidates(ctx, question, answer, terms)
    if not mine:
        return dict(NEUTRAL)
    qbag = Bag(question)
    p = _sigmoid(max(model.span_logit(s, j, k, best, expected, qbag) for s, j, k in mine))
    if not rivals:
        return {"rd_score": p, "rd_margin": 0.0}
    rival = max(model.span_logit(s, j, k, best, expected, None) for s, j, k in rivals)
    return {"rd_score": p, "rd_margin": p - _sigmoid(rival)}


def _first_hits(
    hits: Sequence[tuple[int, float]], toks: Sequence[Token]
) -> list[tuple[int, float]]:
    """One hit per distinct term stem, so a repeated term does not count twice."""
    seen: set[str] = set()
    out = []
    for i, w in hits:
        if toks[i].stem not in seen:
            seen.add(toks[i].stem)
            out.append((i, w))
    return out


def _runs(mask: Sequence[bool]) -> list[tuple[int, int]]:
    """(start, end) of each maximal run of True."""
    out = []
    i = 0
    while i < len(mask):
        if mask[i]:
            k = i
            while k + 1 < len(mask) and mask[k + 1]:
                k += 1
            out.append((i, k))
            i = k + 1
        else:
            i += 1
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


# The reader's fitted weights, when they ship (grounded/checker/reader.json).
READER = load_reader()


class ReaderCheck:
    """The span reader as a model-backed check (signals `rd_score`, `rd_margin`; qa mode).

    By default the pipeline runs it only on pairs the cheap checks have not rejected ("keepable"):
    its `neutral` values are the best case, so a pair it skips is rejected whatever it finds.
    """

    name = "reader"
    signal = "rd_score"
    band = 0.0
    modes: frozenset[str] = frozenset({"qa"})
    min_weight = 0.0
    neutral: Mapping[str, float] = {"rd_score": 1.0, "rd_margin": 1.0}

    def __init__(self, model: ReaderModel | None = None) -> None:
        self.model = model if model is not None else READER

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Nothing to batch: the reader reads each pair on its own."""

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if (
            self.model is None
            or ctx.answer_only
            or not ctx.pair.question.strip()
            or not ctx.pair.answer.strip()
            or ctx.is_refusal
            or ctx.offers_choice
            or ctx.is_yes_no
            or not ctx.english
        ):
            res.signals.update(NEUTRAL)
            return res
        res.signals.update(read(self.model, ctx, *inputs(ctx)))
        return res
