"""grounded.text: the project's one sentence splitter, as chunking, loaders, generation and the checker use it."""

from __future__ import annotations

from grounded.generation import constrain_schema, sentences
from grounded.text import sentence_spans, split_sentences
from grounded.types import Chunk

BUDGET = "The U.S. budget rose to 3.5 million in 2019. Dr. Margit Holloway approved it. John F. Kennedy did not."


def test_split_keeps_decimals_acronyms_abbreviations_and_initials() -> None:
    assert split_sentences(BUDGET) == [
        "The U.S. budget rose to 3.5 million in 2019.",
        "Dr. Margit Holloway approved it.",
        "John F. Kennedy did not.",
    ]
    assert split_sentences("One here.Two there. Three!\nFour") == [
        "One here.",
        "Two there.",
        "Three!",
        "Four",
    ]
    assert split_sentences('He said "Stop." Then he left.') == ['He said "Stop."', "Then he left."]
    assert split_sentences("東京は大きい。人口は多い。") == ["東京は大きい。", "人口は多い。"]
    assert split_sentences("A line\nthe next", newlines=False) == ["A line\nthe next"]


def test_spans_are_verbatim() -> None:
    text = "  First one.   Second  one!\n\n third "
    assert [text[a:b] for a, b in sentence_spans(text)] == ["First one.", "Second  one!", "third"]


def _quote_choices(text: str) -> list[str]:
    chunk = Chunk(
        id=Chunk.make_id("d", 0, len(text)), doc_id="d", text=text, start=0, end=len(text)
    )
    rf = {
        "type": "json_schema",
        "json_schema": {
            "name": "qa",
            "schema": {
                "type": "object",
                "properties": {
                    "pairs": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"quote": {"type": "string"}}},
                    }
                },
            },
        },
    }
    out = constrain_schema(rf, [chunk], answers=False)
    return out["json_schema"]["schema"]["properties"]["pairs"]["items"]["properties"]["quote"][
        "enum"
    ]


def test_generation_quote_choices_keep_a_decimal_sentence_whole() -> None:
    # the local model may only quote these: "The U.S." and "5 million in 2019." are not sentences
    choices = _quote_choices(BUDGET)
    assert choices == sentences(BUDGET)
    assert "The U.S. budget rose to 3.5 million in 2019." in choices
    assert not any(c.startswith(("5 million", "S. budget")) for c in choices)


def test_light_nlp_counts_sentences_with_the_same_splitter() -> None:
    from grounded.loaders.nlp import LightNLP

    assert [s.text for s in LightNLP()(BUDGET).sents] == split_sentences(BUDGET)
