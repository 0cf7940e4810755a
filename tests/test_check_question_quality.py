"""Questions that cannot stand on their own and answers that name nothing are rejected, with a reason."""

from __future__ import annotations

import pytest
from fakes import check_rows

from grounded.checker import default_checker, inline_sources
from grounded.checker.fit import expected_type
from grounded.types import QAPair

PASSAGE = (
    "The Corbin Bridge spans 412 metres across the Ashby estuary. It opened in 1967 and was "
    "designed by the engineer Margit Holloway. The Holloway Trust is a charity that maintains "
    "the bridge. Heavy lorries are not allowed on the bridge."
)


def verdict(question: str, answer: str):
    pair = QAPair(id="q", question=question, answer=answer, contexts=(PASSAGE,))
    return default_checker(semantic="off").check(pair, inline_sources(pair))


def codes(v) -> set[str]:
    return {r.code for r in v.reasons}


@pytest.fixture(scope="module")
def baseline():
    """The well-formed pair each bad variant below is made from passes."""
    v = verdict("Who designed the Corbin Bridge?", "Margit Holloway")
    assert v.supported, v.reasons
    return v


@pytest.mark.parametrize(
    "question",
    [
        "Who designed the Corbin Bridge? The bridge spans 412 metres across the estuary.",
        "Who designed the Corbin Bridge? Who opened it?",
    ],
)
def test_text_after_the_question_is_rejected(baseline, question):
    v = verdict(question, "Margit Holloway")
    assert not v.supported and "question_has_extra_text" in codes(v)


@pytest.mark.parametrize(
    "question",
    [
        "Which engineer did you read about?",
        "Who designed the bridge you are referring to?",
        "Who designed this?",
        "Who did he design the Corbin Bridge for?",
        "Who was this engineer's teacher?",
    ],
)
def test_questions_that_need_a_conversation_are_rejected(baseline, question):
    v = verdict(question, "Margit Holloway")
    assert not v.supported and "question_needs_context" in codes(v)


def test_a_named_subject_is_not_needing_context(baseline):
    for q in (
        "Who designed the Corbin Bridge in 1967?",
        "Which engineer designed the bridge?",
        "Who designed the bridge that opened this year?",
        "Who was this year's designer of the Corbin Bridge?",
    ):
        assert "question_needs_context" not in codes(verdict(q, "Margit Holloway"))


@pytest.mark.parametrize(
    ("question", "statement"),
    [
        ("The Corbin Bridge was designed by whom", False),
        ("Strictly speaking who was the designer of the Corbin Bridge", False),
        ("The Corbin Bridge was designed by which engineer", False),
        ("The Corbin Bridge was designed by Margit Holloway.", True),
        ("The Corbin Bridge was designed by what the engineer drew.", True),
    ],
)
def test_a_question_asked_in_place_needs_no_question_mark(baseline, question, statement):
    assert ("not_a_question" in codes(verdict(question, "Margit Holloway"))) is statement


@pytest.mark.parametrize("answer", ["It", "Such", "All", "O"])
def test_answers_without_content_are_rejected(answer):
    v = verdict("What maintains the Corbin Bridge?", answer)
    assert not v.supported and "answer_names_nothing" in codes(v)


@pytest.mark.parametrize("answer", ["one", "many", "US", "L", "none"])
def test_number_amount_acronym_and_numeral_answers_name_something(answer):
    v = verdict("How many lorries may cross the Corbin Bridge?", answer)
    assert "answer_names_nothing" not in codes(v)


def test_a_definition_question_wants_a_description_not_a_name():
    assert expected_type("What is the Holloway Trust?") == "description"
    v = verdict("What is the Holloway Trust?", "Margit Holloway")
    assert not v.supported and "answer_type_mismatch" in codes(v)
    good = verdict("What is the Holloway Trust?", "a charity that maintains the bridge")
    assert "answer_type_mismatch" not in codes(good)


@pytest.mark.parametrize(
    "question",
    [
        "How does the Holloway Trust maintain the bridge?",
        "What does the Holloway Trust do?",
    ],
)
def test_process_questions_want_a_description_not_a_name(question):
    assert expected_type(question) == "description"
    v = verdict(question, "Margit Holloway")
    assert not v.supported and "answer_type_mismatch" in codes(v)


@pytest.mark.parametrize(
    "question",
    [
        "How is the Corbin Bridge spelled in Welsh?",
        "How many lorries cross the bridge?",
        "What is the capital of France?",
        "What is the largest bridge?",
        "What is the AFC short for?",
        "What are upper-level schools called?",
    ],
)
def test_value_questions_are_not_definitions(question):
    assert expected_type(question) != "description"


def test_cli_reports_the_reasons(tmp_path):
    rows = [
        {"question": "Who designed the Corbin Bridge?", "answer": "Margit Holloway"},
        {"question": "Who designed this?", "answer": "Margit Holloway"},
        {"question": "Who designed the Corbin Bridge? It opened in 1967.", "answer": "Holloway"},
        {"question": "What maintains the Corbin Bridge?", "answer": "Such"},
    ]
    _, kept, rejected = check_rows(tmp_path, [{**r, "context": PASSAGE} for r in rows])
    assert [k["question"] for k in kept] == ["Who designed the Corbin Bridge?"]
    found = {c for r in rejected for c in (x["code"] for x in r["reasons"])}
    assert {"question_needs_context", "question_has_extra_text", "answer_names_nothing"} <= found
