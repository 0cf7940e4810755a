"""Question-answer fit: does the answer ANSWER the question, not merely occur in the evidence?"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from grounded.checker.calibration import FIT_NEUTRAL
from grounded.checker.context import Bag, CheckResult, Context, Source, short, token_weight
from grounded.text import MONTHS, NUMBER_WORDS, SCALES, STOPWORDS, Token, content, tokenize
from grounded.types import Reason

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
_ASPECT = (
    r"purpose|meaning|goal|aim|role|function|significance|importance|work|job|message|"
    r"theme|point|idea|mission|intent|intention|effect|impact|reason|nature|definition"
)
_ASPECT_Q = re.compile(
    rf"^\s*what\s+(?:is|was|are|were)\s+(?:the\s+|a\s+|an\s+)?(?:main\s+|primary\s+|real\s+)?(?:{_ASPECT})s?\b"
    rf"|^\s*what\s+(?:is|was|are|were)\s+[^?]{{1,80}}?['’]s?\s+(?:main\s+|primary\s+)?(?:{_ASPECT})s?\s*\??\s*$",
    re.IGNORECASE,
)
# "What is X?" about a thing it names ("What is a dendritic cell?", "What is the Logan Center?")
# asks for a definition, not a name; not "What is the capital of X?", "What is X called?",
# "What is the largest X?" or "What is X short for?", which ask for a value.
_DEFINE_Q = re.compile(
    r"^\s*what\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?(?P<np>[\w'’\-]+(?:\s+[\w'’\-]+){0,3})\s*\?\s*$",
    re.IGNORECASE,
)
_VALUE_NP = re.compile(
    r"\b(?:of|for|in|on|at|by|from|called|named|name|short|abbreviation|acronym|stand|number|"
    r"amount|capital|first|last|next|main|\w+est|\w+['’]s)\b",
    re.IGNORECASE,
)
# "How does X work?", "What does X do?", "What does it mean to ...?" ask for a description or a
# process, not a bare name, date or number; not "How is X spelled / written / called?", which ask
# for a name (how many / much / long are quantities).
_PROCESS_Q = re.compile(
    r"^\s*(?:\w+\s+){0,2}?how\s+(?:does|do|did|is|are|was|were|can|could|would|should|has|have)\b"
    r"|^\s*what\s+(?:does|did|do)\s+[^?]{1,60}\s+do\s*\??\s*$|^\s*what\s+does\s+it\s+mean\b",
    re.IGNORECASE,
)
_NAMED_AS = re.compile(
    r"\b(?:spell|spelled|spelt|written|write|called|call|named|pronounced|known|ranked|rank|"
    r"translated|abbreviated|referred)\b",
    re.IGNORECASE,
)
_WHEN_Q = re.compile(
    r"^\s*(?:(?:since|until|till|from|and|but|so|then|by)\s+)?(?:when\b|^\s*(?:\w+\s+){0,3}?(?:in\s+|during\s+|on\s+)?(?:what|which)\s+(?:year|date|day|month|century|decade|time\s+period|era)s?\b)",
    re.IGNORECASE,
)
_HOW_MANY_Q = re.compile(
    r"^\s*(?:\w+\s+){0,4}?(?:how\s+(?:many|much)|what\s+(?:percentage|percent|proportion|fraction|number|amount)|how\s+(?:long|old|tall|high|large|big|deep|wide|heavy))\b",
    re.IGNORECASE,
)
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
    datey = [
        lw in DATE_WORDS or (lw in MONTHS and t.capital) for t, lw in zip(words, low, strict=True)
    ]
    if all(n or d for n, d in zip(numeric, datey, strict=True)) or (
        any(numeric)
        and all(n or lw in UNIT_WORDS or lw in SCALES for n, lw in zip(numeric, low, strict=True))
    ):
        years = any(
            t.number is not None
            and 1000 <= t.number <= 2100
            and float(t.number).is_integer()
            and len(t.text) == 4
            for t in words
        )
        return "date" if any(datey) or years else "number"
    if len(tokens) <= 6 and all(t.capital and not n for t, n in zip(words, numeric, strict=True)):
        return "name"
    return "phrase"


_OTHER_WH = re.compile(r"\b(?:who|whom|whose|what|which|where|how|why)\b", re.IGNORECASE)
_RANKING = re.compile(
    r"\b(?:rank|ranks|ranked|ranking|position|place|placed|put|stand|stands)\b", re.IGNORECASE
)
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
    define = _DEFINE_Q.match(question)
    if define and not _VALUE_NP.search(define.group("np")):
        return "description"
    if _PROCESS_Q.search(question) and not _NAMED_AS.search(question):
        return "description"
    if _WHO_Q.search(question):
        return "person"
    if _WHERE_Q.search(question) and not _RANKING.search(question):
        return "place"
    if _WHY_Q.search(question):
        return "reason"
    return ""


_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,9}\b")
_INITIAL_SKIP = frozenset("of the and for in on at to a an".split())


def expands_acronym(question: str, answer: str) -> bool:
    """The answer spells out an acronym of the question ("What is PPP?" -> "Public-Private
    Partnering", "What is CSNET" -> "The Computer Science Network"): its words' initials begin
    the acronym (two at least), so the name is what the question asks for."""
    words = [
        w for w in re.split(r"[\s\-]+", answer.strip()) if w and w.lower() not in _INITIAL_SKIP
    ]
    initials = "".join(w[0] for w in words if w[0].isalpha()).upper()
    if len(initials) < 2:
        return False
    return any(
        acronym.startswith(initials) or initials.startswith(acronym)
        for acronym in _ACRONYM.findall(question)
        if len(acronym) >= 2
    )


def type_match(expected: str, form: str) -> bool:
    """True when the answer has the form the question asks for (positive evidence)."""
    return (expected, form) in {
        ("person", "name"),
        ("place", "name"),
        ("date", "date"),
        ("quantity", "number"),
        ("quantity", "date"),
        ("description", "phrase"),
        ("reason", "phrase"),
    }


def type_mismatch(expected: str, form: str, tokens: Sequence[Token]) -> bool:
    """True when the answer's form cannot be what the question asks for."""
    if not expected or form == "empty":
        return False
    if expected == "quantity":
        return not any(
            t.number is not None
            or t.text[:1].isdigit()
            or _ROMAN.match(t.text)
            or t.text.lower() in QUANTITY_WORDS
            or t.text.lower() in NUMBER_WORDS
            or t.text.lower() in UNIT_WORDS
            or t.text.lower() in SCALES
            or t.text.lower().endswith("fold")
            for t in tokens
        )
    if expected == "date":
        return (
            form in ("name", "phrase")
            and tokens[0].text.lower() not in TEMPORAL_PREPS
            and not any(
                t.text.lower() in DATE_WORDS
                or t.text.lower() in TEMPORAL_PREPS
                or t.number is not None
                or t.text[:1].isdigit()
                or _ROMAN.match(t.text)
                for t in tokens
            )
        )
    if expected in ("person", "place"):
        return form in ("date", "number")
    if expected in ("reason", "description"):
        return form in ("date", "number", "name")
    return False


def specific_terms(question: Sequence[Token]) -> list[Token]:
    """The question's content words that name something (GENERIC_WORDS left out)."""
    return [
        t for t in question if t.text.lower() not in GENERIC_WORDS and t.stem not in GENERIC_WORDS
    ]


def pointing_terms(ctx: Context) -> list[Token]:
    """The question's specific terms the answer does not hold: the words that point at where in
    the evidence the answer should be (QAFitCheck's nearness signals, the span reader)."""
    abag = Bag(content(ctx.answer_tokens))
    return [t for t in specific_terms(content(ctx.question_tokens)) if not abag.has(t)]


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
        if (
            ctx.answer_only
            or not ctx.pair.question.strip()
            or ctx.is_refusal
            or not ctx.pair.answer.strip()
        ):
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
        mismatch = (
            not ctx.is_yes_no
            and type_mismatch(expected, form, ctx.answer_tokens)
            and not (expected == "description" and expands_acronym(q, ctx.pair.answer))
        )
        if mismatch:
            res.reasons.append(
                Reason(
                    "answer_type_mismatch",
                    f"the question asks for a {expected} but the answer is a {form}: {short(ctx.pair.answer, 40)}",
                )
            )
        qc = content(ctx.question_tokens)
        specific = specific_terms(qc)
        vague = bool(qc) and not specific
        if vague:
            res.reasons.append(
                Reason("vague_question", f"the question names nothing specific: {short(q)}")
            )
        ans = content(ctx.answer_tokens)
        qbag = Bag(qc)
        ans_in_q = sum(qbag.has(t) for t in ans) / len(ans) if ans else 0.0
        terms = pointing_terms(ctx)
        near, near_sent, near_tok = self._near(ctx, ans, terms)
        gap = 0.0
        if terms:
            tw = [token_weight(t) for t in terms]
            ttotal = sum(tw)
            best = max(
                (
                    sum(w for t, w in zip(terms, tw, strict=True) if bag.has(t)) / ttotal
                    for src in ctx.reading
                    for bag in src.bags
                ),
                default=0.0,
            )
            gap = min(0.0, near_sent - best)
        # only for short extractive answers (a name, number or date): a paraphrased answer
        # cannot be located reliably, its signal still feeds the score
        if (
            form in ("name", "number", "date")
            and len(terms) >= self.min_terms
            and near < self.min_near
        ):
            res.reasons.append(
                Reason(
                    "answer_not_near_question_terms",
                    f"only {near:.0%} of the question's terms occur around the answer in the evidence",
                )
            )
        res.signals.update(
            type_ok=0.0 if mismatch else 1.0,
            type_match=1.0 if type_match(expected, form) else 0.0,
            vague=1.0 if vague else 0.0,
            q_near=near,
            q_near_sent=near_sent,
            q_near_tok=near_tok,
            q_sent_gap=gap,
            ans_in_q=ans_in_q,
        )
        return res

    @staticmethod
    def _near(
        ctx: Context, ans: Sequence[Token], terms: Sequence[Token]
    ) -> tuple[float, float, float]:
        """Best share of `terms` around the answer: (1-sentence window either side, same
        sentence, NEAR_TOKENS content words either side)."""
        if not terms:
            return 0.0, 0.0, 0.0
        if not ans:
            return 1.0, 1.0, 1.0
        aw = [token_weight(t) for t in ans]
        atotal = sum(aw)
        tw = [token_weight(t) for t in terms]
        ttotal = sum(tw)
        found: list[tuple[float, Source, int]] = []
        for src in ctx.reading:
            # bit b of hit: the sentence's bag has ans[b] (cached per source and token)
            for i, hit in enumerate(src.sentence_hits(ans)):
                cov = sum(w for b, w in enumerate(aw) if hit >> b & 1) / atotal
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
            w_ = (
                sum(w for t, w in zip(terms, tw, strict=True) if any(b.has(t) for b in win))
                / ttotal
            )
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
