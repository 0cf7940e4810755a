"""One pair in its sources: the text analysis every check shares, computed lazily and once."""

from __future__ import annotations

import functools
import operator
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

from grounded.text import (
    Token,
    content,
    fold,
    is_date_like,
    is_month,
    is_numeric,
    looks_english,
    split_sentences,
    tokenize,
)
from grounded.types import Chunk, QAPair, Reason, Verdict

REFUSAL = re.compile(
    r"\b(not (mentioned|stated|given|provided|specified|included|found|available|addressed|"
    r"discussed|covered|answered|known|say|said|contain|in the (documents?|text|sources?|context|passage)s?)"
    r"|no (information|mention|answer|details?|data|evidence)|does not (say|state|mention|specify|"
    r"contain|provide|include|indicate)|do not (say|state|mention|specify|contain|provide|include)|"
    r"cannot be (determined|answered|found|inferred)|can ?not (be )?(determine|answer|tell)|"
    r"unanswerable|unknown from|is unknown|not possible to (determine|say|tell|answer)|"
    r"doesn't (say|state|mention)|don't (say|state|mention)|isn't (mentioned|stated|given))\b",
    re.IGNORECASE,
)
YES_NO = frozenset({"yes", "no", "true", "false"})
_ABOUT_SOURCES = re.compile(
    r"\b(documents?|texts?|sources?|context|passages?|articles?|information|provided|excerpts?)\b",
    re.IGNORECASE,
)


def says_not_in_sources(answer: str) -> bool:
    """A refusal ("The documents do not say."): REFUSAL in a short answer or one naming the sources;
    a long statement that merely contains "was not given" is a claim to check."""
    if not REFUSAL.search(answer):
        return False
    return len(answer.split()) <= 10 or _ABOUT_SOURCES.search(answer) is not None


# Instructions addressed to an AI reading the text (prompt injection planted in a document):


class Bag:
    """The stems and numbers of a text, for fast membership tests with prefix matching."""

    __slots__ = ("stems", "numbers", "raw_numbers", "_prefixes", "months", "dates")

    def __init__(self, tokens: Iterable[Token]) -> None:
        stems: set[str] = set()
        numbers: set[float] = set()
        months: set[float] = set()
        dates: set[float] = set()
        raw: set[str] = set()
        for t in tokens:  # one pass: bags are built for every sentence, window and pair
            stems.add(t.stem)
            if t.number is None:
                if t.text[:1].isdigit():
                    raw.add(t.text)
                continue
            value = round(t.number, 6)
            # month names count as their number only for a month of the claim ("November" ~
            # "2018-11"), so that a changed day ("November 8" -> "11") is not found in the month
            (months if is_month(t) else numbers).add(value)
            if is_date_like(t):
                dates.add(value)
        self.stems, self.numbers, self.months, self.dates, self.raw_numbers = (
            stems,
            numbers,
            months,
            dates,
            raw,
        )
        self._prefixes: set[str] | None = None

    @property
    def prefixes(self) -> set[str]:
        """The 5-letter heads of the longer stems (made on the first prefix test: most bags never need them)."""
        if self._prefixes is None:
            self._prefixes = {s[:5] for s in self.stems if len(s) >= 5}
        return self._prefixes

    @classmethod
    def merge(cls, bags: Iterable[Bag]) -> Bag:
        out = cls([])
        for b in bags:
            out.stems |= b.stems
            out.numbers |= b.numbers
            out.months |= b.months
            out.dates |= b.dates
            out.raw_numbers |= b.raw_numbers
        return out

    def has(self, tok: Token) -> bool:
        stem = tok.stem
        number = tok.number
        if number is not None:
            value = round(number, 6)
            if value in self.numbers or (is_month(tok) and value in self.months):
                return True
            return stem in self.stems
        if stem in self.stems:
            return True
        if tok.text[:1].isdigit():
            return tok.text in self.raw_numbers
        # 'America' ~ 'American', 'Philadelphia' ~ "Philadelphia's"
        if len(stem) < 5:
            return False
        prefixes = self._prefixes if self._prefixes is not None else self.prefixes
        if stem[:5] not in prefixes:
            return False
        head = stem[:5]
        return any(s.startswith(stem) or stem.startswith(s) for s in self.stems if s[:5] == head)


class Source:
    """A source text split into sentences, each with its bag of stems (computed once)."""

    __slots__ = ("text", "sentences", "bags", "bag", "bigrams", "_windows", "_spans", "_masks")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sentences = split_sentences(text) or [text]
        toks = [tokenize(s) for s in self.sentences]
        self.bags = [Bag(t) for t in toks]
        self.bag = Bag.merge(self.bags)
        self.bigrams = {b for ts in toks for b in bigrams(ts)}
        self._windows: list[tuple[str, Bag]] | None = None
        self._spans: list[tuple[int, int]] = []
        self._masks: dict[tuple[str, str, bool, float | None], int] = {}

    @property
    def windows(self) -> list[tuple[str, Bag]]:
        """Each run of 1 to WINDOW adjacent sentences, with its bag."""
        if self._windows is None:
            out: list[tuple[str, Bag]] = []
            n = len(self.sentences)
            for i in range(n):
                for w in range(1, min(WINDOW, n - i) + 1):
                    bag = self.bags[i] if w == 1 else Bag.merge(self.bags[i : i + w])
                    out.append((" ".join(self.sentences[i : i + w]), bag))
                    self._spans.append((i, w))
            self._windows = out
        return self._windows

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(first sentence, number of sentences) of each window, in the order of `windows`."""
        _ = self.windows
        return self._spans

    def sentence_hits(self, tokens: Sequence[Token]) -> list[int]:
        """For each sentence, the tokens its bag has, as bits (bit b: tokens[b]).

        A window's bag merges its sentences' bags, and `Bag.has` on a merge is true exactly when
        it is on one of them: a window's hits are the OR of its sentences' hits.
        """
        out = [0] * len(self.bags)
        for b, tok in enumerate(tokens):
            where = self._sentences_having(tok)
            j = 0
            while where:
                if where & 1:
                    out[j] |= 1 << b
                where >>= 1
                j += 1
        return out

    def _sentences_having(self, tok: Token) -> int:
        """The sentences whose bag has `tok`, as bits; cached by what `Bag.has` reads of it."""
        key = (tok.text, tok.stem, tok.capital, tok.number)
        where = self._masks.get(key)
        if where is None:
            where = sum(1 << j for j, bag in enumerate(self.bags) if bag.has(tok))
            if len(self._masks) >= 50_000:
                self._masks.clear()
            self._masks[key] = where
        return where

    @classmethod
    def of(cls, text: str) -> Source:
        """Analysed once per distinct text (pairs from one chunk share the work)."""
        src = _SOURCES.get(text)
        if src is None:
            src = _SOURCES[text] = cls(text)
            if len(_SOURCES) > 4096:
                _SOURCES.popitem(last=False)
        return src


_SOURCES: OrderedDict[str, Source] = OrderedDict()
# A claim may join facts from neighbouring sentences: windows span up to this many.
WINDOW = 3


def bigrams(tokens: Sequence[Token]) -> set[tuple[str, str]]:
    """Adjacent content-word stems (stopwords skipped), for phrase-level matching."""
    stems = [t.stem for t in content(tokens)]
    return set(zip(stems, stems[1:], strict=False))


@runtime_checkable
class Checker(Protocol):
    """Decides whether the sources support a pair."""

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict: ...


@dataclass
class CheckResult:
    """What one check found: reasons (codes with text) and numeric signals."""

    reasons: list[Reason] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)


class Context:
    """One pair with its sources, and the text analysis every check shares (computed lazily)."""

    def __init__(
        self, pair: QAPair, sources: Sequence[Chunk], *, answer_only: bool = False
    ) -> None:
        self.pair = pair
        self.sources = list(sources)
        self.answer_only = answer_only  # score answer support only (claims, external benchmarks)

    @cached_property
    def is_refusal(self) -> bool:
        return self.pair.kind == "unanswerable" or says_not_in_sources(self.pair.answer)

    @cached_property
    def english(self) -> bool:
        """False when the pair's language (provenance, else a script/stopword test) is not English:
        checks that rely on English word lists then abstain."""
        lang = (self.pair.provenance.language or "").strip().lower()
        if lang and lang not in ("en", "english") and not lang.startswith("en-"):
            return False
        own = f"{self.pair.question} {self.pair.answer}"
        if not own.isascii() and not looks_english(own):
            return False  # another script in the question or answer
        head = next((c.text[:1500] for c in self.sources if c.text.strip()), "")
        return looks_english(f"{own} {head}")

    @cached_property
    def source_sentences(self) -> list[str]:
        texts = [c.text for c in self.sources if c.text.strip()] or self.support_texts
        # Source.of splits each text once for every pair that reads it (a non-blank text always
        # has a sentence, so its `or [text]` never applies here)
        return [s for t in texts for s in Source.of(t).sentences]

    @cached_property
    def question_tokens(self) -> list[Token]:
        return tokenize(self.pair.question)

    @cached_property
    def answer_tokens(self) -> list[Token]:
        return tokenize(self.pair.answer)

    @cached_property
    def support_texts(self) -> list[str]:
        """The cited evidence that is really in the sources when there is any, else the sources."""
        ev = [e.text or e.quote for e in self.pair.evidence if (e.text or e.quote).strip()]
        srcs = [c.text for c in self.sources if c.text.strip()]
        if ev and srcs:
            flat = [_flat(t) for t in srcs]
            ev = [e for e in ev if any(_flat(e) in f for f in flat)]
        return ev or srcs

    @cached_property
    def support(self) -> list[Source]:
        return [Source.of(t) for t in self.support_texts]

    @cached_property
    def reading(self) -> list[Source]:
        """What the question is read against: the whole source chunks, not only the cited
        evidence (the question may point at a sentence the generator did not cite); the support
        when there are no chunks."""
        texts = [c.text for c in self.sources if c.text.strip()]
        return [Source.of(t) for t in texts] if texts else self.support

    @cached_property
    def support_bigrams(self) -> set[tuple[str, str]]:
        return set().union(*(s.bigrams for s in self.support)) if self.support else set()

    @cached_property
    def support_bag(self) -> Bag:
        return Bag.merge(s.bag for s in self.support)

    @cached_property
    def claim_tokens(self) -> list[Token]:
        """Answer content tokens that carry the claim: those not already in the question."""
        ans = content(self.answer_tokens)
        if self.answer_only or not self.pair.question.strip():
            return ans
        if self.is_yes_no:
            # a yes/no answer restates the question: check the question's claim instead
            return content(self.question_tokens)
        novel = self.novel_tokens
        return novel or ans

    @cached_property
    def entity_tokens(self) -> list[Token]:
        """Capitalised claim words (names): in a claim sentence, not its first word."""
        ents = [t for t in self.claim_tokens if t.capital and not is_numeric(t)]
        if self.answer_only and len(self.answer_tokens) >= 4:
            ents = [t for t in ents if t.start != self.answer_tokens[0].start]
        return ents

    @cached_property
    def is_yes_no(self) -> bool:
        words = [t.text.lower() for t in self.answer_tokens]
        return bool(words) and words[0] in YES_NO and len(content(self.answer_tokens)) <= 1

    @cached_property
    def novel_tokens(self) -> list[Token]:
        """Answer content tokens that the question does not already contain."""
        qbag = Bag(content(self.question_tokens))
        return [t for t in content(self.answer_tokens) if not qbag.has(t)]

    @cached_property
    def offers_choice(self) -> bool:
        return (
            re.search(r"\b(or|whether|either|between)\b", self.pair.question, re.IGNORECASE)
            is not None
        )

    @cached_property
    def statement(self) -> str:
        if self.answer_only or not self.pair.question.strip():
            return self.pair.answer
        return f"{self.pair.question} {self.pair.answer}"

    @cached_property
    def windows(self) -> list[tuple[str, Bag]]:
        """Runs of up to WINDOW adjacent sentences of the support, with merged bags."""
        return [w for src in self.support for w in src.windows]

    def ranked_windows(self, tokens: Sequence[Token], k: int = 3) -> list[tuple[float, str, Bag]]:
        """The k support windows that cover most of `tokens` (ties: shorter first)."""
        if not tokens:
            return []
        weights = [token_weight(t) for t in tokens]
        total = sum(weights) or 1.0
        scored = []
        covered: dict[int, float] = {}  # the coverage of each set of hits, summed in token order
        for src in self.support:
            hits = src.sentence_hits(tokens)
            for (text, bag), (i, w) in zip(src.windows, src.spans, strict=True):
                mask = hits[i] if w == 1 else functools.reduce(operator.or_, hits[i : i + w])
                cov = covered.get(mask)
                if cov is None:
                    cov = covered[mask] = (
                        sum(wt for b, wt in enumerate(weights) if mask >> b & 1) / total
                    )
                scored.append((cov, -len(text), text, bag))
        scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [(c, text, bag) for c, _, text, bag in scored[:k]]


def best_coverage(ranked: Sequence[tuple[float, str, Bag]]) -> float:
    return ranked[0][0] if ranked else 0.0


def _flat(text: str) -> str:
    return " ".join(fold(text).lower().split())


def token_weight(tok: Token) -> float:
    """Rarer-looking tokens count more: names, numbers and long words."""
    if tok.number is not None or tok.text[:1].isdigit():
        return 2.0
    w = 1.0 + min(len(tok.text), 12) / 12.0
    return w * (1.5 if tok.capital else 1.0)


class Check(Protocol):
    """One step of the pipeline: looks at a pair in context, returns reasons and signals."""

    name: str

    def run(self, ctx: Context) -> CheckResult: ...


@runtime_checkable
class ModelCheck(Protocol):
    """A check backed by a model (MiniLM, a learned verifier): its calls are batched.

    The pipeline runs it on the pairs its policy selects ("all"; "borderline": the score so far
    is within `band` of the threshold, the mode is one of `modes`, and the fitted weight of
    `signal` in the "<mode>+<signal>" calibration is at least `min_weight`; "keepable": not
    already blocked and a score so far, with `neutral` signals, of at least threshold - band): `prefetch` once for
    the batch, then `run` per pair. Its signal joins the pair's and the pair is rescored with the
    calibration fitted with it (`calibration_for`).
    """

    name: str
    signal: str
    band: float
    modes: frozenset[str]
    min_weight: float

    @property
    def neutral(self) -> Mapping[str, float]:
        """Its signals' values before (or without) it runs, in `modes`."""
        ...

    def prefetch(self, ctxs: Sequence[Context]) -> None: ...

    def run(self, ctx: Context) -> CheckResult: ...


def short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
