"""The span reader: the answer where the question points outranks another answer of the passage."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import check_rows

from grounded.checker import default_checker, inline_sources
from grounded.checker.context import Bag, Context
from grounded.checker.reader import (
    FEATURE_NAMES,
    NEUTRAL,
    READER,
    inputs,
    load_reader,
    read,
    spans,
)
from grounded.types import QAPair

PASSAGE = (
    "The Corbin Bridge crosses the Ashby estuary. It was designed by the engineer Margit "
    "Holloway and opened to traffic in 1967. After a storm damaged its deck in 1989, the bridge "
    "was closed for repairs and reopened in 1994. Heavy lorries are not allowed on the bridge."
)


def analysed(question: str, answer: str, passage: str = PASSAGE):
    pair = QAPair(id="q", question=question, answer=answer, contexts=(passage,))
    ctx = Context(pair, inline_sources(pair))
    return (ctx, *inputs(ctx))


def test_the_fitted_reader_ships_and_matches_its_features():
    assert READER is not None and len(READER.weights) == len(FEATURE_NAMES)


def test_a_reader_fitted_for_other_features_is_not_used():
    assert load_reader({"features": ["other"], "weights": [1.0], "bias": 0.0}) is None


@pytest.mark.parametrize(
    ("question", "right", "wrong"),
    [
        ("When was the Corbin Bridge reopened after the repairs?", "1994", "1967"),
        ("When did a storm damage the deck of the bridge?", "1989", "1994"),
        ("Which engineer designed the bridge?", "Margit Holloway", "Ashby"),
    ],
)
def test_the_answer_where_the_question_points_scores_higher(question, right, wrong):
    good = read(READER, *analysed(question, right))
    bad = read(READER, *analysed(question, wrong))
    assert good["rd_margin"] > bad["rd_margin"]
    assert good["rd_score"] > bad["rd_score"]
    checker = default_checker(semantic="off")
    scores = []
    for answer in (right, wrong):
        pair = QAPair(id="q", question=question, answer=answer, contexts=(PASSAGE,))
        scores.append(checker.check(pair, inline_sources(pair)).score)
    assert scores[0] > scores[1]


def test_rival_spans_never_hold_the_question_or_the_answer():
    ctx, qc, ans, terms, expected = analysed("When was the Corbin Bridge reopened?", "1994")
    mine, rivals = spans(ctx, qc, ans, terms, expected)
    assert len(mine) == 1 and rivals
    # the rival spans carry no question words (feature "question_words" is 0 for all of them)
    qi = FEATURE_NAMES.index("question_words")
    assert all(f[qi] == 0.0 for f in rivals)
    assert mine[0][qi] == 0.0  # "1994" is not a question word either


def test_an_answer_not_in_the_passage_or_a_question_without_terms_is_neutral():
    assert read(READER, *analysed("When was the Corbin Bridge reopened?", "2003")) == NEUTRAL
    assert read(READER, *analysed("What is it?", "1994")) == NEUTRAL


def test_cli_keeps_the_pointed_answer_and_scores_the_swap_lower(tmp_path):
    rows = [
        {"question": "When was the Corbin Bridge reopened after the repairs?", "answer": a}
        for a in ("1994", "1967")
    ]
    _, kept, rejected = check_rows(tmp_path, [{**r, "context": PASSAGE} for r in rows])
    by_answer = {r["answer"]: r["verdict"] for r in kept}
    by_answer.update({r["pair"]["answer"]: r["pair"]["verdict"] for r in rejected})
    assert "1994" in {r["answer"] for r in kept}
    assert by_answer["1994"]["signals"]["rd_margin"] > by_answer["1967"]["signals"]["rd_margin"]
    assert by_answer["1994"]["score"] > by_answer["1967"]["score"]


def test_the_checkers_fast_path_equals_the_fitted_features():
    from grounded.checker.reader import candidates, span_features

    for question, answer in [
        ("When was the Corbin Bridge reopened after the repairs?", "1994"),
        ("Which engineer designed the Ashby bridge?", "the engineer Margit Holloway"),
    ]:
        ctx, qc, ans, terms, expected = analysed(question, answer)
        best, mine, rivals = candidates(ctx, qc, ans, terms)
        qbag = Bag(qc)
        assert mine and rivals
        for spans_, bag in ((mine, qbag), (rivals, None)):
            for s, j, k in spans_:
                slow = READER.logit(span_features(s, j, k, best, expected, bag))
                assert READER.span_logit(s, j, k, best, expected, bag) == pytest.approx(slow)


def test_the_question_is_read_against_the_whole_chunk_not_only_the_cited_evidence():
    from grounded.types import Evidence

    question = "When was the Corbin Bridge reopened after the repairs?"
    cited = "It was designed by the engineer Margit Holloway and opened to traffic in 1967."
    start = PASSAGE.index(cited)
    pair = QAPair(
        id="q",
        question=question,
        answer="1967",
        contexts=(PASSAGE,),
        evidence=(Evidence("context-0", "", start, start + len(cited), cited, 1.0, cited),),
    )
    sources = inline_sources(pair)
    v = default_checker(semantic="off").check(pair, sources)
    # the cited sentence holds the answer; the chunk's other sentence is the one the question means
    assert v.signals["q_sent_gap"] < 0 and v.signals["rd_margin"] < 0
    # the right answer, citing its own sentence, is kept and scores higher
    cited = "the bridge was closed for repairs and reopened in 1994."
    start = PASSAGE.index(cited)
    ev = Evidence("context-0", "", start, start + len(cited), cited, 1.0, cited)
    right = dataclasses.replace(pair, answer="1994", evidence=(ev,))
    good = default_checker(semantic="off").check(right, sources)
    assert good.supported and good.score > v.score
    assert good.signals["q_sent_gap"] == 0 and good.signals["rd_margin"] > 0


def test_keepable_reader_gives_the_verdicts_of_reading_every_pair():
    questions = [
        ("When was the Corbin Bridge reopened after the repairs?", "1994"),
        ("When was the Corbin Bridge reopened after the repairs?", "1967"),
        ("Which engineer designed the bridge?", "Margit Holloway"),
        ("Which engineer designed the bridge?", "Ashby"),
        ("What crosses the Ashby estuary?", "The Corbin Bridge"),
        ("When did a storm damage the deck of the bridge?", "lorries"),
        ("Who designed the bridge?", "It"),
    ]
    items = []
    for i, (q, a) in enumerate(questions):
        pair = QAPair(id=f"q{i}", question=q, answer=a, contexts=(PASSAGE,))
        items.append((pair, inline_sources(pair)))
    every = default_checker(semantic="off", reader="all").check_many(items)
    keepable = default_checker(semantic="off", reader="keepable").check_many(items)
    assert [v.supported for v in every] == [v.supported for v in keepable]
    assert any(v.supported for v in every) and not all(v.supported for v in every)
    for a, b in zip(every, keepable, strict=True):
        assert b.score >= a.score - 1e-9  # a skipped pair's score is its best case
        if a.supported:
            assert a.score == b.score
    off = default_checker(semantic="off", reader="off").check_many(items)
    assert all("rd_score" in v.signals and v.signals["rd_margin"] == 0.0 for v in off)
