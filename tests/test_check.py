"""The faithfulness checker: each check catches its failure, supported pairs pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import FakeIndex, FakeLLM, register_fake

from grounded.checker import (
    CALIBRATION,
    FEATURES,
    Checker,
    SemanticCheck,
    check,
    default_checker,
    inline_sources,
)
from grounded.checkfile import pair_from_row
from grounded.errors import CheckError
from grounded.text import number_value, split_sentences, stem
from grounded.types import Chunk, Evidence, QAPair

PASSAGE = (
    "The Corbin Bridge spans 412 metres across the Ashby estuary. It opened in 1967 and was "
    "designed by the engineer Margit Holloway. Heavy lorries are not allowed on the bridge."
)
DOC = "bridge-doc"


def chunk(text: str = PASSAGE, start: int = 0) -> Chunk:
    return Chunk(
        id=Chunk.make_id(DOC, start, start + len(text)),
        doc_id=DOC,
        text=text,
        start=start,
        end=start + len(text),
    )


def pair(
    question: str,
    answer: str,
    *,
    quote: str | None = None,
    kind: str = "factoid",
    offsets: bool = True,
) -> QAPair:
    evidence: tuple[Evidence, ...] = ()
    if quote is not None:
        pos = PASSAGE.find(quote)
        start, end = (pos, pos + len(quote)) if offsets and pos >= 0 else (0, 0)
        evidence = (Evidence(DOC, chunk().id, start, end, quote, 1.0, quote),)
    return QAPair(
        id=QAPair.make_id(question, answer),
        question=question,
        answer=answer,
        evidence=evidence,
        kind=kind,
    )


@pytest.fixture(scope="module")
def checker() -> Checker:
    return default_checker(semantic="off")


def codes(verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


def test_supported_pair_passes(checker):
    v = checker.check(
        pair(
            "How long is the Corbin Bridge?",
            "412 metres",
            quote="The Corbin Bridge spans 412 metres across the Ashby estuary.",
        ),
        [chunk()],
    )
    assert v.supported, v.reasons
    assert 0.0 <= v.score <= 1.0 and v.score >= checker.threshold
    assert {"lex_cov", "bigram_cov", "quote_score"} <= set(v.signals)


def test_supported_without_evidence_uses_sources(checker):
    v = checker.check(pair("Who designed the Corbin Bridge?", "Margit Holloway"), [chunk()])
    assert v.supported, v.reasons


def test_invented_quote_is_caught(checker):
    v = checker.check(
        pair(
            "How long is the Corbin Bridge?",
            "412 metres",
            quote="The Corbin Bridge is the longest bridge in the county, at 412 metres.",
        ),
        [chunk()],
    )
    assert not v.supported
    assert "quote_not_found" in codes(v)


def test_offsets_are_reverified(checker):
    quote = "It opened in 1967"
    good = pair("When did the Corbin Bridge open?", "1967", quote=quote)
    assert checker.check(good, [chunk()]).supported
    ev = good.evidence[0]
    shifted = QAPair(
        id="x",
        question=good.question,
        answer=good.answer,
        evidence=(Evidence(ev.doc_id, ev.chunk_id, ev.start + 5, ev.end + 5, ev.text, 1.0),),
    )
    v = checker.check(shifted, [chunk()])
    assert not v.supported and "offset_mismatch" in codes(v)


def test_offsets_into_a_chunk_that_starts_later(checker):
    offset = 1000
    c = chunk(start=offset)
    quote = "designed by the engineer Margit Holloway"
    pos = PASSAGE.find(quote) + offset
    p = QAPair(
        id="y",
        question="Who designed the Corbin Bridge?",
        answer="Margit Holloway",
        evidence=(Evidence(DOC, c.id, pos, pos + len(quote), quote, 1.0),),
    )
    assert checker.check(p, [c]).supported


def test_number_mismatch_is_caught(checker):
    v = checker.check(
        pair(
            "How long is the Corbin Bridge?",
            "It spans 950 metres.",
            quote="The Corbin Bridge spans 412 metres across the Ashby estuary.",
        ),
        [chunk()],
    )
    assert not v.supported
    assert "number_mismatch" in codes(v)


def test_number_formats_match():
    assert (
        number_value("1,200") == 1200
        and number_value("3.5") == 3.5
        and number_value("twelve") == 12
    )
    c = Chunk(
        id="c",
        doc_id="d",
        text="The budget was 2.5 million dollars in 1,990 pages.",
        start=0,
        end=51,
    )
    v = default_checker(semantic="off").check(
        QAPair(id="n", question="What was the budget?", answer="2,500,000 dollars"), [c]
    )
    assert "number_mismatch" not in codes(v) and "number_not_found" not in codes(v)


def test_negation_is_caught(checker):
    v = checker.check(
        pair(
            "Are heavy lorries allowed on the Corbin Bridge?",
            "Heavy lorries are allowed on the Corbin Bridge.",
            quote="Heavy lorries are not allowed on the bridge.",
        ),
        [chunk()],
    )
    assert not v.supported
    assert "negation_mismatch" in codes(v)


def test_statement_instead_of_question_is_caught(checker):
    v = checker.check(
        pair("The Corbin Bridge opened in a certain year.", "1967", quote="It opened in 1967"),
        [chunk()],
    )
    assert not v.supported and "not_a_question" in codes(v)


def test_answer_in_question_is_caught(checker):
    v = checker.check(
        pair(
            "Did Margit Holloway, the engineer, design the Corbin Bridge in 1967 over the Ashby estuary?",
            "Margit Holloway",
            quote="designed by the engineer Margit Holloway",
        ),
        [chunk()],
    )
    assert not v.supported and "answer_in_question" in codes(v)


def test_choice_questions_may_name_their_answer(checker):
    v = checker.check(
        pair(
            "Was the Corbin Bridge designed by Margit Holloway or by Ivo Brandt?",
            "Margit Holloway",
            quote="designed by the engineer Margit Holloway",
        ),
        [chunk()],
    )
    assert "answer_in_question" not in codes(v)


def test_unsupported_entity_is_caught(checker):
    v = checker.check(pair("Who designed the Corbin Bridge?", "Henry Dalgleish"), [chunk()])
    assert not v.supported
    assert "unsupported_entity" in codes(v) and "low_support" in codes(v)


def test_question_not_about_evidence(checker):
    v = checker.check(
        pair("What colour is the roof of the Pellam railway museum?", "Margit Holloway"), [chunk()]
    )
    assert not v.supported and "question_not_about_evidence" in codes(v)


def test_unanswerable_refusal(checker):
    ok = pair(
        "Who paid for the repainting of the Corbin Bridge in 2010?",
        "The documents do not say.",
        kind="unanswerable",
    )
    assert checker.check(ok, [chunk()]).supported
    answerable = pair(
        "Who designed the Corbin Bridge?",
        "This is not mentioned in the documents.",
        kind="unanswerable",
    )
    v = checker.check(answerable, [chunk()])
    assert not v.supported and "answerable_in_sources" in codes(v)
    not_refusal = pair(
        "Who paid for the repainting of the Corbin Bridge in 2010?",
        "Ivo Brandt",
        kind="unanswerable",
    )
    v = checker.check(not_refusal, [chunk()])
    assert not v.supported and "not_a_refusal" in codes(v)


def test_empty_answer_and_no_sources(checker):
    assert "empty_answer" in codes(checker.check(pair("Who designed the bridge?", " "), [chunk()]))
    assert "no_sources" in codes(
        checker.check(pair("Who designed the bridge?", "Margit Holloway"), [])
    )


def test_threshold_is_overridable():
    p = pair("Who designed the Corbin Bridge?", "Margit Holloway")
    assert default_checker(semantic="off").check(p, [chunk()]).supported
    strict = default_checker(semantic="off", threshold=1.0)
    v = strict.check(p, [chunk()])
    assert strict.threshold == 1.0 and not v.supported and "low_support" in codes(v)
    with pytest.raises(CheckError):
        default_checker(threshold=1.5)


def test_calibration_tables_match_features():
    for name, cal in CALIBRATION.items():
        assert len(cal.features) == len(cal.weights), name
        assert cal.features[: len(FEATURES)] == FEATURES


def test_light_text_helpers():
    assert stem("bridges") == stem("bridge") and stem("opened") == stem("open")
    assert split_sentences("One here.Two there. Three!") == ["One here.", "Two there.", "Three!"]


class WordHashEmbedder:
    """A deterministic stand-in for MiniLM: hashed bag of words, L2-normalised; counts calls."""

    name = "fake"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, sum(map(ord, w)) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def test_semantic_signal_is_batched_and_cached():
    emb = WordHashEmbedder()
    ch = default_checker(semantic="all", embedder=emb, answer_only=True)
    claims = [
        QAPair(id=str(i), question="", answer=a)
        for i, a in enumerate(
            [
                "The Corbin Bridge opened in 1967.",
                "Margit Holloway designed the Corbin Bridge.",
                "The bridge is 412 metres long.",
            ]
        )
    ]
    verdicts = ch.check_many([(p, [chunk()]) for p in claims])
    assert emb.calls == 1  # one batch for all pairs
    assert all("sem" in v.signals for v in verdicts)
    ch.check_many([(p, [chunk()]) for p in claims])
    assert emb.calls == 1  # served from the cache
    assert isinstance(ch.semantic, SemanticCheck)


def test_check_with_inline_contexts_and_with_index():
    p1 = QAPair(
        id="a",
        question="Who designed the Corbin Bridge?",
        answer="Margit Holloway",
        contexts=(PASSAGE,),
    )
    p2 = QAPair(
        id="b", question="Who designed the Corbin Bridge?", answer="Ivo Brandt", contexts=(PASSAGE,)
    )
    out = list(check([p1, p2], semantic="off"))
    assert [v.supported for _, v in out] == [True, False]
    assert out[0][0].verdict == out[0][1]
    index = FakeIndex.from_texts({"bridge": [PASSAGE, "Another chunk about ferries."]})
    c = next(index.chunks())
    p3 = QAPair(
        id="c",
        question="Who designed the Corbin Bridge?",
        answer="Margit Holloway",
        chunk_ids=(c.id,),
    )
    [(got, verdict)] = list(check([p3], index=index, semantic="off"))
    assert verdict.supported and got.id == "c"
    assert len(inline_sources(p1)) == 1


def test_pair_from_foreign_rows():
    p = pair_from_row({"question": "Q?", "answer": "A", "context": "A text."})
    assert p.contexts == ("A text.",) and p.id
    p = pair_from_row({"question": "Q?", "answer": "A", "evidence": ["a quote"]})
    assert p.evidence[0].quote == "a quote"
    with pytest.raises(CheckError):
        pair_from_row({"question": "Q?"}, where="row 1")


JUDGE_SUPPORTED = json.dumps(
    {"claims": [{"claim": "Margit Holloway designed the bridge", "verdict": "supported"}]}
)
JUDGE_CONTRADICTED = json.dumps(
    {"claims": [{"claim": "Ivo Brandt designed the bridge", "verdict": "contradicted"}]}
)


def test_llm_judge_all_mode_and_cache(tmp_path):
    from grounded.llm import LLM

    fake = FakeLLM([JUDGE_SUPPORTED, JUDGE_CONTRADICTED], responder=None)
    llm = LLM(register_fake(fake), cache=tmp_path / "judge.sqlite")
    ch = default_checker(semantic="off", judge=llm, judge_mode="all")
    good = pair("Who designed the Corbin Bridge?", "Margit Holloway")
    v = ch.check(good, [chunk()])
    assert v.supported and v.signals["judge"] == 1.0
    bad = pair("Who designed the Corbin Bridge?", "Ivo Brandt")
    v = ch.check(bad, [chunk()])
    assert not v.supported and "judge_unsupported" in codes(v)
    assert len(fake.calls) == 2
    assert "Margit Holloway" in fake.calls[0]["messages"][-1]["content"]
    ch.check(good, [chunk()])  # same call again: from the cache, not the model
    assert len(fake.calls) == 2 and llm.stats.cached_calls == 1


def test_llm_judge_borderline_skips_clear_cases(tmp_path):
    from grounded.llm import LLM

    fake = FakeLLM(responder=None)
    llm = LLM(register_fake(fake), cache=tmp_path / "judge.sqlite")
    ch = default_checker(semantic="off", judge=llm, judge_mode="borderline")
    ch.judge_band = 0.05
    v = ch.check(pair("Who designed the Corbin Bridge?", "Henry Dalgleish of Leith"), [chunk()])
    assert not v.supported and fake.calls == [] and "judge" not in v.signals


def test_judge_failure_keeps_the_lexical_verdict(tmp_path):
    from grounded.llm import LLM

    fake = FakeLLM(["this is not json"], responder=None)
    llm = LLM(register_fake(fake), cache=tmp_path / "judge.sqlite", max_retries=0)
    ch = default_checker(semantic="off", judge=llm, judge_mode="all")
    v = ch.check(pair("Who designed the Corbin Bridge?", "Margit Holloway"), [chunk()])
    assert v.supported and "judge_unparsable" in codes(v)


def test_off_schema_judge_verdicts_do_not_decide(tmp_path):
    from grounded.llm import LLM

    reply = json.dumps({"claims": [{"claim": "Margit Holloway", "verdict": "First for Women"}]})
    fake = FakeLLM([reply], responder=None)
    llm = LLM(register_fake(fake), cache=tmp_path / "judge.sqlite")
    ch = default_checker(semantic="off", judge=llm, judge_mode="all")
    v = ch.check(pair("Who designed the Corbin Bridge?", "Margit Holloway"), [chunk()])
    assert v.supported and "judge_unparsable" in codes(v) and "judge" not in v.signals


def test_judge_works_inside_a_running_event_loop(tmp_path):
    import asyncio

    from grounded.llm import LLM

    fake = FakeLLM([JUDGE_SUPPORTED], responder=None)
    llm = LLM(register_fake(fake), cache=tmp_path / "judge.sqlite")
    ch = default_checker(semantic="off", judge=llm, judge_mode="all")

    async def inside() -> object:
        return ch.check(pair("Who designed the Corbin Bridge?", "Margit Holloway"), [chunk()])

    v = asyncio.run(inside())
    assert v.supported and v.signals["judge"] == 1.0


# ---------------------------------------------------------------------------------------------
# Question-answer fit: the answer is in the evidence but must also answer the question
# ---------------------------------------------------------------------------------------------
OPENED = "It opened in 1967 and was designed by the engineer Margit Holloway."
SPANS = "The Corbin Bridge spans 412 metres across the Ashby estuary."


@pytest.mark.parametrize(
    "question,bad,good,quote",
    [
        (
            "Who designed the Corbin Bridge?",
            "1967",
            "Margit Holloway",
            OPENED,
        ),  # person, not a date
        ("When did the Corbin Bridge open?", "Margit Holloway", "1967", OPENED),  # date, not a name
        ("How long is the Corbin Bridge?", "Ashby", "412 metres", SPANS),  # quantity needs a number
        (
            "What is the purpose of the Corbin Bridge?",
            "1967",
            "spans 412 metres across the Ashby estuary",
            SPANS,
        ),
    ],
)
def test_answer_type_mismatch(checker, question, bad, good, quote):
    v = checker.check(pair(question, bad, quote=quote), [chunk()])
    assert not v.supported and "answer_type_mismatch" in codes(v), v.reasons
    assert v.signals["type_ok"] == 0.0
    ok = checker.check(pair(question, good, quote=quote), [chunk()])
    assert "answer_type_mismatch" not in codes(ok) and ok.signals["type_ok"] == 1.0, ok.reasons


def test_expected_type_and_answer_form_rules():
    from grounded.checker.fit import answer_form, expected_type, type_mismatch
    from grounded.text import tokenize

    assert expected_type("Who was Thomas Jefferson?") == "person"
    assert expected_type("In what year did the bridge open?") == "date"
    assert (
        expected_type("When John Fox left, who replaced him?") != "date"
    )  # a "when" clause that asks who
    assert expected_type("What was Baran's work?") == "description"
    assert expected_type("What was the title of Philo's work?") == ""  # asks for a name
    assert expected_type("Where does Warsaw rank in the EU?") == ""  # a rank, not a place
    assert answer_form(tokenize("July 4, 1776")) == "date"
    assert answer_form(tokenize("Lawrence Roberts")) == "name"
    assert answer_form(tokenize("a steel suspension bridge")) == "phrase"
    assert answer_form(tokenize("412 metres")) == "number"
    # a "when" answer may be an event introduced by a temporal preposition
    assert not type_mismatch("date", "name", tokenize("During the Second World War"))
    assert not type_mismatch("quantity", "phrase", tokenize("less than a year"))


def test_vague_question(checker):
    v = checker.check(
        pair("What was the purpose of the work?", "Margit Holloway", quote=OPENED), [chunk()]
    )
    assert not v.supported and "vague_question" in codes(v), v.reasons
    ok = checker.check(
        pair("Which engineer designed the Corbin Bridge?", "Margit Holloway", quote=OPENED),
        [chunk()],
    )
    assert ok.supported and "vague_question" not in codes(ok), ok.reasons


def test_answer_not_near_question_terms(checker):
    text = (
        "The Gemini programme flew two-man crews in Earth orbit to practise docking. "
        "Its spacecraft carried astronauts on long missions. Budgets were debated in Congress for years. "
        "The first manned flight of Apollo was in 1968."
    )
    c = Chunk(
        id=Chunk.make_id("gem", 0, len(text)), doc_id="gem", text=text, start=0, end=len(text)
    )
    last = "The first manned flight of Apollo was in 1968."
    start = text.find(last)
    ev = (Evidence("gem", c.id, start, start + len(last), last, 1.0, last),)
    q = "Which two-man Gemini spacecraft docked in Earth orbit?"
    bad = QAPair(id="bad", question=q, answer="Apollo", evidence=ev)
    v = checker.check(bad, [c])
    assert not v.supported and "answer_not_near_question_terms" in codes(v), v.reasons
    assert v.signals["q_near"] == 0.0
    first = "The Gemini programme flew two-man crews in Earth orbit to practise docking."
    ev2 = (Evidence("gem", c.id, 0, len(first), first, 1.0, first),)
    good = QAPair(
        id="good",
        question="Which programme flew two-man crews in Earth orbit?",
        answer="Gemini",
        evidence=ev2,
    )
    ok = checker.check(good, [c])
    assert ok.supported and "answer_not_near_question_terms" not in codes(ok), ok.reasons
    assert ok.signals["q_near"] > 0.5


def test_fit_checks_do_not_apply_to_claims():
    claim = default_checker(semantic="off", answer_only=True)
    p = QAPair(id="c", question="", answer="The Corbin Bridge opened in 1967.", contexts=(PASSAGE,))
    v = claim.check(p, inline_sources(p))
    assert v.supported, v.reasons
    assert not {"answer_type_mismatch", "vague_question", "answer_not_near_question_terms"} & codes(
        v
    )
    assert "type_ok" not in v.signals
