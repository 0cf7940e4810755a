"""A reply's pairs with their evidence: quotes located in the passages by character offsets, the
answer's own sentence when no quote holds it, and the schema choices that keep a small model to
real text."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from grounded.align import align, normalise
from grounded.generation.plan import Task
from grounded.prompting import ReplyPair
from grounded.text import content, sentence_spans, split_sentences, tokens_of
from grounded.types import Chunk, Evidence, Provenance, QAPair, Reason

MIN_QUOTE_SCORE = 0.85  # fuzzy alignment below this is a quote the model made up


def build_pair(
    rp: ReplyPair, task: Task, prov: Provenance, *, kind: str
) -> tuple[QAPair, list[Reason]]:
    """A reply's pair with its quotes located in the task's passages, and what is wrong with it
    (no quote found, a multi-hop pair on one passage, no answer, an answered unanswerable)."""
    question = " ".join(rp.question.split())
    answer = " ".join(rp.answer.split())
    evidence: list[Evidence] = []
    dropped: list[str] = []
    for quote in rp.all_quotes:
        ev = locate(quote, task.chunks)
        if ev is None:
            dropped.append(quote)
        elif not any(
            e.start == ev.start and e.end == ev.end and e.doc_id == ev.doc_id for e in evidence
        ):
            evidence.append(ev)
    chunk_ids = tuple(c.id for c in task.chunks)
    metadata: dict[str, Any] = {"task": task.number}
    if dropped:
        metadata["dropped_quotes"] = dropped
    if (
        evidence
        and answer
        and kind != "unanswerable"
        and not any(holds(e.text, answer) for e in evidence)
    ):
        # Small models often quote another sentence than the one that holds their answer:
        # when the answer is a span of a passage, its sentence is the evidence (a located
        # one, not a quote); quotes of other passages stay (a multi-hop pair's other hop).
        located = locate_answer(answer, question, task.chunks)
        if located is not None:
            metadata["evidence_source"] = "located"
            metadata["model_quotes"] = list(rp.all_quotes)
            evidence = [located, *(e for e in evidence if e.chunk_id != located.chunk_id)]
    pair = QAPair(
        id=QAPair.make_id(question, answer, *chunk_ids),
        question=question,
        answer=answer,
        evidence=tuple(evidence),
        kind=kind,
        doc_ids=tuple(dict.fromkeys(c.doc_id for c in task.chunks)),
        chunk_ids=chunk_ids,
        provenance=prov,
        metadata=metadata,
    )
    problems: list[Reason] = []
    if not evidence:
        problems.append(
            Reason(
                "quote_not_found",
                f"no quote found in the passages: {_short(dropped[0] if dropped else '')!r}",
            )
        )
    elif kind == "multi_hop" and len({e.chunk_id for e in evidence}) < 2:
        problems.append(
            Reason("single_source", "a multi-hop pair must quote at least two passages")
        )
    if not answer:
        problems.append(Reason("empty_answer", "the reply has no answer"))
    elif kind == "unanswerable" and not _is_refusal(answer):
        # The model answered: evidence that the passages may answer it, so it is no refusal.
        problems.append(
            Reason(
                "not_a_refusal",
                f"an unanswerable question needs an answer saying the documents do not tell; the model answered {_short(answer)!r}",
            )
        )
    return pair, problems


def locate(
    quote: str, chunks: Sequence[Chunk], *, min_score: float = MIN_QUOTE_SCORE
) -> Evidence | None:
    """Align a quote to the best-matching chunk; Evidence in document offsets, or None."""
    best: tuple[float, Chunk, Any] | None = None
    for c in chunks:
        a = align(quote, c.text, min_score=min_score)
        if a is not None and (best is None or a.score > best[0]):
            best = (a.score, c, a)
            if a.score >= 1.0:
                break
    if best is None:
        return None
    score, c, a = best
    return Evidence(
        doc_id=c.doc_id,
        chunk_id=c.id,
        start=c.start + a.start,
        end=c.start + a.end,
        text=c.text[a.start : a.end],
        score=round(score, 4),
        quote=quote,
    )


def holds(text: str, answer: str) -> bool:
    """True when `answer` is in `text` as whole words, case, whitespace and typography aside."""
    return bool(_spans_of(answer, text))


def locate_answer(answer: str, question: str, chunks: Sequence[Chunk]) -> Evidence | None:
    """The sentence that holds `answer` where the answer is a span of a passage (case and
    whitespace aside), as Evidence in document offsets; among several, the sentence sharing most
    content words with the question (the first on a tie). None when no passage holds the
    answer: evidence is never invented."""
    asked = {t.stem for t in content(tokens_of(question))}
    best: tuple[int, Chunk, int, int] | None = None
    for c in chunks:
        spans = sentence_spans(c.text)
        for a, b in _spans_of(answer, c.text):
            # the sentences the answer lies in (one, unless the splitter cut through it)
            start = next((s for s, e in spans if s <= a < e), a)
            end = next((e for s, e in spans if s < b <= e), b)
            shared = len(asked & {t.stem for t in content(tokens_of(c.text[start:end]))})
            if best is None or shared > best[0]:
                best = (shared, c, start, end)
    if best is None:
        return None
    _, c, start, end = best
    return Evidence(
        doc_id=c.doc_id,
        chunk_id=c.id,
        start=c.start + start,
        end=c.start + end,
        text=c.text[start:end],
        score=1.0,
    )


def _spans_of(needle: str, text: str) -> list[tuple[int, int]]:
    """(start, end) in `text` of each whole-word occurrence of `needle`, compared normalised."""
    nn, _ = normalise(needle)
    nn = nn.strip()
    if not nn:
        return []
    nt, idx = normalise(text)
    pattern = re.compile(
        (r"(?<!\w)" if nn[0].isalnum() else "")
        + re.escape(nn)
        + (r"(?!\w)" if nn[-1].isalnum() else "")
    )
    return [(idx[m.start()], idx[m.end() - 1] + 1) for m in pattern.finditer(nt)]


def sentences(text: str, *, min_words: int = 4, max_chars: int = 400) -> list[str]:
    """Sentences of a passage, verbatim (exact substrings), long enough to quote."""
    out = []
    for s in split_sentences(text):
        # llama.cpp's schema-to-grammar converter cannot take quotes or backslashes in an enum
        if len(s.split()) >= min_words and len(s) <= max_chars and '"' not in s and "\\" not in s:
            out.append(s)
    return list(dict.fromkeys(out))


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{4}})\b"
)
_NUMBER = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?(?:\s?%|\s(?:percent|per cent))?(?:\s+(?!(?:and|or|by|in|on|at|to|of|the|a|an|for|from|with|was|were|is|are)\b)[a-z]+)?"
)
_NAME = re.compile(
    r"\b[A-Z][\w'’-]*(?:[ \t]+(?:(?:of|the|de|del|la|von|van|and|for|upon)[ \t]+)*[A-Z][\w'’-]*)*"
)
_NOT_NAMES = frozenset(
    "The A An It In On At This That These Those He She They We I Its His Her Their Our As But And Or If When While After Before During For From By With Of To Many Most Some Though Although However Since Because Also Then Today".split()
)


def answer_candidates(text: str, *, limit: int = 60) -> list[str]:
    """Short spans worth asking about, verbatim from the text: dates, numbers, names."""
    found: list[str] = []
    for pattern in (_DATE, _NUMBER, _NAME):
        for m in pattern.finditer(text):
            span = m.group(0).strip(" ,.;:")
            words = span.split()
            while words and words[0] in _NOT_NAMES:
                words = words[1:]
            span = " ".join(words)
            if (
                pattern is _NAME
                and len(words) == 1
                and _sentence_initial(text, m.start())
                and span == m.group(0)
            ):
                continue  # a capitalised first word is grammar, not a name
            if span and len(span) <= 60 and '"' not in span and "\\" not in span and span in text:
                found.append(span)
    return list(dict.fromkeys(found))[:limit]


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?:\n\"'" or text[pos - 1 : pos] == "\n"


def constrain_schema(
    response_format: dict[str, Any], chunks: Sequence[Chunk], *, answers: bool
) -> dict[str, Any]:
    """Restrict `quote(s)` in the schema to the passages' sentences, and (answers=True) the
    `answer` to short spans of the passages, so a small model can only pick real text."""
    choices = [s for c in chunks for s in sentences(c.text)]
    if not choices:
        return response_format
    rf = json.loads(json.dumps(response_format))
    schema = rf["json_schema"]["schema"] if "json_schema" in rf else rf.get("schema") or {}
    try:
        props = schema["properties"]["pairs"]["items"]["properties"]
    except (KeyError, TypeError):
        return response_format
    if isinstance(props.get("quote"), dict):
        props["quote"] = {**props["quote"], "type": "string", "enum": choices}
    if isinstance(props.get("quotes"), dict):
        props["quotes"] = {**props["quotes"], "items": {"type": "string", "enum": choices}}
    spans = list(dict.fromkeys(a for c in chunks for a in answer_candidates(c.text)))
    if answers and len(spans) >= 3 and isinstance(props.get("answer"), dict):
        props["answer"] = {k: v for k, v in props["answer"].items() if k != "maxLength"} | {
            "type": "string",
            "enum": spans,
        }
    return rf


def _is_refusal(answer: str) -> bool:
    if not answer:
        return False
    from grounded.checker import says_not_in_sources  # the checker's own rule: one definition

    return says_not_in_sources(answer)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
