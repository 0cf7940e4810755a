"""Faithfulness checker: drop QA pairs whose quotes, answers or questions the sources do not support.

A `Checker` maps one pair and its source chunks to a `Verdict`. The default checker is a
pipeline of small checks, each returning reason codes and signals:

- `quotes`   evidence quotes must be found in the sources (re-verified by offsets when given);
- `support`  the answer's content words, numbers, dates and names must be in the cited evidence
             (or in the sources when there is no evidence); contradictions with the evidence
             window the claim aligns with (`negation_mismatch`, `number_mismatch`,
             `date_mismatch`, `unit_mismatch`, `entity_mismatch`; see `contradictions`);
- `semantic` MiniLM similarity between the answer statement and the closest source sentences;
- `question` it is a question, it does not contain its own answer, it is about the evidence;
- `fit`      the answer ANSWERS the question (QAFitCheck, mode "qa" only): its form matches the
             question's expected type (`answer_type_mismatch`), the question names something
             specific (`vague_question`), the question's terms occur around the answer in the
             evidence (`answer_not_near_question_terms`, and the q_near* signals);
- `instructions` sources that address the model (`instruction_in_evidence`, a signal) and answers
             that only echo such an instruction (`answer_echoes_instruction`, blocking);
- `judge`    optional LLM judge (claim decomposition + per-claim verdict), cached.

The signals are combined by a logistic model into a calibrated score in [0, 1]. Its weights
(grounded/calibration.json, package data) were fitted by `benchmarks/fit_checker.py` on the first
half of the HaluEval QA dev set together with the first half of SQuAD v1.1 (part a) with
same-paragraph answer-swap negatives (mode "qa": an answer read with its question; QA_FEATURES)
and on the first half of the WiCE dev set (mode "claim": a standalone statement,
`answer_only=True`; FEATURES), each weight bounded to its sign (SIGNS: a support signal can only
raise the score, a mismatch signal only lower it). A pair is kept when its score reaches the
threshold and no blocking reason (BLOCKING) was raised. Default thresholds: DEFAULT_THRESHOLDS
(chosen on the fitting half); override with `default_checker(threshold=...)` or
`grounded check --threshold`.

Unanswerable pairs (kind "unanswerable", or an answer saying the documents do not tell) are
kept when the answer is a refusal and the sources do not answer the question: no source window
(up to 3 sentences) holds every content word of the question, no source defines a one-word
question's term ("What is petrology?" / "Petrology is ..."), and the model's own non-refusal
answer (the pair's answer, or metadata "model_answer") does not pass the checks as a factoid;
otherwise `answerable_in_sources` / `not_a_refusal`.

Other languages: checks built on English word lists (question words, question-answer fit,
negation, names) abstain on a pair whose provenance language, or a cheap script/stopword test,
says it is not English; the verdict then carries `checks_skipped_language` (not blocking).

    >>> checker = default_checker()  # doctest: +SKIP
    >>> for pair, verdict in check(pairs, index="out/index"):  # doctest: +SKIP
    ...     print(pair.question, verdict.supported, verdict.score)
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from grounded.align import align, normalise
from grounded.errors import CheckError
from grounded.types import Chunk, QAPair, Reason, Verdict

__all__ = [
    "BLOCKING",
    "DEFAULT_THRESHOLD",
    "Checker",
    "Check",
    "CheckResult",
    "InstructionCheck",
    "JudgeCheck",
    "PipelineChecker",
    "QAFitCheck",
    "QuestionCheck",
    "QuoteCheck",
    "SemanticCheck",
    "SupportCheck",
    "check",
    "default_checker",
    "inline_sources",
]

# --------------------------------------------------------------------------------------------
# Calibration: logistic models over the support signals, one per mode ("qa": an answer read with
# its question, fitted on HaluEval QA and SQuAD; "claim": a standalone statement, fitted on WiCE),
# each with and without the MiniLM similarity `sem`, sign-constrained (SIGNS). Fitted by
# benchmarks/fit_checker.py on the first half of each dev set (the second half is held out).
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Calibration:
    """score = sigmoid(bias + sum(weight * signal)) over `features`."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def score(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(w * float(signals.get(f, 0.0)) for f, w in zip(self.features, self.weights, strict=True))
        return _sigmoid(z)


FEATURES: tuple[str, ...] = (
    "lex_cov", "lex_window", "ent_cov", "num_cov", "missing", "bigram_cov", "clause_min",
    "negation", "number_mismatch", "date_mismatch", "unit_mismatch", "entity_mismatch",
)
# Mode "qa" also reads the answer with its question (QAFitCheck): these signals join the model.
QA_FEATURES: tuple[str, ...] = (
    *FEATURES, "type_ok", "type_match", "vague", "q_near", "q_near_sent", "q_near_tok", "q_sent_gap",
    "ans_in_q",
)
# Their values when the fit check did not run (no question, or it was switched off).
FIT_NEUTRAL: dict[str, float] = {"type_ok": 1.0, "type_match": 0.0, "vague": 0.0, "q_near": 1.0,
                                 "q_near_sent": 1.0, "q_near_tok": 1.0, "q_sent_gap": 0.0, "ans_in_q": 0.0}
# The sign each fitted weight is constrained to: support signals (+1) can only raise the score,
# mismatch signals (-1) can only lower it (benchmarks/fit_checker.py fits with these bounds).
SIGNS: dict[str, int] = {
    **dict.fromkeys(("lex_cov", "lex_window", "ent_cov", "num_cov", "bigram_cov", "clause_min", "sem",
                     "type_ok", "type_match", "q_near", "q_near_sent", "q_near_tok", "q_sent_gap"), 1),
    **dict.fromkeys(("missing", "negation", "number_mismatch", "date_mismatch", "unit_mismatch",
                     "entity_mismatch", "vague", "ans_in_q"), -1),
}
# The fitted models and thresholds are package data, written by benchmarks/fit_checker.py --write.
CALIBRATION_FILE = "calibration.json"


def load_calibration(data: Mapping[str, Any] | None = None) -> tuple[dict[str, Calibration], dict[str, float]]:
    """The fitted models and default thresholds (from grounded/calibration.json by default)."""
    if data is None:
        import json
        from importlib.resources import files

        data = json.loads(files("grounded").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8"))
    models = {name: Calibration(tuple(m["features"]), tuple(float(w) for w in m["weights"]), float(m["bias"]))
              for name, m in data["models"].items()}
    return models, {k: float(v) for k, v in data["thresholds"].items()}


CALIBRATION, DEFAULT_THRESHOLDS = load_calibration()
DEFAULT_THRESHOLD: float = DEFAULT_THRESHOLDS["qa"]
# The semantic check runs only when the lexical score falls inside this band around the
# threshold (MiniLM is the slow part); semantic="all" runs it for every pair.
SEMANTIC_BAND: float = 0.3
# ...and only in a mode whose fitted `sem` weight is at least this...
MIN_SEM_WEIGHT: float = 0.25
# ...and only in these modes: in "qa" MiniLM adds little on the held-out halves (fit_checker:
# HaluEval 0.964 -> 0.966, SQuAD same-paragraph 0.694 -> 0.702 balanced accuracy) and costs
# ~100x in throughput; semantic="all" still runs it.
SEMANTIC_MODES: frozenset[str] = frozenset({"claim"})

# A mismatch (number, date, unit, name, negation) blocks when the evidence window it was found in
# covers at least this share of the claim's other content words (the "alignment"); below it, the
# window may be the wrong one (a long page in claim mode) and the mismatch only lowers the score
# (reason `possible_mismatch`, not blocking). Names differ more often by paraphrase: a higher bar.
ALIGN_MIN: dict[str, float] = {"qa": 0.0, "claim": 0.75}
ENTITY_ALIGN_MIN: float = 0.9
MISMATCH_CODES: tuple[str, ...] = ("negation_mismatch", "number_mismatch", "date_mismatch", "unit_mismatch", "entity_mismatch")
# What a non-English pair skips (English word lists); reported as `checks_skipped_language`.
SKIPPED_LANGUAGE: dict[str, str] = {
    "qa": "not English: skipped the question-word, question-answer fit, negation and name checks (English word lists)",
    "claim": "not English: skipped the negation and name checks (English word lists)",
}
# Reasons that reject a pair whatever its score.
BLOCKING: frozenset[str] = frozenset(
    {
        "empty_answer",
        "no_sources",
        "quote_not_found",
        "offset_mismatch",
        "number_mismatch",
        "date_mismatch",
        "unit_mismatch",
        "entity_mismatch",
        "negation_mismatch",
        "answer_echoes_instruction",
        "not_a_question",
        "answer_in_question",
        "question_not_about_evidence",
        "answer_type_mismatch",
        "vague_question",
        "answer_not_near_question_terms",
        "not_a_refusal",
        "answerable_in_sources",
        "judge_unsupported",
    }
)

# --------------------------------------------------------------------------------------------
# Text analysis: cheap, regex-based, shared by every check.
# --------------------------------------------------------------------------------------------
STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else
    ever every few for from further had has have having he her here hers herself him himself his
    how however i if in into is it its itself just least less let like many may me might more most
    much must my myself neither nor of off on once one only or other ought our ours ourselves out
    over own per rather same shall she should since so some such than that the their theirs them
    themselves then there these they this those though through thus to too under until up upon us
    very via was we were what whatever when where whether which while who whom whose why will with
    within would yet you your yours yourself yourselves s t d ll m re ve etc among amongst became
    become becomes get gets got known called named name use used using via whereas onto""".split()
)
NEGATIONS: frozenset[str] = frozenset(
    {"not", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot",
     "n't", "nowhere", "unable", "lack", "lacks", "lacked", "fail", "fails", "failed"}
)
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "hundred": 100, "dozen": 12, "first": 1, "third": 3, "fourth": 4,
    "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11,
    "twelfth": 12, "twentieth": 20, "twice": 2, "thrice": 3,
}
MONTHS: dict[str, int] = {
    m: i for i, names in enumerate(
        ("january jan", "february feb", "march", "april apr", "may", "june jun", "july jul",
         "august aug", "september sep sept", "october oct", "november nov", "december dec"), 1)
    for m in names.split()
}
SCALES: dict[str, float] = {
    "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6,
    "bn": 1e9,
}
QUESTION_WORDS: frozenset[str] = frozenset(
    """what which who whom whose when where why how is are was were do does did can could will
    would should shall has have had may might must am name list identify""".split()
)
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
_ABOUT_SOURCES = re.compile(r"\b(documents?|texts?|sources?|context|passages?|articles?|information|provided|excerpts?)\b", re.IGNORECASE)


def says_not_in_sources(answer: str) -> bool:
    """A refusal ("The documents do not say."): REFUSAL in a short answer or one naming the sources;
    a long statement that merely contains "was not given" is a claim to check."""
    if not REFUSAL.search(answer):
        return False
    return len(answer.split()) <= 10 or _ABOUT_SOURCES.search(answer) is not None
# Instructions addressed to an AI reading the text (prompt injection planted in a document):
# a modest set of imperative patterns, matched per sentence.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier|"
    r"preceding|other|original)\s+(?:instructions?|prompts?|directions?|rules|messages?|context)"
    r"|\b(?:answer|reply|respond|say|output|print|write|return)\s+(?:with\s+)?[\"'“‘]?[^\"'”’.]{1,40}[\"'”’]?\s+"
    r"(?:to|for|in\s+response\s+to)\s+(?:every|all|any|each)\s+(?:questions?|quer(?:y|ies)|prompts?|requests?)"
    r"|\b(?:always|only)\s+(?:answer|reply|respond)\s+(?:with\s+)?[\"'“‘]"
    r"|\byou\s+(?:must|should|will|shall|have\s+to|are\s+(?:required|instructed)\s+to)\s+(?:always\s+|now\s+|only\s+)?"
    r"(?:(?:answer|reply|respond|say|output|print|repeat|state)\s+(?:with\b|only\b|that\b|to\s+(?:every|all|any|each)\b|[:\"'“‘])"
    r"|(?:ignore|disregard)\b)"
    r"|\bas\s+an?\s+(?:ai|a\.i\.|language\s+model|llm|assistant|chatbot)\b"
    r"|\bsystem\s+prompt\b"
    r"|\b(?:dear|attention|note\s+to\s+(?:the\s+)?|hey)\s*,?\s*(?:ai|assistant|chatbot|language\s+model|llm|gpt)\b"
    r"|\b(?:ai|assistant|chatbot|language\s+model|llm)s?\s*(?:reading\s+this\s*)?,?\s+(?:must|should|are\s+to|need\s+to|please)\s+"
    r"(?:answer|reply|respond|say|output|ignore|always|only)\b"
    r"|\b(?:regardless\s+of|no\s+matter)\s+(?:what\s+)?(?:the\s+)?(?:question|query|prompt)\b",
    re.IGNORECASE,
)

# Kana and Han characters are written without spaces: each is a token of its own.
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(
    rf"\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?|[{_CJK_CHARS}]|[^\W\d_{_CJK_CHARS}]+(?:['’][^\W\d_{_CJK_CHARS}]+)*|n't",
    re.UNICODE,
)
_HAN_KATAKANA = re.compile("[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CLAUSE = re.compile(r"[,;:()]|\s[-–—]\s|\b(?:and|but|while|whereas|which|who|after|before|when)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])|(?<=[。！？])\s*|\n+")
# Question marks of other scripts: full-width (CJK), Arabic, Greek (U+037E), reversed.
QUESTION_MARKS = "?？؟;⸮"


def _fold(text: str) -> str:
    """Strip accents so 'Zürich' and 'Zurich' match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=262_144)
def stem(word: str) -> str:
    """A light English stemmer: enough to match plurals, -ing, -ed, possessives."""
    w = word.lower()
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    if len(w) <= 3 or w[0].isdigit():
        return w
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"),
                         ("shes", "sh"), ("ing", ""), ("edly", ""), ("ed", ""), ("ly", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            w = w[: len(w) - len(suffix)] + repl
            break
    return w


def number_value(token: str) -> float | None:
    """The numeric value of a token: '1,200' -> 1200, '3.5' -> 3.5, '1990s' -> 1990, 'twelve' -> 12."""
    t = token.lower()
    if t in NUMBER_WORDS:
        return float(NUMBER_WORDS[t])
    if t in MONTHS and token[:1].isupper() and t != "may":
        return float(MONTHS[t])  # dates: 'November 2018' matches '2018-11-10'
    t = re.sub(r"(st|nd|rd|th|s)$", "", t)
    if not t or not t[0].isdigit():
        return None
    if ":" in t or "/" in t:
        return None  # times and dates are compared as strings
    t = t.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", t) else t.replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    stem: str
    capital: bool
    number: float | None
    start: int


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    folded = _fold(text)
    for m in _TOKEN.finditer(folded):
        raw = m.group(0)
        out.append(Token(raw, stem(raw), raw[:1].isupper(), number_value(raw), m.start()))
    # '2.5 million' -> one value
    for i in range(len(out) - 1):
        value = out[i].number
        if value is not None and out[i + 1].text.lower() in SCALES:
            out[i] = replace(out[i], number=value * SCALES[out[i + 1].text.lower()])
    return out


def _is_month(tok: Token) -> bool:
    return tok.capital and tok.text.lower() in MONTHS


@functools.lru_cache(maxsize=65_536)
def tokens_of(text: str) -> tuple[Token, ...]:
    """`tokenize`, cached: evidence sentences and windows are compared with many pairs."""
    return tuple(tokenize(text))


def content(tokens: Iterable[Token]) -> list[Token]:
    """The tokens that carry meaning: no stopwords, negations or single letters (Han/katakana kept)."""
    return [t for t in tokens if t.text.lower() not in STOPWORDS and not is_negation(t)
            and (len(t.text) > 1 or t.number is not None or _HAN_KATAKANA.match(t.text) is not None)]


def is_negation(tok: Token) -> bool:
    """'not', 'never', ... and contractions ("isn't", "didn't")."""
    low = tok.text.lower()
    return low in NEGATIONS or low.endswith(("n't", "n’t"))


# English function words frequent in any English prose and rare in other Latin-script languages.
_EN_COMMON: frozenset[str] = frozenset(
    "the of and to is was that for it with as by are were this from at be has have which an not his "
    "her their they he she been had who what would there these in a".split()
)
_EN_WORD = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=16_384)
def looks_english(text: str) -> bool:
    """A cheap script and stopword test: mostly Latin letters and enough common English words."""
    sample = text[:3000]
    if not sample.isascii():
        letters = [c for c in sample if c.isalpha()]
        if letters and sum(c < "\u0250" for c in letters) / len(letters) < 0.5:
            return False  # another script (CJK, Cyrillic, Arabic, Greek, ...)
        sample = _fold(sample)
    words = _EN_WORD.findall(sample.lower())
    if len(words) < 20:
        return True  # too short to tell: English word lists apply
    return sum(w in _EN_COMMON for w in words) / len(words) >= 0.08


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


class Bag:
    """The stems and numbers of a text, for fast membership tests with prefix matching."""

    __slots__ = ("stems", "numbers", "raw_numbers", "prefixes", "months", "dates")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.stems = {t.stem for t in tokens}
        # month names count as their number only for a month of the claim ("November" ~ "2018-11"),
        # so that a changed day ("November 8" -> "11") is not found in the month
        self.numbers = {round(t.number, 6) for t in tokens if t.number is not None and not _is_month(t)}
        self.months = {round(t.number, 6) for t in tokens if t.number is not None and _is_month(t)}
        self.raw_numbers = {t.text for t in tokens if t.number is None and t.text[:1].isdigit()}
        self.prefixes = {s[:5] for s in self.stems if len(s) >= 5}
        self.dates = {round(t.number, 6) for t in tokens if t.number is not None and _date_like(t)}

    @classmethod
    def merge(cls, bags: Iterable[Bag]) -> Bag:
        out = cls([])
        for b in bags:
            out.stems |= b.stems
            out.numbers |= b.numbers
            out.months |= b.months
            out.dates |= b.dates
            out.raw_numbers |= b.raw_numbers
            out.prefixes |= b.prefixes
        return out

    def has(self, tok: Token) -> bool:
        if tok.number is not None:
            value = round(tok.number, 6)
            if value in self.numbers or (_is_month(tok) and value in self.months):
                return True
            return tok.stem in self.stems
        if tok.text[:1].isdigit():
            return tok.text in self.raw_numbers or tok.stem in self.stems
        if tok.stem in self.stems:
            return True
        # 'America' ~ 'American', 'Philadelphia' ~ "Philadelphia's"
        return len(tok.stem) >= 5 and tok.stem[:5] in self.prefixes and any(
            s.startswith(tok.stem) or tok.stem.startswith(s) for s in self.stems if s[:5] == tok.stem[:5]
        )


class Source:
    """A source text split into sentences, each with its bag of stems (computed once)."""

    __slots__ = ("text", "sentences", "bags", "bag", "bigrams", "_windows")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sentences = split_sentences(text) or [text]
        toks = [tokenize(s) for s in self.sentences]
        self.bags = [Bag(t) for t in toks]
        self.bag = Bag.merge(self.bags)
        self.bigrams = {b for ts in toks for b in bigrams(ts)}
        self._windows: list[tuple[str, Bag]] | None = None

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
            self._windows = out
        return self._windows

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


# --------------------------------------------------------------------------------------------
# The protocol and the context one pair is checked in.
# --------------------------------------------------------------------------------------------
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

    def __init__(self, pair: QAPair, sources: Sequence[Chunk], *, answer_only: bool = False) -> None:
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
        return [s for t in texts for s in split_sentences(t)]

    @cached_property
    def instructions(self) -> list[str]:
        """Sentences of the sources that address the model reading them (planted instructions)."""
        return [s for s in self.source_sentences if INSTRUCTION.search(s)]

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
        ents = [t for t in self.claim_tokens if t.capital and not _numeric(t)]
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
        return re.search(r"\b(or|whether|either|between)\b", self.pair.question, re.IGNORECASE) is not None

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
        weights = [_weight(t) for t in tokens]
        total = sum(weights) or 1.0
        scored = []
        for text, bag in self.windows:
            cov = sum(w for t, w in zip(tokens, weights, strict=True) if bag.has(t)) / total
            scored.append((cov, -len(text), text, bag))
        scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [(c, text, bag) for c, _, text, bag in scored[:k]]


def _best(ranked: Sequence[tuple[float, str, Bag]]) -> float:
    return ranked[0][0] if ranked else 0.0


def _flat(text: str) -> str:
    return " ".join(_fold(text).lower().split())


def _weight(tok: Token) -> float:
    """Rarer-looking tokens count more: names, numbers and long words."""
    if tok.number is not None or tok.text[:1].isdigit():
        return 2.0
    w = 1.0 + min(len(tok.text), 12) / 12.0
    return w * (1.5 if tok.capital else 1.0)


class Check(Protocol):
    """One step of the pipeline: looks at a pair in context, returns reasons and signals."""

    name: str

    def run(self, ctx: Context) -> CheckResult: ...


# --------------------------------------------------------------------------------------------
# 1. Quotes
# --------------------------------------------------------------------------------------------
@dataclass
class QuoteCheck:
    """Every evidence quote must be in the sources; offsets, when given, must point at it."""

    min_score: float = 0.9
    name: str = "quotes"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.evidence:
            return res
        if not ctx.sources:
            res.reasons.append(Reason("no_sources", "evidence cites no source that could be loaded"))
            return res
        scores = []
        for ev in ctx.pair.evidence:
            quote = ev.quote or ev.text
            if ev.end > ev.start:
                verified = self._verify_offsets(ev, ctx.sources)
                if verified is True:
                    scores.append(1.0)
                    continue
                if verified is False:
                    res.reasons.append(Reason(
                        "offset_mismatch",
                        f"the source text at {ev.doc_id}[{ev.start}:{ev.end}] is not the quoted text",
                    ))
                    scores.append(0.0)
                    continue
            best = 0.0
            for chunk in ctx.sources:
                found = align(quote, chunk.text, min_score=0.0)
                if found is not None:
                    best = max(best, found.score)
                    if best >= 1.0:
                        break
            scores.append(best)
            if best < self.min_score:
                res.reasons.append(Reason(
                    "quote_not_found",
                    f"quote not in the sources (best match {best:.2f}): {_short(quote)}",
                ))
        res.signals["quote_score"] = min(scores) if scores else 1.0
        return res

    @staticmethod
    def _verify_offsets(ev: Any, sources: Sequence[Chunk]) -> bool | None:
        """True/False when a source chunk covers the offsets; None when none does."""
        for chunk in sources:
            if chunk.doc_id != ev.doc_id and chunk.id != ev.chunk_id:
                continue
            if chunk.start <= ev.start and ev.end <= chunk.end:
                at = chunk.text[ev.start - chunk.start : ev.end - chunk.start]
                if at == ev.text or normalise(at)[0] == normalise(ev.text)[0]:
                    return True
                return False
        return None


# --------------------------------------------------------------------------------------------
# 2. Lexical support: content words, numbers, names; contradictions (negation, number, date,
#    unit, name) against the evidence window the claim aligns with
# --------------------------------------------------------------------------------------------
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
            res.reasons.append(Reason("no_sources", "no evidence and no source text to check against"))
            res.signals.update(_zero_features())
            return res
        if ctx.is_refusal and not ctx.answer_only:
            return self._refusal(ctx, res)
        tokens = ctx.claim_tokens
        bag = ctx.support_bag
        weights = [_weight(t) for t in tokens]
        total = sum(weights)
        found = [bag.has(t) for t in tokens]
        lex_cov = (sum(w for w, f in zip(weights, found, strict=True) if f) / total) if total else 1.0
        missing = [t.text for t, f in zip(tokens, found, strict=True) if not f]
        ents = ctx.entity_tokens
        ent_found = [bag.has(t) for t in ents]
        ent_cov = sum(ent_found) / len(ents) if ents else 1.0
        nums = [t for t in tokens if _numeric(t)]
        num_cov = sum(bag.has(t) for t in nums) / len(nums) if nums else 1.0
        ranked = ctx.ranked_windows(tokens, k=1)
        lex_window = ranked[0][0] if ranked else (1.0 if not tokens else 0.0)
        # the weakest part of a multi-part claim: split at commas, semicolons and conjunctions
        clause_min = lex_window
        parts = [content(tokenize(c)) for c in _CLAUSE.split(ctx.pair.answer)]
        parts = [p for p in parts if len(p) >= 2]
        if len(parts) >= 2:
            clause_min = min(_best(ctx.ranked_windows(p, k=1)) for p in parts)
        answer_bigrams = bigrams(ctx.answer_tokens)
        bigram_cov = (
            len(answer_bigrams & ctx.support_bigrams) / len(answer_bigrams) if answer_bigrams else 1.0
        )
        missing_ents = [t for t, f in zip(ents, ent_found, strict=True) if not f]
        if missing_ents:
            res.reasons.append(Reason(
                "unsupported_entity", f"name(s) not in the evidence: {', '.join(t.text for t in missing_ents[:5])}"
            ))
        res.signals.update(lex_cov=lex_cov, lex_window=lex_window, ent_cov=ent_cov, num_cov=num_cov,
                           missing=math.log1p(len(missing)), bigram_cov=bigram_cov, clause_min=clause_min)
        # every number of the answer (also one the question repeats) must be in the evidence
        absent = [t for t in content(ctx.answer_tokens) if _numeric(t) and not bag.has(t)] if not ctx.is_yes_no else []
        reasons, signals = contradictions(ctx, absent, missing_ents)
        res.reasons.extend(reasons)
        res.signals.update(signals)
        return res

    @staticmethod
    def _refusal(ctx: Context, res: CheckResult) -> CheckResult:
        """An 'it is not in the documents' answer: right when no source sentence answers the question."""
        if not says_not_in_sources(ctx.pair.answer) and ctx.pair.kind == "unanswerable":
            res.reasons.append(Reason("not_a_refusal", "an unanswerable question needs an answer that says so"))
        q = content(ctx.question_tokens)
        ranked = ctx.ranked_windows(q, k=1)
        q_cov = ranked[0][0] if ranked else 0.0
        # every content word of the question within one window: the sources likely answer it
        if q and q_cov >= 0.999 and len(q) >= 2:
            res.reasons.append(Reason(
                "answerable_in_sources",
                f"the answer says it is not in the documents but this passage matches the question: {_short(ranked[0][1])}",
            ))
        elif len(q) == 1 and ctx.english:
            # "What is petrology?": answerable when a source defines or describes the term
            sentence = defining_sentence(q[0], ctx.support_texts)
            if sentence is not None:
                res.reasons.append(Reason(
                    "answerable_in_sources", f"the sources define {q[0].text!r}: {_short(sentence)}"
                ))
        res.signals["question_coverage"] = q_cov
        return res


@dataclass
class InstructionCheck:
    """Sources that address the model ("ignore previous instructions", "answer 'PWNED' to every
    question"): signal `instruction_in_evidence` (with a reason of that code, not blocking); an
    answer whose words come mostly (>= half their weight) from such instructions and nowhere
    else in the sources is `answer_echoes_instruction` (blocking)."""

    max_echo: float = 0.5
    name: str = "instructions"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        planted = ctx.instructions
        res.signals["instruction_in_evidence"] = 1.0 if planted else 0.0
        if not planted:
            return res
        res.reasons.append(Reason("instruction_in_evidence", f"the sources address the model: {_short(planted[0], 80)}"))
        ans = content(ctx.answer_tokens)
        if not ans or (ctx.is_refusal and not ctx.answer_only):
            return res
        said = Bag([t for s in planted for t in tokenize(s)])
        rest = Bag([t for s in ctx.source_sentences if s not in planted for t in tokenize(s)])
        weights = [_weight(t) for t in ans]
        echoed = sum(w for t, w in zip(ans, weights, strict=True) if said.has(t) and not rest.has(t))
        if echoed / sum(weights) >= self.max_echo:
            res.reasons.append(Reason(
                "answer_echoes_instruction",
                f"the answer repeats an instruction planted in the sources, not a fact from them: {_short(ctx.pair.answer, 40)}",
            ))
        return res


def _zero_features() -> dict[str, float]:
    return dict.fromkeys(FEATURES, 0.0)


def _numeric(tok: Token) -> bool:
    return tok.number is not None or tok.text[:1].isdigit()


def _date_like(tok: Token) -> bool:
    """A year (4 digits, 1000-2100, or a decade like '1990s') or a month name."""
    if tok.number is None:
        return False
    digits = tok.text.rstrip("s")
    year = len(digits) == 4 and digits.isdigit() and 1000 <= tok.number <= 2100
    return year or (tok.text.lower() in MONTHS and tok.capital)


def defining_sentence(term: Token, texts: Sequence[str]) -> str | None:
    """A sentence that defines or describes `term` ("X is/are/was ...", "X, a ...", "called X")."""
    word = re.escape(_fold(term.text)[: max(4, len(term.stem))])
    pattern = re.compile(
        rf"(?<!\w){word}\w*(?:\s*\([^)]{{0,80}}\))?(?:\s*,\s*(?:a|an|the|one)\s|\s+(?:is|are|was|were|refers?\s+to|"
        rf"means|denotes|describes|consists?\s+of|includes?)\s)|(?:known\s+as|called|termed)\s+(?:the\s+)?{word}\w*",
        re.IGNORECASE,
    )
    for text in texts:
        for sentence in split_sentences(text):
            if pattern.search(_fold(sentence)):
                return sentence
    return None


# Units whose swap for another of the same kind changes a quantity ("412 metres" / "412 feet").
UNIT_KINDS: dict[str, str] = {
    **dict.fromkeys("metre meter kilometre kilometer km centimetre centimeter cm millimetre mm mile "
                    "foot feet inch yard".split(), "length"),
    **dict.fromkeys("kilogram kg gram pound lb ton tonne ounce".split(), "mass"),
    **dict.fromkeys("second minute hour day week month year decade century".split(), "time"),
    **dict.fromkeys("dollar euro pound yen franc rupee cent".split(), "money"),
    **dict.fromkeys("percent acre hectare litre liter gallon".split(), "other"),
}
# "not only ..." and "not until ..." do not negate what follows.
_NOT_NEGATING: frozenset[str] = frozenset({"only", "just", "merely", "least", "until", "unlike"})
_SCOPE_BREAK = re.compile(r"[,;:()]|\b(?:and|but|while|whereas|which|who|although|though|because)\b", re.IGNORECASE)
_NEG_HINT = re.compile("|".join(sorted(NEGATIONS - {"n't"})) + r"|n['’]t", re.IGNORECASE)
# Content words after a negation cue that make up its scope.
NEG_SCOPE = 2


def negation_scopes(text: str) -> list[tuple[str, ...]]:
    """For each negation cue of `text`, the stems of the next NEG_SCOPE content words in its clause.

    Two cues with no content word between them ("are not also not allowed") cancel out.
    """
    folded = _fold(text)
    toks = tokens_of(text)
    out: list[tuple[str, ...]] = []
    consumed: set[int] = set()
    for i, tok in enumerate(toks):
        if i in consumed or not is_negation(tok) or (i + 1 < len(toks) and toks[i + 1].text.lower() in _NOT_NEGATING):
            continue
        scope: list[str] = []
        cues = 1
        end = tok.start + len(tok.text)
        for j in range(i + 1, len(toks)):
            nxt = toks[j]
            if is_negation(nxt):
                if scope:
                    break
                cues += 1
                consumed.add(j)
                continue
            # a clause break ends the scope once it holds a word ("not, by their account, towed")
            if scope and _SCOPE_BREAK.search(folded, end, nxt.start + len(nxt.text)):
                break
            end = nxt.start + len(nxt.text)
            if content([nxt]):
                scope.append(nxt.stem)
                if len(scope) >= NEG_SCOPE:
                    break
        if scope and cues % 2 == 1:
            out.append(tuple(scope))
    return out


def negation_conflict(claim: str, evidence: str) -> str | None:
    """Why the claim and the evidence disagree on a negation, or None.

    A negation counts when the first word it scopes over is in the other text and the other text
    negates none of its scope: "are allowed" / "are not allowed" conflict, "not only" does not.
    """
    if not (_NEG_HINT.search(claim) or _NEG_HINT.search(evidence)):
        return None
    c_scopes, e_scopes = negation_scopes(claim), negation_scopes(evidence)
    if not c_scopes and not e_scopes:
        return None
    c_stems = {t.stem for t in tokens_of(claim)}
    e_stems = {t.stem for t in tokens_of(evidence)}
    for sc in c_scopes:
        if sc[0] in e_stems and not any(set(sc) & set(se) for se in e_scopes):
            return f"the answer negates what the evidence states ({sc[0]!r})"
    for se in e_scopes:
        if se[0] in c_stems and not any(set(se) & set(sc) for sc in c_scopes):
            return f"the evidence negates what the answer states ({se[0]!r})"
    return None


def _number_units(tokens: Sequence[Token]) -> set[tuple[float, str]]:
    """(value, unit stem) for each number directly followed by a unit word."""
    out = set()
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        unit = stem(nxt.text) if nxt.text.lower() != "feet" else "feet"
        if tok.number is not None and unit in UNIT_KINDS:
            out.add((round(tok.number, 6), unit))
    return out


def contradictions(ctx: Context, absent_numbers: Sequence[Token], missing_ents: Sequence[Token]) -> tuple[list[Reason], dict[str, float]]:
    """Negation, number, date, unit and name mismatches with the evidence window the claim aligns
    with (the one covering most of its other content words). A mismatch blocks when that window
    covers at least ALIGN_MIN of the claim (ENTITY_ALIGN_MIN for names), else it is reported as
    `possible_mismatch`; either way its signal (0.5 + 0.5 * alignment) lowers the score."""
    mode = "claim" if ctx.answer_only else "qa"
    signals = dict.fromkeys(("negation", "number_mismatch", "date_mismatch", "unit_mismatch", "entity_mismatch"), 0.0)
    reasons: list[Reason] = []
    statement = content(tokens_of(ctx.statement))
    # what the claim says besides the facts compared (numbers and units): aligns it with a window
    anchor = [t for t in statement if not _numeric(t) and t.stem not in UNIT_KINDS]

    def report(code: str, signal: str, align: float, min_align: float, message: str) -> None:
        signals[signal] = max(signals[signal], 0.5 + 0.5 * align)
        if align >= min_align:
            reasons.append(Reason(code, message))
        else:
            reasons.append(Reason("possible_mismatch", f"{code} in a passage matching {align:.0%} of the claim: {message}"))

    ranked = ctx.ranked_windows(anchor, k=len(ctx.windows))
    align, text = (ranked[0][0], ranked[0][1]) if ranked else (1.0, " ".join(ctx.support_texts))
    if absent_numbers:
        # among the best-aligned windows, the shortest that gives numbers to compare with
        wbag = next((bag for c, _, bag in ranked if c >= align - 1e-9 and (bag.numbers or bag.months)),
                    ranked[0][2] if ranked else ctx.support_bag)
    for tok in absent_numbers:
        date = _date_like(tok)
        same = sorted(wbag.dates if date else wbag.numbers - wbag.dates)
        if same:
            code = "date_mismatch" if date else "number_mismatch"
            report(code, code, align, ALIGN_MIN[mode],
                   f"the answer says {tok.text} where the evidence says {', '.join(f'{v:g}' for v in same[:3])}")
        elif wbag.numbers or wbag.months or wbag.raw_numbers:
            report("number_mismatch", "number_mismatch", align, ALIGN_MIN[mode],
                   f"answer number {tok.text} not in the evidence, which gives other numbers")
        else:
            reasons.append(Reason("number_not_found", f"answer number {tok.text} not in the evidence"))
    claim_units = _number_units(ctx.answer_tokens)
    if claim_units:
        support_units = set().union(*(_number_units(tokens_of(t)) for t in ctx.support_texts))
        for value, unit in sorted(claim_units - support_units):
            other = [u for v, u in support_units if v == value and UNIT_KINDS[u] == UNIT_KINDS[unit]]
            if other:
                report("unit_mismatch", "unit_mismatch", align, ALIGN_MIN[mode],
                       f"the answer gives {value:g} {unit} where the evidence gives {value:g} {other[0]}")
    if not ctx.english:
        return reasons, signals
    # negation only means something in a statement (not in 'no', or a short name)
    # (the answer alone: a question's own "not" is not the answer's claim)
    if len(ctx.answer_tokens) >= (4 if ctx.answer_only else 6) and not ctx.is_yes_no:
        own = ctx.ranked_windows([t for t in content(ctx.answer_tokens) if not _numeric(t)], k=1)
        n_align, n_text = (own[0][0], own[0][1]) if own else (align, text)
        why = negation_conflict(ctx.pair.answer, n_text) if n_align >= 0.5 else None
        if why is not None:
            report("negation_mismatch", "negation", n_align, ALIGN_MIN[mode], why)
    if missing_ents:
        rest = [t for t in anchor if t not in missing_ents]
        ent_window = ctx.ranked_windows(rest, k=1)
        if ent_window:
            e_align, e_text = ent_window[0][0], ent_window[0][1]
            mine = Bag(statement)
            others = [t for s in split_sentences(e_text) for t in content(tokens_of(s)[1:])
                      if t.capital and not _numeric(t) and not mine.has(t)]
            if others:
                report("entity_mismatch", "entity_mismatch", e_align, ENTITY_ALIGN_MIN,
                       f"the answer names {', '.join(t.text for t in missing_ents[:3])} where the evidence names "
                       f"{', '.join(dict.fromkeys(t.text for t in others[:3]))}")
    return reasons, signals


# --------------------------------------------------------------------------------------------
# 3. Semantic support (MiniLM)
# --------------------------------------------------------------------------------------------
class SemanticCheck:
    """Cosine similarity between the answer statement and its closest source windows (MiniLM)."""

    name = "semantic"

    def __init__(self, embedder: Any = None, *, k: int = 3, cache_size: int = 50_000) -> None:
        self._embedder = embedder
        self.k = k
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.cache_size = cache_size

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from grounded.embed import get_embedder

            self._embedder = get_embedder("minilm")
        return self._embedder

    def texts(self, ctx: Context) -> list[str]:
        """The texts this check needs embedded for one pair (for batching)."""
        tokens = ctx.claim_tokens or content(ctx.answer_tokens)
        windows = [text for _, text, _ in ctx.ranked_windows(tokens, k=self.k)]
        return [ctx.statement, *windows]

    def prefetch(self, texts: Iterable[str]) -> None:
        """Embed every text not yet cached in one batch."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        vecs = self.embedder.embed(todo)
        for text, vec in zip(todo, vecs, strict=True):
            self._cache[text] = vec
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        texts = self.texts(ctx)
        if len(texts) < 2:
            return res
        self.prefetch(texts)
        q = self._cache[texts[0]]
        sem = max(float(q @ self._cache[t]) for t in texts[1:])
        res.signals["sem"] = sem
        return res


# --------------------------------------------------------------------------------------------
# 4. Question checks
# --------------------------------------------------------------------------------------------
@dataclass
class QuestionCheck:
    """A question, not a statement; does not give its own answer; is about the evidence."""

    min_about: float = 0.15
    name: str = "question"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if ctx.answer_only:
            return res
        q = ctx.pair.question.strip()
        words = [t.text.lower() for t in ctx.question_tokens]
        if not q:
            res.reasons.append(Reason("not_a_question", "the question is empty"))
            return res
        marked = q.rstrip("\"'”’)」』 ").endswith(tuple(QUESTION_MARKS)) or q.startswith("¿")
        # without a question mark only English question words tell; other languages abstain
        if not marked and ctx.english and not (words and words[0] in QUESTION_WORDS):
            res.reasons.append(Reason("not_a_question", f"a statement, not a question: {_short(q)}"))
        # answer in question: the whole answer appears, and it is not one of offered choices
        a = ctx.pair.answer.strip().strip(".").lower()
        ans_content = content(ctx.answer_tokens)
        offered = ctx.offers_choice
        ans_words = [t for t in ctx.answer_tokens if t.text.lower() not in STOPWORDS or len(t.text) == 1]
        if ans_content and not offered and a.lower() not in YES_NO and not ctx.is_refusal:
            qbag = Bag(ctx.question_tokens)
            if all(qbag.has(t) for t in ans_words):
                res.reasons.append(Reason("answer_in_question", f"the question already contains the answer {a!r}"))
        # about the evidence: enough of the question's content words are in the sources
        qc = content(ctx.question_tokens)
        if qc and (ctx.sources or ctx.support_texts):
            bag = Bag([t for c in ctx.sources for t in tokenize(c.text)]) if ctx.sources else ctx.support_bag
            about = sum(bag.has(t) for t in qc) / len(qc)
            res.signals["question_about"] = about
            if about < self.min_about:
                res.reasons.append(Reason(
                    "question_not_about_evidence",
                    f"only {about:.0%} of the question's content words are in the sources",
                ))
            elif ctx.is_refusal and ctx.english:
                # "the documents do not say" is only right about what the documents are about:
                # a question naming things none of the sources names is off their topic
                names = [t for t in qc if t.capital and t.start > 0]  # not the sentence-initial word
                if names and not any(bag.has(t) for t in names):
                    res.reasons.append(Reason(
                        "question_not_about_evidence",
                        "an unanswerable question must be about the sources, which never name "
                        + ", ".join(repr(t.text) for t in names[:3]),
                    ))
        return res


# --------------------------------------------------------------------------------------------
# 5. Question-answer fit: does the answer ANSWER the question (not merely occur in the evidence)?
# --------------------------------------------------------------------------------------------
# Question content words that name no specific thing: a question made only of these ("What was
# the purpose of the work?", "What does the quote say?") is `vague_question`, and they are left
# out when looking for the question's terms around the answer.
GENERIC_WORDS: frozenset[str] = frozenset(
    """purpose purposes work works thing things meaning mean means meant quote quotes phrase
    phrases say says said saying text passage document article paragraph section author writer
    example type kind sort part role reason way something anything everything main important
    significance significant idea point term word words happen happened happens describe
    described refer refers information topic subject aim goal function make made doing done
    called call example key overall general given mentioned mention stated state""".split()
)
# Copula questions about a generic aspect ("What is the purpose of X?", "What was X's work?")
# expect a descriptive phrase, not a bare name, date or number.
_ASPECT = (r"purpose|meaning|goal|aim|role|function|significance|importance|work|job|message|"
           r"theme|point|idea|mission|intent|intention|effect|impact|reason|nature|definition")
_ASPECT_Q = re.compile(
    rf"^\s*what\s+(?:is|was|are|were)\s+(?:the\s+|a\s+|an\s+)?(?:main\s+|primary\s+|real\s+)?(?:{_ASPECT})s?\b"
    rf"|^\s*what\s+(?:is|was|are|were)\s+[^?]{{1,80}}?['’]s?\s+(?:main\s+|primary\s+)?(?:{_ASPECT})s?\s*\??\s*$",
    re.IGNORECASE,
)
_WHEN_Q = re.compile(r"^\s*(?:(?:since|until|till|from|and|but|so|then|by)\s+)?(?:when\b|^\s*(?:\w+\s+){0,3}?(?:in\s+|during\s+|on\s+)?(?:what|which)\s+(?:year|date|day|month|century|decade|time\s+period|era)s?\b)", re.IGNORECASE)
_HOW_MANY_Q = re.compile(r"^\s*(?:\w+\s+){0,4}?(?:how\s+(?:many|much)|what\s+(?:percentage|percent|proportion|fraction|number|amount)|how\s+(?:long|old|tall|high|large|big|deep|wide|heavy))\b", re.IGNORECASE)
_WHO_Q = re.compile(r"^\s*(?:\w+\s+){0,2}?(?:who|whom|whose)\b", re.IGNORECASE)
_WHERE_Q = re.compile(r"^\s*(?:\w+\s+){0,2}?where\b", re.IGNORECASE)
_WHY_Q = re.compile(r"^\s*(?:\w+\s+){0,2}?why\b", re.IGNORECASE)
DATE_WORDS: frozenset[str] = frozenset(
    """century centuries decade decades year years bc bce ad ce monday tuesday wednesday thursday
    friday saturday sunday spring summer autumn fall winter morning evening night noon midnight
    today yesterday ago early late mid eve day days holiday christmas easter war wars era age
    period reign dynasty""".split()
)
# A "when" answer may be an event or a period introduced by one of these ("During the War").
TEMPORAL_PREPS: frozenset[str] = frozenset(
    "during following after before since until till by at on in around circa from between upon when whenever once soon while as".split()
)
# Units that make an answer a quantity without a digit ("a week", "less than a year").
UNIT_WORDS: frozenset[str] = frozenset(
    """second seconds minute minutes hour hours day days week weeks month months year years decade
    decades century centuries mile miles meter meters metre metres foot feet inch inches pound
    pounds ton tons percent times fold first last""".split()
)
_ROMAN = re.compile(r"^(?=[MDCLXVI]{2,}$)M*(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})$")
QUANTITY_WORDS: frozenset[str] = frozenset(
    """few several dozen dozens hundreds thousands millions billions half quarter third many
    much most all none some majority minority percent percentage twice once single double triple
    no one""".split()
)


def answer_form(tokens: Sequence[Token]) -> str:
    """The form of a short answer: "number" or "date" (every content word numeric / a date
    word), "name" (every content word capitalised, at most 6 words), "empty", or "phrase"."""
    words = [t for t in tokens if t.text.lower() not in STOPWORDS or t.number is not None]
    if not words or not tokens:
        return "empty"
    low = [t.text.lower() for t in words]
    numeric = [t.number is not None or t.text[:1].isdigit() for t in words]
    datey = [lw in DATE_WORDS or (lw in MONTHS and t.capital) for t, lw in zip(words, low, strict=True)]
    if all(n or d for n, d in zip(numeric, datey, strict=True)) or (
        any(numeric) and all(n or lw in UNIT_WORDS or lw in SCALES for n, lw in zip(numeric, low, strict=True))
    ):
        years = any(t.number is not None and 1000 <= t.number <= 2100 and float(t.number).is_integer() and len(t.text) == 4 for t in words)
        return "date" if any(datey) or years else "number"
    if len(tokens) <= 6 and all(t.capital and not n for t, n in zip(words, numeric, strict=True)):
        return "name"
    return "phrase"


_OTHER_WH = re.compile(r"\b(?:who|whom|whose|what|which|where|how|why)\b", re.IGNORECASE)
_RANKING = re.compile(r"\b(?:rank|ranks|ranked|ranking|position|place|placed|put|stand|stands)\b", re.IGNORECASE)
_NAMING = re.compile(r"\b(?:title|titled|name|named|called)\b", re.IGNORECASE)


def expected_type(question: str) -> str:
    """What a question asks for, by simple rules on its wh-phrase (see QAFitCheck).

    A question with two wh-words ("When X left, who replaced him?") gets the type of neither
    rule that the other could override: "when" counts only when no other wh-word follows it.
    """
    if _HOW_MANY_Q.search(question):
        return "quantity"
    when = _WHEN_Q.search(question)
    if when and not _OTHER_WH.search(question, when.end()):
        return "date"
    if _ASPECT_Q.search(question) and not _NAMING.search(question):
        return "description"
    if _WHO_Q.search(question):
        return "person"
    if _WHERE_Q.search(question) and not _RANKING.search(question):
        return "place"
    if _WHY_Q.search(question):
        return "reason"
    return ""


def type_match(expected: str, form: str) -> bool:
    """True when the answer has the form the question asks for (positive evidence)."""
    return (expected, form) in {("person", "name"), ("place", "name"), ("date", "date"),
                                ("quantity", "number"), ("quantity", "date"),
                                ("description", "phrase"), ("reason", "phrase")}


def type_mismatch(expected: str, form: str, tokens: Sequence[Token]) -> bool:
    """True when the answer's form cannot be what the question asks for."""
    if not expected or form == "empty":
        return False
    if expected == "quantity":
        return not any(t.number is not None or t.text[:1].isdigit() or _ROMAN.match(t.text)
                       or t.text.lower() in QUANTITY_WORDS or t.text.lower() in NUMBER_WORDS
                       or t.text.lower() in UNIT_WORDS or t.text.lower() in SCALES or t.text.lower().endswith("fold")
                       for t in tokens)
    if expected == "date":
        return (form in ("name", "phrase") and tokens[0].text.lower() not in TEMPORAL_PREPS
                and not any(t.text.lower() in DATE_WORDS or t.text.lower() in TEMPORAL_PREPS
                            or t.number is not None or t.text[:1].isdigit() or _ROMAN.match(t.text)
                            for t in tokens))
    if expected in ("person", "place"):
        return form in ("date", "number")
    if expected in ("reason", "description"):
        return form in ("date", "number", "name")
    return False


@dataclass
class QAFitCheck:
    """Does the answer answer the question? Signals and reasons (mode "qa" only):

    - `answer_type_mismatch` (blocking): the question's expected answer type (`expected_type`:
      who/whom/whose -> person, when/what year/date -> date, how many/much/long, what percentage
      -> quantity, where -> place, why -> reason, "what is the purpose/meaning/role of X" and
      "what was X's work" -> description) against the answer's form (`answer_form`: number,
      date, capitalised name, phrase): a person or place that is a bare date or number; a date
      that is a bare name; a quantity without a number; a reason or description that is a bare
      name, date or number. Signal `type_ok` (1 matched or no rule, 0 mismatch).
    - `vague_question` (blocking): every content word of the question is generic (GENERIC_WORDS),
      so it asks about nothing in particular. Signal `vague`.
    - `answer_not_near_question_terms` (blocking when the answer is a bare name, number or date,
      the question has at least `min_terms` (3) specific terms and none of them (`min_near`)
      occurs within a sentence of the answer): the question's specific content words (minus stop words,
      generic words and words of the answer) should occur around the answer in the evidence.
      For each sentence holding the answer (its best occurrences), the weighted share of those
      words in the sentence (`q_near_sent`) and in the sentence with its neighbours
      (`q_near`, a 1-sentence window either side), and within NEAR_TOKENS content words either
      side of the answer inside its sentence (`q_near_tok`); the best occurrence counts.
      `q_sent_gap` (<= 0): `q_near_sent` minus the share in the support sentence that holds most
      of those words: an answer outside the sentence the question is about scores below 0.
      Signal `type_match`: 1 when the answer has the expected form (who -> name, when -> date,
      how many -> number, ...). Signal `ans_in_q`: the share of the answer's content words already in the question.
    """

    min_near: float = 0.01
    min_terms: int = 3
    name: str = "fit"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if ctx.answer_only or not ctx.pair.question.strip() or ctx.is_refusal or not ctx.pair.answer.strip():
            return res
        if ctx.offers_choice or ctx.is_yes_no or not ctx.english:
            # the answer is one of the question's own options (or yes/no), or the English
            # question-word rules cannot read the question: nothing to judge
            # the answer is one of the question's own options (or yes/no): nothing to locate
            res.signals.update(FIT_NEUTRAL)
            return res
        q = ctx.pair.question
        expected = expected_type(q)
        form = answer_form(ctx.answer_tokens)
        mismatch = not ctx.is_yes_no and type_mismatch(expected, form, ctx.answer_tokens)
        if mismatch:
            res.reasons.append(Reason(
                "answer_type_mismatch",
                f"the question asks for a {expected} but the answer is a {form}: {_short(ctx.pair.answer, 40)}",
            ))
        qc = content(ctx.question_tokens)
        specific = [t for t in qc if t.text.lower() not in GENERIC_WORDS and t.stem not in GENERIC_WORDS]
        vague = bool(qc) and not specific
        if vague:
            res.reasons.append(Reason("vague_question", f"the question names nothing specific: {_short(q)}"))
        ans = content(ctx.answer_tokens)
        qbag = Bag(qc)
        ans_in_q = sum(qbag.has(t) for t in ans) / len(ans) if ans else 0.0
        abag = Bag(ans)
        terms = [t for t in specific if not abag.has(t)]
        near, near_sent, near_tok = self._near(ctx, ans, terms)
        gap = 0.0
        if terms:
            tw = [_weight(t) for t in terms]
            ttotal = sum(tw)
            best = max((sum(w for t, w in zip(terms, tw, strict=True) if bag.has(t)) / ttotal
                        for src in ctx.support for bag in src.bags), default=0.0)
            gap = min(0.0, near_sent - best)
        # only for short extractive answers (a name, number or date): a paraphrased answer
        # cannot be located reliably, its signal still feeds the score
        if form in ("name", "number", "date") and len(terms) >= self.min_terms and near < self.min_near:
            res.reasons.append(Reason(
                "answer_not_near_question_terms",
                f"only {near:.0%} of the question's terms occur around the answer in the evidence",
            ))
        res.signals.update(type_ok=0.0 if mismatch else 1.0,
                           type_match=1.0 if type_match(expected, form) else 0.0,
                           vague=1.0 if vague else 0.0, q_near=near, q_near_sent=near_sent,
                           q_near_tok=near_tok, q_sent_gap=gap, ans_in_q=ans_in_q)
        return res

    @staticmethod
    def _near(ctx: Context, ans: Sequence[Token], terms: Sequence[Token]) -> tuple[float, float, float]:
        """Best share of `terms` around the answer: (1-sentence window either side, same
        sentence, NEAR_TOKENS content words either side)."""
        if not terms:
            return 0.0, 0.0, 0.0
        if not ans:
            return 1.0, 1.0, 1.0
        aw = [_weight(t) for t in ans]
        atotal = sum(aw)
        tw = [_weight(t) for t in terms]
        ttotal = sum(tw)
        found: list[tuple[float, Source, int]] = []
        for src in ctx.support:
            for i, bag in enumerate(src.bags):
                cov = sum(w for t, w in zip(ans, aw, strict=True) if bag.has(t)) / atotal
                if cov >= 0.5:
                    found.append((cov, src, i))
        if not found:
            return 0.0, 0.0, 0.0
        top = max(c for c, _, _ in found)
        best_w = best_s = best_t = 0.0
        abag = Bag(ans)
        for cov, src, i in found:
            if cov < top - 1e-9:
                continue
            sent = src.bags[i]
            win = src.bags[max(0, i - 1) : i + 2]
            s = sum(w for t, w in zip(terms, tw, strict=True) if sent.has(t)) / ttotal
            w_ = sum(w for t, w in zip(terms, tw, strict=True) if any(b.has(t) for b in win)) / ttotal
            best_s, best_w = max(best_s, s), max(best_w, w_)
            # the content words right around each occurrence of the answer in the sentence
            toks = content(tokenize(src.sentences[i]))
            hits = [j for j, t in enumerate(toks) if abag.has(t)]
            for j in hits:
                if j > 0 and abag.has(toks[j - 1]):
                    continue  # not the start of an occurrence
                k = j
                while k + 1 < len(toks) and abag.has(toks[k + 1]):
                    k += 1
                near = Bag([*toks[max(0, j - NEAR_TOKENS) : j], *toks[k + 1 : k + 1 + NEAR_TOKENS]])
                t_ = sum(w for t, w in zip(terms, tw, strict=True) if near.has(t)) / ttotal
                best_t = max(best_t, t_)
        return best_w, best_s, best_t


# Content words either side of the answer that count as "right next to it" (q_near_tok).
NEAR_TOKENS = 6


# --------------------------------------------------------------------------------------------
# 6. LLM judge (optional)
# --------------------------------------------------------------------------------------------
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
        user += f"Answer: {ctx.pair.answer}\n\nReply as JSON: {{\"claims\": [{{\"claim\": ..., \"verdict\": ...}}]}}"
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def run(self, ctx: Context) -> CheckResult:
        try:
            reply = _complete(self.llm, self.messages(ctx), response_format=JUDGE_SCHEMA, temperature=0.0)
        except Exception as exc:  # noqa: BLE001 - a failed judge call must not drop the pair
            return _judge_failed(exc)
        return self.read(reply)

    async def arun(self, ctx: Context) -> CheckResult:
        """`run` inside an event loop: the LLM's `acomplete` is awaited (a thread for sync judges)."""
        import asyncio

        messages = self.messages(ctx)
        try:
            if hasattr(self.llm, "acomplete"):
                reply = await self.llm.acomplete(messages, response_format=JUDGE_SCHEMA, temperature=0.0)
            else:
                reply = await asyncio.to_thread(self.llm.complete, messages, response_format=JUDGE_SCHEMA, temperature=0.0)
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
            res.reasons.append(Reason("judge_unparsable", f"judge reply is not JSON: {_short(str(text))}"))
            return res
        # only well-formed verdicts count: a small model's off-schema reply must not decide
        claims = [c for c in claims if str(c.get("verdict", "")).strip().lower() in JUDGE_VERDICTS]
        if not claims:
            res.reasons.append(Reason("judge_unparsable", f"judge gave no valid verdict: {_short(str(text))}"))
            return res
        verdicts = [str(c.get("verdict", "")).strip().lower() for c in claims]
        supported = sum(v == "supported" for v in verdicts) / len(verdicts)
        res.signals["judge"] = supported
        bad = [str(c.get("claim", "")) for c, v in zip(claims, verdicts, strict=True) if v != "supported"]
        if bad:
            res.reasons.append(Reason("judge_unsupported", "judge found unsupported claim(s): " + "; ".join(_short(b, 80) for b in bad[:3])))
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


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


class PipelineChecker:
    """Runs the checks on each pair and turns their signals into a calibrated verdict.

    Mode "qa" reads the answer with its question; mode "claim" (answer_only=True) checks a
    standalone statement. Each has its own calibration and default threshold.
    semantic: "borderline" (default; MiniLM only when the lexical score is within
    SEMANTIC_BAND of the threshold), "all", or "off". judge_mode: "borderline" (judge pairs
    whose score is within `judge_band` of the threshold) or "all"; ignored without a judge.
    Refusals (kind "unanswerable", or an answer saying the documents do not tell) are not
    scored by the calibration: they pass unless the sources answer the question
    (`answerable_in_sources`); their score is 1 - the question's best window coverage.
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        quotes: QuoteCheck | None = None,
        support: SupportCheck | None = None,
        semantic: SemanticCheck | None = None,
        semantic_mode: str = "borderline",
        question: QuestionCheck | None = None,
        fit: QAFitCheck | None = None,
        judge: JudgeCheck | None = None,
        judge_mode: str = "borderline",
        judge_band: float = 0.25,
        blocking: frozenset[str] = BLOCKING,
        answer_only: bool = False,
        instructions: InstructionCheck | None = None,
    ) -> None:
        if semantic_mode not in ("borderline", "all", "off"):
            raise CheckError(f"semantic mode must be borderline, all or off, not {semantic_mode!r}")
        if judge_mode not in ("borderline", "all"):
            raise CheckError(f"judge mode must be borderline or all, not {judge_mode!r}")
        self.mode = "claim" if answer_only else "qa"
        threshold = DEFAULT_THRESHOLDS[self.mode] if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise CheckError(f"threshold must be in [0, 1], not {threshold}")
        self.threshold = threshold
        self.quotes = quotes
        self.support = support or SupportCheck()
        self.semantic = semantic if semantic_mode != "off" else None
        self.semantic_mode = semantic_mode
        self.question = question
        self.fit = fit if not answer_only else None
        self.judge = judge
        self.judge_mode = judge_mode
        self.judge_band = judge_band
        self.blocking = blocking
        self.answer_only = answer_only
        self.instructions = instructions

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        return self.check_many([(pair, sources)])[0]

    async def acheck(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        """`check` for an event loop: the judge's call (when it runs) is awaited, never blocked on."""
        ctx, partial = self._scored([(pair, sources)])[0]
        judged = await self.judge.arun(ctx) if self._wants_judge(partial[2]) and self.judge else None
        return self._finish(ctx, *partial, judged=judged)

    def check_many(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """Check a batch: the lexical parts per pair, the MiniLM calls batched."""
        return [self._finish(ctx, *part) for ctx, part in self._scored(items)]

    def _scored(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[tuple[Context, tuple[list[Reason], dict[str, float], float]]]:
        """Each pair's context with its reasons, signals and score before the judge."""
        ctxs = [Context(p, s, answer_only=self.answer_only) for p, s in items]
        partial = [self._lexical(c) for c in ctxs]
        if self.semantic is not None:
            need = [i for i, (_, _, score) in enumerate(partial) if self._wants_semantic(ctxs[i], score)]
            self.semantic.prefetch(t for i in need for t in self.semantic.texts(ctxs[i]))
            for i in need:
                reasons, signals, _ = partial[i]
                signals.update(self.semantic.run(ctxs[i]).signals)
                if "sem" in signals:
                    partial[i] = (reasons, signals, CALIBRATION[self.mode + "+sem"].score(signals))
        return list(zip(ctxs, partial, strict=True))

    def _wants_semantic(self, ctx: Context, score: float) -> bool:
        if ctx.is_refusal and not ctx.answer_only:
            return False
        if self.semantic_mode == "all":
            return True
        # borderline: only near the threshold, and only where the fit gave `sem` a real weight
        if self.mode not in SEMANTIC_MODES:
            return False
        cal = CALIBRATION[self.mode + "+sem"]
        if abs(cal.weights[cal.features.index("sem")]) < MIN_SEM_WEIGHT:
            return False
        return abs(score - self.threshold) <= SEMANTIC_BAND

    def _lexical(self, ctx: Context) -> tuple[list[Reason], dict[str, float], float]:
        reasons: list[Reason] = []
        signals: dict[str, float] = {}
        for chk in (self.quotes, self.support, self.question, self.fit, self.instructions):
            if chk is None:
                continue
            out = chk.run(ctx)
            reasons.extend(out.reasons)
            signals.update(out.signals)
        if not ctx.english:
            reasons.append(Reason("checks_skipped_language", SKIPPED_LANGUAGE[self.mode]))
        if ctx.is_refusal and not ctx.answer_only:
            answered = self._answered_by_model(ctx)
            if answered is not None and not any(r.code == "answerable_in_sources" for r in reasons):
                reasons.append(answered)
            return reasons, signals, 1.0 - signals.get("question_coverage", 0.0)
        if self.mode == "qa":
            for k, v in FIT_NEUTRAL.items():
                signals.setdefault(k, v)
        return reasons, signals, CALIBRATION[self.mode].score(signals)

    def _answered_by_model(self, ctx: Context) -> Reason | None:
        """For an unanswerable pair, `answerable_in_sources` when the model's own non-refusal answer
        (the pair's answer, or metadata "model_answer") passes the checks as a factoid pair."""
        proposed = ctx.pair.answer
        if says_not_in_sources(proposed):
            proposed = str(ctx.pair.metadata.get("model_answer") or "")
        if not proposed.strip() or says_not_in_sources(proposed):
            return None
        sub = Context(replace(ctx.pair, answer=proposed, kind="factoid"), ctx.sources)
        reasons, _, score = self._lexical(sub)
        if score < self.threshold or any(r.code in self.blocking for r in reasons):
            return None
        return Reason("answerable_in_sources", f"the sources support the model's own answer {_short(proposed, 40)!r}")

    def _wants_judge(self, score: float) -> bool:
        return self.judge is not None and (self.judge_mode == "all" or abs(score - self.threshold) <= self.judge_band)

    def _finish(self, ctx: Context, reasons: list[Reason], signals: dict[str, float], score: float,
                *, judged: CheckResult | None = None) -> Verdict:
        if judged is None and self.judge is not None and self._wants_judge(score):
            judged = self.judge.run(ctx)
        if judged is not None:
            out = judged
            reasons.extend(out.reasons)
            signals.update(out.signals)
            if "judge" in out.signals:
                # the judge's share of supported claims replaces the score when it answered
                score = 0.5 * score + 0.5 * out.signals["judge"]
        signals["score"] = score
        blocked = [r for r in reasons if r.code in self.blocking]
        refusal = ctx.is_refusal and not ctx.answer_only
        supported = (refusal or score >= self.threshold) and not blocked
        if score < self.threshold and not refusal:
            reasons.append(Reason("low_support", f"support score {score:.2f} below threshold {self.threshold:.2f}"))
        return Verdict(supported=supported, score=round(score, 4), reasons=tuple(reasons),
                       signals={k: round(float(v), 4) for k, v in signals.items()})


def default_judge_cache() -> Path:
    """Where judge calls are cached when no cache is given: $XDG_CACHE_HOME/grounded/judge.sqlite."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "grounded" / "judge.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def default_checker(
    *,
    threshold: float | None = None,
    semantic: str = "borderline",
    judge: str | Any | None = None,
    judge_mode: str = "borderline",
    judge_cache: str | Path | None = None,
    embedder: Any = None,
    answer_only: bool = False,
    question_checks: bool = True,
    fit_checks: bool = True,
    min_quote_score: float = 0.9,
) -> PipelineChecker:
    """The full pipeline with the documented defaults; every default can be overridden.

    judge: a litellm model string or an object with `complete(messages, **kw)` (e.g. grounded.llm.LLM);
    a model string gets an LLM whose calls are cached in `judge_cache` (default_judge_cache()).
    answer_only: the answer is a standalone claim (no question to read it with), as in WiCE.
    question_checks: False skips the question checks (not_a_question, answer_in_question,
    question_not_about_evidence; benchmarks whose questions are not ours).
    fit_checks: False skips the question-answer fit checks (QAFitCheck: answer type, vague
    question, question terms around the answer); they never run on claims (answer_only).
    """
    llm = None
    if judge is not None:
        if isinstance(judge, str):
            from grounded.llm import LLM

            llm = LLM(judge, cache=judge_cache if judge_cache is not None else default_judge_cache())
        else:
            llm = judge
    return PipelineChecker(
        threshold=threshold,
        quotes=QuoteCheck(min_score=min_quote_score),
        support=SupportCheck(),
        semantic=SemanticCheck(embedder),
        semantic_mode=semantic,
        question=QuestionCheck() if question_checks and not answer_only else None,
        fit=QAFitCheck() if fit_checks and not answer_only else None,
        judge=JudgeCheck(llm) if llm is not None else None,
        judge_mode=judge_mode,
        answer_only=answer_only,
        instructions=InstructionCheck(),
    )


# --------------------------------------------------------------------------------------------
# Library function
# --------------------------------------------------------------------------------------------
def inline_sources(pair: QAPair) -> list[Chunk]:
    """Chunks made from a pair's inline contexts (QA sets checked without an index)."""
    out = []
    for i, text in enumerate(pair.contexts):
        doc_id = pair.doc_ids[i] if i < len(pair.doc_ids) else f"context-{i}"
        out.append(Chunk(id=Chunk.make_id(doc_id, 0, len(text)), doc_id=doc_id, text=text, start=0, end=len(text)))
    return out


def sources_for(pair: QAPair, index: Any = None) -> list[Chunk]:
    """Evidence/cited chunks from the index when there is one, else the pair's inline contexts."""
    chunks: list[Chunk] = []
    if index is not None:
        ids = list(dict.fromkeys([*pair.chunk_ids, *(e.chunk_id for e in pair.evidence if e.chunk_id)]))
        if ids:
            chunks = list(index.get_chunks(ids))
    return chunks or inline_sources(pair)


def check(
    pairs: Iterable[QAPair],
    *,
    index: Any = None,
    checker: Checker | None = None,
    chroma_url: str | None = None,
    batch_size: int = 64,
    **checker_options: Any,
) -> Iterator[tuple[QAPair, Verdict]]:
    """Check pairs against their sources; yields each pair with its verdict (set on the pair).

        >>> for pair, verdict in grounded.check(pairs, index="out/index"):  # doctest: +SKIP
        ...     print(verdict.supported, [r.code for r in verdict.reasons])
    """
    if checker is None:
        checker = default_checker(**checker_options)
    elif checker_options:
        raise CheckError("pass checker options or a checker, not both")
    if isinstance(index, (str, Path)):
        from grounded.index import open_index

        index = open_index(index, chroma_url=chroma_url)
    batch: list[tuple[QAPair, Sequence[Chunk]]] = []
    for pair in pairs:
        batch.append((pair, sources_for(pair, index)))
        if len(batch) >= batch_size:
            yield from _run_batch(checker, batch)
            batch = []
    if batch:
        yield from _run_batch(checker, batch)


def _run_batch(checker: Checker, batch: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> Iterator[tuple[QAPair, Verdict]]:
    many = getattr(checker, "check_many", None)
    verdicts = many(batch) if many is not None else [checker.check(p, s) for p, s in batch]
    for (pair, _), verdict in zip(batch, verdicts, strict=True):
        yield replace(pair, verdict=verdict), verdict


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------
# Checking a QA file (ours or someone else's)
# --------------------------------------------------------------------------------------------
def pair_from_row(row: Mapping[str, Any], *, where: str = "") -> QAPair:
    """A QAPair from a row of any documented shape (canonical, SQuAD-like, string evidence)."""
    from grounded.eval.dataset import parse_row

    if not isinstance(row, Mapping):
        raise CheckError(f"{where}: expected a JSON object")
    if "question" not in row or ("answer" not in row and "answers" not in row):
        raise CheckError(f"{where}: a QA row needs 'question' and 'answer'")
    return parse_row(row, where=where)


@dataclass
class CheckSummary:
    """What `check_file` did: counts, reasons, speed, files."""

    n: int = 0
    kept: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pairs_per_s: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def check_file(
    path: str | Path,
    *,
    out: str | Path,
    index: Any = None,
    chroma_url: str | None = None,
    checker: Checker | None = None,
    **checker_options: Any,
) -> CheckSummary:
    """Check every pair of a QA file; write OUT/qa.jsonl (kept) and OUT/rejected.jsonl (with reasons)."""
    from grounded.checkfile import check_qa_file

    return check_qa_file(path, out=out, index=index, chroma_url=chroma_url, checker=checker, **checker_options)
