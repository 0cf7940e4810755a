"""A long answer's claims: what grounded.checker.long_answers checks one by one.

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

"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from grounded.checker.nlp import nlp, only

__all__ = ["Claim", "nlp", "split_claims", "split_many"]

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
