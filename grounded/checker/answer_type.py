"""Does the answer have the type the question asks for? spaCy types both, in context.

The question is parsed (`en_core_web_sm`, tok2vec + parser): its wh-word and the head noun it
asks about (the focus: "How many *seats*", "Which *city*", "Who is the *inventor* of ...")
give the expected type. The answer is typed by the entity spaCy's NER (tok2vec + ner) finds
over it in the evidence sentence that holds it (PERSON, GPE, DATE, CARDINAL, ...), else by its
shape (a number). A ModelCheck: the pairs of a batch go through `nlp.pipe` together, docs are
cached by text, and the pipeline runs it only on pairs the cheap checks have not decided.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grounded.checker.context import CheckResult, Context, Source, short
from grounded.checker.fit import (
    DATE_WORDS,
    QUANTITY_WORDS,
    TEMPORAL_PREPS,
    UNIT_WORDS,
    answer_form,
    expands_acronym,
    expected_type,
)
from grounded.checker.nlp import only, spacy_pipeline
from grounded.text import NUMBER_WORDS, SCALES, fold, is_month, stem, tokens_of
from grounded.types import Reason

# Nouns a "What/Which X" question may ask about, by the kind of answer they want.
FOCUS_KINDS: dict[str, str] = {
    **dict.fromkeys(
        "year decade century date day month era period time age season".split(), "date"
    ),
    **dict.fromkeys(
        "city country state nation town village region continent province county capital "
        "island river mountain lake sea ocean place location area site territory "
        "neighborhood neighbourhood district street port".split(),
        "place",
    ),
    **dict.fromkeys(
        "person man woman king queen president leader author writer scientist inventor "
        "founder player singer actor actress artist composer poet ruler emperor pope "
        "minister architect engineer general director painter philosopher explorer "
        "monarch prince princess bishop saint son daughter father mother wife husband "
        "brother sister coach owner chancellor governor mayor".split(),
        "person",
    ),
    **dict.fromkeys(
        "company organization organisation party team club university school college "
        "band group agency church army firm institution newspaper network "
        "corporation league".split(),
        "org",
    ),
    **dict.fromkeys("percentage percent proportion number amount population".split(), "quantity"),
    **dict.fromkeys("language".split(), "language"),
}
# Kinds whose nouns name the answer's category, not a thing the evidence says about it.
_CATEGORY_KINDS = frozenset({"date", "place", "quantity", "language", "org"})
_NEEDS_PARSE = re.compile(r"\b(?:what|which|how|rank|ranks|ranked|position|place)\b", re.IGNORECASE)
_WH = frozenset("what which who whom whose when where how".split())
_HOW_QUANTITY = frozenset(
    "many much long old tall high far large big deep wide heavy often".split()
)
# Entity labels that satisfy an expected type, and those that cannot be it.
_NUMERIC = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "ORDINAL"})
_NAMED = frozenset(
    {
        "PERSON",
        "ORG",
        "GPE",
        "LOC",
        "FAC",
        "NORP",
        "WORK_OF_ART",
        "LAW",
        "EVENT",
        "PRODUCT",
        "LANGUAGE",
    }
)
ALLOWED: dict[str, frozenset[str]] = {
    "quantity": _NUMERIC | {"DATE", "TIME"},
    "date": frozenset({"DATE", "TIME", "EVENT"}),
    "agent": frozenset({"PERSON", "ORG", "NORP", "GPE"}),
    "person": frozenset({"PERSON", "NORP", "ORG"}),
    "place": frozenset({"GPE", "LOC", "FAC", "ORG"}),
    "org": frozenset({"ORG", "NORP", "GPE", "FAC"}),
    "language": frozenset({"LANGUAGE", "NORP"}),
}
# Labels that cannot be the expected type: HARD ones block (NER rarely gives them to a right
# answer), SOFT ones (often NER's mistakes: "Doritos" as PERSON, "Super Bowl XLVIII" as FAC for
# a "when") only lower the score.
_COUNTS = _NUMERIC | {"DATE", "TIME"}
HARD_CONFLICT: dict[str, frozenset[str]] = {
    "quantity": _NAMED,
    "date": frozenset({"PERSON", "MONEY", "PERCENT", "QUANTITY"}),
    "agent": _COUNTS,
    "person": _COUNTS,
    "place": _COUNTS,
    "org": _COUNTS,
    "language": _COUNTS | {"PERSON"},
    # "What is X?" asks for a description: a bare name, date or number is not one
    "description": _NAMED | _COUNTS,
}
SOFT_CONFLICT: dict[str, frozenset[str]] = {
    "date": _NAMED - {"EVENT", "PERSON"},
    "person": frozenset({"GPE", "LOC", "FAC"}),
    "place": frozenset({"PERSON"}),
    "org": frozenset({"PERSON"}),
    "language": frozenset({"GPE", "LOC", "FAC"}),
}
# Their values before (or without) this check: the best case, so a pair's score before it
# runs bounds the score after, and skipping a pair that cannot be kept changes no verdict.
TYPE_NEUTRAL: dict[str, float] = {"type_agree": 1.0, "type_conflict": 0.0, "focus_near": 1.0}
# Words either side of the answer in its sentence where the focus noun counts as "near".
FOCUS_WINDOW = 4
# The share of the answer a conflicting entity must cover to block (less: it only lowers the score).
HARD_COVER = 0.7
# Characters either side of the answer that NER reads in a long sentence (its context).
WINDOW_CHARS = 80


@dataclass(frozen=True, slots=True)
class QuestionType:
    """What a question asks for: expected kind ("" when unknown) and its focus noun (stem)."""

    expected: str
    focus: str
    focus_text: str


def question_type(doc: Any) -> QuestionType:
    """The expected answer kind and focus noun of a parsed question."""
    whs = [t for t in doc if t.lower_ in _WH]
    comma = max((t.i for t in doc if t.text == ","), default=-1)
    if any(t.i > comma for t in whs) and any(t.i < comma for t in whs):
        whs = [t for t in whs if t.i > comma]  # "When X left, who replaced him?": after the clause
    # "When X left, who replaced him?": the wh-word of the main clause, not of a subordinate one
    wh = next(
        (t for t in whs if not any(a.dep_ in ("advcl", "relcl", "acl") for a in [t, *t.ancestors])),
        whs[0] if whs else None,
    )
    if wh is None:
        return QuestionType("", "", "")
    low = wh.lower_
    if low == "how":
        nxt = doc[wh.i + 1] if wh.i + 1 < len(doc) else None
        if nxt is None or nxt.lower_ not in _HOW_QUANTITY:
            return QuestionType("", "", "")
        head = nxt.head
        focus = (
            head
            if head.i > nxt.i and head.is_alpha and head.dep_ != "ROOT" and not _is_verbish(head)
            else None
        )
        return _with_focus("quantity", focus)
    if low in ("who", "whom", "whose"):
        return _with_focus("agent", _copula_subject(wh))
    if low == "when":
        return QuestionType("date", "", "")
    if low == "where":
        # "Where does Warsaw rank?" asks for a position, not a place
        ranking = any(
            t.lower_
            in ("rank", "ranks", "ranked", "place", "placed", "position", "stand", "stands")
            for t in doc
        )
        return QuestionType("" if ranking else "place", "", "")
    # what / which
    if wh.dep_ == "det" and wh.head.is_alpha:
        focus = _named(wh.head)
        return _with_focus(_kind_of(focus), focus)
    subj = _copula_subject(wh)
    if subj is not None and subj.lower_ in _NAME_NOUNS:
        subj = _named(subj)
        return _with_focus(_kind_of(subj), subj)
    if subj is not None:
        if subj.text[:1].isupper() and subj.i > 0:
            # a name: "What is the Australian Labor Party?" asks for a description; in "What was
            # the last Super Bowl in California?" the name is no category to look for
            return QuestionType("description" if _ends_question(subj) else "", "", "")
        return _with_focus(_kind_of(subj), subj)
    return QuestionType("", "", "")


def _kind_of(noun: Any) -> str:
    """The answer kind a focus noun asks for (FOCUS_KINDS, by stem or as written; "" if none)."""
    return FOCUS_KINDS.get(stem(noun.lower_), FOCUS_KINDS.get(noun.lower_, ""))


_NAME_NOUNS = frozenset({"name", "names", "title"})


def _named(noun: Any) -> Any:
    """In "the name of the band", the band: what a name or title is asked of (else `noun`)."""
    if noun.lower_ not in _NAME_NOUNS:
        return noun
    for prep in noun.children:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            obj = next((c for c in prep.children if c.dep_ == "pobj" and c.is_alpha), None)
            if obj is not None:
                return obj
    return noun


def _ends_question(subj: Any) -> bool:
    """The subject's phrase is all that follows the copula ("What is the Labor Party?", not
    "What was the last Super Bowl in California?")."""
    rest = [t for t in subj.doc[subj.i + 1 :] if not t.is_punct]
    return not rest and not any(c.dep_ in ("prep", "relcl", "acl") for c in subj.children)


def _cheap_question_type(question: str) -> QuestionType | None:
    """A who/when/where question without what/which/how has no focus noun to find: its wh-word
    rule (QAFitCheck's) types it without a parse; None when the parse is needed."""
    if _NEEDS_PARSE.search(question):
        return None
    kind = {"person": "agent", "date": "date", "place": "place", "reason": ""}.get(
        expected_type(question)
    )
    return None if kind is None else QuestionType(kind, "", "")


def _is_verbish(tok: Any) -> bool:
    return tok.dep_ in ("ROOT", "aux", "auxpass", "ccomp", "xcomp", "advcl", "relcl", "conj")


def _copula_subject(wh: Any) -> Any:
    """In "Who/What is the X of Y?", the noun X (the subject of the copula the wh-word completes)."""
    if wh.dep_ not in ("attr", "nsubj") or wh.head.lower_ not in ("is", "was", "are", "were", "'s"):
        return None
    return next(
        (c for c in wh.head.children if c.dep_ in ("nsubj", "attr") and c.i != wh.i and c.is_alpha),
        None,
    )


def _with_focus(kind: str, focus: Any) -> QuestionType:
    """A type with its focus noun; a noun that only names the type ("year", "city") is no focus."""
    if focus is None:
        return QuestionType(kind, "", "")
    own = _kind_of(focus)
    if own in _CATEGORY_KINDS:
        return QuestionType(kind or own, "", "")
    return QuestionType(kind or own, stem(focus.lower_), focus.text)


class AnswerTypeCheck:
    """The answer's entity type in its evidence sentence against the question's expected type,
    and the question's focus noun near the answer. Signals `type_agree` (+), `type_conflict`
    (-), `focus_near` (+); reasons `answer_type_mismatch` (blocking) and `focus_not_near_answer`.
    """

    name = "answer_type"
    signal = "type_agree"
    band = 0.0
    modes: frozenset[str] = frozenset({"qa"})
    min_weight = 0.0
    neutral = TYPE_NEUTRAL

    def __init__(self, nlp: Any = None, *, batch_size: int = 256, cache_size: int = 50_000) -> None:
        self._nlp = nlp
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._questions: OrderedDict[str, QuestionType] = OrderedDict()
        self._windows: OrderedDict[str, tuple[tuple[int, int, str], ...]] = OrderedDict()

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = spacy_pipeline() or False
        return self._nlp

    def applies(self, ctx: Context) -> bool:
        """Only an English factoid pair with a question, not yes/no, not a choice, not a refusal."""
        return (
            not ctx.answer_only
            and ctx.english
            and bool(ctx.pair.question.strip())
            and bool(ctx.pair.answer.strip())
            and not ctx.is_refusal
            and not ctx.is_yes_no
            and not ctx.offers_choice
        )

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Parse the batch's questions in one pipe, then tag (NER) the text around the answers
        whose type their form does not already tell, in another."""
        if not self.nlp:
            return
        ctxs = [c for c in ctxs if self.applies(c)]
        questions = []
        for q in dict.fromkeys(
            c.pair.question for c in ctxs if c.pair.question not in self._questions
        ):
            cheap = _cheap_question_type(q)
            if cheap is None:
                questions.append(q)
            else:
                self._questions[q] = cheap
        if questions:
            docs = self.nlp.pipe(
                questions, batch_size=self.batch_size, disable=only(self.nlp, "parser")
            )
            for text, doc in zip(questions, docs, strict=True):
                self._questions[text] = question_type(doc)
        windows = list(
            dict.fromkeys(
                w
                for c in ctxs
                if _needs_ner(self._questions[c.pair.question], c.pair.answer)
                for w in [_window(*_answer_sentence(c))[0]]
                if w not in self._windows
            )
        )
        if windows:
            docs = self.nlp.pipe(windows, batch_size=self.batch_size, disable=only(self.nlp, "ner"))
            for text, doc in zip(windows, docs, strict=True):
                self._windows[text] = tuple((e.start_char, e.end_char, e.label_) for e in doc.ents)
        for cache in (self._questions, self._windows):
            while len(cache) > self.cache_size:
                cache.popitem(last=False)

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not self.applies(ctx) or not self.nlp:
            return res
        self.prefetch([ctx])
        qt = self._questions[ctx.pair.question]
        sentence, span = _answer_sentence(ctx)
        label, cover = _cheap_label(ctx.pair.answer), 1.0
        if _needs_ner(qt, ctx.pair.answer):
            window, wspan = _window(sentence, span)
            label, cover = _answer_label(ctx.pair.answer, wspan, self._windows[window])
        elif not label and qt.expected in _NAME_KINDS:
            # no name for NER to type ("less than a year" for "What pope ..."): its form tells
            label = _FORM_LABEL.get(answer_form(list(tokens_of(ctx.pair.answer))), "")
        agree = 1.0 if qt.expected and label in ALLOWED.get(qt.expected, frozenset()) else 0.0
        hard = label in HARD_CONFLICT.get(qt.expected, frozenset()) or _wrong_time(
            qt.expected, ctx.pair.question, ctx.pair.answer
        )
        if qt.expected == "description" and expands_acronym(ctx.pair.question, ctx.pair.answer):
            hard = False  # "What is PPP?" -> "Public-Private Partnering": the name is the answer
        conflict = 1.0 if hard and cover >= HARD_COVER else 0.0
        if (
            (hard and cover < HARD_COVER)
            or label in SOFT_CONFLICT.get(qt.expected, frozenset())
            or (qt.expected == "quantity" and label == "" and not _numeric_like(ctx.pair.answer))
        ):
            conflict = (
                0.5  # likely, not surely, the wrong type (NER errs; a count without a number)
            )
        focus = _focus_near(qt, sentence, span) if span is not None else (0.5 if qt.focus else 1.0)
        res.signals.update(type_agree=agree, type_conflict=conflict, focus_near=focus)
        if conflict >= 1.0:
            res.reasons.append(
                Reason(
                    "answer_type_mismatch",
                    f"the question asks for a {qt.expected} but the answer is a {label} in the evidence: "
                    f"{short(ctx.pair.answer, 40)}",
                )
            )
        if focus == 0.0:
            res.reasons.append(
                Reason(
                    "focus_not_near_answer",
                    f"the question asks about {qt.focus_text!r}, which the evidence does not mention near the answer",
                )
            )
        return res


def _needs_ner(qt: QuestionType, answer: str) -> bool:
    """NER only where it can tell: a typed question, an answer with a capitalised word (NER
    gives a lower-case phrase no label), and not a number asked as a count or date."""
    return (
        bool(qt.expected)
        and any(w[:1].isupper() for w in answer.split())
        and not (qt.expected in ("quantity", "date") and _numeric_like(answer))
    )


# Kinds a name answers, and the label an unnamed answer's form gives (grounded.checker.fit.answer_form).
_NAME_KINDS = frozenset({"agent", "person", "place", "org", "language"})
_FORM_LABEL = {"date": "DATE", "number": "CARDINAL"}


def _wrong_time(expected: str, question: str, answer: str) -> bool:
    """A point in time as the short answer to "how many/much" (a month or a decade, or a year
    with a word that makes it one: "September 1939" for "How much of the population ..."; a bare
    "1998" may be a count, and "how long/old" may be answered by a period, "1961 to 1972"), or
    a bare count answering "when" or "what year" ("four" for "In what year ..."): the answer's
    words, whatever NER makes of them."""
    toks = tokens_of(answer)
    if len(toks) > MAX_TIME_WORDS:
        return False
    if expected == "quantity":
        return (
            _HOW_MANY.search(question) is not None
            and _calendar(toks, bare_years=False)
            and not any(_counts(t.text.lower()) for t in toks)
        )
    if expected == "date" and _ASKS_WHEN.search(question):
        small = [t for t in toks if t.number is not None and not is_month(t)]
        return (
            bool(small)
            and all(t.number is not None and t.number < 100 for t in small)
            and not _calendar(toks)
            and not any(
                t.text.lower() in DATE_WORDS
                or t.text.lower() in TEMPORAL_PREPS
                or t.text.lower() in _TIME_UNITS
                or _ORDINAL.search(t.text)
                for t in toks
            )
        )
    return False


_ORDINAL = re.compile(
    r"^\d+(?:st|nd|rd|th)$|^(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)$",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(r"\bhow\s+(?:many|much)\b", re.IGNORECASE)
_ASKS_WHEN = re.compile(
    r"\bwhen\b|\b(?:what|which)\s+(?:year|date|day|month|decade|century)\b", re.IGNORECASE
)
# The longest answer (in tokens) the time rules read: a longer one may state what is asked in words.
MAX_TIME_WORDS = 6
# Units a count of which can say when ("week 7", "the third quarter").
_TIME_UNITS = frozenset(
    """week weeks month months hour hours minute minutes second seconds season seasons quarter
    quarters round rounds game games inning innings half stage phase""".split()
)
_DECADE = re.compile(r"^\d{3}0s$")


def _calendar(toks: Sequence[Any], *, bare_years: bool = True) -> bool:
    """A month name, a decade ("1980s") or a year (four digits, 1000-2100) among the tokens;
    bare_years=False: a year counts only with a date word or preposition beside it ("in 1939",
    "late 1990", "1350 AD"), since "2000" alone may as well be a count."""
    words = {t.text.lower() for t in toks}
    dated = bare_years or bool(words & (DATE_WORDS | TEMPORAL_PREPS))
    return any(
        is_month(t)
        or _DECADE.match(t.text)
        or (dated and t.text.isdigit() and len(t.text) == 4 and 1000 <= int(t.text) <= 2100)
        for t in toks
    )


# Date words that name a point in time, not a length of it ("early 1990s", "late 1980s").
_POINT_WORDS = frozenset(
    {"early", "late", "mid", "eve", "bc", "bce", "ad", "ce", "today", "yesterday"}
)
# Words that make a number an amount ("years", "percent", "million", "half").
_AMOUNT_WORDS = (UNIT_WORDS | QUANTITY_WORDS | frozenset(SCALES) | DATE_WORDS) - _POINT_WORDS


def _counts(word: str) -> bool:
    """A word that makes a number an amount ("years", "percent", "million", "half")."""
    return word in _AMOUNT_WORDS


def _cheap_label(answer: str) -> str:
    """The label a bare number gets without NER: a year or a count ("" for anything else)."""
    words = answer.strip(" .").split()
    if not words or not all(
        any(ch.isdigit() for ch in w) or w.lower() in NUMBER_WORDS for w in words
    ):
        return ""
    digits = "".join(ch for ch in answer if ch.isdigit())
    if not digits:
        return "CARDINAL"
    return "DATE" if len(digits) == 4 and 1000 <= int(digits) <= 2100 else "CARDINAL"


def _window(sentence: str, span: tuple[int, int] | None) -> tuple[str, tuple[int, int] | None]:
    """The text NER reads: up to WINDOW_CHARS either side of the answer, cut at spaces."""
    if span is None or len(sentence) <= 2 * WINDOW_CHARS + span[1] - span[0]:
        return sentence, span
    lo = sentence.rfind(" ", 0, max(0, span[0] - WINDOW_CHARS)) + 1
    hi = sentence.find(" ", min(len(sentence), span[1] + WINDOW_CHARS))
    hi = len(sentence) if hi < 0 else hi
    return sentence[lo:hi], (span[0] - lo, span[1] - lo)


def _answer_sentence(ctx: Context) -> tuple[str, tuple[int, int] | None]:
    """The support sentence holding the answer (the one sharing most question words), with the
    answer's character span in it; else the answer alone."""
    return _locate(ctx.pair.answer, ctx.pair.question, tuple(ctx.support_texts))


@functools.lru_cache(maxsize=8192)
def _locate(
    answer_text: str, question: str, texts: tuple[str, ...]
) -> tuple[str, tuple[int, int] | None]:
    answer = _folded(answer_text.strip().rstrip("."))
    if not answer:
        return answer_text, None
    qwords = {stem(w) for w in _folded(question).split()}
    best: tuple[int, str, int] | None = None
    for src in (Source.of(t) for t in texts):
        for sentence, bag in zip(src.sentences, src.bags, strict=True):
            at = _folded(sentence).find(answer)
            if at < 0:
                continue
            score = len(qwords & bag.stems)
            if best is None or score > best[0]:
                best = (score, sentence, at)
    if best is None:
        return answer_text, None
    return best[1], (best[2], best[2] + len(answer))


@functools.lru_cache(maxsize=65_536)
def _folded(text: str) -> str:
    return fold(text).lower()


def _answer_label(
    answer: str, span: tuple[int, int] | None, ents: Sequence[tuple[int, int, str]]
) -> tuple[str, float]:
    """The entity label covering most of the answer (at least 60% of its characters, else "")
    and the share it covers."""
    lo, hi = span if span is not None else (0, len(answer))
    size = max(1, hi - lo)
    best, best_cov = "", 0.0
    for start, end, label in ents:
        cov = max(0, min(hi, end) - max(lo, start)) / size
        if cov > best_cov:
            best, best_cov = label, cov
    return (best, best_cov) if best_cov >= 0.6 else ("", 0.0)


def _numeric_like(answer: str) -> bool:
    return any(ch.isdigit() for ch in answer) or any(
        w in NUMBER_WORDS for w in answer.lower().split()
    )


def _focus_near(qt: QuestionType, sentence: str, span: tuple[int, int]) -> float:
    """1 when the focus noun is in the answer or within FOCUS_WINDOW words of it, 0.5 elsewhere
    in its sentence, 0 when the sentence does not have it; 1 when the question has no focus."""
    if not qt.focus:
        return 1.0
    toks = tokens_of(fold(sentence))
    inside = [i for i, tok in enumerate(toks) if span[0] <= tok.start < span[1]]
    if not inside:
        return 0.5
    lo, hi = max(0, inside[0] - FOCUS_WINDOW), min(len(toks), inside[-1] + FOCUS_WINDOW + 1)
    if any(tok.stem == qt.focus for tok in toks[lo:hi]):
        return 1.0
    return 0.5 if any(tok.stem == qt.focus for tok in toks) else 0.0
