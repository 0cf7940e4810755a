"""Question checks: it is a question, it does not give its own answer, it is about the evidence."""

from __future__ import annotations

from dataclasses import dataclass

from grounded.checker.context import YES_NO, Bag, CheckResult, Context, short
from grounded.text import STOPWORDS, content, tokenize
from grounded.types import Reason

QUESTION_WORDS: frozenset[str] = frozenset(
    """what which who whom whose when where why how is are was were do does did can could will
    would should shall has have had may might must am name list identify""".split()
)

# Question marks of other scripts: full-width (CJK), Arabic, Greek (U+037E), reversed.
QUESTION_MARKS = "?？؟;⸮"


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
            res.reasons.append(Reason("not_a_question", f"a statement, not a question: {short(q)}"))
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
            bag = (
                Bag([t for c in ctx.sources for t in tokenize(c.text)])
                if ctx.sources
                else ctx.support_bag
            )
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
