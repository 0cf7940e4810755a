"""Question checks: it is a question, it does not give its own answer, it is about the evidence."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from grounded.checker.context import YES_NO, Bag, CheckResult, Context, short
from grounded.text import MONTHS, NUMBER_WORDS, STOPWORDS, Token, content, tokenize
from grounded.types import Reason

QUESTION_WORDS: frozenset[str] = frozenset(
    """what which who whom whose when where why how is are was were do does did can could will
    would should shall has have had may might must am name list identify""".split()
)

# Question marks of other scripts: full-width (CJK), Arabic, Greek (U+037E), reversed.
QUESTION_MARKS = "?？؟;⸮"
# A question that leans on a conversation or a page it is not part of: it addresses the reader
# ("What university did you attend?", "the road you are referring to"), points at something
# it never names ("What is this?", "Which process is this?"), or starts on a pronoun
# ("Who did he do this task for?"). A QA set's question must stand on its own.
_NEEDS_CONTEXT = re.compile(
    r"\b(?:did|have|had|were)\s+you\b|\byour\b"
    r"|\b(?:you\s+are\s+|you're\s+)?referring\s+to\b|\b(?:mentioned|described|discussed)\s+above\b"
    r"|\b(?:this|these|those)\s*[?？]?\s*$"
    # its subject is "this/these X" with nothing naming X: "Who are these affiliates?"
    r"|^\s*(?:who|what|which|where|when|how|why)\s+(?:is|are|was|were|did|does|do|had|has|have)\s+"
    r"(?:this|these)\s+(?!(?:year|years|time|week|month|season|day|century|decade|era)\b)\w"
    r"|^\s*(?:\w+\s+){0,2}?(?:did|does|do|was|is|were|are|had|has|have|will|would|could|can)\s+"
    r"(?:he|she|they)\b|^\s*(?:he|she|they)\s+\w+",
    re.IGNORECASE,
)
# A question asked in place, without a question mark: "X.25 uses what type of network", "the
# business allowed companies to do what", "Strictly speaking who was included in X".
_IN_PLACE = re.compile(
    r"\b(?:what|which|whom|who|how\s+many|how\s+much)\b(?:\s+\S+){0,3}\s*$"
    r"|^(?:\S+\s+){1,8}?(?:what|which|who|whom|how\s+many|how\s+much|where|when)\s+(?:\w+\s+)?"
    r"(?:is|are|was|were|did|does|do|type|kind|other|percentage|year|number)\b",
    re.IGNORECASE,
)
# Words that make an answer without content words still an answer ("L", "many", "US").
_ROMAN = re.compile(r"^[MDCLXVI]+$")
_AMOUNT_WORDS = frozenset("one many much most few several none half not".split())


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
        # without a question mark only English question words tell (first, or asked in place
        # and not closed by a full stop: "Telnet used what interface"); other languages abstain
        asks = bool(words and words[0] in QUESTION_WORDS) or (
            not q.endswith(".") and _IN_PLACE.search(q) is not None
        )
        if not marked and ctx.english and not asks:
            res.reasons.append(Reason("not_a_question", f"a statement, not a question: {short(q)}"))
        extra = _after_question_mark(q)
        if extra:
            # a second question, an instruction or passage text pasted after the question
            res.reasons.append(
                Reason("question_has_extra_text", f"text after the question: {short(extra, 40)}")
            )
        if ctx.english and _NEEDS_CONTEXT.search(q):
            res.reasons.append(
                Reason(
                    "question_needs_context",
                    f"the question does not stand on its own (it refers to a reader or to something it never names): {short(q)}",
                )
            )
        if ctx.english and not ctx.is_refusal and names_nothing(ctx.answer_tokens):
            res.reasons.append(
                Reason(
                    "answer_names_nothing",
                    f"the answer has no content word, name or number: {short(ctx.pair.answer, 30)!r}",
                )
            )
        # answer in question: the whole answer appears, and it is not one of offered choices
        a = ctx.pair.answer.strip().strip(".").lower()
        ans_content = content(ctx.answer_tokens)
        offered = ctx.offers_choice
        ans_words = [
            t for t in ctx.answer_tokens if t.text.lower() not in STOPWORDS or len(t.text) == 1
        ]
        if ans_content and not offered and a.lower() not in YES_NO and not ctx.is_refusal:
            qbag = Bag(ctx.question_tokens)
            if all(qbag.has(t) for t in ans_words):
                res.reasons.append(
                    Reason("answer_in_question", f"the question already contains the answer {a!r}")
                )
        # about the evidence: enough of the question's content words are in the sources
        qc = content(ctx.question_tokens)
        if qc and (ctx.sources or ctx.support_texts):
            bag = _texts_bag(tuple(c.text for c in ctx.sources)) if ctx.sources else ctx.support_bag
            about = sum(bag.has(t) for t in qc) / len(qc)
            res.signals["question_about"] = about
            if about < self.min_about:
                res.reasons.append(
                    Reason(
                        "question_not_about_evidence",
                        f"only {about:.0%} of the question's content words are in the sources",
                    )
                )
            elif ctx.is_refusal and ctx.english:
                # "the documents do not say" is only right about what the documents are about:
                # a question naming things none of the sources names is off their topic
                names = [
                    t for t in qc if t.capital and t.start > 0
                ]  # not the sentence-initial word
                if names and not any(bag.has(t) for t in names):
                    res.reasons.append(
                        Reason(
                            "question_not_about_evidence",
                            "an unanswerable question must be about the sources, which never name "
                            + ", ".join(repr(t.text) for t in names[:3]),
                        )
                    )
        return res


def _after_question_mark(question: str) -> str:
    """The text after the first question mark when it is two words or more, else ""."""
    cut = min(
        (i for i in (question.find(m) for m in QUESTION_MARKS if m != ";") if i >= 0), default=-1
    )
    if cut < 0:
        return ""
    rest = question[cut + 1 :].strip()
    return rest if len(rest.split()) >= 2 else ""


def names_nothing(tokens: Sequence[Token]) -> bool:
    """An answer of only stopwords and single letters ("All", "Such", "O"): not yes/no, not a
    number word, Roman numeral, month ("May"), amount word ("many") or acronym ("US", "U.S.")."""
    if not tokens or content(tokens):
        return False
    if len(tokens) >= 2 and all(len(t.text) == 1 and t.text.isupper() for t in tokens):
        return False  # a dotted acronym ("U.S.")
    for t in tokens:
        low = t.text.lower()
        if (
            low in YES_NO
            or low in NUMBER_WORDS
            or low in _AMOUNT_WORDS
            or _ROMAN.match(t.text)
            or (t.capital and low in MONTHS)
            or (len(t.text) >= 2 and t.text.isupper())
        ):
            return False
    return True


@lru_cache(maxsize=4096)
def _texts_bag(texts: tuple[str, ...]) -> Bag:
    """The bag of every token of the texts (the sources of a pair: shared by its chunk's pairs)."""
    return Bag([t for text in texts for t in tokenize(text)])
