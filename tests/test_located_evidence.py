"""Evidence located from the answer when the model quotes another sentence (issue 21, part 2).

A small model often quotes a sentence that does not hold its answer while the answer is an
exact span of the passage: the sentence that holds it becomes the evidence, marked as located,
with the model's quotes kept in the metadata. Evidence is never invented.
"""

from __future__ import annotations

import json

import pytest
from fakes import FakeChecker, FakeIndex, FakeLLM, register_fake

from grounded.generation import generate, locate_answer
from grounded.jsonl import read_jsonl
from grounded.types import Chunk

PASSAGE = (
    "Donald Davies was a Welsh computer scientist. "
    "He worked at the National Physical Laboratory in Teddington. "
    "The NPL network was among the first to use packet switching."
)


def index() -> FakeIndex:
    return FakeIndex.from_texts({"davies": [PASSAGE]})


def run(tmp_path, *pairs: dict, checker=None):
    """One call whose reply holds `pairs`; the rows written (kept, rejected)."""
    model = register_fake(FakeLLM([json.dumps({"pairs": list(pairs)})], responder=None))
    generate(
        index=index(),
        out=tmp_path,
        n=len(pairs),
        pairs_per_call=len(pairs),
        model=model,
        checker=checker or FakeChecker(),
        max_calls=1,
        retry_invalid=False,
    )
    return list(read_jsonl(tmp_path / "qa.jsonl")), list(read_jsonl(tmp_path / "rejected.jsonl"))


def test_a_quote_of_another_sentence_gets_the_sentence_that_holds_the_answer(tmp_path):
    quote = "Donald Davies was a Welsh computer scientist."
    kept, rejected = run(
        tmp_path,
        {
            "quote": quote,
            "answer": "national physical  laboratory",
            "question": "Where did Donald Davies work?",
        },
    )
    assert not rejected and len(kept) == 1
    (ev,) = kept[0]["evidence"]
    assert ev["text"] == "He worked at the National Physical Laboratory in Teddington."
    chunk = next(iter(index().chunks()))
    assert chunk.text[ev["start"] - chunk.start : ev["end"] - chunk.start] == ev["text"]
    assert ev["quote"] == ""  # located, not quoted
    assert kept[0]["metadata"]["evidence_source"] == "located"
    assert kept[0]["metadata"]["model_quotes"] == [quote]


def test_an_answer_the_passage_does_not_hold_invents_no_evidence(tmp_path):
    quote = "Donald Davies was a Welsh computer scientist."
    kept, _ = run(
        tmp_path,
        {"quote": quote, "answer": "Cambridge", "question": "Where did Donald Davies study?"},
    )
    (pair,) = kept  # the fake checker keeps it: the quote stands and the checker judges
    assert [e["text"] for e in pair["evidence"]] == [quote]
    assert "evidence_source" not in pair["metadata"] and "model_quotes" not in pair["metadata"]


def test_a_quote_that_holds_the_answer_is_unchanged(tmp_path):
    quote = "He worked at the National Physical Laboratory in Teddington."
    kept, _ = run(
        tmp_path,
        {"quote": quote, "answer": "Teddington", "question": "Where was the laboratory?"},
    )
    (ev,) = kept[0]["evidence"]
    assert ev["text"] == ev["quote"] == quote
    assert "evidence_source" not in kept[0]["metadata"]


def test_a_quote_not_in_the_passage_is_still_rejected(tmp_path):
    kept, rejected = run(
        tmp_path,
        {
            "quote": "Davies invented the telephone in 1876.",
            "answer": "Teddington",
            "question": "Where was the laboratory?",
        },
    )
    assert not kept
    assert [r["code"] for r in rejected[0]["reasons"]] == ["quote_not_found"]


def test_among_several_sentences_the_one_nearest_the_question_is_chosen():
    text = (
        "The 1754 flood destroyed the mill. "
        "Scottish masons rebuilt the bridge at Kelso in 1754. "
        "A school opened there in 1754."
    )
    chunk = Chunk("k:40", "kelso", text, 40, 40 + len(text))
    ev = locate_answer("1754", "When did masons rebuild the bridge at Kelso?", [chunk])
    assert ev is not None and ev.text == "Scottish masons rebuilt the bridge at Kelso in 1754."
    assert text[ev.start - 40 : ev.end - 40] == ev.text and ev.chunk_id == "k:40"
    # a tie goes to the first; a part of a word is no span
    assert locate_answer("1754", "What year?", [chunk]).text == "The 1754 flood destroyed the mill."
    assert locate_answer("175", "What year?", [chunk]) is None


@pytest.mark.slow
def test_the_default_checker_keeps_a_pair_it_rejects_against_the_models_quote(tmp_path):
    from grounded.checker import default_checker

    quote = "Donald Davies was a Welsh computer scientist."
    pair = {
        "quote": quote,
        "answer": "National Physical Laboratory",
        "question": "Where did Donald Davies work?",
    }
    quoted, _ = run(tmp_path / "quoted", pair, checker=FakeChecker())
    checker = default_checker(semantic="off")
    from grounded.stages import check_batch
    from grounded.types import Evidence, QAPair

    (chunk,) = index().chunks()
    start = PASSAGE.index(quote)
    as_quoted = QAPair(
        id="q",
        question=pair["question"],
        answer=pair["answer"],
        evidence=(Evidence(chunk.doc_id, chunk.id, start, start + len(quote), quote, 1.0, quote),),
        doc_ids=(chunk.doc_id,),
        chunk_ids=(chunk.id,),
    )
    (verdict,) = check_batch(checker, [(as_quoted, [chunk])])
    assert not verdict.supported  # against the sentence the model quoted
    kept, rejected = run(tmp_path / "located", pair, checker=checker)
    assert not rejected and kept[0]["metadata"]["evidence_source"] == "located"
    assert quoted[0]["id"] == kept[0]["id"]  # the same pair, whichever evidence


def test_a_multi_hop_pair_keeps_its_quote_of_the_other_passage(tmp_path):
    first = "The Kelso bridge crosses the Tweed. Its arches were built of red sandstone."
    second = "The Tweed bridge at Kelso was designed by John Rennie. It opened in 1803."
    model = register_fake(
        FakeLLM(
            [
                json.dumps(
                    {
                        "pairs": [
                            {
                                "quotes": [
                                    "The Kelso bridge crosses the Tweed.",
                                    "The Tweed bridge at Kelso was designed by John Rennie.",
                                ],
                                "answer": "1803",
                                "question": "When did the bridge over the Tweed at Kelso open?",
                            }
                        ]
                    }
                )
            ],
            responder=None,
        )
    )
    generate(
        index=FakeIndex.from_texts({"a": [first], "b": [second]}),
        out=tmp_path,
        n=1,
        pairs_per_call=1,
        model=model,
        prompt="multi_hop",
        checker=FakeChecker(),
        max_calls=1,
        retry_invalid=False,
    )
    (pair,) = read_jsonl(tmp_path / "qa.jsonl")
    assert [e["text"] for e in pair["evidence"]] == [
        "It opened in 1803.",
        "The Kelso bridge crosses the Tweed.",
    ]
    assert pair["metadata"]["evidence_source"] == "located"
