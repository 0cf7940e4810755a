"""Does the answer answer the question: spaCy types the question's expected answer and the answer
in its evidence (grounded.checker.answer_type), at the CLI where a user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import check_rows

from grounded.checker import CALIBRATION, SIGNS, default_checker, inline_sources
from grounded.checker.answer_type import TYPE_NEUTRAL, question_type, spacy_pipeline
from grounded.checker.calibration import calibration_for
from grounded.types import Provenance, QAPair

pytestmark = pytest.mark.skipif(spacy_pipeline() is None, reason="en_core_web_sm is not installed")

ELECTION = (
    "The 2014 election to the Victorian Legislative Council used the Single Transferable Vote. "
    "There are 40 seats in the council."
)
LABOR = "The centre-left Australian Labor Party is one of Victoria's two major parties."


def test_an_answer_of_the_wrong_type_is_rejected_with_its_reason(tmp_path):
    _, kept, rejected = check_rows(
        tmp_path,
        [
            {
                "question": "How many seats are there in the 2014 election?",
                "answer": "Single Transferable Vote",
                "context": ELECTION,
            },
            {
                "question": "What is the centre-left Australian Labor Party?",
                "answer": "Victoria's",
                "context": LABOR,
            },
            {
                "question": "How many seats are there in the council?",
                "answer": "40",
                "context": ELECTION,
            },
        ],
    )
    assert [r["answer"] for r in kept] == ["40"]
    by_answer = {r["pair"]["answer"]: {x["code"] for x in r["reasons"]} for r in rejected}
    assert "answer_type_mismatch" in by_answer["Single Transferable Vote"]
    assert "answer_type_mismatch" in by_answer["Victoria's"]
    # the count's focus noun "seats" is not near the vote system in the evidence
    assert "focus_not_near_answer" in by_answer["Single Transferable Vote"]


BRIDGE = (
    "The Corbin Bridge opened in March 1967 with four lanes and carried about 4,000 vehicles a "
    "day. Repairs in 1993 took less than a year. The engineers inspected the Corbin Bridge in "
    "week 7 of the works. A pope visited the Corbin Bridge less than a year after it opened: Pope "
    "Adrian, in 1968."
)


def _mismatched(tmp_path: Path, context: str, cases: list) -> tuple[set[str], set[str]]:
    """(ids kept, ids rejected as answer_type_mismatch) of (question, answer, wrong) cases,
    checked at the CLI against `context`; asserts the mismatched ones are exactly the wrong ones."""
    rows = [
        {"id": str(i), "question": q, "answer": a, "context": context}
        for i, (q, a, _) in enumerate(cases)
    ]
    _, kept, rejected = check_rows(tmp_path, rows)
    mismatched = {
        r["pair"]["id"]
        for r in rejected
        if "answer_type_mismatch" in {x["code"] for x in r["reasons"]}
    }
    assert mismatched == {str(i) for i, (_, _, wrong) in enumerate(cases) if wrong}
    return {r["id"] for r in kept}, mismatched


def test_a_point_in_time_for_an_amount_a_count_for_a_date_or_a_length_for_a_name(tmp_path):
    cases = [
        ("How many vehicles did the Corbin Bridge carry a day?", "March 1967", True),
        ("How many vehicles did the Corbin Bridge carry a day?", "about 4,000 vehicles", False),
        ("How long did the repairs take?", "less than a year", False),
        ("In what year did the Corbin Bridge open?", "four", True),
        ("When did the engineers inspect the Corbin Bridge?", "week 7", False),
        ("In what year did the Corbin Bridge open?", "March 1967", False),
        ("What pope visited the Corbin Bridge?", "less than a year", True),
        ("What pope visited the Corbin Bridge?", "Pope Adrian", False),
    ]
    kept, _ = _mismatched(tmp_path, BRIDGE, cases)
    assert kept >= {"1", "5", "7"}


def test_an_acronym_spelled_out_and_the_x_of_y_are_not_descriptions(tmp_path):
    context = (
        "PPP, or Public-Private Partnering, paid for the Corbin Bridge. Margit Holloway's charity, "
        "the Holloway Trust, maintains it."
    )
    cases = [
        ("What is PPP?", "Public-Private Partnering", False),
        ("What is PPP?", "Margit Holloway", True),
        ("What is Margit Holloway's charity?", "the Holloway Trust", False),
    ]
    kept, _ = _mismatched(tmp_path, context, cases)
    assert kept == {"0", "2"}


@pytest.mark.parametrize(
    "question,expected,focus",
    [
        ("How many seats are there in the 2014 election?", "quantity", "seat"),
        ("In what year did the Normans conquer England?", "date", ""),
        ("Which city is the capital of France?", "place", ""),
        ("Who is the inventor of the Tesla Coil?", "agent", "inventor"),
        ("When John Fox left as head coach, who replaced him?", "agent", ""),
        ("What is the centre-left Australian Labor Party?", "description", ""),
        ("What was the last Super Bowl in California?", "", ""),
        ("Where does Warsaw rank in the EU?", "", ""),
        ("What did Tesla invent?", "", ""),
        ("What is the name of the city that hosted the final?", "place", ""),
        ("What was the name of the rebuilt pier?", "", "pier"),
    ],
)
def test_question_types_come_from_the_parse(question, expected, focus):
    qt = question_type(spacy_pipeline()(question))
    assert (qt.expected, qt.focus) == (expected, focus)


@pytest.mark.parametrize("signal", sorted(TYPE_NEUTRAL))
def test_a_worse_type_signal_never_raises_a_pairs_score(signal):
    # the signals of a real kept pair, then only this one made worse
    pair = QAPair(
        id="p",
        question="How many seats are there in the council?",
        answer="40",
        contexts=(ELECTION,),
    )
    verdict = default_checker(semantic="off").check(pair, inline_sources(pair))
    assert verdict.supported and signal in CALIBRATION["qa"].features
    sign = SIGNS[signal]
    signals = dict(verdict.signals)
    worse = {**signals, signal: 0.0 if sign > 0 else 1.0}
    cal = calibration_for("qa", signals)
    assert cal.score(worse) <= cal.score(signals)
    assert TYPE_NEUTRAL[signal] == (
        1.0 if sign > 0 else 0.0
    )  # neutral = best case: skipping bounds


def test_skipping_undecided_pairs_changes_no_verdict():
    # "keepable" runs spaCy only where the cheap checks have not rejected: same verdicts as "all"
    rows = [
        ("How many seats are there in the 2014 election?", "Single Transferable Vote", ELECTION),
        ("How many seats are there in the council?", "40", ELECTION),
        ("How many seats are there in the council?", "the Victorian Legislative Council", ELECTION),
        ("What is the centre-left Australian Labor Party?", "Victoria's", LABOR),
        ("Which party is centre-left?", "the Australian Labor Party", LABOR),
        ("When did the election take place?", "2014", ELECTION),
        ("Who wrote Hamlet?", "Shakespeare", LABOR),
    ]
    pairs = [
        QAPair(id=str(i), question=q, answer=a, contexts=(c,)) for i, (q, a, c) in enumerate(rows)
    ]
    items = [(p, inline_sources(p)) for p in pairs]
    lazy = default_checker(semantic="off").check_many(items)
    full = default_checker(semantic="off", answer_types="all").check_many(items)
    assert [v.supported for v in lazy] == [v.supported for v in full]


def test_other_languages_abstain():
    pair = QAPair(
        id="de",
        question="Wie viele Sitze gibt es im Rat?",
        answer="Einfache übertragbare Stimme",
        contexts=("Im Rat gibt es 40 Sitze. Gewählt wird mit der einfachen übertragbaren Stimme.",),
        provenance=Provenance(language="de"),
    )
    verdict = default_checker(semantic="off", answer_types="all").check(pair, inline_sources(pair))
    codes = {r.code for r in verdict.reasons}
    assert "checks_skipped_language" in codes and "answer_type_mismatch" not in codes
    assert {k: verdict.signals[k] for k in TYPE_NEUTRAL} == TYPE_NEUTRAL
