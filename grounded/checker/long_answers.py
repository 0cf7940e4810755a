"""Long answers (RAG answers, summaries): split into claims, check each, report unsupported spans.

A long answer carries many facts; checked as one claim, one wrong fact hides among right ones
and a right paraphrase drowns in length. The answer is cut into claims (grounded.checker.claims)
and each claim is checked in claim mode (`default_checker(answer_only=True)`) against its
best-matching source sentences; the answer is supported when every checkable claim is, and each
unsupported claim is a `Reason("unsupported_claim", ..., start, end)` on the answer's verdict,
whose `claims` hold the per-claim verdicts.

    >>> verdict = grounded.check_long(answer, ["source text ..."], question="...")  # doctest: +SKIP
    >>> [(c.text, c.supported) for c in verdict.claims]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from grounded.checker.claims import Claim, split_many
from grounded.checker.scoring import default_checker
from grounded.checker.stream import check_batch
from grounded.options import CheckOptions
from grounded.types import Chunk, ClaimVerdict, QAPair, Reason, Verdict

__all__ = [
    "CLAIM_BLOCKING",
    "CLAIM_THRESHOLD",
    "LONG_KINDS",
    "LongAnswerChecker",
    "check_long",
    "long_answer_checker",
    "source_chunks",
    "substitution",
]

# Pair kinds checked claim by claim even without --long-answers.
LONG_KINDS = frozenset({"long", "summary"})

# Per-claim threshold on the claim-mode score. Lower than a standalone claim's: a long answer
# fails when ANY claim fails, so each claim needs a high pass rate; contradictions still block.
# Chosen on the first half of benchmarks/bench_long_answers.py's sets.
CLAIM_THRESHOLD = 0.25

# Each claim is checked against its best-matching source sentences (with their neighbours),
# not against whole pages: a claim's words must meet near each other, and it keeps long
# sources cheap.
FOCUS_SENTENCES = 6

# A claim is aligned with a source sentence for the substitution test when that sentence holds
# this share of the claim's content words.
SUBSTITUTION_OVERLAP = 0.6
# Reason codes raised here that fail a claim whatever its score.
CLAIM_BLOCKING = frozenset({"substituted_value"})


class LongAnswerChecker:
    """A Checker for long answers: claims split and checked one by one in claim mode.

    Pairs whose kind is not in `kinds` go to `pair_checker` unchanged (all pairs when kinds is
    None). threshold: the per-claim threshold (default CLAIM_THRESHOLD).
    """

    def __init__(
        self,
        *,
        claim_checker: Any = None,
        pair_checker: Any = None,
        threshold: float | None = None,
        kinds: frozenset[str] | None = None,
    ) -> None:
        self.claim_threshold = CLAIM_THRESHOLD if threshold is None else float(threshold)
        self.claim_checker = claim_checker or default_checker(
            answer_only=True, threshold=self.claim_threshold, semantic="off"
        )
        self.pair_checker = pair_checker
        self.kinds = kinds
        self.threshold = float(getattr(pair_checker, "threshold", self.claim_threshold))

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        """Check one pair (a long answer claim by claim)."""
        return self.check_many([(pair, sources)])[0]

    def check_many(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """Check a batch: all claims of all long answers in one claim-checker batch."""
        long_ix = [i for i, (p, _) in enumerate(items) if self._is_long(p)]
        out: list[Verdict | None] = [None] * len(items)
        taken = set(long_ix)
        other = [i for i in range(len(items)) if i not in taken]
        if other:
            for i, v in zip(
                other, check_batch(self.pair_checker, [items[i] for i in other]), strict=True
            ):
                out[i] = v
        splits = split_many([(items[i][0].answer, items[i][0].question) for i in long_ix])
        batch = [
            (
                replace(items[i][0], question="", answer=c.checked, kind="factoid", evidence=()),
                focus(c.checked, items[i][1]),
            )
            for i, claims in zip(long_ix, splits, strict=True)
            for c in claims
        ]
        verdicts = iter(check_batch(self.claim_checker, batch) if batch else [])
        for i, claims in zip(long_ix, splits, strict=True):
            judged = [(c, _with_substitution(next(verdicts), c, items[i][1])) for c in claims]
            out[i] = self._overall(items[i], judged)
        return [v for v in out if v is not None]

    def _is_long(self, pair: QAPair) -> bool:
        return self.kinds is None or pair.kind in self.kinds or self.pair_checker is None

    def _overall(
        self, item: tuple[QAPair, Sequence[Chunk]], judged: list[tuple[Claim, Verdict]]
    ) -> Verdict:
        """The answer's verdict: supported when every claim is; an unsupported_claim reason per failure."""
        if not judged:  # nothing checkable (a refusal, a remark): judge the answer as it stands
            return check_batch(self.pair_checker or self.claim_checker, [item])[0]
        claims = tuple(_claim_verdict(c, v) for c, v in judged)
        bad = [c for c in claims if not c.supported]
        reasons = tuple(
            Reason(
                "unsupported_claim",
                f"claim {c.text!r} is not supported ({', '.join(_codes(c))})",
                c.start,
                c.end,
            )
            for c in bad
        )
        fraction = 1.0 - len(bad) / len(claims)
        signals = {
            "claims": float(len(claims)),
            "claims_supported": float(len(claims) - len(bad)),
            "supported_fraction": round(fraction, 4),
            "min_claim_score": min(c.score for c in claims),
        }
        return Verdict(
            supported=not bad,
            score=round(fraction, 4),
            reasons=reasons,
            signals=signals,
            claims=claims,
        )


def _codes(claim: ClaimVerdict) -> list[str]:
    return list(dict.fromkeys(r.code for r in claim.reasons)) or ["low_support"]


def _claim_verdict(claim: Claim, verdict: Verdict) -> ClaimVerdict:
    reasons = tuple(replace(r, start=claim.start, end=claim.end) for r in verdict.reasons)
    return ClaimVerdict(
        text=claim.text,
        start=claim.start,
        end=claim.end,
        supported=verdict.supported,
        score=verdict.score,
        reasons=reasons,
        checked=claim.checked if claim.checked != claim.text else "",
    )


def substitution(claim: str, sources: Sequence[Chunk], *, given: str = "") -> str | None:
    """A name or number of the claim standing where its best-matching source sentence has another.

    "The Panthers beat the Broncos 24-10" against "The Broncos beat the Panthers 24-10" is not
    caught by word support (every word is in the source); here the claim is aligned with the
    source sentence sharing most of its content words and each of its names and numbers that the
    sentence lacks is looked up by its neighbours: the same neighbour next to a different name or
    number in the sentence means the claim swapped the value. Words of `given` (a subject filled
    in from elsewhere) are never the swapped value.
    """
    from grounded.text import content, tokens_of

    toks = tokens_of(claim)
    words = {t.stem for t in content(toks)}
    if len(words) < 3:
        return None
    best = max(
        ((c, s, e, stems) for c in sources for s, e, stems in _sentences(c.text)),
        key=lambda x: len(words & x[3]),
        default=None,
    )
    if best is None or len(words & best[3]) < SUBSTITUTION_OVERLAP * len(words):
        return None
    sent = tokens_of(best[0].text[best[1] : best[2]])
    have, mine, skip = _keys(sent), _keys(toks), _keys(tokens_of(given))
    for i, k in _runs(toks):
        if not any(_key(t) not in have and _key(t) not in skip for t in toks[i : k + 1]):
            continue
        kind = _kind(toks[i : k + 1])
        for j, m in _runs(sent):
            if _kind(sent[j : m + 1]) != kind or any(_key(t) in mine for t in sent[j : m + 1]):
                continue
            left = None if i == 0 else (j > 0 and toks[i - 1].stem == sent[j - 1].stem)
            right = (
                None
                if k + 1 == len(toks)
                else (m + 1 < len(sent) and toks[k + 1].stem == sent[m + 1].stem)
            )
            # both sides agree (a claim's edge agrees with anything), at least one by a word
            if left is not False and right is not False and (left or right):
                claimed = " ".join(t.text for t in toks[i : k + 1])
                said = " ".join(t.text for t in sent[j : m + 1])
                return f"{claimed!r} stands where the source says {said!r}"
    return _copied_phrase(toks, sent, sources, mine | skip)


def _copied_phrase(
    toks: Sequence[Any], sent: Sequence[Any], sources: Sequence[Chunk], mine: set[Any]
) -> str | None:
    """A phrase of two or more content words, copied from elsewhere in the sources, in place of the sentence's own words.

    A paraphrase rewords; a swapped answer is a phrase the sources hold word for word, standing
    between the same neighbours as other words of the aligned sentence.
    """
    from difflib import SequenceMatcher

    from grounded.text import content, fold

    ops = SequenceMatcher(
        None, [t.stem for t in toks], [t.stem for t in sent], autojunk=False
    ).get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(ops):
        if (
            tag != "replace"
            or not 0 < n < len(ops) - 1
            or ops[n - 1][0] != "equal"
            or ops[n + 1][0] != "equal"
        ):
            continue
        claimed, said = content(toks[i1:i2]), content(sent[j1:j2])
        if len(claimed) < 2 or not said or any(_key(t) in mine for t in said):
            continue
        phrase = fold(" ".join(t.text for t in toks[i1:i2])).lower()
        if any(phrase in fold(c.text).lower() for c in sources):
            return f"{' '.join(t.text for t in toks[i1:i2])!r} stands where the source says {' '.join(t.text for t in sent[j1:j2])!r}"
    return None


def _key(tok: Any) -> Any:
    return tok.number if tok.number is not None else tok.stem


def _keys(toks: Sequence[Any]) -> set[Any]:
    return {_key(t) for t in toks}


def _kind(run: Sequence[Any]) -> str:
    return "number" if all(t.number is not None for t in run) else "name"


def _runs(toks: Sequence[Any]) -> Iterator[tuple[int, int]]:
    """Maximal runs of value tokens of one kind (a name, a number) as (first, last) indices."""
    i = 0
    while i < len(toks):
        if not _value(toks, i):
            i += 1
            continue
        k = i
        while (
            k + 1 < len(toks) and _value(toks, k + 1) and _kind([toks[k + 1]]) == _kind([toks[i]])
        ):
            k += 1
        yield i, k
        i = k + 1


def _value(toks: Sequence[Any], i: int) -> bool:
    """A number, or a name: capitalised, and at the start only when the next word is too ("John Smith")."""
    tok = toks[i]
    if tok.number is not None:
        return True
    return tok.capital and (i > 0 or (len(toks) > 1 and toks[1].capital and toks[1].number is None))


def _with_substitution(verdict: Verdict, claim: Claim, sources: Sequence[Chunk]) -> Verdict:
    if not verdict.supported:
        return verdict
    # as checked (a pronoun resolved: aligned with the right sentence), then as written (the
    # words that meet the source's own neighbours)
    given = claim.subject if claim.checked != claim.text else ""
    found = substitution(claim.checked, sources, given=given) or substitution(claim.text, sources)
    if found is None:
        return verdict
    reason = Reason("substituted_value", found)
    return replace(verdict, supported=False, reasons=(*verdict.reasons, reason))


def focus(claim: str, sources: Sequence[Chunk], *, k: int = FOCUS_SENTENCES) -> list[Chunk]:
    """The parts of the sources a claim is checked against: its k best sentences and their neighbours."""
    from grounded.text import content, tokens_of

    sents = [(c, s, e, stems) for c in sources for s, e, stems in _sentences(c.text)]
    if len(sents) <= 3 * k:
        return list(sources)
    words = {t.stem for t in content(tokens_of(claim))}
    ranked = sorted(range(len(sents)), key=lambda j: (-len(words & sents[j][3]), j))[:k]
    keep = sorted(
        {
            n
            for j in ranked
            for n in (j - 1, j, j + 1)
            if 0 <= n < len(sents) and sents[n][0] is sents[j][0]
        }
    )
    out: list[Chunk] = []
    for j in keep:
        chunk, s, e, _ = sents[j]
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.doc_id == chunk.doc_id
            and j - 1 in keep
            and sents[j - 1][0] is chunk
        ):
            s = prev.start - chunk.start  # extend the previous passage
            out.pop()
        out.append(
            Chunk(
                id=Chunk.make_id(chunk.doc_id, chunk.start + s, chunk.start + e),
                doc_id=chunk.doc_id,
                text=chunk.text[s:e],
                start=chunk.start + s,
                end=chunk.start + e,
                source=chunk.source,
            )
        )
    return out


@functools.lru_cache(maxsize=256)
def _sentences(text: str) -> tuple[tuple[int, int, frozenset[str]], ...]:
    """A source's sentences as (start, end, content stems); cached: every claim of an answer reads them."""
    from grounded.text import content, split_sentences, tokens_of

    out, at = [], 0
    for sent in split_sentences(text):
        start = text.find(sent, at)
        if start < 0:
            continue
        at = start + len(sent)
        out.append((start, at, frozenset(t.stem for t in content(tokens_of(sent)))))
    return tuple(out)


def source_chunks(sources: Sequence[str | Chunk]) -> list[Chunk]:
    """Sources as Chunks: texts become one chunk each (source-0, source-1, ...), Chunks stay."""
    out = []
    for i, s in enumerate(sources):
        if isinstance(s, Chunk):
            out.append(s)
        else:
            out.append(
                Chunk(
                    id=Chunk.make_id(f"source-{i}", 0, len(s)),
                    doc_id=f"source-{i}",
                    text=s,
                    start=0,
                    end=len(s),
                )
            )
    return out


def long_answer_checker(
    options: CheckOptions | None = None, *, every_pair: bool = False
) -> LongAnswerChecker:
    """The checker `grounded check` uses: every pair claim by claim, or only kinds LONG_KINDS.

    With every_pair, the options' threshold is the per-claim threshold; otherwise it is the pair
    checker's. Claims skip MiniLM unless semantic is "all" (it did not raise the long-answer
    figures).
    """
    options = options or CheckOptions()
    claim_threshold = options.threshold if every_pair else None
    claims = default_checker(
        replace(
            options,
            answer_only=True,
            semantic="all" if options.semantic == "all" else "off",
            threshold=CLAIM_THRESHOLD if claim_threshold is None else claim_threshold,
        )
    )
    if every_pair:
        return LongAnswerChecker(claim_checker=claims, threshold=claim_threshold)
    pairs = default_checker(options)
    return LongAnswerChecker(claim_checker=claims, pair_checker=pairs, kinds=LONG_KINDS)


def check_long(
    answer: str,
    sources: Sequence[str | Chunk],
    *,
    question: str | None = None,
    threshold: float | None = None,
    checker: LongAnswerChecker | None = None,
) -> Verdict:
    """Check a long answer claim by claim against its sources (texts or Chunks); see grounded.checker.long_answers."""
    checker = checker or _default_checker(threshold)
    pair = QAPair(id="long", question=question or "", answer=answer, kind="long")
    return checker.check(pair, source_chunks(sources))


@functools.lru_cache(maxsize=4)
def _default_checker(threshold: float | None) -> LongAnswerChecker:
    return long_answer_checker(CheckOptions(threshold=threshold), every_pair=True)
