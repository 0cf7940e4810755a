"""Lexical support: the answer's content words, numbers and names must be in the evidence."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from grounded.checker.calibration import FEATURES
from grounded.checker.context import (
    CheckResult,
    Context,
    best_coverage,
    bigrams,
    says_not_in_sources,
    short,
    token_weight,
)
from grounded.checker.contradictions import contradictions
from grounded.text import Token, content, fold, is_numeric, split_sentences, tokenize
from grounded.types import Reason

_CLAUSE = re.compile(
    r"[,;:()]|\s[-–—]\s|\b(?:and|but|while|whereas|which|who|after|before|when)\b", re.IGNORECASE
)


@dataclass
class SupportCheck:
    """The answer's words, numbers and names must be in the evidence; catches contradictions."""

    name: str = "support"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.answer.strip():
            res.reasons.append(Reason("empty_answer", "the answer is empty"))
            res.signals.update(_zero_features())
            return res
        if not ctx.support_texts:
            res.reasons.append(
                Reason("no_sources", "no evidence and no source text to check against")
            )
            res.signals.update(_zero_features())
            return res
        if ctx.is_refusal and not ctx.answer_only:
            return self._refusal(ctx, res)
        tokens = ctx.claim_tokens
        bag = ctx.support_bag
        weights = [token_weight(t) for t in tokens]
        total = sum(weights)
        found = [bag.has(t) for t in tokens]
        lex_cov = (
            (sum(w for w, f in zip(weights, found, strict=True) if f) / total) if total else 1.0
        )
        missing = [t.text for t, f in zip(tokens, found, strict=True) if not f]
        ents = ctx.entity_tokens
        ent_found = [bag.has(t) for t in ents]
        ent_cov = sum(ent_found) / len(ents) if ents else 1.0
        nums = [t for t in tokens if is_numeric(t)]
        num_cov = sum(bag.has(t) for t in nums) / len(nums) if nums else 1.0
        ranked = ctx.ranked_windows(tokens, k=1)
        lex_window = ranked[0][0] if ranked else (1.0 if not tokens else 0.0)
        # the weakest part of a multi-part claim: split at commas, semicolons and conjunctions
        clause_min = lex_window
        parts = [content(tokenize(c)) for c in _CLAUSE.split(ctx.pair.answer)]
        parts = [p for p in parts if len(p) >= 2]
        if len(parts) >= 2:
            clause_min = min(best_coverage(ctx.ranked_windows(p, k=1)) for p in parts)
        answer_bigrams = bigrams(ctx.answer_tokens)
        bigram_cov = (
            len(answer_bigrams & ctx.support_bigrams) / len(answer_bigrams)
            if answer_bigrams
            else 1.0
        )
        missing_ents = [t for t, f in zip(ents, ent_found, strict=True) if not f]
        if missing_ents:
            res.reasons.append(
                Reason(
                    "unsupported_entity",
                    f"name(s) not in the evidence: {', '.join(t.text for t in missing_ents[:5])}",
                )
            )
        res.signals.update(
            lex_cov=lex_cov,
            lex_window=lex_window,
            ent_cov=ent_cov,
            num_cov=num_cov,
            missing=math.log1p(len(missing)),
            bigram_cov=bigram_cov,
            clause_min=clause_min,
        )
        # every number of the answer (also one the question repeats) must be in the evidence
        absent = (
            [t for t in content(ctx.answer_tokens) if is_numeric(t) and not bag.has(t)]
            if not ctx.is_yes_no
            else []
        )
        reasons, signals = contradictions(ctx, absent, missing_ents)
        res.reasons.extend(reasons)
        res.signals.update(signals)
        return res

    @staticmethod
    def _refusal(ctx: Context, res: CheckResult) -> CheckResult:
        """An 'it is not in the documents' answer: right when no source sentence answers the question."""
        if not says_not_in_sources(ctx.pair.answer) and ctx.pair.kind == "unanswerable":
            res.reasons.append(
                Reason("not_a_refusal", "an unanswerable question needs an answer that says so")
            )
        q = content(ctx.question_tokens)
        ranked = ctx.ranked_windows(q, k=1)
        q_cov = ranked[0][0] if ranked else 0.0
        # every content word of the question within one window: the sources likely answer it
        if q and q_cov >= 0.999 and len(q) >= 2:
            res.reasons.append(
                Reason(
                    "answerable_in_sources",
                    f"the answer says it is not in the documents but this passage matches the question: {short(ranked[0][1])}",
                )
            )
        elif len(q) == 1 and ctx.english:
            # "What is petrology?": answerable when a source defines or describes the term
            sentence = defining_sentence(q[0], ctx.support_texts)
            if sentence is not None:
                res.reasons.append(
                    Reason(
                        "answerable_in_sources",
                        f"the sources define {q[0].text!r}: {short(sentence)}",
                    )
                )
        res.signals["question_coverage"] = q_cov
        return res


def _zero_features() -> dict[str, float]:
    return dict.fromkeys(FEATURES, 0.0)


def defining_sentence(term: Token, texts: Sequence[str]) -> str | None:
    """A sentence that defines or describes `term` ("X is/are/was ...", "X, a ...", "called X")."""
    word = re.escape(fold(term.text)[: max(4, len(term.stem))])
    pattern = re.compile(
        rf"(?<!\w){word}\w*(?:\s*\([^)]{{0,80}}\))?(?:\s*,\s*(?:a|an|the|one)\s|\s+(?:is|are|was|were|refers?\s+to|"
        rf"means|denotes|describes|consists?\s+of|includes?)\s)|(?:known\s+as|called|termed)\s+(?:the\s+)?{word}\w*",
        re.IGNORECASE,
    )
    for text in texts:
        for sentence in split_sentences(text):
            if pattern.search(fold(sentence)):
                return sentence
    return None
