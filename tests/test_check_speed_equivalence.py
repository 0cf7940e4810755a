"""The checker's speed-ups change no verdict: a batch equals pairs checked one by one, the cached
window ranking equals testing every window's own bag, and one spaCy load serves every check."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from grounded.checker import default_checker
from grounded.checker.answer_type import only, spacy_pipeline
from grounded.checker.context import Context, token_weight
from grounded.checker.long_answers import source_chunks
from grounded.eval.benchmarks import read_examples
from grounded.eval.faithfulness import example_pair
from grounded.text import content, tokens_of
from grounded.types import QAPair

DATA = Path(__file__).parent / "data" / "check"
needs_spacy = pytest.mark.skipif(spacy_pipeline() is None, reason="en_core_web_sm is not installed")


def _items(name: str, fmt: str, **kw: str) -> list:
    return [example_pair(e) for e in read_examples(DATA / name, fmt, **kw)]


def _plain(verdict) -> dict:
    return dataclasses.asdict(verdict)


@pytest.mark.parametrize(
    ("name", "fmt", "options", "negatives"),
    [
        ("squad.json", "squad", {"answer_types": "all"}, "same-paragraph"),
        ("squad.json", "squad", {}, None),
        ("halueval.json", "halueval", {"question_checks": False}, None),
        ("wice.jsonl", "wice", {"answer_only": True, "semantic": "off"}, None),
    ],
)
def test_a_batch_gets_the_verdicts_of_pairs_checked_one_by_one(name, fmt, options, negatives):
    if options.get("answer_types") == "all" and spacy_pipeline() is None:
        pytest.skip("en_core_web_sm is not installed")
    items = _items(name, fmt, **({"negatives": negatives} if negatives else {}))
    assert len(items) >= 3
    batch = default_checker(**options).check_many(items)
    single = [default_checker(**options).check(p, s) for p, s in items]
    assert [_plain(v) for v in batch] == [_plain(v) for v in single]
    assert {v.supported for v in batch} == {True, False}  # the fixture exercises both outcomes


def _brute_ranked(ctx: Context, tokens, k: int):
    """ranked_windows as first written: every window's merged bag tested token by token."""
    weights = [token_weight(t) for t in tokens]
    total = sum(weights) or 1.0
    scored = [
        (
            sum(w for t, w in zip(tokens, weights, strict=True) if bag.has(t)) / total,
            -len(text),
            text,
            bag,
        )
        for text, bag in ctx.windows
    ]
    scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
    return [(c, text) for c, _, text, _ in scored[:k]]


def test_ranked_windows_equal_testing_each_windows_bag():
    items = _items("squad.json", "squad") + _items("halueval.json", "halueval")
    checked = 0
    for pair, sources in items:
        ctx = Context(pair, sources)
        for tokens in (content(ctx.question_tokens), content(ctx.answer_tokens), ctx.claim_tokens):
            got = [(c, text) for c, text, _ in ctx.ranked_windows(tokens, k=len(ctx.windows))]
            assert got == _brute_ranked(ctx, tokens, len(ctx.windows))
            checked += bool(tokens)
    assert checked > 10


def test_a_merged_bag_has_a_token_exactly_when_one_of_its_bags_has_it():
    from grounded.checker.context import Bag

    text = json.loads((DATA / "squad.json").read_text())["data"][0]["paragraphs"][0]["context"]
    sentences = [tokens_of(s) for s in text.split(". ")]
    bags = [Bag(t) for t in sentences]
    merged = Bag.merge(bags)
    probes = [*tokens_of(text), *tokens_of("Americans 1,200 twelve November Phil 2.5 million x")]
    for tok in probes:
        assert merged.has(tok) == any(b.has(tok) for b in bags)


@needs_spacy
def test_one_spacy_load_serves_the_answer_type_check_and_the_claim_splitter():
    from grounded.checker.claims import nlp

    assert nlp() is spacy_pipeline()
    # each runs its own components only; NER reads its own embedding, not the parser's tok2vec
    assert set(only(nlp(), "ner")) >= {"tok2vec", "parser", "tagger"}
    assert "ner" in only(nlp(), "tagger", "parser", "attribute_ruler")


@needs_spacy
def test_long_answers_and_qa_pairs_in_one_run_keep_their_verdicts():
    import grounded

    source = "The Crystal Palace was built in 1851 in Hyde Park. It burned down in 1936."
    long = grounded.check_long(
        "The Crystal Palace was built in 1851. It burned down in 1936.", [source]
    )
    qa = default_checker(answer_types="all").check(
        QAPair(id="q", question="When did the Crystal Palace burn down?", answer="1936"),
        source_chunks([source]),
    )
    again = grounded.check_long(
        "The Crystal Palace was built in 1851. It burned down in 1936.", [source]
    )
    assert long.supported and qa.supported
    assert _plain(long) == _plain(again)
